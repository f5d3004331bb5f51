//! A refused login fails the caller with the server's reason and is not
//! retried. fakesnow accepts any login, so this runs only against a real
//! account (`TIDEPOOL_SNOWFLAKE_ACCOUNT`).

mod common;

use tidepool_snowflake::{SnowflakeAuth, SnowflakeManager};

#[tokio::test]
async fn a_wrong_password_is_refused_without_retries_on_a_real_account() {
    let Some(mut cfg) = common::real_config("credentials") else {
        return;
    };
    cfg.auth = SnowflakeAuth::Password("certainly-not-the-password".to_owned());
    let pool = SnowflakeManager::new(cfg)
        .unwrap()
        .pool_builder()
        .max_retries(3)
        .build()
        .unwrap();
    let err = pool.get().await.expect_err("the login is refused");
    assert!(
        matches!(&err, tidepool::PoolError::Connect(c) if c.attempts == 1),
        "{err:?}"
    );
    assert!(!err.to_string().contains("certainly-not-the-password"));
}
