//! Wrong credentials are refused with a clear error that does not reveal the
//! password. The local server has no password: Redis 7 answers a bare
//! `AUTH <password>` with "ERR AUTH <password> called without any password
//! configured", and `AUTH <user> <password>` for an unknown user with
//! `WRONGPASS`. The `redis` crate reports both as its own
//! `AuthenticationFailed` error ("Password authentication failed") and keeps
//! no trace of the server's wording, so that is what is asserted.

use redis::ErrorKind;
use tidepool_redis::RedisManager;

const PASSWORD: &str = "s3cret-pw-do-not-print";

async fn refused(url: &str) {
    let pool = RedisManager::new(url)
        .unwrap()
        .pool_builder()
        .max_retries(0)
        .build()
        .unwrap();

    let err = pool.get().await.unwrap_err();
    let backend = err.backend_error().expect("the driver's error is kept");
    assert_eq!(backend.kind(), ErrorKind::AuthenticationFailed, "{backend}");
    let shown = err.to_string();
    assert!(shown.contains("authentication failed"), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(!format!("{err:?}").contains(PASSWORD));
    assert_eq!(pool.counters().created, 0);
}

#[tokio::test]
async fn a_password_the_server_does_not_expect_is_refused() {
    let Some(addr) = tidepool_testkit::service("Redis", "TIDEPOOL_REDIS_ADDR", "127.0.0.1:6379")
    else {
        return;
    };
    refused(&format!("redis://:{PASSWORD}@{addr}")).await;
}

#[tokio::test]
async fn an_unknown_user_is_refused() {
    let Some(addr) = tidepool_testkit::service("Redis", "TIDEPOOL_REDIS_ADDR", "127.0.0.1:6379")
    else {
        return;
    };
    refused(&format!("redis://wronguser:{PASSWORD}@{addr}")).await;
}
