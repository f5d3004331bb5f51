//! What the clients measure, and how it is gathered.
//!
//! # Implementation notes
//! Each client records into a shard of its own (a mutex nobody else takes
//! except the collector, once a tick), so recording never contends. Every
//! tick the collector empties the shards into one interval (a point of the
//! timeline and the progress line) and adds the interval into the run's
//! totals: each request is recorded once, into one HDR histogram.
//! Latencies are nanoseconds, three significant digits.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::exec::Failure;

/// How late a request may start before it counts as late: tokio's timer
/// wakes a sleeper up to a millisecond after its deadline, so a lateness
/// under 2 ms says nothing about the load.
pub const LATE: Duration = Duration::from_millis(2);

/// A histogram of nanoseconds that grows as it needs to.
pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid precision")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// Records `d`, growing the histogram as needed (`saturating_record` would
/// clamp to the current range instead).
fn record(h: &mut Histogram<u64>, d: Duration) {
    let v = nanos(d);
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
}

/// Failures of one kind: how many, and the first message seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCount {
    /// How many requests failed so.
    pub count: u64,
    /// One example message.
    pub example: String,
}

/// What one statement of the workload did over some span.
#[derive(Debug, Clone)]
pub struct StatementTally {
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Latency of each, as in [`Tally::latency`].
    pub latency: Histogram<u64>,
}

impl Default for StatementTally {
    fn default() -> Self {
        Self {
            ok: 0,
            failed: 0,
            latency: histogram(),
        }
    }
}

/// What was recorded over some span.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latency of every request, failed or not: from its start (open loop:
    /// its intended start) to its end.
    pub latency: Histogram<u64>,
    /// Open loop: from the moment a request really started to its end.
    pub service: Histogram<u64>,
    /// Requests that succeeded.
    pub ok: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, ErrorCount>,
    /// Open loop: requests that started more than [`LATE`] after their
    /// intended start (every client was busy, or the machine was slow to
    /// wake one).
    pub late: u64,
    /// The same per statement of the workload, by index.
    pub statements: Vec<StatementTally>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            latency: histogram(),
            service: histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            late: 0,
            statements: Vec::new(),
        }
    }
}

impl Tally {
    /// Requests recorded, failed or not.
    pub fn requests(&self) -> u64 {
        self.ok + self.failed()
    }

    /// Requests that failed.
    pub fn failed(&self) -> u64 {
        self.errors.values().map(|e| e.count).sum()
    }

    fn statement(&mut self, index: usize) -> &mut StatementTally {
        if self.statements.len() <= index {
            self.statements
                .resize_with(index + 1, StatementTally::default);
        }
        &mut self.statements[index]
    }

    /// Records one request of statement `statement`; `service` is given in
    /// an open loop only.
    pub fn record(
        &mut self,
        statement: usize,
        latency: Duration,
        service: Option<Duration>,
        result: Result<(), Failure>,
    ) {
        let s = self.statement(statement);
        record(&mut s.latency, latency);
        match result {
            Ok(()) => s.ok += 1,
            Err(_) => s.failed += 1,
        }
        record(&mut self.latency, latency);
        if let Some(service) = service {
            record(&mut self.service, service);
            if latency.saturating_sub(service) > LATE {
                self.late += 1;
            }
        }
        match result {
            Ok(()) => self.ok += 1,
            Err(f) => self.fail(f, 1),
        }
    }

    /// Counts `n` failures of one kind (without latencies).
    pub fn fail(&mut self, f: Failure, n: u64) {
        let entry = self.errors.entry(f.kind).or_insert_with(|| ErrorCount {
            count: 0,
            example: f.detail,
        });
        entry.count += n;
    }

    /// Adds `other` into this tally.
    pub fn add(&mut self, other: &Tally) {
        // Both grow as needed, so adding cannot fail for want of range.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        self.ok += other.ok;
        self.late += other.late;
        for (i, o) in other.statements.iter().enumerate() {
            let s = self.statement(i);
            let _ = s.latency.add(&o.latency);
            s.ok += o.ok;
            s.failed += o.failed;
        }
        for (kind, e) in &other.errors {
            let entry = self
                .errors
                .entry(kind.clone())
                .or_insert_with(|| ErrorCount {
                    count: 0,
                    example: e.example.clone(),
                });
            entry.count += e.count;
        }
    }

    /// Empties the tally, keeping its allocations.
    pub fn clear(&mut self) {
        self.latency.reset();
        self.service.reset();
        self.ok = 0;
        self.late = 0;
        self.errors.clear();
        for s in &mut self.statements {
            s.latency.reset();
            s.ok = 0;
            s.failed = 0;
        }
    }
}

/// One client's shard.
pub type Shard = Arc<Mutex<Tally>>;

/// The shards of every client.
#[derive(Debug, Clone)]
pub struct Shards(Vec<Shard>);

impl Shards {
    /// One shard per client.
    pub fn new(clients: usize) -> Self {
        Self((0..clients).map(|_| Shard::default()).collect())
    }

    /// Client `i`'s shard.
    pub fn get(&self, i: usize) -> Shard {
        Arc::clone(&self.0[i])
    }

    /// Moves everything recorded since the last call into `into`.
    pub fn drain_into(&self, into: &mut Tally) {
        for shard in &self.0 {
            let mut s = shard.lock().unwrap_or_else(PoisonError::into_inner);
            into.add(&s);
            s.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_is_counted_once_with_its_kind() {
        let shards = Shards::new(2);
        let ms = Duration::from_millis;
        shards.get(0).lock().unwrap().record(0, ms(2), None, Ok(()));
        shards.get(1).lock().unwrap().record(
            1,
            ms(5),
            Some(ms(1)),
            Err(Failure::new("acquire timeout", "first")),
        );
        shards.get(1).lock().unwrap().record(
            1,
            ms(3),
            None,
            Err(Failure::new("acquire timeout", "second")),
        );
        let mut t = Tally::default();
        shards.drain_into(&mut t);
        assert_eq!((t.requests(), t.ok, t.failed(), t.late), (3, 1, 2, 1));
        let mut on_time = Tally::default();
        on_time.record(0, ms(3), Some(ms(2)), Ok(()));
        assert_eq!(on_time.late, 0, "1 ms behind is the timer, not the load");
        assert_eq!(t.latency.len(), 3);
        assert_eq!(t.service.len(), 1);
        assert_eq!(t.errors["acquire timeout"].example, "first");
        let per: Vec<(u64, u64, u64)> = t
            .statements
            .iter()
            .map(|s| (s.ok, s.failed, s.latency.len()))
            .collect();
        assert_eq!(per, [(1, 0, 1), (0, 2, 2)]);
        let mut again = Tally::default();
        shards.drain_into(&mut again);
        assert_eq!(again.requests(), 0, "a drained shard starts empty");
        let max = t.latency.max() as f64;
        assert!((max - 5e6).abs() / 5e6 < 1e-3, "{max}");
    }
}
