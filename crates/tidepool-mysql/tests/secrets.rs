//! The password never shows in `Debug` output or in configuration errors.
//! (No server needed.)

use tidepool_mysql::{MySqlConfig, MySqlManager};

const PASSWORD: &str = "s3cret-hunter2";

#[test]
fn debug_of_the_config_and_manager_hides_the_password() {
    let cfg =
        MySqlConfig::from_url(&format!("mysql://app:{PASSWORD}@db.example:3306/orders")).unwrap();
    assert_eq!(cfg.password.as_deref(), Some(PASSWORD));
    let text = format!("{cfg:?}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert!(text.contains("db.example"), "{text}");

    let manager = MySqlManager::new(cfg).unwrap();
    let text = format!("{manager:?} {manager:#?}");
    assert!(!text.contains(PASSWORD), "{text}");
}

#[test]
fn errors_never_repeat_the_url() {
    for url in [
        format!("mysql://app:{PASSWORD}@db.example:70000/orders"),
        format!("mysql://app:{PASSWORD}@db.example/orders/more"),
        format!("http://app:{PASSWORD}@db.example/orders"),
        format!("mysql://app:{PASSWORD}@db.example/orders?password={PASSWORD}"),
    ] {
        let err = MySqlConfig::from_url(&url).unwrap_err();
        assert!(!err.to_string().contains(PASSWORD), "{err}");
        assert!(!format!("{err:?}").contains(PASSWORD), "{err:?}");
    }
    let json = format!(r#"{{"url": "mysql://app:{PASSWORD}@db.example:70000/orders"}}"#);
    let err = serde_json::from_str::<MySqlConfig>(&json).unwrap_err();
    assert!(!err.to_string().contains(PASSWORD), "{err}");
}
