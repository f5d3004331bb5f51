//! The pool between MariaDB and a fault-injecting proxy, under load (16
//! tasks on 8 connections): cut connections, an outage, a blackhole, a slow
//! network, and sessions killed by the server. The scenarios and their
//! assertions are `tidepool_testkit::faults`'s, shared by every backend.

mod common;

use tidepool::{CloseReason, Pool};
use tidepool_mysql::mysql_async::Conn;
use tidepool_mysql::mysql_async::prelude::Queryable;
use tidepool_mysql::{MySqlManager, MySqlPool};
use tidepool_testkit::faults::{self, Backend, Rig};
use tidepool_testkit::load::Probe;

/// mysql_async reads nothing while a connection is idle, so a connection
/// the server closed is known dead (`Conn::is_disconnected`) only once a
/// call on it failed: that call, and no other. A returned connection is
/// reset in the background (`reset_on_return`), and a reset that the fault
/// interrupts closes it too. A call given up on mid-flight leaves the
/// connection marked disconnected (its reply is never read), so it is
/// closed on return.
const MARIADB: Backend = Backend {
    name: "MariaDB",
    dead_reasons: &[CloseReason::Broken, CloseReason::Error],
    abandoned_call_breaks: true,
};

#[derive(Debug, Clone, Copy)]
struct SelectOne;

impl Probe<MySqlManager> for SelectOne {
    async fn call(&self, conn: &mut Conn) -> Result<(), String> {
        conn.query_drop("SELECT 1").await.map_err(|e| e.to_string())
    }
}

fn server() -> Option<String> {
    tidepool_testkit::service("MariaDB", "TIDEPOOL_MYSQL_ADDR", "127.0.0.1:3306")
}

fn pool(addr: &str) -> MySqlPool {
    Pool::builder(MySqlManager::new(common::config(addr)).unwrap())
        .config(faults::pool_config())
        .build()
        .unwrap()
}

fn rig(server: &str) -> Rig<MySqlManager, SelectOne> {
    Rig::start(MARIADB, server, SelectOne, pool)
}

tidepool_testkit::fault_tests!(server(), rig);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_every_session_fails_at_most_the_calls_they_were_serving() {
    let Some(server) = server() else { return };
    let _one = faults::one_at_a_time().await;
    let pool = pool(&server);
    let (ids, sessions) = faults::sessions(&pool, async |c: &mut Conn| c.id()).await;
    let mut killer = pool.connect_direct().await.unwrap();
    faults::server_kill(MARIADB, &pool, SelectOne, &ids, async || {
        for id in &sessions {
            killer.query_drop(format!("KILL {id}")).await.unwrap();
        }
    })
    .await;
}
