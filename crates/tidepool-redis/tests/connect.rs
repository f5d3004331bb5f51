//! A pool connects to the server and runs commands.

use redis::AsyncCommands;
use tidepool_redis::RedisManager;

#[tokio::test]
async fn connects_and_runs_commands() {
    let Some(addr) = tidepool_testkit::service("Redis", "TIDEPOOL_REDIS_ADDR", "127.0.0.1:6379")
    else {
        return;
    };
    let pool = RedisManager::new(&format!("redis://{addr}"))
        .unwrap()
        .pool_builder()
        .max_size(2)
        .build()
        .unwrap();
    let key = format!("tidepool:test:connect:{:016x}", fastrand::u64(..));

    let mut conn = pool.get().await.unwrap();
    let () = conn.set_ex(&key, 41, 60).await.unwrap();
    let n: i64 = conn.incr(&key, 1).await.unwrap();
    assert_eq!(n, 42);
    let pong: String = redis::cmd("PING").query_async(&mut *conn).await.unwrap();
    assert_eq!(pong, "PONG");
    let () = conn.del(&key).await.unwrap();
    drop(conn);

    let counters = pool.counters();
    assert_eq!(counters.created, 1);
    assert_eq!(counters.served(), 1);
}
