//! The table of open client connections: how many there are against
//! `max_connections`, and what each is doing — a request in flight, idle
//! since when, the first byte of its next request read when — from which
//! its deadline follows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a client may take, from the listener's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) header_read: Duration,
    pub(crate) keep_alive: Duration,
}

/// The open connections, at most `max` of them counted.
#[derive(Debug)]
pub(crate) struct Table {
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    live: HashMap<u64, Arc<Conn>>,
    /// Live connections not asked to close: what `max` bounds.
    counted: usize,
}

/// One connection's state, shared by its task, its IO and its service.
#[derive(Debug)]
pub(crate) struct Conn {
    phase: Mutex<Phase>,
    /// Wakes the connection's task: it was asked to close, or its deadline
    /// changed.
    pub(crate) wake: Notify,
    shed: AtomicBool,
}

#[derive(Debug)]
struct Phase {
    in_flight: usize,
    /// When the last request ended, or the connection opened.
    idle_since: Instant,
    /// When the first byte of the next request was read.
    first_byte: Option<Instant>,
    requests: u64,
}

/// A connection's place in the table; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Ticket {
    table: Arc<Table>,
    id: u64,
    pub(crate) conn: Arc<Conn>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Table {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            inner: Mutex::default(),
        })
    }

    /// A place for a new connection: a free one, or the place of the
    /// connection idle the longest, which is asked to close. `None` when
    /// every connection has a request in flight.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let mut inner = locked(&self.inner);
        if inner.counted >= self.max && !shed_idlest(&mut inner) {
            return None;
        }
        inner.counted += 1;
        inner.next += 1;
        let id = inner.next;
        let conn = Arc::new(Conn {
            phase: Mutex::new(Phase {
                in_flight: 0,
                idle_since: Instant::now(),
                first_byte: None,
                requests: 0,
            }),
            wake: Notify::new(),
            shed: AtomicBool::new(false),
        });
        inner.live.insert(id, Arc::clone(&conn));
        Some(Ticket {
            table: Arc::clone(self),
            id,
            conn,
        })
    }

    /// Asks the connection idle the longest to close (when file descriptors
    /// run out); whether there was one.
    pub(crate) fn shed_one(&self) -> bool {
        shed_idlest(&mut locked(&self.inner))
    }

    /// Asks every connection to close once its request is answered.
    pub(crate) fn close_all(&self) {
        let inner = locked(&self.inner);
        for conn in inner.live.values() {
            conn.wake.notify_one();
        }
    }

    /// Connections open now.
    pub(crate) fn len(&self) -> usize {
        locked(&self.inner).live.len()
    }
}

/// Marks the idle connection idle the longest as shed (no longer counted)
/// and wakes it; whether there was one.
fn shed_idlest(inner: &mut Inner) -> bool {
    let idlest = inner
        .live
        .values()
        .filter(|c| !c.shed.load(Ordering::Relaxed))
        .filter_map(|c| {
            let phase = locked(&c.phase);
            (phase.in_flight == 0).then_some((phase.idle_since, c))
        })
        .min_by_key(|(since, _)| *since)
        .map(|(_, c)| Arc::clone(c));
    let Some(conn) = idlest else {
        return false;
    };
    conn.shed.store(true, Ordering::Relaxed);
    conn.wake.notify_one();
    inner.counted -= 1;
    true
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut inner = locked(&self.table.inner);
        inner.live.remove(&self.id);
        if !self.conn.shed.load(Ordering::Relaxed) {
            inner.counted -= 1;
        }
    }
}

/// A request in flight on a connection; its end makes the connection idle.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut phase = locked(&self.0.phase);
        phase.in_flight -= 1;
        if phase.in_flight == 0 {
            phase.idle_since = Instant::now();
            phase.first_byte = None;
            drop(phase);
            self.0.wake.notify_one();
        }
    }
}

impl Conn {
    /// A request's headers were read: it is in flight until the guard drops.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        let mut phase = locked(&self.phase);
        phase.in_flight += 1;
        phase.requests += 1;
        phase.first_byte = None;
        InFlight(Arc::clone(self))
    }

    /// Bytes were read: on an idle connection, the next request has begun,
    /// and its headers are now on the header-read clock.
    pub(crate) fn read_some(&self) {
        let mut phase = locked(&self.phase);
        if phase.in_flight == 0 && phase.first_byte.is_none() {
            phase.first_byte = Some(Instant::now());
            drop(phase);
            self.wake.notify_one();
        }
    }

    /// Whether the table asked this connection to close.
    pub(crate) fn is_shed(&self) -> bool {
        self.shed.load(Ordering::Relaxed)
    }

    /// Whether no request is in flight.
    pub(crate) fn is_idle(&self) -> bool {
        locked(&self.phase).in_flight == 0
    }

    /// When the connection is to be closed if nothing changes: the headers
    /// of a request begun (or of the first request) within `header_read`,
    /// the next request on an idle keep-alive connection within
    /// `keep_alive`; `None` while a request is in flight.
    pub(crate) fn deadline(&self, t: Timeouts) -> Option<Instant> {
        let phase = locked(&self.phase);
        if phase.in_flight > 0 {
            return None;
        }
        Some(match (phase.first_byte, phase.requests) {
            (Some(first), _) => first + t.header_read,
            (None, 0) => phase.idle_since + t.header_read,
            (None, _) => phase.idle_since + t.keep_alive,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header_read: Duration::from_secs(10),
        keep_alive: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_what_the_connection_is_doing() {
        let table = Table::new(4);
        let ticket = table.admit().unwrap();
        let c = &ticket.conn;
        let opened = Instant::now();
        assert_eq!(c.deadline(T), Some(opened + T.header_read), "first request");
        let request = c.begin();
        assert_eq!(c.deadline(T), None, "in flight");
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(request);
        let idle = Instant::now();
        assert_eq!(c.deadline(T), Some(idle + T.keep_alive), "idle keep-alive");
        tokio::time::advance(Duration::from_secs(5)).await;
        c.read_some();
        let begun = Instant::now();
        assert_eq!(
            c.deadline(T),
            Some(begun + T.header_read),
            "next request begun"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_maximum_the_idlest_connection_makes_room_and_busy_ones_do_not() {
        let table = Table::new(2);
        let old = table.admit().unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        let newer = table.admit().unwrap();
        let third = table.admit().unwrap();
        assert!(old.conn.is_shed(), "the idlest made room");
        assert!(!newer.conn.is_shed());
        let a = newer.conn.begin();
        let b = third.conn.begin();
        assert!(table.admit().is_none(), "every counted connection is busy");
        drop(old);
        assert!(table.admit().is_none(), "a shed connection freed no place");
        assert_eq!(table.len(), 2);
        drop(b);
        drop(third);
        assert!(table.admit().is_some());
        drop(a);
    }
}
