//! `Debug` of the configuration and the manager never shows the password.

use tidepool_postgres::{PgConfig, PgManager};

#[test]
fn debug_hides_the_password() {
    let cfg: PgConfig = "postgres://app:hunter2-secret@db:5432/orders"
        .parse()
        .unwrap();
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("hunter2-secret"), "{shown}");
    assert!(shown.contains(r#"password: Some("***")"#), "{shown}");
    assert!(shown.contains("orders"), "{shown}");

    let pretty = format!("{cfg:#?}");
    assert!(!pretty.contains("hunter2-secret"), "{pretty}");

    let manager = PgManager::new(cfg);
    let shown = format!("{manager:?}");
    assert!(!shown.contains("hunter2-secret"), "{shown}");
    assert!(shown.contains("***"), "{shown}");
}

#[test]
fn debug_without_a_password_says_none() {
    let cfg: PgConfig = "postgres://app@db/orders".parse().unwrap();
    assert!(format!("{cfg:?}").contains("password: None"));
}
