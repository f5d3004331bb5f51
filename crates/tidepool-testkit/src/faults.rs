//! The fault scenarios every backend runs against its real server, with a
//! [`FaultProxy`] in between and a [`Load`] on the pool: the same scenario
//! and the same assertions for PostgreSQL, MySQL and Redis, so that
//! RELIABILITY.md's promises are proved once per driver.
//!
//! Every scenario asserts, besides its own point:
//! - no get outlives `acquire_timeout` and no call outlives its call
//!   timeout by more than [`OVERRUN`];
//! - a connection fails at most one call: the one it was serving when the
//!   fault hit it (or the first one after, for a driver that cannot know
//!   sooner);
//! - the accounting afterwards is exact: the pool is full and at rest
//!   (`size == idle == MAX_SIZE`, nothing in use, checking, waiting or
//!   pending), every get the load made is counted once as served or failed,
//!   and every connection opened is either open or closed for one of the
//!   reasons the backend allows.
//!
//! Each scenario returns a [`Report`] of what it measured (recovery times,
//! refused attempts, the longest get and call), also printed to stderr.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use tidepool::{CloseReason, Manager, Pool, PoolConfig};
use tokio::time::{Instant, sleep};

use crate::load::{Call, Load, LoadConfig, Probe};
use crate::proxy::FaultProxy;

mod checks;

use checks::{
    Before, End, assert_at_most_one_failure_per_connection, assert_no_failed_get_outside,
    assert_no_failure_outside, connections_served, recovered, warm,
};

/// Connections in the pool under test.
pub const MAX_SIZE: usize = 8;
/// Tasks looping on it: twice the connections, so callers always queue.
pub const TASKS: usize = 16;
/// The pool's `acquire_timeout`.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(300);
/// The pool's `create_timeout`.
pub const CREATE_TIMEOUT: Duration = Duration::from_millis(200);
/// The pool's `validation_timeout`.
pub const VALIDATION_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a load task waits for its call before giving up on it.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(200);
/// The pool's `retry_backoff`.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(5);
/// The pool's `retry_backoff_max`. Recovery follows the database's return
/// by up to one backoff delay (the retry gate's wait) plus one connect, so
/// this leaves room within [`RECOVERY`] for the connect and the scheduling
/// delays of a loaded two-core machine: a PostgreSQL session start forks a
/// server process, up to about 20 ms there.
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(10);
/// From a fault's end to the first call served (issue 12's bound).
pub const RECOVERY: Duration = Duration::from_millis(50);
/// How much longer than its timeout a get or a call may take: the timer's
/// millisecond granularity plus the scheduling delays of a loaded
/// two-core machine.
pub const OVERRUN: Duration = Duration::from_millis(100);
/// The outages of each backend's outage test: seven cycles, one to three
/// seconds each.
pub const OUTAGES: [Duration; 7] = [
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(1),
    Duration::from_secs(1),
    Duration::from_secs(1),
];
/// Longest wait for anything that must happen (a warm pool, a recovery that
/// is then judged against [`RECOVERY`]).
const PATIENCE: Duration = Duration::from_secs(10);
/// How long the load runs after each fault, so the pool refills.
const AFTERWARDS: Duration = Duration::from_millis(300);

/// The pool settings of every fault test: [`MAX_SIZE`] connections and the
/// short timeouts and backoff above; everything else at its default.
pub fn pool_config() -> PoolConfig {
    let mut cfg = PoolConfig::default();
    cfg.max_size = MAX_SIZE;
    cfg.acquire_timeout = ACQUIRE_TIMEOUT;
    cfg.create_timeout = CREATE_TIMEOUT;
    cfg.validation_timeout = VALIDATION_TIMEOUT;
    cfg.retry_backoff = RETRY_BACKOFF;
    cfg.retry_backoff_max = RETRY_BACKOFF_MAX;
    cfg
}

/// The load of every fault test: [`TASKS`] tasks, each holding its
/// connection 2 ms after its call.
pub fn load_config() -> LoadConfig {
    LoadConfig {
        tasks: TASKS,
        call_timeout: CALL_TIMEOUT,
        hold: Duration::from_millis(2),
        pause_after_failure: Duration::from_millis(1),
    }
}

/// Where backends differ under faults.
#[derive(Debug, Clone, Copy)]
pub struct Backend {
    /// For messages.
    pub name: &'static str,
    /// Why the pool may close a connection that the network or the server
    /// broke: [`CloseReason::Broken`] (the driver's closed flag, on return
    /// or at checkout), and for a backend that resets on return,
    /// [`CloseReason::Error`] (the reset failed).
    pub dead_reasons: &'static [CloseReason],
    /// Whether a call given up on mid-flight leaves its connection closed
    /// on return (its protocol state unknown to the driver), rather than
    /// usable once the late reply has been read.
    pub abandoned_call_breaks: bool,
}

/// A pool whose connections pass through a proxy, and the call to load it
/// with.
#[derive(Debug)]
pub struct Rig<M: Manager, P> {
    /// The backend's behaviour under faults.
    pub backend: Backend,
    /// A pool built with [`pool_config`], connecting to `proxy.addr()`.
    pub pool: Pool<M>,
    /// The proxy in front of the real server.
    pub proxy: FaultProxy,
    /// The call each load task makes.
    pub probe: P,
}

impl<M: Manager, P> Rig<M, P> {
    /// A proxy in front of `server` (`host:port`), and the pool `pool`
    /// builds for the proxy's address.
    ///
    /// # Panics
    /// When the proxy cannot start.
    pub fn start(
        backend: Backend,
        server: &str,
        probe: P,
        pool: impl FnOnce(&str) -> Pool<M>,
    ) -> Self {
        let proxy = FaultProxy::start(server).expect("the proxy starts");
        Self {
            backend,
            pool: pool(&proxy.addr().to_string()),
            proxy,
            probe,
        }
    }
}

/// Checks out every connection of `pool` at once ([`MAX_SIZE`] of them)
/// and asks each, with `id`, for the server's id of its session: returns
/// the pool's ids and the server's, for [`server_kill`].
///
/// # Panics
/// When a get fails.
pub async fn sessions<M: Manager, S>(
    pool: &Pool<M>,
    mut id: impl AsyncFnMut(&mut M::Connection) -> S,
) -> (HashSet<u64>, Vec<S>) {
    let mut held = Vec::new();
    for _ in 0..MAX_SIZE {
        held.push(pool.get().await.expect("a connection"));
    }
    let mut ids = HashSet::new();
    let mut sessions = Vec::new();
    for conn in &mut held {
        ids.insert(conn.info().id);
        sessions.push(id(&mut **conn).await);
    }
    (ids, sessions)
}

/// What a scenario measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Backend and scenario.
    pub name: String,
    /// From each fault's end to the first call served.
    pub recoveries: Vec<Duration>,
    /// From each outage's end to the first connection the proxy relayed
    /// (the wait for the retry gate; the rest of the recovery is the
    /// connect and the call).
    pub first_connects: Vec<Duration>,
    /// Connection attempts the proxy refused, per outage, with the outage's
    /// length.
    pub refused: Vec<(Duration, u64)>,
    /// Calls the load made.
    pub calls: usize,
    /// Gets that failed.
    pub failed_gets: usize,
    /// Calls that failed (or timed out) on a connection they got.
    pub failed_calls: usize,
    /// The longest get.
    pub longest_get: Duration,
    /// The longest call on a connection.
    pub longest_call: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: recovery {:?}; {} calls, {} failed gets, {} failed calls; \
             longest get {:?} (timeout {ACQUIRE_TIMEOUT:?}), longest call {:?} (timeout {CALL_TIMEOUT:?})",
            self.name,
            self.recoveries,
            self.calls,
            self.failed_gets,
            self.failed_calls,
            self.longest_get,
            self.longest_call,
        )?;
        if !self.first_connects.is_empty() {
            write!(f, "; first connect after {:?}", self.first_connects)?;
        }
        for (down, refused) in &self.refused {
            write!(f, "; {refused} attempts refused in {down:?}")?;
        }
        Ok(())
    }
}

impl Report {
    fn new(backend: &Backend, scenario: &str, calls: &[Call]) -> Self {
        Self {
            name: format!("{} {scenario}", backend.name),
            calls: calls.len(),
            failed_gets: calls.iter().filter(|c| c.got.is_none()).count(),
            failed_calls: calls.iter().filter(|c| c.failed_on_connection()).count(),
            longest_get: calls.iter().map(Call::get_took).max().unwrap_or_default(),
            longest_call: calls
                .iter()
                .filter_map(Call::call_took)
                .max()
                .unwrap_or_default(),
            ..Self::default()
        }
    }
}

/// Every connection open now is cut, the database staying up: each cut
/// connection fails at most the call it was serving, no get fails, and the
/// pool serves within [`RECOVERY`] of the cut, with every cut connection
/// closed and replaced.
pub async fn cut_all<M: Manager, P: Probe<M> + Clone>(rig: &Rig<M, P>) -> Report {
    let before = Before::of(&rig.pool);
    let load = Load::start(&rig.pool, rig.probe.clone(), load_config());
    warm(&rig.pool, &load).await;
    let alive = connections_served(&load.calls());
    let cut = rig.proxy.cut_all().await;
    // The fault is over once every connection is closed.
    let cut_at = Instant::now();
    assert_eq!(cut, MAX_SIZE, "every pooled connection was open");
    let recovery = recovered(&load, cut_at, rig.backend.name).await;
    sleep(AFTERWARDS).await;
    let calls = load.stop().await;

    assert_at_most_one_failure_per_connection(&calls, &alive, cut);
    assert_no_failed_get_outside(&calls, &[]);
    let end = End {
        scenario: "cut all",
        closes: Some(cut as u64),
        recoveries: vec![recovery],
        first_connects: Vec::new(),
        refused: Vec::new(),
    };
    end.check(&rig.pool, rig.backend, &before, &calls).await
}

/// The database goes down (every connection cut, new ones refused) for each
/// of `outages` in turn, and comes back: while down, connection attempts are
/// bounded by the backoff; once back, the pool serves within [`RECOVERY`],
/// in every cycle; no get fails that began after the database was back.
pub async fn outages<M: Manager, P: Probe<M> + Clone>(
    rig: &Rig<M, P>,
    outages: &[Duration],
) -> Report {
    let before = Before::of(&rig.pool);
    let load = Load::start(&rig.pool, rig.probe.clone(), load_config());
    // From the start of each outage to its end, and from the moment every
    // connection was closed to the end.
    let mut windows = Vec::new();
    let mut dead = Vec::new();
    let mut refused = Vec::new();
    let mut recoveries = Vec::new();
    let mut first_connects = Vec::new();
    let mut cut_total = 0;
    let mut alive = HashSet::new();
    for (cycle, &down_for) in outages.iter().enumerate() {
        warm(&rig.pool, &load).await;
        alive.extend(connections_served(&load.calls()));
        let refused_before = rig.proxy.refused();
        let down_at = Instant::now();
        rig.proxy.refuse();
        let cut = rig.proxy.cut_all().await;
        let dead_from = Instant::now();
        assert_eq!(
            cut, MAX_SIZE,
            "cycle {cycle}: every pooled connection was open"
        );
        cut_total += cut;
        sleep(down_for).await;
        let attempts = rig.proxy.refused() - refused_before;
        let up_at = Instant::now();
        rig.proxy.heal();
        let bound = attempt_bound(up_at - down_at);
        assert!(
            attempts <= bound,
            "cycle {cycle}: {attempts} connection attempts in {:?} of outage \
             (backoff allows {bound})",
            up_at - down_at
        );
        refused.push((up_at - down_at, attempts));
        windows.push((down_at, up_at));
        dead.push((dead_from, up_at));
        recoveries.push(recovered(&load, up_at, rig.backend.name).await);
        let first_connect = rig
            .proxy
            .accepted_since(up_at)
            .expect("a connection after the outage");
        first_connects.push(first_connect - up_at);
        sleep(AFTERWARDS).await;
    }
    let calls = load.stop().await;

    assert_at_most_one_failure_per_connection(&calls, &alive, cut_total);
    assert_no_failed_get_outside(&calls, &windows);
    for (dead_from, up_at) in &dead {
        let served = calls
            .iter()
            .filter(|c| c.served() && c.started > *dead_from && c.ended < *up_at)
            .count();
        assert_eq!(served, 0, "a call was served while the database was down");
    }
    let end = End {
        scenario: "outages",
        closes: Some(cut_total as u64),
        recoveries,
        first_connects,
        refused,
    };
    end.check(&rig.pool, rig.backend, &before, &calls).await
}

/// A quiet pool, then a network partition, then one caller: every
/// connection has been idle past `validation_window`, so each is pinged
/// before it is handed out, and each ping waits out `validation_timeout`.
/// The get must still end within `acquire_timeout` (and [`OVERRUN`]).
///
/// Today it does not: the get pings the idle connections one after
/// another, `validation_timeout` each, with no regard for its own deadline
/// (measured: 812 ms for a 300 ms `acquire_timeout`, 8 idle connections
/// and a 100 ms `validation_timeout`). Each backend's test of this is
/// ignored until the core bounds validation by the get's deadline.
pub async fn validating_through_a_blackhole<M: Manager, P>(rig: &Rig<M, P>) {
    sessions(&rig.pool, async |_: &mut M::Connection| ()).await;
    sleep(rig.pool.config().validation_window + Duration::from_millis(100)).await;
    assert_eq!(rig.pool.gauges().idle, MAX_SIZE);
    rig.proxy.blackhole();
    let started = Instant::now();
    let got = rig.pool.get().await.map(drop);
    let took = started.elapsed();
    rig.proxy.heal();
    eprintln!(
        "{}: a get validating {MAX_SIZE} idle connections through a blackhole took {took:?}: {:?}",
        rig.backend.name,
        got.as_ref().map_err(ToString::to_string)
    );
    assert!(
        took <= ACQUIRE_TIMEOUT + OVERRUN,
        "{}: the get took {took:?} (acquire_timeout {ACQUIRE_TIMEOUT:?}, validation_timeout \
         {VALIDATION_TIMEOUT:?}, {MAX_SIZE} idle connections)",
        rig.backend.name
    );
}

/// Runs fault scenarios one at a time within a test binary: each loads
/// the machine with 16 tasks and measures recovery in milliseconds, so two
/// at once would measure each other. Hold the guard for the whole test.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SCENARIO: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SCENARIO.lock().await
}

/// Defines a backend's proxy tests, each a scenario of this module on
/// a fresh [`Rig`]: `fault_tests!(server(), rig)`, where `server()` is the
/// real server's `Option<String>` address (from [`service`](crate::service),
/// `None` to skip) and `rig(&str)` builds a [`Rig`] in front of it. The
/// tests run on tokio's multi-thread runtime, so the crate needs tokio
/// with `macros` and `rt-multi-thread` among its dev-dependencies.
#[macro_export]
macro_rules! fault_tests {
    ($server:expr, $rig:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_cut_connection_fails_at_most_the_call_it_was_serving() {
            let Some(server) = $server else { return };
            let _one = $crate::faults::one_at_a_time().await;
            $crate::faults::cut_all(&$rig(&server)).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn after_every_outage_the_pool_serves_within_50ms() {
            let Some(server) = $server else { return };
            let _one = $crate::faults::one_at_a_time().await;
            $crate::faults::outages(&$rig(&server), &$crate::faults::OUTAGES).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_blackhole_times_calls_out_on_time_and_heals_within_50ms() {
            let Some(server) = $server else { return };
            let _one = $crate::faults::one_at_a_time().await;
            $crate::faults::blackhole(&$rig(&server), ::std::time::Duration::from_secs(1)).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_get_validating_dead_idle_connections_keeps_its_timeout() {
            let Some(server) = $server else { return };
            let _one = $crate::faults::one_at_a_time().await;
            $crate::faults::validating_through_a_blackhole(&$rig(&server)).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn latency_slows_calls_without_failing_them() {
            let Some(server) = $server else { return };
            let _one = $crate::faults::one_at_a_time().await;
            $crate::faults::latency(
                &$rig(&server),
                ::std::time::Duration::from_millis(20),
                ::std::time::Duration::from_millis(150),
                ::std::time::Duration::from_secs(1),
            )
            .await;
        }
    };
}

/// The most connection attempts the pool may make during an outage of
/// `down`: one per connection at once (nothing had failed yet), then, with
/// the gate closed after each failure for at least half of
/// `retry_backoff_max`, one per half backoff.
pub fn attempt_bound(down: Duration) -> u64 {
    let half = RETRY_BACKOFF_MAX / 2;
    MAX_SIZE as u64 + (down.as_nanos() / half.as_nanos()) as u64 + 1
}

/// No byte passes for `length`, on any connection: calls time out on time,
/// and once the network heals the pool serves within [`RECOVERY`]. A driver
/// that survives an abandoned call loses no connection at all.
pub async fn blackhole<M: Manager, P: Probe<M> + Clone>(
    rig: &Rig<M, P>,
    length: Duration,
) -> Report {
    let before = Before::of(&rig.pool);
    let load = Load::start(&rig.pool, rig.probe.clone(), load_config());
    warm(&rig.pool, &load).await;
    let from = Instant::now();
    rig.proxy.blackhole();
    sleep(length).await;
    let (healed, recovery, calls) = heal(rig, load).await;

    assert_no_failure_outside(&calls, from, healed);
    let end = End::partition("blackhole", rig.backend, recovery);
    end.check(&rig.pool, rig.backend, &before, &calls).await
}

/// A slow network, then a very slow one, then a fast one again. With a
/// latency well within the timeouts every call is served and no connection
/// is closed; with one beyond them calls time out on time; once healed the
/// pool serves within [`RECOVERY`].
pub async fn latency<M: Manager, P: Probe<M> + Clone>(
    rig: &Rig<M, P>,
    slow: Duration,
    too_slow: Duration,
    each: Duration,
) -> Report {
    let before = Before::of(&rig.pool);
    let load = Load::start(&rig.pool, rig.probe.clone(), load_config());
    warm(&rig.pool, &load).await;
    let slow_from = Instant::now();
    rig.proxy.set_latency(slow);
    sleep(each).await;
    let closed_while_slow = rig.pool.counters().closed.total() - before.counters.closed.total();
    let too_slow_from = Instant::now();
    rig.proxy.set_latency(too_slow);
    sleep(each).await;
    let (healed, recovery, calls) = heal(rig, load).await;

    assert_eq!(
        closed_while_slow, 0,
        "a latency of {slow:?} closed connections"
    );
    let failed_while_slow: Vec<_> = calls
        .iter()
        .filter(|c| !c.served() && c.started >= slow_from && c.ended < too_slow_from)
        .collect();
    assert!(
        failed_while_slow.is_empty(),
        "with a latency of {slow:?}: {failed_while_slow:#?}"
    );
    assert_no_failure_outside(&calls, too_slow_from, healed);
    let end = End::partition("latency", rig.backend, recovery);
    end.check(&rig.pool, rig.backend, &before, &calls).await
}

/// The server kills the sessions of `killed` (the pool's ids of every
/// pooled connection) while the pool is under load: each fails at most the
/// call it was serving, no get fails, and the pool serves within
/// [`RECOVERY`] of the kill.
pub async fn server_kill<M: Manager, P: Probe<M> + Clone>(
    backend: Backend,
    pool: &Pool<M>,
    probe: P,
    killed: &HashSet<u64>,
    kill: impl AsyncFnOnce(),
) -> Report {
    let before = Before::of(pool);
    let load = Load::start(pool, probe, load_config());
    warm(pool, &load).await;
    assert_eq!(
        connections_served(&load.calls()),
        *killed,
        "the load used exactly the connections to kill"
    );
    kill().await;
    let killed_at = Instant::now();
    let recovery = recovered(&load, killed_at, backend.name).await;
    sleep(AFTERWARDS).await;
    let calls = load.stop().await;

    assert_at_most_one_failure_per_connection(&calls, killed, killed.len());
    assert_no_failed_get_outside(&calls, &[]);
    let end = End {
        scenario: "server-side kill",
        closes: Some(killed.len() as u64),
        recoveries: vec![recovery],
        first_connects: Vec::new(),
        refused: Vec::new(),
    };
    end.check(pool, backend, &before, &calls).await
}

/// Heals the proxy, waits for the pool to serve again and a while more,
/// and stops the load: when it healed, how long recovery took, and the
/// calls.
async fn heal<M: Manager, P>(rig: &Rig<M, P>, load: Load) -> (Instant, Duration, Vec<Call>) {
    let healed = Instant::now();
    rig.proxy.heal();
    let recovery = recovered(&load, healed, rig.backend.name).await;
    sleep(AFTERWARDS).await;
    (healed, recovery, load.stop().await)
}
