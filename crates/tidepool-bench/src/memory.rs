//! Heap bytes held, counted by the allocator: what the scale suite's memory
//! figures (bytes per idle pool, per connection) are read from.
//!
//! The runner binary installs `tracking_allocator::Allocator` as its global
//! allocator and calls [`install`]; from then on, while a [`Meter`] is
//! counting, every allocation and deallocation of the process, on any
//! thread, moves one signed counter by the size the program asked for
//! (the allocator's own rounding and headers are not included). When no
//! meter counts, the allocator only checks a flag, so the other suites'
//! timings are not touched. In a binary without that allocator (the unit
//! tests, the criterion bench) [`install`] reports that nothing is counted
//! and the memory figures are left out.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

use tracking_allocator::{AllocationGroupId, AllocationRegistry, AllocationTracker};

/// Net bytes allocated while counting was on.
static NET: AtomicI64 = AtomicI64::new(0);

/// Whether [`install`] found the counting allocator in place.
static INSTALLED: AtomicBool = AtomicBool::new(false);

struct NetBytes;

impl AllocationTracker for NetBytes {
    fn allocated(&self, _addr: usize, size: usize, _wrapped: usize, _group: AllocationGroupId) {
        NET.fetch_add(i64::try_from(size).unwrap_or(i64::MAX), Relaxed);
    }

    fn deallocated(
        &self,
        _addr: usize,
        size: usize,
        _wrapped: usize,
        _source: AllocationGroupId,
        _current: AllocationGroupId,
    ) {
        NET.fetch_sub(i64::try_from(size).unwrap_or(i64::MAX), Relaxed);
    }
}

/// Sets the tracker and checks that allocations reach it; `true` when they
/// do (the binary's global allocator is `tracking_allocator::Allocator`).
/// Call once, at start.
pub fn install() -> bool {
    if INSTALLED.load(Relaxed) {
        return true;
    }
    // A second call after a failed first one finds the tracker set: fine.
    let _ = AllocationRegistry::set_global_tracker(NetBytes);
    AllocationRegistry::enable_tracking();
    let before = NET.load(Relaxed);
    let probe = std::hint::black_box(vec![0u8; 4096]);
    let seen = NET.load(Relaxed) - before;
    drop(probe);
    AllocationRegistry::disable_tracking();
    let counted = seen >= 4096;
    INSTALLED.store(counted, Relaxed);
    counted
}

/// Whether heap bytes can be counted in this process.
pub fn available() -> bool {
    INSTALLED.load(Relaxed)
}

/// Counts heap bytes from its start until it is dropped. One at a time:
/// the counter is process-wide.
#[derive(Debug)]
pub struct Meter {
    start: i64,
}

impl Meter {
    /// Starts counting; `None` when the counting allocator is not installed.
    pub fn start() -> Option<Self> {
        if !available() {
            return None;
        }
        AllocationRegistry::enable_tracking();
        Some(Self {
            start: NET.load(Relaxed),
        })
    }

    /// Bytes allocated and not freed since the start, by every thread.
    pub fn net(&self) -> i64 {
        NET.load(Relaxed) - self.start
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        AllocationRegistry::disable_tracking();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_the_allocator_nothing_is_counted() {
        // The test binary keeps the system allocator.
        assert!(!install());
        assert!(Meter::start().is_none());
    }
}
