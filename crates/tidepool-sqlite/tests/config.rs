//! `SqliteConfig` deserializes from `path` or `memory` plus pragmas, with
//! the documented defaults, and rejects anything ambiguous or unknown.

use std::path::PathBuf;
use std::time::Duration;

use tidepool_sqlite::{Database, JournalMode, Pragmas, SqliteConfig, Synchronous, TempStore};

#[test]
fn a_path_alone_gets_the_default_pragmas() {
    let cfg: SqliteConfig = serde_json::from_str(r#"{"path": "app.db"}"#).unwrap();
    assert_eq!(cfg.database, Database::File(PathBuf::from("app.db")));
    let p = &cfg.pragmas;
    assert_eq!(p.journal_mode, JournalMode::Wal);
    assert_eq!(p.synchronous, Synchronous::Normal);
    assert_eq!(p.busy_timeout, Duration::from_secs(5));
    assert_eq!(p.mmap_size, 256 * 1024 * 1024);
    assert_eq!(p.cache_size, 10_000);
    assert_eq!(p.temp_store, TempStore::Memory);
    assert!(p.foreign_keys);
    assert_eq!(cfg, SqliteConfig::file("app.db"));
}

#[test]
fn pragmas_are_configurable_and_round_trip() {
    let cfg: SqliteConfig = serde_json::from_str(
        r#"{"memory": "cache", "pragmas": {"busy_timeout": "250ms", "journal_mode": "delete",
            "synchronous": "full", "foreign_keys": false, "cache_size": -2000}}"#,
    )
    .unwrap();
    assert_eq!(cfg.database, Database::Memory("cache".to_owned()));
    assert_eq!(cfg.pragmas.busy_timeout, Duration::from_millis(250));
    assert_eq!(cfg.pragmas.journal_mode, JournalMode::Delete);
    assert_eq!(cfg.pragmas.synchronous, Synchronous::Full);
    assert!(!cfg.pragmas.foreign_keys);
    assert_eq!(cfg.pragmas.cache_size, -2000);
    assert_eq!(cfg.pragmas.mmap_size, Pragmas::default().mmap_size);
    let again: SqliteConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(again, cfg);
}

#[test]
fn ambiguous_missing_or_unknown_settings_are_rejected() {
    for (json, expect) in [
        (r#"{"path": "a.db", "memory": "b"}"#, "not both"),
        (r#"{}"#, "set `path`"),
        (
            r#"{"path": "a.db", "journal": "wal"}"#,
            "unknown field `journal`",
        ),
        (
            r#"{"path": "a.db", "pragmas": {"journal_mod": "wal"}}"#,
            "unknown field `journal_mod`",
        ),
        (
            r#"{"path": "a.db", "pragmas": {"journal_mode": "fast"}}"#,
            "unknown variant `fast`",
        ),
        (r#"{"path": ""}"#, "`path`: must not be empty"),
    ] {
        let err = serde_json::from_str::<SqliteConfig>(json).unwrap_err();
        assert!(err.to_string().contains(expect), "{json}: {err}");
    }
}
