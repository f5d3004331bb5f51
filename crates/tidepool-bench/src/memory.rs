//! Heap bytes held, counted by the allocator: what the scale suite's memory
//! figures (bytes per idle pool, per connection) are read from.
//!
//! The runner binary installs `tracking_allocator::Allocator` as its global
//! allocator and calls [`install`]. [`counting`] then runs a closure on the
//! calling thread inside an allocation group of its own: every allocation
//! that thread makes meanwhile is tagged with the group, and a probe reads
//! the bytes so tagged and not yet freed (by whichever thread frees them).
//! What other threads allocate or free, such as the leftovers of an earlier
//! measurement that a runtime's worker drops late, does not count, so
//! measurements run everything on the measuring thread (a current-thread
//! runtime). Sizes are what the program asked for; the allocator's rounding
//! and headers are not included.
//!
//! Outside [`counting`] the allocator only checks a flag (and keeps its
//! one-word header on every allocation). In a binary without it (the unit
//! tests, the criterion bench) nothing is counted and the memory figures
//! are left out.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering::Relaxed};

use tracking_allocator::{
    AllocationGroupId, AllocationGroupToken, AllocationRegistry, AllocationTracker,
};

/// Net bytes allocated in the watched group.
static NET: AtomicI64 = AtomicI64::new(0);

/// The group being counted; 0 for none.
static WATCHED: AtomicUsize = AtomicUsize::new(0);

/// Whether [`install`] found the counting allocator in place.
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn watched(group: &AllocationGroupId) -> bool {
    group.as_usize().get() == WATCHED.load(Relaxed)
}

fn signed(size: usize) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

struct NetBytes;

impl AllocationTracker for NetBytes {
    fn allocated(&self, _addr: usize, size: usize, _wrapped: usize, group: AllocationGroupId) {
        if watched(&group) {
            NET.fetch_add(signed(size), Relaxed);
        }
    }

    fn deallocated(
        &self,
        _addr: usize,
        size: usize,
        _wrapped: usize,
        source: AllocationGroupId,
        _current: AllocationGroupId,
    ) {
        if watched(&source) {
            NET.fetch_sub(signed(size), Relaxed);
        }
    }
}

/// Sets the tracker and checks that allocations reach it; `true` when they
/// do (the binary's global allocator is `tracking_allocator::Allocator`).
/// Call once, at start, before any [`counting`].
pub fn install() -> bool {
    if INSTALLED.load(Relaxed) {
        return true;
    }
    // A second call after a failed first one finds the tracker set: fine.
    let _ = AllocationRegistry::set_global_tracker(NetBytes);
    INSTALLED.store(true, Relaxed);
    let counted = counting(|probe| {
        let block = std::hint::black_box(vec![0u8; 4096]);
        let seen = probe.net();
        drop(block);
        seen.is_some_and(|n| n >= 4096)
    });
    INSTALLED.store(counted, Relaxed);
    counted
}

/// Whether heap bytes can be counted in this process.
pub fn available() -> bool {
    INSTALLED.load(Relaxed)
}

/// Reads what a [`counting`] closure has allocated so far.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    on: bool,
}

impl Probe {
    /// Bytes this thread allocated since the closure started and that are
    /// not freed yet; `None` when nothing is counted.
    pub fn net(&self) -> Option<i64> {
        self.on.then(|| NET.load(Relaxed))
    }
}

/// Runs `f` on this thread with its allocations counted (see the module
/// notes). One at a time: the count is process-wide.
///
/// # Panics
/// If more than one counts at a time.
pub fn counting<R>(f: impl FnOnce(Probe) -> R) -> R {
    let mut token = if available() {
        AllocationGroupToken::register()
    } else {
        None
    };
    let guard = token.as_mut().map(|token| {
        let previous = WATCHED.swap(token.id().as_usize().get(), Relaxed);
        assert_eq!(previous, 0, "one count at a time");
        NET.store(0, Relaxed);
        AllocationRegistry::enable_tracking();
        token.enter()
    });
    let out = f(Probe {
        on: guard.is_some(),
    });
    if let Some(guard) = guard {
        // Dropped, not `exit`ed: tracking-allocator 0.4's `exit` leaves the
        // guard to be dropped as well, which leaves the group twice.
        drop(guard);
        AllocationRegistry::disable_tracking();
        WATCHED.store(0, Relaxed);
    }
    out
}

/// Runs the future `f` makes on a fresh thread, in a current-thread tokio
/// runtime of its own (started, and its timer used once, before counting
/// begins), with that thread's allocations counted: all the tasks it spawns
/// run there too, so what they allocate counts and nothing else does.
///
/// # Panics
/// When the runtime cannot be built or `f` panics.
pub fn on_own_runtime<R, Fut>(f: impl FnOnce(Probe) -> Fut + Send) -> R
where
    Fut: std::future::Future<Output = R>,
    R: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime builds");
                rt.block_on(async {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                });
                counting(|probe| rt.block_on(f(probe)))
            })
            .join()
            .expect("the measuring thread panicked")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_the_allocator_nothing_is_counted() {
        // The test binary keeps the system allocator.
        assert!(!install());
        assert!(!available());
        assert_eq!(counting(|p| p.net()), None);
        let on_its_own = on_own_runtime(|p| async move {
            tokio::task::yield_now().await;
            p.net()
        });
        assert_eq!(on_its_own, None);
    }
}
