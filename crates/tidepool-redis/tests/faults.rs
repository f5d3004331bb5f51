//! The pool between Redis and a fault-injecting proxy, under load (16 tasks
//! on 8 connections): cut connections, an outage, a blackhole, a slow
//! network, and clients killed by the server. The scenarios and their
//! assertions are `tidepool_testkit::faults`'s, shared by every backend.

mod common;

use tidepool::CloseReason;
use tidepool_redis::{RedisConnection, RedisManager, RedisPool};
use tidepool_testkit::faults::{self, Backend, Rig};
use tidepool_testkit::load::Probe;

/// A pooled connection is known broken once a command on it failed in a way
/// the driver calls unrecoverable: that command, and no other. A command
/// given up on mid-flight leaves the multiplexed connection usable (its late
/// reply is read and dropped).
const REDIS: Backend = Backend {
    name: "Redis",
    dead_reasons: &[CloseReason::Broken],
    abandoned_call_breaks: false,
};

#[derive(Debug, Clone, Copy)]
struct Ping;

impl Probe<RedisManager> for Ping {
    async fn call(&self, conn: &mut RedisConnection) -> Result<(), String> {
        redis::cmd("PING")
            .query_async::<String>(conn)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

fn server() -> Option<String> {
    tidepool_testkit::service("Redis", "TIDEPOOL_REDIS_ADDR", "127.0.0.1:6379")
}

fn pool(addr: &str) -> RedisPool {
    RedisManager::new(&format!("redis://{addr}"))
        .unwrap()
        .pool_builder()
        .config(faults::pool_config())
        .build()
        .unwrap()
}

fn rig(server: &str) -> Rig<RedisManager, Ping> {
    Rig::start(REDIS, server, Ping, pool)
}

tidepool_testkit::fault_tests!(server(), rig);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_every_client_fails_at_most_the_calls_they_were_serving() {
    let Some(server) = server() else { return };
    let _one = faults::one_at_a_time().await;
    let pool = pool(&server);
    let (ids, clients) = faults::sessions(&pool, async |c: &mut RedisConnection| {
        redis::cmd("CLIENT")
            .arg("ID")
            .query_async::<i64>(c)
            .await
            .unwrap()
    })
    .await;
    faults::server_kill(REDIS, &pool, Ping, &ids, async || {
        for id in &clients {
            common::kill(&server, *id).await;
        }
    })
    .await;
}
