//! Fake managers for the pool's behaviour tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidepool::{Manager, Pool, PoolConfig};
use tokio::time::Instant;

/// The error a fake connect or ping fails with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeError(pub String);

impl fmt::Display for FakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FakeError {}

/// A fake connection.
#[derive(Debug)]
pub struct FakeConn {
    pub id: u64,
    /// `has_broken` reports this.
    pub broken: bool,
    /// Free for tests to scribble on.
    pub value: u64,
}

/// Knobs and counters of the fake backend, shared with the test.
#[derive(Debug, Default)]
pub struct Knobs {
    pub connects: AtomicU64,
    pub validations: AtomicU64,
    pub resets: AtomicU64,
    /// Connect attempt numbers (1-based) that fail.
    pub fail_attempts: Mutex<HashSet<u64>>,
    /// Every connect fails while set.
    pub fail_all: AtomicBool,
    /// Connect takes this long (virtual time in paused tests).
    pub connect_delay_ms: AtomicU64,
    /// Connection ids whose validation fails.
    pub invalid: Mutex<HashSet<u64>>,
    /// Every validation fails while set.
    pub invalidate_all: AtomicBool,
    /// When each connect attempt started.
    pub attempt_times: Mutex<Vec<Instant>>,
    /// Connections ask for a reset on return.
    pub reset_on_return: AtomicBool,
    /// Connection ids the driver knows are closed (`has_broken` says so).
    pub dead: Mutex<HashSet<u64>>,
    /// `connect` panics while set.
    pub panic_connect: AtomicBool,
    /// `has_broken` panics while set.
    pub panic_has_broken: AtomicBool,
    /// `reset` panics while set.
    pub panic_reset: AtomicBool,
    /// Validation takes this long (virtual time in paused tests).
    pub validate_delay_ms: AtomicU64,
}

/// A fake backend: counting, failing the Nth connect, slow, invalidating.
#[derive(Debug, Clone, Default)]
pub struct Fake(pub Arc<Knobs>);

impl Fake {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn knobs(&self) -> Arc<Knobs> {
        Arc::clone(&self.0)
    }

    pub fn failing_attempts(self, attempts: impl IntoIterator<Item = u64>) -> Self {
        self.0.fail_attempts.lock().unwrap().extend(attempts);
        self
    }

    pub fn slow(self, delay: Duration) -> Self {
        self.0
            .connect_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
        self
    }
}

impl Knobs {
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::SeqCst)
    }

    pub fn validations(&self) -> u64 {
        self.validations.load(Ordering::SeqCst)
    }

    pub fn set_fail_all(&self, on: bool) {
        self.fail_all.store(on, Ordering::SeqCst);
    }

    /// The driver learns that connection `id` is closed (a server-side kill).
    pub fn kill(&self, id: u64) {
        self.dead.lock().unwrap().insert(id);
    }

    pub fn set(&self, flag: &AtomicBool, on: bool) {
        flag.store(on, Ordering::SeqCst);
    }

    pub fn invalidate(&self, id: u64) {
        self.invalid.lock().unwrap().insert(id);
    }
}

impl Manager for Fake {
    type Connection = FakeConn;
    type Error = FakeError;

    async fn connect(&self) -> Result<FakeConn, FakeError> {
        let n = self.0.connects.fetch_add(1, Ordering::SeqCst) + 1;
        if self.0.panic_connect.load(Ordering::SeqCst) {
            panic!("connect panicked (attempt {n})");
        }
        self.0.attempt_times.lock().unwrap().push(Instant::now());
        let delay = self.0.connect_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.0.fail_all.load(Ordering::SeqCst)
            || self.0.fail_attempts.lock().unwrap().contains(&n)
        {
            return Err(FakeError(format!("connection refused (attempt {n})")));
        }
        Ok(FakeConn {
            id: n,
            broken: false,
            value: 0,
        })
    }

    async fn validate(&self, conn: &mut FakeConn) -> Result<(), FakeError> {
        self.0.validations.fetch_add(1, Ordering::SeqCst);
        let delay = self.0.validate_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.0.invalidate_all.load(Ordering::SeqCst)
            || self.0.invalid.lock().unwrap().contains(&conn.id)
        {
            return Err(FakeError(format!("connection {} is gone", conn.id)));
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut FakeConn) -> bool {
        if self.0.panic_has_broken.load(Ordering::SeqCst) {
            panic!("has_broken panicked");
        }
        conn.broken || self.0.dead.lock().unwrap().contains(&conn.id)
    }

    fn needs_reset(&self, _conn: &mut FakeConn) -> bool {
        self.0.reset_on_return.load(Ordering::SeqCst)
    }

    async fn reset(&self, conn: &mut FakeConn) -> Result<(), FakeError> {
        self.0.resets.fetch_add(1, Ordering::SeqCst);
        if self.0.panic_reset.load(Ordering::SeqCst) {
            panic!("reset panicked");
        }
        conn.value = 0;
        Ok(())
    }
}

/// A config with background work switched off, so tests see only what they do.
pub fn quiet(max_size: usize) -> PoolConfig {
    let mut cfg = PoolConfig::default();
    cfg.max_size = max_size;
    cfg.max_lifetime = None;
    cfg.idle_timeout = None;
    cfg.keepalive_interval = None;
    cfg.validation = tidepool::Validation::Never;
    cfg.acquire_timeout = Duration::from_secs(5);
    cfg
}

pub fn pool(cfg: PoolConfig) -> (Pool<Fake>, Arc<Knobs>) {
    let fake = Fake::new();
    let knobs = fake.knobs();
    (
        Pool::builder(fake)
            .config(cfg)
            .build()
            .expect("valid config"),
        knobs,
    )
}

pub fn pool_with(fake: Fake, cfg: PoolConfig) -> Pool<Fake> {
    Pool::builder(fake)
        .config(cfg)
        .build()
        .expect("valid config")
}

/// Lets spawned tasks run until they block (virtual time does not move).
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// The invariants every snapshot must satisfy.
pub fn check_invariants(pool: &Pool<Fake>) {
    let g = pool.gauges();
    assert_eq!(
        g.idle + g.in_use + g.checking + g.closing,
        g.size,
        "idle + in use + checking = size: {g:?}"
    );
    assert!(
        g.size <= g.max_size + g.max_overflow,
        "size within max + overflow: {g:?}"
    );
    assert!(g.overflow <= g.max_overflow, "{g:?}");
    if !g.paused {
        assert!(
            g.waiting == 0 || g.idle == 0,
            "nobody waits while a connection is idle: {g:?}"
        );
    }
}

/// Once no get is in flight, every get is accounted for exactly once, and
/// every connection created is open, closed or detached.
pub fn check_accounting<M: tidepool::Manager>(pool: &Pool<M>) {
    let (c, g) = (pool.counters(), pool.gauges());
    assert_eq!(
        c.gets,
        c.served()
            + c.timeouts
            + c.connect_failures
            + c.rejected_closed
            + c.none_idle
            + c.cancelled,
        "every get accounted for: {c:?}"
    );
    assert_eq!(
        c.created,
        g.size as u64 + c.closed.total() + c.detached,
        "created = open + closed + detached: {c:?} {g:?}"
    );
}
