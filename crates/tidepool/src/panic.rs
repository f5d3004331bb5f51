//! Catching panics in manager hooks, so that a panicking hook costs the
//! connection it ran on and nothing else.
//!
//! A hook that panics leaves its connection in an unknown state: the pool
//! closes it, counts the panic (`Counters::panics`), logs it with the hook's
//! name, and goes on serving. Hooks called from a guard's `Drop` must never
//! unwind out of it (a panic while the caller is already unwinding aborts
//! the process), and hooks in background tasks must not take the task, and
//! the capacity it holds, with them.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

/// A caught panic.
#[derive(Debug)]
pub(crate) struct Panic(Box<dyn Any + Send>);

impl Panic {
    /// The panic's message, when it had one.
    pub(crate) fn message(&self) -> Arc<String> {
        let text = if let Some(s) = self.0.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = self.0.downcast_ref::<String>() {
            s.clone()
        } else {
            "(a panic without a message)".to_owned()
        };
        Arc::new(text)
    }

    /// Logs the panic of `hook` in `pool`.
    pub(crate) fn log(&self, pool: &str, hook: &'static str) {
        tracing::error!(pool, hook, panic = %self.message(), "a manager hook panicked; its connection is closed");
    }
}

/// Runs `f`, catching a panic.
#[inline]
pub(crate) fn caught<R>(f: impl FnOnce() -> R) -> Result<R, Panic> {
    catch_unwind(AssertUnwindSafe(f)).map_err(Panic)
}

/// Awaits `fut`, catching a panic in any of its polls.
pub(crate) async fn caught_async<F: Future>(fut: F) -> Result<F::Output, Panic> {
    let mut fut = pin!(fut);
    std::future::poll_fn(move |cx| match caught(|| fut.as_mut().poll(cx)) {
        Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(panic) => Poll::Ready(Err(panic)),
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_caught_with_its_message() {
        let p = caught(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(*p.message(), "boom 7");
        assert_eq!(caught(|| 3).unwrap(), 3);
    }

    #[tokio::test]
    async fn a_panic_in_a_later_poll_is_caught() {
        let out: Result<(), Panic> = caught_async(async {
            tokio::task::yield_now().await;
            panic!("after a yield");
        })
        .await;
        assert_eq!(*out.unwrap_err().message(), "after a yield");
        assert_eq!(caught_async(async { 5 }).await.unwrap(), 5);
    }
}
