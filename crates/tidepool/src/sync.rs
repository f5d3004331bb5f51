//! The primitives the stash's protocol is built on, behind a shim: with the
//! `loom` feature (for the model in `loom.rs`, never for use) they are
//! loom's, so that its model checker explores every interleaving of the
//! real stash and state code.

#[cfg(not(feature = "loom"))]
mod imp {
    pub(crate) use spin::mutex::{SpinMutex, SpinMutexGuard};
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};

    /// Gives the core to another thread while waiting for a shard.
    pub(crate) fn yield_now() {
        std::thread::yield_now();
    }
}

#[cfg(feature = "loom")]
mod imp {
    use std::fmt;

    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64};

    /// loom's mutex with the spin lock's interface (only ever tried).
    pub(crate) struct SpinMutex<T>(loom::sync::Mutex<T>);

    pub(crate) type SpinMutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> SpinMutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn try_lock(&self) -> Option<SpinMutexGuard<'_, T>> {
            self.0.try_lock().ok()
        }
    }

    impl<T> fmt::Debug for SpinMutex<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("SpinMutex")
        }
    }

    pub(crate) fn yield_now() {
        loom::thread::yield_now();
    }
}

pub(crate) use imp::*;
