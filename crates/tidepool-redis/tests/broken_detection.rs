//! A connection whose command failed because the connection is gone is
//! closed on return (`has_broken`); a command the server merely refused
//! leaves the connection in the pool.

mod common;

use redis::AsyncCommands;
use tidepool_redis::RedisManager;

#[tokio::test]
async fn a_connection_that_died_in_use_is_closed_on_return() {
    let Some(addr) = tidepool_testkit::service("Redis", "TIDEPOOL_REDIS_ADDR", "127.0.0.1:6379")
    else {
        return;
    };
    let pool = RedisManager::new(&format!("redis://{addr}"))
        .unwrap()
        .pool_builder()
        .max_size(1)
        .build()
        .unwrap();

    let mut conn = pool.get().await.unwrap();
    let id = common::client_id(&mut conn).await;
    // Killed from another connection while this one is checked out.
    common::kill(&addr, id).await;
    assert!(!conn.is_broken(), "nothing has failed on it yet");

    let err = redis::cmd("PING")
        .query_async::<String>(&mut *conn)
        .await
        .unwrap_err();
    assert!(err.is_unrecoverable_error(), "{err}");
    assert!(conn.is_broken());
    let first = conn.info().id;
    drop(conn);
    assert_eq!(pool.counters().closed.broken, 1);

    let mut conn = pool.get().await.unwrap();
    assert_ne!(conn.info().id, first);
    let pong: String = redis::cmd("PING").query_async(&mut *conn).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn a_refused_command_keeps_the_connection() {
    let Some(addr) = tidepool_testkit::service("Redis", "TIDEPOOL_REDIS_ADDR", "127.0.0.1:6379")
    else {
        return;
    };
    let pool = RedisManager::new(&format!("redis://{addr}"))
        .unwrap()
        .pool_builder()
        .max_size(1)
        .build()
        .unwrap();
    let key = format!("tidepool:test:wrongtype:{:016x}", fastrand::u64(..));

    let mut conn = pool.get().await.unwrap();
    let () = conn.rpush(&key, "x").await.unwrap();
    let err = conn.incr::<_, _, i64>(&key, 1).await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
    assert!(!conn.is_broken());
    let () = conn.del(&key).await.unwrap();
    let first = conn.info().id;
    drop(conn);

    assert_eq!(pool.counters().closed.total(), 0);
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.info().id, first, "the same connection, reused");
}
