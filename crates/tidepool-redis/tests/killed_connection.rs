//! A connection killed on the server while idle in the pool is detected
//! before anyone gets it, and replaced: the next caller's get and command
//! succeed.
//!
//! Nothing tells the pool about the kill while the connection sits idle
//! (`has_broken` knows only what a failed command told it: the driver's
//! multiplexed connection has no closed flag), so the pool pings before
//! every checkout (`Validation::Always`); the dead connection fails the
//! `PING`.

mod common;

use tidepool::Validation;
use tidepool_redis::{RedisManager, RedisPool};

async fn client_id(pool: &RedisPool) -> i64 {
    let mut conn = pool.get().await.expect("get succeeds");
    common::client_id(&mut conn).await
}

#[tokio::test]
async fn validation_replaces_a_killed_connection() {
    let Some(addr) = tidepool_testkit::service("Redis", "TIDEPOOL_REDIS_ADDR", "127.0.0.1:6379")
    else {
        return;
    };
    let pool = RedisManager::new(&format!("redis://{addr}"))
        .unwrap()
        .pool_builder()
        .max_size(1)
        .validation(Validation::Always)
        .build()
        .unwrap();

    let victim = client_id(&pool).await;
    common::kill(&addr, victim).await;
    let replacement = client_id(&pool).await;

    assert_ne!(replacement, victim);
    let counters = pool.counters();
    assert_eq!(counters.closed.failed_validation, 1);
    assert_eq!(counters.created, 2);
}
