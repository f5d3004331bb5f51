//! Nothing answering at the account's address: `get` fails with the
//! driver's network error, after the pool's retries, and shows no secret.

use std::time::Duration;

use tidepool_snowflake::{SnowflakeAuth, SnowflakeConfig, SnowflakeManager};

#[tokio::test]
async fn an_unreachable_endpoint_gives_a_clear_error() {
    let port = tidepool_testkit::closed_port();
    let mut cfg = SnowflakeConfig::new(
        "acct",
        "app",
        SnowflakeAuth::Password("hunter2-secret".to_owned()),
    );
    cfg.base_url = Some(format!("http://127.0.0.1:{port}"));
    let pool = SnowflakeManager::new(cfg)
        .unwrap()
        .pool_builder()
        .max_retries(1)
        .retry_backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    let err = pool.get().await.expect_err("nothing listens there");
    let text = format!("{err} {err:?}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("hunter2-secret"), "{text}");
    let backend = err.backend_error().expect("the driver's error");
    assert_eq!(
        backend.kind(),
        tidepool_snowflake::snowflake_connector_rs::ErrorKind::Network,
        "{backend}"
    );
    assert_eq!(pool.gauges().size, 0);
}
