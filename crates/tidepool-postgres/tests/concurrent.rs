//! Many tasks share a small pool; every get is served and the statistics
//! add up exactly.

use tidepool_postgres::PgManager;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_share_eight_connections() {
    let Some(addr) = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
    else {
        return;
    };
    let pool = PgManager::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .pool_builder()
        .max_size(8)
        .build()
        .unwrap();

    let tasks: Vec<_> = (0..64_i32)
        .map(|t| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for q in 0..100_i32 {
                    let conn = pool.get().await.unwrap();
                    let stmt = conn
                        .prepare_cached("SELECT $1::int * 1000 + $2::int")
                        .await
                        .unwrap();
                    let row = conn.query_one(&stmt, &[&t, &q]).await.unwrap();
                    assert_eq!(row.get::<_, i32>(0), t * 1000 + q);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let stats = pool.stats();
    tidepool_testkit::assert_all_served(&stats, 6400, 8);
    assert_eq!(stats.counters.closed.total(), 0);
    assert_eq!(stats.gauges.size as u64, stats.counters.created);
}
