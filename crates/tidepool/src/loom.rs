//! loom models of the pool's concurrency protocols, run on the real stash
//! and state code (`cargo test -p tidepool --features loom --lib -- loom::`).
//! Every interleaving loom can reach must keep two facts:
//! - each connection is in exactly one place (idle, parked, checked out,
//!   with a waiter, or closed), and the counts say so;
//! - no waiter is left waiting while a connection is idle.
//!
//! The pool's lock is a loom mutex here, held exactly where `Shared` holds
//! its lock; what `Shared::finish` does after unlocking (the sweep) is done
//! the same way, after the lock is released.

use std::time::Duration;

use loom::sync::{Arc, Mutex};
use loom::thread;
use tokio::sync::oneshot;

use crate::clock::Stamp;
use crate::config::PoolConfig;
use crate::conn::Conn;
use crate::stash::Put;
use crate::state::{Ask, Checkout, Grant, State};

type St = State<u32, std::io::Error>;
type Rx = oneshot::Receiver<Grant<u32, std::io::Error>>;

const T0: Stamp = Stamp::ZERO;

const ASK: Ask = Ask {
    now: T0,
    started: T0,
    first_attempt: true,
    first_wait: true,
    front: false,
};

/// A pool of one connection, checked out, with a one-shard stash open.
fn one_checked_out() -> (St, Conn<u32>) {
    let cfg = PoolConfig {
        max_size: 1,
        min_idle: 1,
        ..PoolConfig::default()
    };
    let mut st = St::with_shards(cfg, T0, 1);
    st.plan_creates(T0);
    let kind = st.take_aftermath().expect("an order").orders[0];
    st.created(7, kind, Duration::ZERO, T0);
    let _ = st.take_aftermath();
    assert!(st.stash().is_open());
    let Checkout::Ready(conn) = st.checkout(&ASK, || None) else {
        panic!("the idle connection")
    };
    (st, conn)
}

/// Runs the aftermath of a locked section as `Shared::finish` does: the
/// sweep after the lock is released.
fn finish(state: &Mutex<St>, sweep: bool) {
    if sweep {
        let stash = state.lock().unwrap().stash();
        let mut conns = Vec::new();
        stash.take_all(&mut conns);
        let mut st = state.lock().unwrap();
        for conn in conns {
            st.unstash(conn, T0);
        }
    }
}

/// A return on one thread and a get that queues on another: the return
/// parks in the stash, or meets a closed stash and goes to the queue; the
/// waiter gets the connection either way.
#[test]
fn a_return_racing_a_waiter_reaches_the_waiter() {
    loom::model(|| {
        let (st, conn) = one_checked_out();
        let stash = st.stash();
        let state = Arc::new(Mutex::new(st));

        let returner = {
            let state = Arc::clone(&state);
            thread::spawn(move || match stash.put(conn, 10, T0) {
                Put::Stashed => {}
                Put::Displaced(old) => state.lock().unwrap().unstash(old, T0),
                Put::Refused(back) => {
                    let mut st = state.lock().unwrap();
                    st.checkin(back, 10, T0, false);
                    let sweep = st.take_aftermath().is_some_and(|a| a.sweep);
                    drop(st);
                    finish(&state, sweep);
                }
            })
        };

        let (got, mut rx): (Option<Conn<u32>>, Option<Rx>) = {
            let mut st = state.lock().unwrap();
            match st.checkout(&ASK, || None) {
                Checkout::Ready(conn) => (Some(conn), None),
                Checkout::Queue => {
                    let (tx, rx) = oneshot::channel();
                    st.enqueue(tx, &ASK, None);
                    let sweep = st.take_aftermath().is_some_and(|a| a.sweep);
                    drop(st);
                    finish(&state, sweep);
                    (None, Some(rx))
                }
                Checkout::Closed => unreachable!("the pool is open"),
            }
        };
        returner.join().unwrap();

        let got = got.or_else(|| match rx.as_mut().map(|rx| rx.try_recv()) {
            Some(Ok(Grant::Conn(conn))) => Some(conn),
            _ => None,
        });
        let conn = got.expect("the waiter got the connection");
        assert_eq!(conn.raw, 7);
        let st = state.lock().unwrap();
        let g = st.gauges();
        assert_eq!((g.size, g.in_use, g.idle, g.waiting), (1, 1, 0, 0), "{g:?}");
    });
}

/// A connection handed to a waiter at the moment it gives up: it either
/// leaves the queue before the hand-off, or takes the grant and gives it
/// back; the connection ends up idle, not lost and not held twice.
#[test]
fn a_grant_racing_a_cancel_is_never_lost() {
    loom::model(|| {
        let (mut st, conn) = one_checked_out();
        let (tx, mut rx) = oneshot::channel();
        let key = st.enqueue(tx, &ASK, None);
        let _ = st.take_aftermath();
        let state = Arc::new(Mutex::new(st));

        let returner = {
            let state = Arc::clone(&state);
            thread::spawn(move || state.lock().unwrap().checkin(conn, 10, T0, false))
        };
        {
            let mut st = state.lock().unwrap();
            if st.cancel_waiter(key) {
                st.cancelled();
            } else if let Ok(grant) = rx.try_recv() {
                st.release_grant(grant, T0);
            }
        }
        returner.join().unwrap();

        let st = state.lock().unwrap();
        let g = st.gauges();
        assert_eq!((g.size, g.in_use, g.idle, g.waiting), (1, 0, 1, 0), "{g:?}");
        let c = st.counters();
        assert_eq!(c.cancelled, 1, "{c:?}");
    });
}

/// An evict racing a return to the stash: the connection, made before the
/// evict, is closed, never parked for a later get.
#[test]
fn an_evict_racing_a_return_closes_the_connection() {
    loom::model(|| {
        let (st, conn) = one_checked_out();
        let stash = st.stash();
        let state = Arc::new(Mutex::new(st));

        let returner = {
            let (state, stash) = (Arc::clone(&state), std::sync::Arc::clone(&stash));
            thread::spawn(move || match stash.put(conn, 10, T0) {
                Put::Stashed => {}
                Put::Displaced(old) => state.lock().unwrap().unstash(old, T0),
                Put::Refused(back) => state.lock().unwrap().checkin(back, 10, T0, false),
            })
        };
        let sweep = {
            let mut st = state.lock().unwrap();
            st.evict(T0);
            st.take_aftermath().is_some_and(|a| a.sweep)
        };
        finish(&state, sweep);
        returner.join().unwrap();

        // A get now must not find the old connection.
        assert!(!matches!(stash.take(T0), crate::stash::Take::Hit(_)));
        let mut st = state.lock().unwrap();
        finish_all(&mut st, &stash);
        let c = st.counters();
        assert_eq!(c.closed.evicted, 1, "{c:?}");
        assert_eq!(st.gauges().size, 0);
    });
}

/// Takes back whatever is still parked (a later sweep or stale take would).
fn finish_all(st: &mut St, stash: &crate::stash::Stash<u32>) {
    let mut conns = Vec::new();
    stash.try_take_all(&mut conns);
    for conn in conns {
        st.unstash(conn, T0);
    }
}
