//! Wrong credentials give a clear error naming the access denial, without
//! the password.

mod common;

use std::time::Duration;

use tidepool_mysql::mysql_async;

#[tokio::test]
async fn wrong_credentials_are_denied_without_leaking_the_password() {
    let Some(addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    let password = format!("pw-{:016x}", fastrand::u64(..));
    let mut cfg = common::config(&addr);
    cfg.user = Some(format!("tidepool_nobody_{:08x}", fastrand::u32(..)));
    cfg.password = Some(password.clone());
    let pool = tidepool::Pool::builder(tidepool_mysql::MySqlManager::new(cfg).unwrap())
        .max_size(2)
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let err = pool.get().await.expect_err("the user does not exist");
    let text = err.to_string();
    assert!(text.contains("Access denied"), "{text}");
    assert!(!text.contains(&password), "{text}");
    assert!(!format!("{err:?}").contains(&password));
    match err.backend_error() {
        // ER_ACCESS_DENIED_ERROR, or ER_ACCESS_DENIED_NO_PASSWORD_ERROR
        // when MariaDB answers during an authentication plugin switch.
        Some(mysql_async::Error::Server(e)) => assert!(matches!(e.code, 1045 | 1698), "{e}"),
        other => panic!("expected the server's error, got {other:?} ({text})"),
    }
}
