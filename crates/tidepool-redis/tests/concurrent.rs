//! Many tasks share a small pool; every get is served and the statistics
//! add up exactly.

use redis::AsyncCommands;
use tidepool_redis::RedisManager;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_share_eight_connections() {
    let Some(addr) = tidepool_testkit::service("Redis", "TIDEPOOL_REDIS_ADDR", "127.0.0.1:6379")
    else {
        return;
    };
    let pool = RedisManager::new(&format!("redis://{addr}"))
        .unwrap()
        .pool_builder()
        .max_size(8)
        .build()
        .unwrap();
    let key = format!("tidepool:test:concurrent:{:016x}", fastrand::u64(..));

    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let pool = pool.clone();
            let key = key.clone();
            tokio::spawn(async move {
                for _ in 0..100 {
                    let mut conn = pool.get().await.unwrap();
                    let _: i64 = conn.incr(&key, 1).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let mut conn = pool.get().await.unwrap();
    let total: i64 = conn.get(&key).await.unwrap();
    let () = conn.del(&key).await.unwrap();
    drop(conn);
    assert_eq!(total, 6400, "every command ran exactly once");

    let stats = pool.stats();
    tidepool_testkit::assert_all_served(&stats, 6401, 8);
    assert_eq!(stats.counters.closed.total(), 0);
    assert_eq!(stats.gauges.size as u64, stats.counters.created);
}
