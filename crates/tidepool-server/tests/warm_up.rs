//! `warm_up` in the server: `eager_fail_fast` on a pool whose database
//! cannot be reached stops the server from starting, with a message that
//! names the pool and quotes no password; one whose database answers starts.

mod common;

use common::Server;

const PASSWORD: &str = "pw-SECRET-warm-4242";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_fail_fast_on_a_closed_port_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let closed = tidepool_testkit::closed_port();
    let toml = format!(
        "[pools.demo]\nbackend = \"sqlite\"\npath = \"demo.db\"\n\n\
         [pools.orders]\nbackend = \"postgres\"\n\
         url = \"postgres://app:{PASSWORD}@127.0.0.1:{closed}/orders\"\n\
         warm_up = \"eager_fail_fast\"\nmax_retries = 1\n"
    );
    let (status, log) = common::start_expecting_exit(dir.path(), &toml).await;
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("pool `orders`") && log.contains("eager_fail_fast"),
        "the message names the pool and the setting:\n{log}"
    );
    assert!(log.contains("Connection refused"), "and the cause:\n{log}");
    assert!(!log.contains("listening on"), "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_fail_fast_on_a_database_that_answers_starts_warm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_config(
        dir.path(),
        "[pools.demo]\nbackend = \"sqlite\"\npath = \"demo.db\"\n\
         warm_up = \"eager_fail_fast\"\nmin_idle = 2\n",
        &[],
    )
    .await;
    let pool = server.call("GET", "/api/v1/pools/demo", None, None).await;
    assert_eq!(pool.status, 200, "{}", pool.body);
    assert!(
        pool.json["gauges"]["idle"].as_u64().unwrap() >= 1,
        "{}",
        pool.body
    );
}
