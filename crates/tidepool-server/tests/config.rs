//! The TOML configuration: defaults, flattened pool settings, `${VAR}`
//! interpolation, and errors naming the file, line and key; `check-config`.

use std::time::Duration;

use tidepool_server::config::{Backend, Config};

fn env(var: &str) -> Option<String> {
    match var {
        "PG_PASSWORD" => Some("s3cret-from-env".into()),
        "TOKEN" => Some("token-from-env-0123456789".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Config, tidepool_server::config::ConfigError> {
    Config::parse(text, "test.toml", &env)
}

#[test]
fn a_full_file_parses_with_interpolation_and_pool_settings() {
    let cfg = parse(
        r#"
[server]
listen = "0.0.0.0:8080"
tokens = ["${TOKEN}"]
statement_timeout = "5s"
max_rows = 10

[pools.orders]
backend = "postgres"
url = "postgres://app:${PG_PASSWORD}@db:5432/orders"
max_size = 20
acquire_timeout = "2s"
idle_timeout = "off"
health = { degraded_utilization = 0.5 }

[pools.cache]
backend = "sqlite"
path = "cache.db"
pragmas = { busy_timeout = "2s" }
"#,
    )
    .unwrap();
    assert_eq!(cfg.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(cfg.server.tokens, ["token-from-env-0123456789"]);
    assert_eq!(cfg.server.statement_timeout, Duration::from_secs(5));
    assert_eq!(cfg.server.session_ttl, Duration::from_secs(3600), "default");
    let orders = &cfg.pools["orders"];
    assert_eq!(orders.pool.max_size, 20);
    assert_eq!(orders.pool.acquire_timeout, Duration::from_secs(2));
    assert_eq!(orders.pool.idle_timeout, None);
    assert_eq!(orders.pool.health.degraded_utilization, 0.5);
    let Backend::Postgres { config, .. } = &orders.backend else {
        panic!()
    };
    assert_eq!(config.password.as_deref(), Some("s3cret-from-env"));
    let Backend::Sqlite(sqlite) = &cfg.pools["cache"].backend else {
        panic!()
    };
    assert_eq!(sqlite.pragmas.busy_timeout, Duration::from_secs(2));
    let shown = cfg.to_redacted_json().to_string();
    assert!(
        !shown.contains("s3cret-from-env") && !shown.contains("token-from-env"),
        "{shown}"
    );
}

#[test]
fn an_empty_file_is_the_defaults() {
    let cfg = parse("").unwrap();
    assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:7070");
    assert!(cfg.pools.is_empty());
    assert_eq!(cfg.server.stream_interval, Duration::from_secs(1));
    assert_eq!((cfg.server.stream_buffer, cfg.server.max_streams), (8, 32));
}

#[test]
fn the_dashboard_streams_limits_are_read_and_zero_is_refused() {
    let cfg = parse("[server]\nstream_interval = \"250ms\"\nstream_buffer = 3\nmax_streams = 5\n")
        .unwrap();
    assert_eq!(cfg.server.stream_interval, Duration::from_millis(250));
    assert_eq!((cfg.server.stream_buffer, cfg.server.max_streams), (3, 5));
    let shown = cfg.to_redacted_json();
    assert_eq!(shown["server"]["stream_interval"], "250ms");
    assert_eq!(shown["server"]["max_streams"], 5);
    for key in [
        "stream_interval = \"0s\"",
        "stream_buffer = 0",
        "max_streams = 0",
    ] {
        let e = error(&format!("[server]\n{key}\n"));
        let name = key.split(' ').next().unwrap();
        assert!(
            e.contains(&format!("key `server.{name}`")) && e.contains("greater than zero"),
            "{e}"
        );
    }
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let e = error("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n");
    assert!(e.starts_with("test.toml:3: key `server.lisen`"), "{e}");
    assert!(e.contains("unknown field"), "{e}");
    let e = error("[pools.a]\nbackend = \"sqlite\"\npath = \"a.db\"\n\nmax_sise = 3\n");
    assert!(e.starts_with("test.toml:5: key `pools.a.max_sise`"), "{e}");
    let e = error("[serverr]\nx = 1\n");
    assert!(e.starts_with("test.toml:1: key `serverr`"), "{e}");
    let e = error("[pools.a]\nbackend = \"sqlite\"\npath = \"a.db\"\nhealth = { degraded = 1 }\n");
    assert!(e.contains("key `pools.a.health.degraded`"), "{e}");
}

#[test]
fn wrong_types_and_invalid_values_are_named() {
    let e = error("[pools.a]\nbackend = \"sqlite\"\npath = \"a.db\"\nmax_size = \"ten\"\n");
    assert!(e.starts_with("test.toml:4: key `pools.a.max_size`"), "{e}");
    assert!(e.contains("invalid type"), "{e}");
    let e = error("[pools.a]\nbackend = \"sqlite\"\npath = \"a.db\"\nmax_size = 2\nmin_idle = 5\n");
    assert!(e.starts_with("test.toml:5: key `pools.a.min_idle`"), "{e}");
    let e = error("[pools.a]\nbackend = \"sqlite\"\npath = \"a.db\"\nacquire_timeout = \"soon\"\n");
    assert!(e.contains("key `pools.a.acquire_timeout`"), "{e}");
    let e = error("[server]\nlisten = \"nowhere\"\n");
    assert!(e.starts_with("test.toml:2: key `server.listen`"), "{e}");
    let e = error("[server]\nmax_rows = 0\n");
    assert!(
        e.contains("key `server.max_rows`") && e.contains("greater than zero"),
        "{e}"
    );
    let e = error("[pools.a]\nbackend = \"oracle\"\n");
    assert!(e.starts_with("test.toml:2: key `pools.a.backend`"), "{e}");
    let e = error("[pools.a]\nbackend = \"postgres\"\n");
    assert!(e.contains("missing `url`"), "{e}");
    let e = error("x = [\n");
    assert!(e.starts_with("test.toml:"), "{e}");
}

#[test]
fn errors_never_quote_secrets() {
    let e = error("[pools.a]\nbackend = \"postgres\"\nurl = \"postgres://u:${PG_PASSWORD}/db\"\n");
    assert!(e.contains("key `pools.a.url`"), "{e}");
    assert!(!e.contains("s3cret-from-env"), "{e}");
    let e =
        error("[pools.a]\nbackend = \"postgres\"\nurl = \"postgres://u:${MISSING_VAR}@h/db\"\n");
    assert!(
        e.contains("`MISSING_VAR` is not set") && e.contains("key `pools.a.url`"),
        "{e}"
    );
}

#[test]
fn check_config_exits_0_for_valid_and_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[pools.demo]\nbackend = \"sqlite\"\npath = \"demo.db\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(["check-config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 pool(s): demo)"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[pools.demo]\nbackend = \"sqlite\"\npath = \"demo.db\"\nmax_size = -3\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(["check-config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:4: key `pools.demo.max_size`"),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "serve refuses a bad file too");
}
