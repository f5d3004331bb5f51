//! The manager's hooks: after_create, before_checkout, and the idle order.
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{FakeError, check_accounting, quiet};
use tidepool::{ConnectionInfo, IdleOrder, Manager, Pool, PoolError};

/// Sets a session option after connecting (failing the first time), and
/// refuses to hand out connection 1 after its first use.
#[derive(Default)]
struct Hooked {
    made: AtomicU64,
    setups: AtomicU64,
}

impl Manager for Hooked {
    type Connection = (u64, &'static str);
    type Error = FakeError;

    async fn connect(&self) -> Result<Self::Connection, FakeError> {
        Ok((self.made.fetch_add(1, Ordering::SeqCst) + 1, "unset"))
    }

    async fn validate(&self, _: &mut Self::Connection) -> Result<(), FakeError> {
        Ok(())
    }

    async fn after_create(&self, conn: &mut Self::Connection) -> Result<(), FakeError> {
        if self.setups.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(FakeError("SET search_path failed".into()));
        }
        conn.1 = "search_path=app";
        Ok(())
    }

    async fn before_checkout(
        &self,
        conn: &mut Self::Connection,
        info: &ConnectionInfo,
    ) -> Result<(), FakeError> {
        if conn.0 == 2 && info.times_used > 1 {
            return Err(FakeError("connection 2 is stale".into()));
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_after_create_counts_as_a_failed_connect_and_is_retried() {
    let pool = Pool::builder(Hooked::default())
        .config(quiet(2))
        .retry_backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    let conn = pool.get().await.unwrap();
    assert_eq!(
        conn.1, "search_path=app",
        "the hook ran on the connection handed out"
    );
    assert_eq!(
        conn.0, 2,
        "the first connection failed its setup and was dropped"
    );
    let c = pool.counters();
    assert_eq!((c.create_errors, c.retries, c.created), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_failing_before_checkout_closes_the_connection_and_serves_another() {
    let pool = Pool::builder(Hooked::default())
        .config(quiet(2))
        .retry_backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    drop(pool.get().await.unwrap()); // connection 2, first use
    let conn = pool.get().await.unwrap(); // connection 2 refused on reuse
    assert_eq!(conn.0, 3);
    let c = pool.counters();
    assert_eq!(c.closed.error, 1);
    assert_eq!(c.checkout_rejections, 1);
    drop(conn);
    check_accounting(&pool);
}

#[tokio::test(start_paused = true)]
async fn lifo_hands_out_the_most_recent_and_fifo_the_least_recent() {
    for (order, want) in [(IdleOrder::Lifo, 3), (IdleOrder::Fifo, 1)] {
        let mut cfg = quiet(3);
        cfg.idle_order = order;
        let (pool, _) = common::pool(cfg);
        let a = pool.get().await.unwrap();
        let b = pool.get().await.unwrap();
        let c = pool.get().await.unwrap();
        drop(a);
        drop(b);
        drop(c); // returned last
        let next = pool.get().await.unwrap();
        assert_eq!(next.info().id, want, "{order:?}");
        drop(next);
        check_accounting(&pool);
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_after_create_reaches_the_caller_when_retries_run_out() {
    struct AlwaysFails;
    impl Manager for AlwaysFails {
        type Connection = ();
        type Error = FakeError;
        async fn connect(&self) -> Result<(), FakeError> {
            Ok(())
        }
        async fn validate(&self, _: &mut ()) -> Result<(), FakeError> {
            Ok(())
        }
        async fn after_create(&self, _: &mut ()) -> Result<(), FakeError> {
            Err(FakeError("permission denied for schema app".into()))
        }
    }
    let pool = Pool::builder(AlwaysFails).max_retries(0).build().unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(&err, PoolError::Connect(c) if c.attempts == 1));
    assert!(
        err.to_string().contains("permission denied for schema app"),
        "{err}"
    );
}
