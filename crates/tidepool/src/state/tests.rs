//! Unit tests of the state machine, driven without a runtime.

use std::time::Duration;

use tokio::sync::oneshot;

use super::*;

type St = State<u32, std::io::Error>;
type Rx = oneshot::Receiver<Grant<u32, std::io::Error>>;

const T0: Stamp = Stamp::ZERO;

fn state(cfg: PoolConfig) -> St {
    State::new(cfg, T0)
}

fn cfg(max: usize) -> PoolConfig {
    PoolConfig {
        max_size: max,
        ..PoolConfig::default()
    }
}

fn ask(now: Stamp) -> Ask {
    Ask {
        now,
        started: now,
        first_attempt: true,
        first_wait: true,
        front: false,
    }
}

fn wait(st: &mut St) -> (Key, Rx) {
    let (tx, rx) = oneshot::channel();
    (st.enqueue(tx, &ask(T0), None), rx)
}

fn grant_conn(rx: &mut Rx) -> Conn<u32> {
    match rx.try_recv().expect("granted") {
        Grant::Conn(c) => c,
        other => panic!("expected a connection, got {other:?}"),
    }
}

/// Opens `raw` as if its ordered connect had just succeeded.
fn open(st: &mut St, raw: u32) {
    st.counts.start_connect(CreateKind::Regular);
    st.created(raw, CreateKind::Regular, Duration::ZERO, T0);
}

#[test]
fn a_waiter_orders_one_connect_and_receives_it() {
    let mut st = state(cfg(2));
    assert!(matches!(st.checkout(&ask(T0), || None), Checkout::Queue));
    let (_, mut rx) = wait(&mut st);
    let after = st.take_aftermath().expect("a connect was ordered");
    assert_eq!(after.orders, [CreateKind::Regular]);
    st.created(7, CreateKind::Regular, Duration::from_millis(3), T0);
    let conn = grant_conn(&mut rx);
    assert_eq!(conn.raw, 7);
    let g = st.gauges();
    assert_eq!(
        (g.size, g.in_use, g.idle, g.waiting, g.pending),
        (1, 1, 0, 0, 0)
    );
    assert_eq!(st.counters.misses, 1);
    st.checkin(conn, 1_000_000, T0, false);
    let g = st.gauges();
    assert_eq!((g.size, g.in_use, g.idle), (1, 0, 1));
    assert!(matches!(
        st.checkout(&ask(T0), || None),
        Checkout::Ready { .. }
    ));
    assert_eq!(st.counters.hits, 1);
}

#[test]
fn returns_go_to_the_oldest_waiter() {
    let mut st = state(cfg(1));
    let (_, mut first) = wait(&mut st);
    st.created(1, CreateKind::Regular, Duration::ZERO, T0);
    let mut rxs: Vec<Rx> = (0..3).map(|_| wait(&mut st).1).collect();
    // Pool is full: nobody else gets a connect ordered.
    assert_eq!(st.take_aftermath().expect("one order").orders.len(), 1);
    let conn = grant_conn(&mut first);
    st.checkin(conn, 0, T0, false);
    assert!(rxs[0].try_recv().is_ok());
    assert!(rxs[1].try_recv().is_err());
}

#[test]
fn a_caller_served_once_asks_again_ahead_of_every_waiter() {
    let mut st = state(cfg(1));
    let (_, mut first) = wait(&mut st);
    st.created(1, CreateKind::Regular, Duration::ZERO, T0);
    let (_, mut second) = wait(&mut st);
    let conn = grant_conn(&mut first);
    // Its connection failed validation: closed, and the caller asks again.
    st.reject_checkout(conn, CloseReason::FailedValidation, None, T0);
    let (tx, mut again) = oneshot::channel();
    let retry = Ask {
        first_attempt: false,
        first_wait: false,
        front: true,
        ..ask(T0)
    };
    assert!(matches!(st.checkout(&retry, || None), Checkout::Queue));
    st.enqueue(tx, &retry, None);
    st.created(2, CreateKind::Regular, Duration::ZERO, T0);
    assert_eq!(
        grant_conn(&mut again).raw,
        2,
        "the first caller is served first"
    );
    assert!(second.try_recv().is_err());
}

#[test]
fn a_cancelled_grant_goes_to_the_next_waiter() {
    let mut st = state(cfg(1));
    let (w1, mut rx1) = wait(&mut st);
    let (_, mut rx2) = wait(&mut st);
    st.created(1, CreateKind::Regular, Duration::ZERO, T0);
    // Waiter 1 was served before it noticed it was dropped.
    assert!(!st.cancel_waiter(w1));
    let grant = rx1.try_recv().unwrap();
    st.release_grant(grant, T0);
    assert_eq!(grant_conn(&mut rx2).raw, 1);
    assert_eq!(st.gauges().in_use, 1);
    assert_eq!(st.counters.cancelled, 1);
}

#[test]
fn overflow_is_used_only_when_full_and_closed_on_return() {
    let mut st = state(PoolConfig {
        max_size: 1,
        max_overflow: 1,
        ..PoolConfig::default()
    });
    let (_, mut rx) = wait(&mut st);
    st.created(1, CreateKind::Regular, Duration::ZERO, T0);
    let regular = grant_conn(&mut rx);
    let (_, mut rx) = wait(&mut st);
    let orders = st.take_aftermath().expect("orders").orders;
    assert_eq!(orders.last(), Some(&CreateKind::Overflow));
    st.created(2, CreateKind::Overflow, Duration::ZERO, T0);
    let extra = grant_conn(&mut rx);
    assert_eq!(st.gauges().overflow_in_use, 1);
    st.checkin(extra, 0, T0, false);
    assert_eq!(st.counters.closed.overflow_returned, 1);
    st.checkin(regular, 0, T0, false);
    let g = st.gauges();
    assert_eq!((g.size, g.idle, g.overflow), (1, 1, 0));
}

#[test]
fn evicted_busy_connections_close_on_return() {
    let mut st = state(cfg(2));
    open(&mut st, 1);
    open(&mut st, 2);
    let Checkout::Ready(conn) = st.checkout(&ask(T0), || None) else {
        panic!("idle connection expected")
    };
    st.evict(T0);
    assert_eq!(st.gauges().idle, 0);
    st.checkin(conn, 0, T0, false);
    assert_eq!(st.counters.closed.evicted, 2);
    assert_eq!(st.gauges().size, 0);
}

#[test]
fn closing_tells_every_waiter() {
    let mut st = state(cfg(1));
    let (_, mut rx) = wait(&mut st);
    st.close_pool();
    assert!(matches!(rx.try_recv(), Ok(Grant::Closed)));
    assert!(matches!(st.checkout(&ask(T0), || None), Checkout::Closed));
}

#[test]
fn a_failed_connect_closes_the_gate_and_a_timer_reopens_it_for_one_probe() {
    let mut st = state(PoolConfig {
        max_size: 4,
        retry_backoff: Duration::from_millis(100),
        ..PoolConfig::default()
    });
    let (_, _rx1) = wait(&mut st);
    let (_, _rx2) = wait(&mut st);
    assert_eq!(st.take_aftermath().unwrap().orders.len(), 2);
    let refused = crate::error::ConnectError::TimedOut {
        after: Duration::from_secs(1),
    };
    st.create_failed(CreateKind::Regular, refused.clone(), false, T0);
    let after = st.take_aftermath().unwrap();
    assert!(after.orders.is_empty(), "the gate is closed");
    let at = after.wake.expect("a timer reopens the gate");
    assert!(at > T0 && at <= T0 + Duration::from_millis(100));
    st.create_failed(CreateKind::Regular, refused, false, T0);
    assert!(
        st.take_aftermath().unwrap().wake.is_none(),
        "one timer per closing"
    );
    // The second failure moved the gate further: the first timer re-arms.
    st.gate_opened(at);
    let after = st.take_aftermath().unwrap();
    assert!(after.orders.is_empty());
    let later = after.wake.expect("the timer is set again");
    assert!(later > at);
    st.gate_opened(later);
    let after = st.take_aftermath().unwrap();
    assert_eq!(after.orders.len(), 1, "while failing, one probe at a time");
    st.created(1, CreateKind::Regular, Duration::ZERO, later);
    let after = st.take_aftermath().unwrap();
    assert_eq!(
        after.orders.len(),
        1,
        "a success opens the gate for the rest"
    );
    assert_eq!(st.counters.retries, 1);
}

#[test]
fn a_probe_failure_past_max_retries_fails_the_oldest_waiter_only() {
    let mut st = state(PoolConfig {
        max_size: 4,
        max_retries: 1,
        ..PoolConfig::default()
    });
    let (_, mut rx1) = wait(&mut st);
    let (_, mut rx2) = wait(&mut st);
    let refused = crate::error::ConnectError::TimedOut {
        after: Duration::from_secs(1),
    };
    st.create_failed(CreateKind::Regular, refused.clone(), false, T0);
    assert!(rx1.try_recv().is_err(), "one failure is within max_retries");
    st.create_failed(CreateKind::Regular, refused, false, T0);
    assert!(matches!(
        rx1.try_recv(),
        Ok(Grant::Failed { attempts: 2, .. })
    ));
    assert!(rx2.try_recv().is_err());
    assert_eq!(st.counters.connect_failures, 1);
}

/// A sweep that would wait for a shard happens outside the lock: queueing
/// while another thread holds a shard returns at once.
#[test]
fn queueing_never_waits_for_a_busy_shard() {
    let mut st = St::with_shards(cfg(2), T0, 1);
    open(&mut st, 1);
    let _ = st.take_aftermath();
    let stash = st.stash();
    let Checkout::Ready(conn) = st.checkout(&ask(T0), || None) else {
        panic!("idle connection expected")
    };
    assert!(matches!(
        stash.put(conn, 10, T0),
        crate::stash::Put::Stashed
    ));
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let stash = std::sync::Arc::clone(&stash);
        std::thread::spawn(move || {
            stash.hold_shard_for_test(0, || {
                locked_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
        })
    };
    locked_rx.recv().unwrap();
    // The shard is held: the enqueue closes the stash and leaves the sweep
    // to the aftermath.
    let (_, mut rx) = wait(&mut st);
    let after = st.take_aftermath().unwrap();
    assert!(after.sweep);
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let mut swept = Vec::new();
    stash.take_all(&mut swept);
    for conn in swept {
        st.unstash(conn, T0);
    }
    assert_eq!(grant_conn(&mut rx).raw, 1);
}

#[test]
fn reading_gauges_counts_parked_connections_as_idle_and_moves_none() {
    let mut st = St::with_shards(cfg(2), T0, 1);
    open(&mut st, 1);
    let _ = st.take_aftermath();
    let stash = st.stash();
    let Checkout::Ready(conn) = st.checkout(&ask(T0), || None) else {
        panic!("idle connection expected")
    };
    assert!(matches!(
        stash.put(conn, 10, T0),
        crate::stash::Put::Stashed
    ));
    let g = st.gauges();
    assert_eq!((g.size, g.idle, g.in_use), (1, 1, 0));
    let drained = stash.drain(T0);
    st.absorb(drained, T0);
    let s = st.stats("t", T0);
    assert_eq!((s.gauges.idle, s.gauges.in_use), (1, 0));
    assert!(
        matches!(stash.take(T0), crate::stash::Take::Hit(_)),
        "the connection is still parked where it was"
    );
}

#[test]
fn a_retired_connection_keeps_its_slot_until_it_is_gone() {
    let mut st = state(cfg(1));
    let (_, mut first) = wait(&mut st);
    st.created(1, CreateKind::Regular, Duration::ZERO, T0);
    let _ = st.take_aftermath();
    let conn = grant_conn(&mut first);
    let (_, mut second) = wait(&mut st);
    st.retire(conn.id, 0, T0);
    let g = st.gauges();
    assert_eq!((g.size, g.in_use, g.closing, g.waiting), (1, 0, 1, 1));
    assert!(
        st.take_aftermath().is_none_or(|a| a.orders.is_empty()),
        "no connect while the retired connection holds the only slot"
    );
    assert!(second.try_recv().is_err());
    st.retired(conn.overflow, T0);
    let g = st.gauges();
    assert_eq!((g.size, g.closing), (0, 0));
    assert_eq!(st.counters.closed.get(CloseReason::Broken), 1);
    let after = st
        .take_aftermath()
        .expect("the freed slot serves the waiter");
    assert_eq!(after.orders, [CreateKind::Regular]);
}
