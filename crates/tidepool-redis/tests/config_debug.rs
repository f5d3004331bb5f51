//! `Debug` of the manager never shows the password, and a bad URL's error
//! does not quote it.

use tidepool_redis::RedisManager;

#[test]
fn debug_hides_the_password() {
    let manager = RedisManager::new("redis://app:hunter2-secret@cache.internal:6380/3").unwrap();
    let shown = format!("{manager:?}");
    assert!(!shown.contains("hunter2-secret"), "{shown}");
    assert!(shown.contains(r#"password: Some("***")"#), "{shown}");
    assert!(shown.contains("cache.internal:6380"), "{shown}");
    assert!(shown.contains("db: 3"), "{shown}");
    assert!(!format!("{manager:#?}").contains("hunter2-secret"));
}

#[test]
fn debug_without_a_password_says_none() {
    let manager = RedisManager::new("redis://cache.internal").unwrap();
    assert!(format!("{manager:?}").contains("password: None"));
}

#[test]
fn a_bad_url_is_rejected_without_the_password() {
    let err = RedisManager::new("redis://app:hunter2-secret@host/notanumber").unwrap_err();
    assert!(!err.to_string().contains("hunter2-secret"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2-secret"), "{err:?}");
    let err = RedisManager::new("http://app:hunter2-secret@host").unwrap_err();
    assert!(!err.to_string().contains("hunter2-secret"), "{err}");
}
