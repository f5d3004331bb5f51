//! Sequential gets reuse one connection instead of opening new ones.

use tidepool_postgres::PgManager;

#[tokio::test]
async fn sequential_gets_reuse_one_connection() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let pool = PgManager::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .pool_builder()
        .max_size(4)
        .build()
        .unwrap();

    for i in 0..1000_i32 {
        let conn = pool.get().await.unwrap();
        let row = conn.query_one("SELECT $1::int", &[&i]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), i);
    }

    let stats = pool.stats();
    assert_eq!(stats.counters.created, 1, "one connection serves them all");
    assert_eq!(stats.counters.gets, 1000);
    assert_eq!(stats.counters.reused, 999);
    assert_eq!(stats.gauges.size, 1);
}
