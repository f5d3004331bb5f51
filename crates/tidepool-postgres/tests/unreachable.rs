//! A server that is not there gives a prompt error carrying the connect
//! failure, not a hang.

use std::time::Duration;

use tidepool_postgres::PgManager;

#[tokio::test]
async fn an_unreachable_server_reports_the_connect_error() {
    // Needs no server: nothing listens on the port.
    let port = tidepool_testkit::closed_port();
    let pool = PgManager::from_url(&format!("postgres://postgres@127.0.0.1:{port}/test"))
        .unwrap()
        .pool_builder()
        .acquire_timeout(Duration::from_secs(2))
        .build()
        .unwrap();

    let err = pool.get().await.unwrap_err();
    // Either connecting gave up for this caller, or the wait timed out
    // carrying the last connect error: never a bare "all busy" timeout.
    assert!(
        err.connect_error().is_some(),
        "expected the connect failure, got {err:?}"
    );
    let shown = err.to_string().to_lowercase();
    assert!(shown.contains("connection refused"), "{shown}");
    let backend = err.backend_error().expect("the driver's error is kept");
    assert!(
        backend.to_string().contains("error connecting to server"),
        "{backend}"
    );
    assert!(pool.counters().create_errors >= 1);
}
