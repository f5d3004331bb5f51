//! `MySqlConfig` deserializes from a URL, from fields, or both (fields win),
//! and rejects unknown keys.

use tidepool_mysql::MySqlConfig;

#[test]
fn fields_override_the_url() {
    let cfg: MySqlConfig = serde_json::from_str(
        r#"{"url": "mysql://app@db.example:3307/orders", "password": "pw", "reset_on_return": false}"#,
    )
    .unwrap();
    assert_eq!(cfg.host, "db.example");
    assert_eq!(cfg.port, 3307);
    assert_eq!(cfg.user.as_deref(), Some("app"));
    assert_eq!(cfg.password.as_deref(), Some("pw"));
    assert_eq!(cfg.database.as_deref(), Some("orders"));
    assert!(!cfg.reset_on_return);
}

#[test]
fn fields_alone_start_from_the_defaults() {
    let cfg: MySqlConfig =
        serde_json::from_str(r#"{"user": "root", "database": "test", "init": ["SET @a = 1"]}"#)
            .unwrap();
    assert_eq!(cfg.host, "localhost");
    assert_eq!(cfg.port, 3306);
    assert_eq!(cfg.user.as_deref(), Some("root"));
    assert_eq!(cfg.init, ["SET @a = 1"]);
    assert!(cfg.reset_on_return);
    assert_eq!(cfg, {
        let mut c = MySqlConfig::default();
        c.user = Some("root".into());
        c.database = Some("test".into());
        c.init = vec!["SET @a = 1".into()];
        c
    });
}

#[test]
fn unknown_keys_and_bad_values_are_rejected() {
    let err = serde_json::from_str::<MySqlConfig>(r#"{"hots": "db"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `hots`"), "{err}");
    let err = serde_json::from_str::<MySqlConfig>(r#"{"port": 0}"#).unwrap_err();
    assert!(err.to_string().contains("`port`"), "{err}");
}
