//! Reading the state: gauges, counters and full statistics. Reading moves
//! no connection: parked connections are counted where they sit.

use super::State;
use crate::clock::Stamp;
use crate::histogram::Histogram;
use crate::stats::{Counters, Derived, Gauges, Stats, Window};

/// What the stash's shards recorded since they were last drained, taken
/// out of them without the pool's lock.
#[derive(Debug)]
pub(crate) struct Drained {
    pub(crate) hits: u64,
    pub(crate) last_get: Option<Stamp>,
    pub(crate) hold: Histogram,
    pub(crate) window: Window,
}

impl<C, E> State<C, E> {
    /// Adds in what the stash's shards recorded.
    pub(crate) fn absorb(&mut self, mut drained: Drained, now: Stamp) {
        let hits = drained.hits;
        self.counters.gets += hits;
        self.counters.hits += hits;
        self.counters.checkouts += hits;
        self.counters.reused += hits;
        if let Some(at) = drained.last_get {
            self.last_activity = self.last_activity.max(at);
        }
        if drained.hold.count() > 0 {
            self.hist.hold.merge(&drained.hold);
        }
        drained.window.drain_into(&mut self.window, now);
    }

    pub(crate) fn gauges(&self) -> Gauges {
        // Parked connections are idle, though counted in use until they
        // leave the stash; a shard's flag is cleared before its connection
        // is counted back, so this never exceeds `in_use`.
        let parked = self.stash.parked().min(self.counts.in_use);
        let c = &self.counts;
        Gauges {
            size: c.size,
            idle: self.idle.len() + parked,
            in_use: c.in_use - parked,
            checking: c.checking(),
            closing: c.closing,
            waiting: self.waiters.len(),
            pending: c.connecting(),
            overflow: c.overflow,
            // Overflow connections are never idle: open means busy.
            overflow_in_use: c.overflow,
            max_size: self.cfg.max_size,
            min_idle: self.cfg.min_idle,
            max_overflow: self.cfg.max_overflow,
            paused: self.paused,
            closed: self.closed,
        }
    }

    /// A consistent snapshot.
    pub(crate) fn stats(&mut self, name: &str, now: Stamp) -> Stats {
        let gauges = self.gauges();
        self.note_load(now);
        let c = self.counters;
        let mut derived = Derived {
            utilization: gauges.in_use as f64 / gauges.max_size as f64,
            hit_ratio: ratio(c.hits, c.hits + c.misses),
            reuse_ratio: ratio(c.reused, c.created),
            idle_for: now.saturating_duration_since(self.last_activity),
            ..Derived::default()
        };
        self.window.derive(now, &mut derived);
        let mut histograms = self.hist.clone();
        histograms.acquire.record_zeros(c.hits);
        Stats {
            name: name.to_owned(),
            gauges,
            counters: c,
            acquire: histograms.acquire.summary(),
            hold: histograms.hold.summary(),
            create: histograms.create.summary(),
            derived,
            histograms,
        }
    }

    /// Counters only, without copying the histograms.
    pub(crate) fn counters(&self) -> Counters {
        self.counters
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}
