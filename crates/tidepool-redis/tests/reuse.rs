//! Sequential gets reuse one connection instead of opening new ones.

use tidepool_redis::RedisManager;

#[tokio::test]
async fn sequential_gets_reuse_one_connection() {
    let Some(addr) = tidepool_testkit::service("Redis", "TIDEPOOL_REDIS_ADDR", "127.0.0.1:6379")
    else {
        return;
    };
    let pool = RedisManager::new(&format!("redis://{addr}"))
        .unwrap()
        .pool_builder()
        .max_size(4)
        .build()
        .unwrap();

    for i in 0..1000_i64 {
        let mut conn = pool.get().await.unwrap();
        let echoed: i64 = redis::cmd("ECHO")
            .arg(i)
            .query_async(&mut *conn)
            .await
            .unwrap();
        assert_eq!(echoed, i);
    }

    let stats = pool.stats();
    assert_eq!(stats.counters.created, 1, "one connection serves them all");
    assert_eq!(stats.counters.gets, 1000);
    assert_eq!(stats.counters.reused, 999);
    assert_eq!(stats.gauges.size, 1);
}
