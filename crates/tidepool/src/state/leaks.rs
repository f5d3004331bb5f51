//! Leak tracking: who holds each checked-out connection, and since when.
//! Reports are collected under the lock and written after it.

use std::backtrace::Backtrace;
use std::collections::HashMap;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Stamp;

/// Who checked a connection out, for leak reports.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) location: &'static Location<'static>,
    /// Captured only with `leak_detection_backtrace` on.
    pub(crate) backtrace: Option<Arc<Backtrace>>,
}

#[derive(Debug)]
struct Held {
    since: Stamp,
    caller: Caller,
    reported: bool,
}

/// Something to log once the lock is released.
#[derive(Debug)]
pub(crate) enum Report {
    /// A connection has been held past the threshold.
    Leak {
        id: u64,
        held: Duration,
        caller: Caller,
    },
    /// A connection reported as leaked came back.
    Returned {
        id: u64,
        held: Duration,
        location: &'static Location<'static>,
    },
}

impl Report {
    /// Writes the report to the log, naming `pool`. Formatting a backtrace
    /// resolves its symbols (tens of milliseconds the first time), which is
    /// why this never runs under the pool's lock.
    pub(crate) fn log(&self, pool: &str) {
        match self {
            Self::Leak { id, held, caller } => match &caller.backtrace {
                Some(bt) => tracing::warn!(
                    pool = %pool,
                    connection = id,
                    held_ms = held.as_millis() as u64,
                    checked_out_at = %caller.location,
                    backtrace = %bt,
                    "possible connection leak"
                ),
                None => tracing::warn!(
                    pool = %pool,
                    connection = id,
                    held_ms = held.as_millis() as u64,
                    checked_out_at = %caller.location,
                    "possible connection leak"
                ),
            },
            Self::Returned { id, held, location } => tracing::warn!(
                pool = %pool,
                connection = id,
                held_ms = held.as_millis() as u64,
                checked_out_at = %location,
                "leaked connection returned"
            ),
        }
    }
}

/// The connections checked out, by id, with their callers.
#[derive(Debug)]
pub(crate) struct Leaks {
    threshold: Duration,
    held: HashMap<u64, Held>,
}

impl Leaks {
    pub(crate) fn new(threshold: Duration) -> Self {
        Self {
            threshold,
            held: HashMap::new(),
        }
    }

    pub(crate) fn track(&mut self, id: u64, caller: Option<Caller>, now: Stamp) {
        if let Some(caller) = caller {
            self.held.insert(
                id,
                Held {
                    since: now,
                    caller,
                    reported: false,
                },
            );
        }
    }

    /// Connection `id` came back; a report if it had been reported leaked.
    pub(crate) fn untrack(&mut self, id: u64, now: Stamp) -> Option<Report> {
        let held = self.held.remove(&id)?;
        held.reported.then(|| Report::Returned {
            id,
            held: now.saturating_duration_since(held.since),
            location: held.caller.location,
        })
    }

    /// Reports every connection newly held past the threshold.
    pub(crate) fn scan(&mut self, now: Stamp, out: &mut Vec<Report>) -> u64 {
        let mut found = 0;
        for (id, rec) in &mut self.held {
            let held = now.saturating_duration_since(rec.since);
            if !rec.reported && held >= self.threshold {
                rec.reported = true;
                found += 1;
                out.push(Report::Leak {
                    id: *id,
                    held,
                    caller: rec.caller.clone(),
                });
            }
        }
        found
    }
}
