//! A role the server does not know is refused with a clear error that does
//! not reveal the password.

use tidepool_postgres::PgManager;
use tidepool_postgres::tokio_postgres::error::SqlState;

#[tokio::test]
async fn an_unknown_role_is_refused_without_echoing_the_password() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let password = "s3cret-pw-do-not-print";
    let pool = PgManager::from_url(&format!("postgres://nosuchuser:{password}@{addr}/test"))
        .unwrap()
        .pool_builder()
        .max_retries(0)
        .build()
        .unwrap();

    let err = pool.get().await.unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains(r#"role "nosuchuser" does not exist"#),
        "{shown}"
    );
    let db = err
        .backend_error()
        .and_then(|e| e.as_db_error())
        .expect("the server's own error is kept");
    assert_eq!(db.code(), &SqlState::INVALID_AUTHORIZATION_SPECIFICATION);
    assert!(!shown.contains(password), "{shown}");
    assert!(!format!("{err:?}").contains(password));
    assert!(!format!("{pool:?} {:?}", pool.manager()).contains(password));
}
