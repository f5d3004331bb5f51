//! Helpers shared by the Redis behaviour tests.
#![allow(dead_code, unreachable_pub)]

use tidepool::Pooled;
use tidepool_redis::RedisManager;

/// The server's id for the client connection behind `conn` (`CLIENT ID`).
pub async fn client_id(conn: &mut Pooled<'_, RedisManager>) -> i64 {
    redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut **conn)
        .await
        .expect("CLIENT ID succeeds")
}

/// Kills client connection `id` from a connection outside the pool.
pub async fn kill(addr: &str, id: i64) {
    let client = redis::Client::open(format!("redis://{addr}")).unwrap();
    let mut killer = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut killer)
        .await
        .unwrap();
    assert_eq!(killed, 1, "CLIENT KILL found the connection");
}
