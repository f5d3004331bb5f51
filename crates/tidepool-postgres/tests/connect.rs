//! A pool connects to the server and runs a query.

use tidepool_postgres::PgManager;

#[tokio::test]
async fn connects_and_queries() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let pool = PgManager::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .pool_builder()
        .max_size(2)
        .build()
        .unwrap();

    let conn = pool.get().await.unwrap();
    let row = conn
        .query_one("SELECT $1::int + 1, current_database()", &[&41_i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    assert_eq!(row.get::<_, String>(1), "test");
    drop(conn);

    let counters = pool.counters();
    assert_eq!(counters.created, 1);
    assert_eq!(counters.served(), 1);
    assert_eq!(pool.name(), "test", "the pool is named after the database");
}
