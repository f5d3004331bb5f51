//! The configuration deserializes from a URL string or a table of fields,
//! and rejects what it does not know.

use std::time::Duration;

use tidepool_postgres::{PgConfig, RecyclePolicy, SslMode};

#[test]
fn a_url_string_deserializes() {
    let cfg: PgConfig =
        serde_json::from_str(r#""postgres://app:pw@db:6432/orders?sslmode=disable""#).unwrap();
    assert_eq!(cfg.host, "db");
    assert_eq!(cfg.port, 6432);
    assert_eq!(cfg.password.as_deref(), Some("pw"));
    assert_eq!(cfg.ssl_mode, SslMode::Disable);
}

#[test]
fn a_table_deserializes_with_defaults_for_missing_fields() {
    let cfg: PgConfig = serde_json::from_str(
        r#"{"host": "db", "user": "app", "password": "pw", "dbname": "orders",
            "application_name": "api", "connect_timeout": "5s", "ssl_mode": "require"}"#,
    )
    .unwrap();
    assert_eq!(cfg.host, "db");
    assert_eq!(cfg.port, 5432);
    assert_eq!(cfg.user, "app");
    assert_eq!(cfg.dbname.as_deref(), Some("orders"));
    assert_eq!(cfg.application_name.as_deref(), Some("api"));
    assert_eq!(cfg.connect_timeout, Some(Duration::from_secs(5)));
    assert_eq!(cfg.ssl_mode, SslMode::Require);

    let cfg: PgConfig = serde_json::from_str(r#"{"connect_timeout": "off"}"#).unwrap();
    assert_eq!(cfg, PgConfig::default());
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let err = serde_json::from_str::<PgConfig>(r#"{"hostname": "db"}"#).unwrap_err();
    assert!(
        err.to_string().contains("unknown field `hostname`"),
        "{err}"
    );
}

#[test]
fn a_bad_url_is_rejected_without_the_password() {
    let err = serde_json::from_str::<PgConfig>(r#""postgres://app:hunter2/db""#).unwrap_err();
    assert!(err.to_string().contains("invalid PostgreSQL URL"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn the_recycle_policy_deserializes_in_snake_case() {
    let p: RecyclePolicy = serde_json::from_str(r#""verified""#).unwrap();
    assert_eq!(p, RecyclePolicy::Verified);
    let p: RecyclePolicy = serde_json::from_str(r#""clean""#).unwrap();
    assert_eq!(p, RecyclePolicy::Clean);
}
