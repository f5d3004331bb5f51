//! Nothing listening at the configured address: `get` fails with an error
//! that names the address and the reason, after the pool's retries.

mod common;

use std::time::Duration;

#[tokio::test]
async fn an_unreachable_server_gives_a_clear_error() {
    let port = tidepool_testkit::closed_port();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let pool =
        tidepool::Pool::builder(tidepool_mssql::MssqlManager::new(common::mock_config(addr)))
            .max_retries(1)
            .retry_backoff(Duration::from_millis(10))
            .acquire_timeout(Duration::from_secs(5))
            .build()
            .unwrap();

    let err = pool.get().await.expect_err("nothing listens there");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "could not connect to SQL Server at 127.0.0.1:{port}"
        )),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(!text.contains("mock-password"), "{text}");
    let backend = err.backend_error().expect("the backend's error");
    assert!(matches!(
        backend,
        tidepool_mssql::MssqlError::Connect { .. }
    ));
    assert_eq!(pool.gauges().size, 0);
}
