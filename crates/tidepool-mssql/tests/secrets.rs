//! The password never shows: not in `Debug`, not in a configuration error,
//! not in a connect error.

mod common;

use tidepool_mssql::{MssqlConfig, MssqlManager};

const SECRET: &str = "hunter2-do-not-print";

#[test]
fn debug_output_never_shows_the_password() {
    let from_string = MssqlConfig::from_ado_string(&format!(
        "Server=tcp:db,1433;User Id=app;Password={SECRET};Database=orders"
    ))
    .unwrap();
    let from_fields = MssqlConfig::builder()
        .host("db")
        .sql_login("app", SECRET)
        .build()
        .unwrap();
    let builder = MssqlConfig::builder().host("db").sql_login("app", SECRET);
    let manager = MssqlManager::new(from_string.clone());
    for shown in [
        format!("{from_string:?}"),
        format!("{from_fields:?}"),
        format!("{builder:?}"),
        format!("{manager:?}"),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("db"), "{shown}");
    }
}

#[test]
fn configuration_errors_never_quote_the_string() {
    for bad in [
        format!("Server=tcp:db,notaport;Password={SECRET}"),
        format!("Server=tcp:db,1433;Password={SECRET};Encrypt=maybe"),
        format!("Server=tcp:db,1433;Password='{SECRET}"),
    ] {
        let err = MssqlConfig::from_ado_string(&bad).expect_err(&bad);
        assert_eq!(err.field(), "connection_string");
        assert!(!err.to_string().contains(SECRET), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[tokio::test]
async fn connect_errors_never_show_the_password() {
    let port = tidepool_testkit::closed_port();
    let cfg = MssqlConfig::builder()
        .host("127.0.0.1")
        .port(port)
        .sql_login("app", SECRET)
        .build()
        .unwrap();
    let pool = tidepool::Pool::builder(MssqlManager::new(cfg))
        .max_retries(0)
        .build()
        .unwrap();
    let err = pool.get().await.expect_err("nothing listens");
    assert!(!err.to_string().contains(SECRET), "{err}");
    assert!(!format!("{err:?}").contains(SECRET), "{err:?}");
}
