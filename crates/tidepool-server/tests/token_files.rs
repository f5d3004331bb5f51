//! Token files through the real binary: a file its group or others may
//! read, or one holding a token shorter than 32 characters, stops the server
//! with a message naming the file — for every role, and for the bundled
//! demo's `data/admin-token` too. An owner-only file with a long token works.
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::Server;

const LONG: &str = "tok-SECRET-file-0123456789abcdef0123456789";
const SHORT: &str = "tok-SECRET-short-1234";

fn write_token(path: &Path, token: &str, mode: u32) {
    std::fs::write(path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn config(file: &Path, role: &str) -> String {
    format!(
        "[[tenants]]\nname = \"ops\"\nrole = \"{role}\"\ntoken_file = \"{}\"\npools = [\"*\"]\n\n\
         [pools.demo]\nbackend = \"sqlite\"\npath = \"demo.db\"\n",
        file.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_files_open_to_others_or_holding_short_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ops-token");
    for (role, token, mode, why) in [
        ("admin", LONG, 0o644, "mode 644"),
        ("admin", LONG, 0o640, "mode 640"),
        ("admin", LONG, 0o604, "mode 604"),
        ("admin", SHORT, 0o600, "shorter than 32 characters"),
        ("query", LONG, 0o644, "mode 644"),
        ("monitor", SHORT, 0o600, "shorter than 32 characters"),
    ] {
        write_token(&file, token, mode);
        let (status, log) = common::start_expecting_exit(dir.path(), &config(&file, role)).await;
        assert_eq!(status.code(), Some(2), "{role} {mode:o}: {log}");
        assert!(
            log.contains("token_file") && log.contains(&file.display().to_string()),
            "the key and the file are named: {log}"
        );
        assert!(log.contains(why), "{role} {mode:o}: {log}");
        assert!(!log.contains("SECRET"), "a token was quoted: {log}");
    }

    write_token(&file, LONG, 0o600);
    let server = Server::with_config(dir.path(), &config(&file, "admin"), &[]).await;
    let paused = server
        .call("POST", "/api/v1/pools/demo/pause", Some(LONG), None)
        .await;
    assert_eq!(paused.status, 200, "{}", paused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_demo_refuses_an_admin_token_file_open_to_others() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let file = dir.path().join("data/admin-token");
    write_token(&file, LONG, 0o644);
    let log_path = dir.path().join("demo.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(["serve", "--listen"])
        .arg(format!("127.0.0.1:{}", common::free_port()))
        .current_dir(dir.path())
        .env_remove("TIDEPOOL_TOKENS")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the demo started with a token file open to others:\n{}",
                std::fs::read_to_string(&log_path).unwrap()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("data/admin-token") && log.contains("chmod 600"),
        "{log}"
    );
    assert!(!log.contains("SECRET"), "{log}");

    write_token(&file, LONG, 0o600);
    let server = Server::start(dir.path(), &[], &[]).await;
    let paused = server
        .call("POST", "/api/v1/pools/demo/pause", Some(LONG), None)
        .await;
    assert_eq!(paused.status, 200, "{}", paused.body);
}
