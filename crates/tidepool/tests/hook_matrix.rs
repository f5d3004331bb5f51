//! Every manager hook × every behaviour (returns, fails, is slow, never
//! returns, panics): afterwards the pool has lost no capacity, its
//! accounting is exact, and it serves the next caller once the fault
//! clears. (The shape of deadpool's cancellation tests: a fault injected
//! into each hook in turn.)
mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::FakeError;
use tidepool::{ConnectionInfo, Manager, Pool, PoolConfig, Validation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Hook {
    Connect,
    AfterCreate,
    Validate,
    HasBroken,
    BeforeCheckout,
    NeedsReset,
    Reset,
    IsRetryable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Ok,
    Err,
    Slow,
    Never,
    Panic,
}

const ALL: [Act; 5] = [Act::Ok, Act::Err, Act::Slow, Act::Never, Act::Panic];
/// Synchronous hooks cannot be slow or hang the pool's way (they would
/// block their thread, which no pool can undo); `Err` is their bad answer.
const SYNC: [Act; 3] = [Act::Ok, Act::Err, Act::Panic];

/// A manager whose every hook does what the test says.
#[derive(Default)]
struct Faulty {
    acts: Mutex<HashMap<Hook, Act>>,
    made: AtomicU64,
}

impl Faulty {
    fn act(&self, hook: Hook) -> Act {
        *self.acts.lock().unwrap().get(&hook).unwrap_or(&Act::Ok)
    }

    fn set(&self, hook: Hook, act: Act) {
        self.acts.lock().unwrap().insert(hook, act);
    }

    fn clear(&self) {
        self.acts.lock().unwrap().clear();
    }

    /// The async hooks' common behaviour.
    async fn run(&self, hook: Hook) -> Result<(), FakeError> {
        match self.act(hook) {
            Act::Ok => Ok(()),
            Act::Err => Err(FakeError(format!("{hook:?} failed"))),
            Act::Slow => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(())
            }
            Act::Never => std::future::pending().await,
            Act::Panic => panic!("{hook:?} panicked"),
        }
    }

    /// The sync hooks' answer: `good` unless told otherwise.
    fn answer(&self, hook: Hook, good: bool) -> bool {
        match self.act(hook) {
            Act::Err => !good,
            Act::Panic => panic!("{hook:?} panicked"),
            _ => good,
        }
    }
}

impl Manager for Faulty {
    type Connection = u64;
    type Error = FakeError;

    async fn connect(&self) -> Result<u64, FakeError> {
        self.run(Hook::Connect).await?;
        if self.act(Hook::IsRetryable) != Act::Ok {
            // Exercised only when a connect fails.
            return Err(FakeError("refused".into()));
        }
        Ok(self.made.fetch_add(1, Ordering::SeqCst) + 1)
    }

    async fn after_create(&self, _: &mut u64) -> Result<(), FakeError> {
        self.run(Hook::AfterCreate).await
    }

    async fn validate(&self, _: &mut u64) -> Result<(), FakeError> {
        self.run(Hook::Validate).await
    }

    fn has_broken(&self, _: &mut u64) -> bool {
        self.answer(Hook::HasBroken, false)
    }

    async fn before_checkout(&self, _: &mut u64, _: &ConnectionInfo) -> Result<(), FakeError> {
        self.run(Hook::BeforeCheckout).await
    }

    fn needs_reset(&self, _: &mut u64) -> bool {
        self.answer(Hook::NeedsReset, true)
    }

    async fn reset(&self, _: &mut u64) -> Result<(), FakeError> {
        self.run(Hook::Reset).await
    }

    fn is_retryable(&self, _: &FakeError) -> bool {
        self.answer(Hook::IsRetryable, true)
    }
}

fn config() -> PoolConfig {
    let mut cfg = common::quiet(2);
    cfg.validation = Validation::Always;
    cfg.validation_timeout = Duration::from_millis(100);
    cfg.create_timeout = Duration::from_millis(100);
    cfg.acquire_timeout = Duration::from_secs(1);
    cfg.retry_backoff = Duration::from_millis(10);
    cfg.retry_backoff_max = Duration::from_millis(20);
    cfg.max_retries = 1;
    cfg.keepalive_interval = Some(Duration::from_secs(1));
    cfg.maintenance_interval = Duration::from_millis(250);
    cfg
}

/// Runs one cell: a get, a hold, a return and some background work with
/// `hook` doing `act`; then the fault clears and the pool must serve with
/// every count back where it belongs.
async fn cell(hook: Hook, act: Act) {
    let pool = Pool::builder(Faulty::default())
        .config(config())
        .build()
        .unwrap();
    pool.manager().set(hook, act);
    two_callers(&pool).await;
    // Resets, keepalive pings, retries and timeouts run their course.
    tokio::time::sleep(Duration::from_secs(3)).await;
    pool.manager().clear();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let conn = pool.get().await;
    assert!(
        conn.is_ok(),
        "{hook:?} × {act:?}: the pool serves again: {:?}",
        conn.err()
    );
    drop(conn);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let g = pool.gauges();
    assert_eq!(
        (g.in_use, g.waiting, g.pending, g.checking),
        (0, 0, 0, 0),
        "{hook:?} × {act:?}: every unit of capacity came back: {g:?}"
    );
    assert_eq!(
        g.idle + g.in_use + g.checking + g.closing,
        g.size,
        "{hook:?} × {act:?}: {g:?}"
    );
    assert!(g.size <= 2, "{hook:?} × {act:?}: {g:?}");
    common::check_accounting(&pool);
    let c = pool.counters();
    if act == Act::Panic {
        assert!(
            c.panics >= 1,
            "{hook:?} × {act:?}: the panic was counted: {c:?}"
        );
    } else {
        assert_eq!(c.panics, 0, "{hook:?} × {act:?}: {c:?}");
    }
}

/// Two gets at once, in tasks of their own (so that a second caller waits
/// behind the first), each holding what it got for a moment. A hook that
/// runs on the get path (`has_broken` before checkout, `validate`,
/// `before_checkout`) unwinds into its caller's task when it panics, as any
/// panic in awaited code does; that task ends, and the pool must not care.
async fn two_callers(pool: &Pool<Faulty>) {
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                if let Ok(conn) = pool.get().await {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    drop(conn);
                }
            })
        })
        .collect();
    for task in tasks {
        if let Err(e) = task.await {
            assert!(e.is_panic(), "{e}");
        }
    }
}

macro_rules! hook_tests {
    ($($name:ident: $hook:expr, $acts:expr;)*) => {$(
        #[tokio::test(start_paused = true)]
        async fn $name() {
            for act in $acts {
                cell($hook, act).await;
            }
        }
    )*};
}

hook_tests! {
    connect: Hook::Connect, ALL;
    after_create: Hook::AfterCreate, ALL;
    validate: Hook::Validate, ALL;
    before_checkout: Hook::BeforeCheckout, ALL;
    reset: Hook::Reset, ALL;
    has_broken: Hook::HasBroken, SYNC;
    needs_reset: Hook::NeedsReset, SYNC;
    is_retryable: Hook::IsRetryable, SYNC;
}
