//! The pool between PostgreSQL and a fault-injecting proxy, under load (16
//! tasks on 8 connections): cut connections, an outage, a blackhole, a slow
//! network, and sessions killed by the server. The scenarios and their
//! assertions are `tidepool_testkit::faults`'s, shared by every backend.

use tidepool::CloseReason;
use tidepool_postgres::tokio_postgres::NoTls;
use tidepool_postgres::{PgConnection, PgManager, PgPool};
use tidepool_testkit::faults::{self, Backend, Rig};
use tidepool_testkit::load::Probe;

/// tokio-postgres reads the server's goodbye in the background, and a
/// connection notes a `FATAL` a call got, so a session that ended is known
/// closed (`PgConnection::is_closed`) before anyone else gets it; a call
/// given up on leaves the session usable (its late reply is read and
/// dropped).
const POSTGRES: Backend = Backend {
    name: "PostgreSQL",
    dead_reasons: &[CloseReason::Broken],
    abandoned_call_breaks: false,
};

#[derive(Debug, Clone, Copy)]
struct SelectOne;

impl Probe<PgManager> for SelectOne {
    async fn call(&self, conn: &mut PgConnection) -> Result<(), String> {
        conn.simple_query("SELECT 1")
            .await
            .map(drop)
            .map_err(|e| format!("{e:?}"))
    }
}

fn server() -> Option<String> {
    tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")
}

fn pool(addr: &str) -> PgPool {
    PgManager::from_url(&format!("postgres://postgres@{addr}/test"))
        .unwrap()
        .pool_builder()
        .config(faults::pool_config())
        .build()
        .unwrap()
}

fn rig(server: &str) -> Rig<PgManager, SelectOne> {
    Rig::start(POSTGRES, server, SelectOne, pool)
}

tidepool_testkit::fault_tests!(server(), rig);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_every_session_fails_at_most_the_calls_they_were_serving() {
    let Some(server) = server() else { return };
    let _one = faults::one_at_a_time().await;
    let pool = pool(&server);
    let (ids, pids) = faults::sessions(&pool, async |c: &mut PgConnection| {
        let row = c.query_one("SELECT pg_backend_pid()", &[]).await.unwrap();
        row.get::<_, i32>(0)
    })
    .await;
    let killer = pool.manager().config().to_tokio_postgres();
    faults::server_kill(POSTGRES, &pool, SelectOne, &ids, async || {
        let (client, connection) = killer.connect(NoTls).await.unwrap();
        tokio::spawn(connection);
        // Each waits (up to 10 s) until the server process has exited.
        let rows = client
            .query(
                "SELECT pg_terminate_backend(pid, 10000) FROM unnest($1::int[]) AS pid",
                &[&pids],
            )
            .await
            .unwrap();
        assert!(
            rows.iter().all(|r| r.get::<_, bool>(0)),
            "a backend survived"
        );
    })
    .await;
}
