//! Graceful shutdown of the real binary: SIGTERM while a query is running
//! stops accepting connections, lets that request finish with its full
//! answer, drains the pools and exits 0 within `shutdown_timeout`.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::json;
use tokio::net::TcpStream;

const TOKEN: &str = "shutdown-test-token-0123456789abcdef";
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
/// Rows the slow query counts: a few seconds on a loaded 2-core machine,
/// well inside `SHUTDOWN_TIMEOUT`, long enough to be in flight at SIGTERM.
const ROWS: u64 = 3_000_000;

/// The `demo` pool's `in_use` gauge, read over a separate connection.
async fn in_use(server: &Server) -> u64 {
    let r = server.call("GET", "/api/v1/pools/demo", None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json["gauges"]["in_use"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tidepool.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ntokens = [\"{TOKEN}\"]\nshutdown_timeout = \"{}s\"\n\n\
             [pools.demo]\nbackend = \"sqlite\"\npath = \"demo.db\"\n",
            SHUTDOWN_TIMEOUT.as_secs()
        ),
    )
    .unwrap();
    let mut server = Server::start(dir.path(), &["--config", config.to_str().unwrap()], &[]).await;
    let id = server.open_session(TOKEN, "demo").await;
    assert_eq!(in_use(&server).await, 0);

    let slow = server.spawn_counting(TOKEN, &id, ROWS);

    // The query holds the pool's connection while it runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while in_use(&server).await == 0 {
        assert!(
            !slow.is_finished(),
            "the query ended before it was seen running"
        );
        assert!(Instant::now() < deadline, "the query never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    server.send_sigterm();
    let signalled = Instant::now();

    // The listener closes at once: new connections are refused…
    loop {
        match TcpStream::connect(&server.addr).await {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            // Accepted into the backlog as the listener closed: reset. Retry.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("unexpected connect error: {e}"),
            Ok(_) => {}
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "still accepting connections 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // …while the request already in flight is still being served.
    assert!(
        !slow.is_finished(),
        "the query finished before shutdown began, so this test proved nothing; count more rows"
    );

    let reply = slow
        .await
        .unwrap()
        .expect("the in-flight request was cut off");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json["columns"], json!(["c"]), "{}", reply.body);
    assert_eq!(reply.json["rows"], json!([[ROWS]]), "{}", reply.body);
    assert_eq!(reply.json["row_count"], 1);
    assert_eq!(reply.json["truncated"], false);
    assert!(reply.json["elapsed_ms"].as_f64().unwrap() > 0.0);

    let status = server.wait_exit(Duration::from_secs(60)).await;
    let took = signalled.elapsed();
    let log = server.log_text();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(
        took < SHUTDOWN_TIMEOUT,
        "exit took {took:?}, more than shutdown_timeout\n{log}"
    );
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(!log.contains("did not finish in time"), "{log}");
    assert!(!log.contains("not fully drained"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    let after = TcpStream::connect(&server.addr).await;
    assert_eq!(
        after.err().map(|e| e.kind()),
        Some(ErrorKind::ConnectionRefused)
    );
}
