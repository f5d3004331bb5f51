//! What every fault scenario checks: that the pool is warm before a fault,
//! when it served again after, that no call outlived its timeout, that a
//! connection failed at most one call, and the exact accounting at the end.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tidepool::{CloseReason, Counters, Manager, Pool};
use tokio::time::{Instant, sleep};

use super::{
    ACQUIRE_TIMEOUT, Backend, CALL_TIMEOUT, MAX_SIZE, OVERRUN, PATIENCE, RECOVERY, Report,
};
use crate::load::{Call, Load, Outcome};

/// What every scenario checks at its end, and reports.
pub(super) struct End {
    pub(super) scenario: &'static str,
    /// How many connections must have been closed, when that is known.
    pub(super) closes: Option<u64>,
    pub(super) recoveries: Vec<Duration>,
    pub(super) first_connects: Vec<Duration>,
    pub(super) refused: Vec<(Duration, u64)>,
}

impl End {
    /// After a fault that breaks no connection by itself (a blackhole, a
    /// latency): none is closed, unless the driver closes one whose call
    /// was given up on.
    pub(super) fn partition(scenario: &'static str, backend: Backend, recovery: Duration) -> Self {
        Self {
            scenario,
            closes: (!backend.abandoned_call_breaks).then_some(0),
            recoveries: vec![recovery],
            first_connects: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// Asserts the timeouts and, once the pool has settled, the accounting;
    /// returns the report (also printed).
    pub(super) async fn check<M: Manager>(
        self,
        pool: &Pool<M>,
        backend: Backend,
        before: &Before,
        calls: &[Call],
    ) -> Report {
        assert_timeouts_kept(calls);
        settle(pool).await;
        assert_accounting(pool, before, calls, backend, self.closes);
        let mut report = Report::new(&backend, self.scenario, calls);
        report.recoveries = self.recoveries;
        report.first_connects = self.first_connects;
        report.refused = self.refused;
        eprintln!("{report}");
        report
    }
}

/// The pool as a scenario found it.
pub(super) struct Before {
    pub(super) counters: Counters,
    size: usize,
}

impl Before {
    pub(super) fn of<M: Manager>(pool: &Pool<M>) -> Self {
        let stats = pool.stats();
        Self {
            counters: stats.counters,
            size: stats.gauges.size,
        }
    }
}

/// Waits until the load has been served a while and the pool is full with
/// no connect in flight.
pub(super) async fn warm<M: Manager>(pool: &Pool<M>, load: &Load) {
    assert!(
        load.served_more(100, PATIENCE).await,
        "the load is not being served: {:?}",
        pool.gauges()
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let g = pool.gauges();
        if g.size == MAX_SIZE && g.pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the pool did not fill: {g:?}");
        sleep(Duration::from_millis(1)).await;
    }
}

/// The first call served after `since`, as time since `since`; asserts it
/// came within [`RECOVERY`].
pub(super) async fn recovered(load: &Load, since: Instant, name: &str) -> Duration {
    let first = load
        .served_after(since, PATIENCE)
        .await
        .unwrap_or_else(|| panic!("{name}: nothing served within {PATIENCE:?} of the fault's end"));
    let lag = first - since;
    assert!(
        lag <= RECOVERY,
        "{name}: the first call was served {lag:?} after the fault's end (bound {RECOVERY:?})"
    );
    lag
}

/// The pool's ids of the connections that served a call.
pub(super) fn connections_served(calls: &[Call]) -> HashSet<u64> {
    calls
        .iter()
        .filter(|c| c.served())
        .filter_map(|c| c.conn)
        .collect()
}

/// No get outlived `acquire_timeout`, and no call its call timeout, by more
/// than [`OVERRUN`].
pub(super) fn assert_timeouts_kept(calls: &[Call]) {
    for call in calls {
        assert!(
            call.get_took() <= ACQUIRE_TIMEOUT + OVERRUN,
            "a get took {:?} (acquire_timeout {ACQUIRE_TIMEOUT:?}): {call:?}",
            call.get_took()
        );
        if let Some(took) = call.call_took() {
            assert!(
                took <= CALL_TIMEOUT + OVERRUN,
                "a call took {took:?} (timeout {CALL_TIMEOUT:?}): {call:?}"
            );
        }
    }
}

/// Calls failed on at most `most` connections, each among `broken` and
/// each failing once.
pub(super) fn assert_at_most_one_failure_per_connection(
    calls: &[Call],
    broken: &HashSet<u64>,
    most: usize,
) {
    let mut failures: HashMap<u64, Vec<&Call>> = HashMap::new();
    for call in calls.iter().filter(|c| c.failed_on_connection()) {
        let id = call.conn.expect("a call on a connection knows its id");
        failures.entry(id).or_default().push(call);
    }
    for (id, failed) in &failures {
        assert!(
            broken.contains(id),
            "connection {id} was not broken: {failed:#?}"
        );
        assert_eq!(
            failed.len(),
            1,
            "connection {id} failed more than one call: {failed:#?}"
        );
    }
    assert!(
        failures.len() <= most,
        "{} connections failed calls",
        failures.len()
    );
}

/// Every failed get overlapped one of `outages` (`(from, to)`).
pub(super) fn assert_no_failed_get_outside(calls: &[Call], outages: &[(Instant, Instant)]) {
    for call in calls
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::GetFailed(_)))
    {
        assert!(
            outages
                .iter()
                .any(|(from, to)| call.started < *to && call.ended > *from),
            "a get failed while the database was up: {call:?}"
        );
    }
}

/// Every failure (of a get or a call) overlapped the fault from `from` to
/// `to`.
pub(super) fn assert_no_failure_outside(calls: &[Call], from: Instant, to: Instant) {
    for call in calls.iter().filter(|c| !c.served()) {
        assert!(
            call.started < to && call.ended > from,
            "a call failed outside the fault: {call:?}"
        );
    }
}

/// Waits until nothing is checked out, checking, waited for or connecting.
pub(super) async fn settle<M: Manager>(pool: &Pool<M>) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let g = pool.gauges();
        if g.in_use == 0 && g.checking == 0 && g.waiting == 0 && g.pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the pool did not settle: {g:?}");
        sleep(Duration::from_millis(1)).await;
    }
}

/// The exact accounting after a scenario: see the module documentation.
/// `closes`, when given, is how many connections must have been closed.
pub(super) fn assert_accounting<M: Manager>(
    pool: &Pool<M>,
    before: &Before,
    calls: &[Call],
    backend: Backend,
    closes: Option<u64>,
) {
    let stats = pool.stats();
    let (c, g) = (&stats.counters, &stats.gauges);
    let (name, size_before, before) = (backend.name, before.size as u64, &before.counters);
    assert_eq!(
        (g.size, g.idle, g.in_use, g.checking, g.waiting, g.pending),
        (MAX_SIZE, MAX_SIZE, 0, 0, 0, 0),
        "{name}: the pool is full and at rest: {g:?}"
    );
    let failed_gets = calls.iter().filter(|c| c.got.is_none()).count() as u64;
    assert_eq!(
        c.gets - before.gets,
        calls.len() as u64,
        "{name}: gets: {c:?}"
    );
    assert_eq!(
        c.served() - before.served(),
        calls.len() as u64 - failed_gets,
        "{name}: served: {c:?}"
    );
    assert_eq!(
        (c.timeouts + c.connect_failures) - (before.timeouts + before.connect_failures),
        failed_gets,
        "{name}: failed gets: {c:?}"
    );
    assert_eq!(
        (c.cancelled, c.rejected_closed, c.none_idle, c.panics),
        (
            before.cancelled,
            before.rejected_closed,
            before.none_idle,
            before.panics
        ),
        "{name}: {c:?}"
    );
    let created = c.created - before.created;
    let closed = c.closed.total() - before.closed.total();
    assert_eq!(
        c.created - c.closed.total() - c.detached,
        g.size as u64,
        "{name}: every connection opened is open or closed: {c:?}"
    );
    assert_eq!(
        created - closed,
        g.size as u64 - size_before,
        "{name}: each closed connection was replaced: {c:?}"
    );
    for reason in CloseReason::ALL {
        if !backend.dead_reasons.contains(&reason) {
            assert_eq!(
                c.closed.get(reason),
                before.closed.get(reason),
                "{name}: closed as {}: {c:?}",
                reason.as_str()
            );
        }
    }
    if let Some(closes) = closes {
        assert_eq!(closed, closes, "{name}: connections closed: {c:?}");
    }
}
