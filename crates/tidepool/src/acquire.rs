//! The get path: the stash, a locked checkout, the queue, and preparing the
//! connection (the driver's closed check, validation, `before_checkout`)
//! before the caller has it.
//!
//! A connection between its checkout and the caller's guard is held by a
//! [`Preparing`] guard, and a queued get by a [`Waiting`] guard: dropping
//! the get future at any await gives the connection, or the place in the
//! queue, back.

use std::backtrace::Backtrace;
use std::future::poll_fn;
use std::panic::Location;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::Instrument;

use crate::clock::Stamp;
use crate::conn::Conn;
use crate::error::{Check, ConnectError, PoolError, TimeoutCause};
use crate::guard::Pooled;
use crate::shared::Shared;
use crate::stash::Take;
use crate::state::{Ask, Caller, Checkout, Grant, Key};
use crate::stats::CloseReason;
use crate::{Manager, Pool};

/// Gives a connection back if its `get()` is dropped while it is being
/// validated or prepared.
struct Preparing<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    conn: Option<Conn<M::Connection>>,
}

impl<M: Manager> Drop for Preparing<'_, M> {
    // Inlined so that a get that handed its connection out (nearly all of
    // them) pays nothing for the guard: the compiler sees `conn` is `None`.
    #[inline]
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.interrupted(conn);
        }
    }
}

impl<M: Manager> Preparing<'_, M> {
    /// The get was dropped, or a hook panicked and is unwinding through it,
    /// while it held `conn`: its protocol state is unknown, so it is closed.
    #[cold]
    fn interrupted(&self, conn: Conn<M::Connection>) {
        let shared = self.shared;
        let panicked = std::thread::panicking();
        if panicked {
            tracing::error!(pool = %shared.name, connection = conn.id, "a manager hook panicked during get(); its connection is closed");
        }
        shared.with_state(|st| {
            if panicked {
                st.panicked();
            }
            st.cancelled();
            st.reject_checkout(conn, CloseReason::Error, None, shared.clock.now());
        });
    }
}

impl<M: Manager> Preparing<'_, M> {
    /// Pings the connection: when it answered, or `None` if it failed (it
    /// is then closed).
    async fn validate(&mut self, limit: Duration) -> Option<Stamp> {
        let shared = self.shared;
        let conn = self.conn.as_mut()?;
        let outcome = timeout(limit, shared.manager.validate(&mut conn.raw)).await;
        let now = shared.clock.now();
        let (reason, failure) = match outcome {
            Ok(Ok(())) => {
                conn.checked_at = now;
                return Some(now);
            }
            Ok(Err(e)) => {
                tracing::info!(pool = %shared.name, connection = conn.id, error = %e, "validation failed");
                (
                    CloseReason::FailedValidation,
                    Some(unusable(Check::Validate, Some(e))),
                )
            }
            Err(_) if limit < shared.cfg.validation_timeout => {
                // Cut short by the caller's own deadline: the connection is
                // mid-conversation, so it is closed, but that says nothing
                // about the database.
                (CloseReason::Error, None)
            }
            Err(_) => {
                tracing::info!(pool = %shared.name, connection = conn.id, "validation timed out");
                (
                    CloseReason::FailedValidation,
                    Some(unusable(Check::Validate, None)),
                )
            }
        };
        self.reject(reason, failure);
        None
    }

    /// Closes a connection that could not be handed out; `failure` says
    /// why, in case it was a new one (and the database is to blame).
    fn reject(&mut self, reason: CloseReason, failure: Option<ConnectError<M::Error>>) {
        if let Some(conn) = self.conn.take() {
            let shared = self.shared;
            shared.with_state(|st| {
                st.reject_checkout(conn, reason, failure, shared.clock.now());
            });
        }
    }
}

/// The failure of a new connection that `check` refused.
fn unusable<E>(check: Check, cause: Option<E>) -> ConnectError<E> {
    ConnectError::Unusable {
        check,
        cause: cause.map(Arc::new),
    }
}

/// A queued `get()`; leaves the queue (or gives back what it was sent) when
/// dropped.
struct Waiting<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    key: Key,
    rx: oneshot::Receiver<Grant<M::Connection, M::Error>>,
    armed: bool,
}

impl<M: Manager> Drop for Waiting<'_, M> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let rx = &mut self.rx;
        let key = self.key;
        self.shared.with_state(|st| {
            if st.cancel_waiter(key) {
                st.cancelled();
            } else if let Ok(grant) = rx.try_recv() {
                st.release_grant(grant, self.shared.clock.now());
            }
        });
    }
}

/// One get, and where it stands between its attempts.
struct Attempt {
    /// How long it may wait in all, from `started`.
    wait: Duration,
    location: &'static Location<'static>,
    no_wait: bool,
    started: Stamp,
    /// No attempt has been counted yet.
    first: bool,
    /// It has not queued yet.
    first_wait: bool,
    /// It was served, and its connection rejected: it goes first.
    front: bool,
}

impl Attempt {
    /// How much of its wait this get has left.
    fn left<M: Manager>(&self, shared: &Shared<M>) -> Duration {
        self.wait
            .saturating_sub(shared.clock.now().saturating_duration_since(self.started))
    }

    /// How long a check of a connection for this get may take: the
    /// `validation_timeout`, but never past the get's own deadline.
    fn check_limit<M: Manager>(&self, shared: &Shared<M>) -> Duration {
        shared.cfg.validation_timeout.min(self.left(shared))
    }
}

/// The outcome of one locked attempt.
enum Step<C, E> {
    /// A connection, checked out at the stamp given.
    Ready(Conn<C>, Stamp),
    Wait(Queued<C, E>),
    Failed(PoolError<E>),
}

/// A place in the queue: its key, the channel a connection comes by, and
/// when the get's time is up.
struct Queued<C, E> {
    key: Key,
    rx: oneshot::Receiver<Grant<C, E>>,
    deadline: Instant,
}

impl<M: Manager> Pool<M> {
    /// A get: the stash, then a checkout or a place in the queue, then the
    /// checks, again until a connection passes them or the time is up.
    ///
    /// A plain function returning an `async` block rather than an `async
    /// fn`: an `async fn` copies its arguments into locals of its own at
    /// its first poll, and the block uses the captured `attempt` in place.
    pub(crate) fn acquire(
        &self,
        wait: Duration,
        location: &'static Location<'static>,
        no_wait: bool,
    ) -> impl Future<Output = Result<Pooled<'_, M>, PoolError<M::Error>>> + Send + '_ {
        let mut attempt = Attempt {
            wait,
            location,
            no_wait,
            started: Stamp::default(),
            first: true,
            first_wait: true,
            front: false,
        };
        async move {
            let shared = &self.shared;
            // Read at the first poll: the wait runs from there.
            attempt.started = shared.clock.now();
            loop {
                let (conn, mut since) = 'got: {
                    if attempt.first {
                        // What this thread parked on its last return comes
                        // first (only on the first pass: a hit, or a
                        // checkout, counts the get's attempt).
                        match shared.stash.take(attempt.started) {
                            Take::Hit(conn) => {
                                attempt.first = false;
                                break 'got (conn, attempt.started);
                            }
                            Take::Stale(conn) => {
                                shared.with_state(|st| st.unstash(conn, attempt.started));
                            }
                            Take::Empty => {}
                        }
                    }
                    // Only a get that queues reaches the await below, and
                    // nothing of this match is kept across it.
                    let queued = match self.checkout(&mut attempt) {
                        Step::Ready(conn, now) => break 'got (conn, now),
                        Step::Failed(e) => return Err(e),
                        Step::Wait(queued) => queued,
                    };
                    // Boxed: the waiting future (a timer, a channel, its
                    // span) is the largest part of a get's state, and a hit
                    // never needs it. Kept out of this body too: a span held
                    // here across the await would give every get future drop
                    // glue of its own.
                    let grant = Box::pin(self.wait_traced(queued, attempt.started)).await;
                    match grant? {
                        Grant::Conn(conn) => (conn, shared.clock.now()),
                        Grant::Failed { attempts, error } => {
                            return Err(PoolError::connect(attempts, error));
                        }
                        Grant::Closed => return Err(PoolError::Closed),
                    }
                };
                let validate = conn.needs_validation(shared.validation, since);
                let mut held = Preparing {
                    shared,
                    conn: Some(conn),
                };
                'rejected: {
                    // A connection its driver already knows is closed (a
                    // server-side kill the driver has seen) is never handed
                    // out.
                    if held
                        .conn
                        .as_mut()
                        .is_some_and(|c| shared.manager.has_broken(&mut c.raw))
                    {
                        held.reject(CloseReason::Broken, Some(unusable(Check::HasBroken, None)));
                        break 'rejected;
                    }
                    if validate {
                        // Boxed for the same reason as the wait: most gets
                        // skip it.
                        match Box::pin(held.validate(attempt.check_limit(shared))).await {
                            Some(checked) => since = checked,
                            None => break 'rejected,
                        }
                    }
                    let Some(conn) = held.conn.as_mut() else {
                        break 'rejected;
                    };
                    let info = conn.info(since, since);
                    let outcome = {
                        let mut hook = pin!(shared.manager.before_checkout(&mut conn.raw, &info));
                        // Polled once first: a hook that is ready at once
                        // (nearly all) costs no timer and no clock reading.
                        match poll_fn(|cx| Poll::Ready(hook.as_mut().poll(cx))).await {
                            Poll::Ready(outcome) => Some(outcome),
                            // Boxed: the timer would otherwise grow every get
                            // future by its size.
                            Poll::Pending => Box::pin(timeout(attempt.check_limit(shared), hook))
                                .await
                                .ok(),
                        }
                    };
                    match outcome {
                        Some(Ok(())) => {
                            if let Some(conn) = held.conn.take() {
                                return Ok(Pooled::new(self, conn, since));
                            }
                        }
                        Some(Err(e)) => {
                            tracing::info!(pool = %shared.name, connection = info.id, error = %e, "before_checkout failed");
                            held.reject(
                                CloseReason::Error,
                                Some(unusable(Check::BeforeCheckout, Some(e))),
                            );
                        }
                        None if attempt.left(shared).is_zero() => {
                            // Cut short by the caller's own deadline, not the
                            // hook's.
                            held.reject(CloseReason::Error, None);
                        }
                        None => {
                            tracing::info!(pool = %shared.name, connection = info.id, "before_checkout timed out");
                            held.reject(
                                CloseReason::Error,
                                Some(unusable(Check::BeforeCheckout, None)),
                            );
                        }
                    }
                }
                // The caller was served once and its connection rejected: it
                // asks again first, while its time lasts.
                attempt.front = true;
                if attempt.left(shared).is_zero() {
                    return Err(self.checks_timed_out(&attempt));
                }
            }
        }
    }

    /// The timeout of a get whose time ran out while the connections handed
    /// to it failed their checks.
    #[cold]
    fn checks_timed_out(&self, attempt: &Attempt) -> PoolError<M::Error> {
        let shared = &self.shared;
        let now = shared.clock.now();
        let last_error = shared.with_state(|st| {
            st.timed_out(now);
            st.last_error()
        });
        let waited = now.saturating_duration_since(attempt.started);
        if let Some(held_back) = shared.timeouts_log.allow(now, &TimeoutCause::Checks) {
            tracing::warn!(pool = %shared.name, waited_ms = waited.as_millis() as u64, cause = %TimeoutCause::Checks, similar_held_back = held_back, "get timed out");
        }
        PoolError::timeout(waited, last_error, TimeoutCause::Checks)
    }

    /// Who is checking out, for leak reports (only with leak detection on).
    fn caller(&self, attempt: &Attempt) -> Option<Caller> {
        let cfg = &self.shared.cfg;
        cfg.leak_detection_threshold.is_some().then(|| Caller {
            location: attempt.location,
            backtrace: cfg
                .leak_detection_backtrace
                .then(|| Arc::new(Backtrace::force_capture())),
        })
    }

    /// One locked attempt at a connection: an idle one, or a place in the
    /// queue (or an error).
    fn checkout(&self, attempt: &mut Attempt) -> Step<M::Connection, M::Error> {
        let shared = &self.shared;
        let ask = Ask {
            now: if attempt.first {
                attempt.started
            } else {
                shared.clock.now()
            },
            started: attempt.started,
            first_attempt: attempt.first,
            first_wait: attempt.first_wait,
            front: attempt.front,
        };
        let mut caller = self.caller(attempt);
        let (step, after) = {
            let mut st = shared.lock();
            let step = match st.checkout(&ask, || caller.take()) {
                Checkout::Ready(conn) => Step::Ready(conn, ask.now),
                Checkout::Closed => Step::Failed(PoolError::Closed),
                Checkout::Queue if attempt.no_wait => {
                    st.none_idle();
                    Step::Failed(PoolError::NoneIdle)
                }
                Checkout::Queue => {
                    // Worked out afresh at each queuing rather than kept
                    // (it comes out the same, to within the two clocks'
                    // readings): every byte a get keeps is copied with
                    // every task that spawns one.
                    let deadline = shared.clock.instant_after(attempt.started, attempt.wait);
                    let (tx, rx) = oneshot::channel();
                    let key = st.enqueue(tx, &ask, caller.take());
                    attempt.first_wait = false;
                    Step::Wait(Queued { key, rx, deadline })
                }
            };
            (step, st.take_aftermath())
        };
        shared.finish(after);
        attempt.first = false;
        step
    }

    /// [`wait`](Self::wait) inside a `tidepool.wait` span. Only a get that
    /// waits opens one: a trace then shows the time a request spent waiting
    /// for a connection, and a hit pays nothing for it.
    async fn wait_traced(
        &self,
        queued: Queued<M::Connection, M::Error>,
        started: Stamp,
    ) -> Result<Grant<M::Connection, M::Error>, PoolError<M::Error>> {
        let shared = &self.shared;
        let span = tracing::debug_span!(
            "tidepool.wait",
            pool = %shared.name,
            waited_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let grant = self.wait(queued, started).instrument(span.clone()).await;
        let waited = shared.clock.now().saturating_duration_since(started);
        span.record("waited_ms", waited.as_secs_f64() * 1000.0);
        span.record(
            "outcome",
            match &grant {
                Ok(Grant::Conn(_)) => "served",
                Ok(Grant::Failed { .. }) => "connect_failed",
                Ok(Grant::Closed) => "closed",
                Err(_) => "timed_out",
            },
        );
        grant
    }

    async fn wait(
        &self,
        queued: Queued<M::Connection, M::Error>,
        started: Stamp,
    ) -> Result<Grant<M::Connection, M::Error>, PoolError<M::Error>> {
        let Queued { key, rx, deadline } = queued;
        let shared = &self.shared;
        shared.ensure_maintenance();
        let mut waiting = Waiting {
            shared,
            key,
            rx,
            armed: true,
        };
        if let Ok(received) = timeout_at(deadline, &mut waiting.rx).await {
            waiting.armed = false;
            return Ok(received.unwrap_or(Grant::Closed));
        }
        waiting.armed = false;
        let now = shared.clock.now();
        let rx = &mut waiting.rx;
        let outcome = shared.with_state(|st| {
            if st.cancel_waiter(key) {
                Err((st.timed_out(now), st.last_error()))
            } else {
                // Served just as the timer fired.
                Ok(rx.try_recv().unwrap_or(Grant::Closed))
            }
        });
        outcome.map_err(|(cause, last_error)| {
            let waited = now.saturating_duration_since(started);
            if let Some(held_back) = shared.timeouts_log.allow(now, &cause.kind()) {
                tracing::warn!(pool = %shared.name, waited_ms = waited.as_millis() as u64, %cause, similar_held_back = held_back, "get timed out");
            }
            PoolError::timeout(waited, last_error, cause)
        })
    }
}
