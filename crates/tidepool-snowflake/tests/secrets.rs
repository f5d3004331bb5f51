//! The password, private key and passphrase never show: not in `Debug`,
//! not in configuration errors.

use tidepool_snowflake::{SnowflakeAuth, SnowflakeConfig, SnowflakeManager};

const SECRET: &str = "hunter2-do-not-print";

#[test]
fn debug_output_never_shows_a_secret() {
    let mut cfg = SnowflakeConfig::new("acct", "app", SnowflakeAuth::Password(SECRET.into()));
    cfg.base_url = Some("http://127.0.0.1:1".into());
    let key = SnowflakeAuth::KeyPair {
        private_key_pem: format!("-----BEGIN PRIVATE KEY-----{SECRET}"),
        passphrase: Some(SECRET.into()),
    };
    let manager = SnowflakeManager::new(cfg.clone()).unwrap();
    for shown in [
        format!("{cfg:?}"),
        format!("{cfg:#?}"),
        format!("{key:?}"),
        format!("{manager:?}"),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
    assert!(format!("{manager:?}").contains("acct"));
}

#[test]
fn configuration_errors_never_quote_a_secret() {
    for bad in [
        format!(
            r#"{{"account": "a", "user": "u", "password": "{SECRET}", "private_key_pem": "{SECRET}"}}"#
        ),
        format!(
            r#"{{"account": "a", "user": "u", "password": "{SECRET}", "base_url": "http://x:{SECRET}@h"}}"#
        ),
        format!(
            r#"{{"account": "a", "user": "u", "password": "{SECRET}", "session_lifetime": "2h"}}"#
        ),
        format!(r#"{{"account": "a", "user": "u", "passwd": "{SECRET}"}}"#),
    ] {
        let err = serde_json::from_str::<SnowflakeConfig>(&bad).expect_err(&bad);
        assert!(!err.to_string().contains(SECRET), "{err}");
    }
}
