//! The bundled demo starts in an empty directory however the tokens are
//! given: generated into `data/admin-token`, or from `TIDEPOOL_TOKENS` (in
//! which case no token file is written, and `data/` must still be made for
//! the demo database).

mod common;

use common::Server;
use serde_json::json;

const TOKEN: &str = "env-token-0123456789abcdef0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_demo_starts_in_an_empty_directory_with_tidepool_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[("TIDEPOOL_TOKENS", TOKEN)]).await;
    assert!(dir.path().join("data/demo.db").exists());
    assert!(
        !dir.path().join("data/admin-token").exists(),
        "no token file is made when tokens are given"
    );
    let id = server.open_session(TOKEN, "demo").await;
    let rows = server
        .query(TOKEN, &id, "SELECT count(*) AS n FROM employees", json!([]))
        .await;
    assert_eq!(rows.status, 200, "{}", rows.body);
    assert_eq!(rows.json["rows"], json!([[6]]));
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
    assert!(!log.contains(TOKEN), "the token was logged:\n{log}");
}
