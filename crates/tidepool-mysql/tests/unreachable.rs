//! An unreachable server gives a clear error carrying the connect failure,
//! not a hang.

mod common;

use std::time::Duration;

use tidepool_mysql::mysql_async;

#[tokio::test]
async fn unreachable_server_reports_the_refusal() {
    let Some(_addr) = tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
    else {
        return;
    };
    let port = tidepool_testkit::closed_port();
    let cfg = common::config(&format!("127.0.0.1:{port}"));
    let pool = tidepool::Pool::builder(tidepool_mysql::MySqlManager::new(cfg).unwrap())
        .max_size(2)
        .acquire_timeout(Duration::from_secs(2))
        .build()
        .unwrap();

    let err = pool.get().await.expect_err("nothing listens there");
    let text = err.to_string();
    assert!(text.to_lowercase().contains("refused"), "{text}");
    match err.backend_error() {
        Some(mysql_async::Error::Io(io)) => {
            assert!(io.to_string().to_lowercase().contains("refused"), "{io}");
        }
        other => panic!("expected the driver's I/O error, got {other:?} ({text})"),
    }
    assert!(pool.counters().create_errors >= 1);
}
