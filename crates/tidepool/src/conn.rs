//! A pooled connection and the metadata the pool keeps about it.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::clock::Stamp;
use crate::config::{PoolConfig, Validation};

/// What the pool knows about one connection, as of the moment it was asked.
///
/// Age and idle time are kept as nanoseconds and turned into `Duration`s
/// only when read: the pool builds one of these on every checkout, for
/// [`Manager::before_checkout`](crate::Manager::before_checkout), and most
/// hooks never look at them.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// Unique within the pool, increasing in order of creation.
    pub id: u64,
    /// How many times it has been checked out, this checkout included.
    pub times_used: u64,
    age_ns: u64,
    idle_ns: u64,
}

impl ConnectionInfo {
    /// How long ago the connection was opened.
    pub fn age(&self) -> Duration {
        Duration::from_nanos(self.age_ns)
    }

    /// How long it sat in the pool before this checkout (since it was last
    /// returned, or opened).
    pub fn idle(&self) -> Duration {
        Duration::from_nanos(self.idle_ns)
    }
}

impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionInfo")
            .field("id", &self.id)
            .field("age", &self.age())
            .field("idle", &self.idle())
            .field("times_used", &self.times_used)
            .finish()
    }
}

impl Serialize for ConnectionInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ConnectionInfo", 4)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("age_ms", &(self.age().as_secs_f64() * 1000.0))?;
        st.serialize_field("idle_ms", &(self.idle().as_secs_f64() * 1000.0))?;
        st.serialize_field("times_used", &self.times_used)?;
        st.end()
    }
}

/// A raw connection with the pool's bookkeeping, boxed: a checkout and a
/// return move one pointer through the state machine, the grant channel and
/// the guard instead of the whole record.
#[derive(Debug)]
pub(crate) struct Conn<C>(Box<Record<C>>);

impl<C> Conn<C> {
    pub(crate) fn new(record: Record<C>) -> Self {
        Self(Box::new(record))
    }

    /// The connection itself, out of its record.
    pub(crate) fn into_raw(self) -> C {
        self.0.raw
    }
}

impl<C> std::ops::Deref for Conn<C> {
    type Target = Record<C>;

    #[inline]
    fn deref(&self) -> &Record<C> {
        &self.0
    }
}

impl<C> std::ops::DerefMut for Conn<C> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Record<C> {
        &mut self.0
    }
}

/// When a connection is pinged before checkout: the `validation` setting,
/// with its window in nanoseconds, worked out once rather than on every get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValidationRule {
    Always,
    Never,
    /// Idle longer than this many nanoseconds.
    IfIdleFor(u64),
}

impl ValidationRule {
    pub(crate) fn new(cfg: &PoolConfig) -> Self {
        match cfg.validation {
            Validation::Always => Self::Always,
            Validation::Never => Self::Never,
            Validation::IfIdle => {
                Self::IfIdleFor(u64::try_from(cfg.validation_window.as_nanos()).unwrap_or(u64::MAX))
            }
        }
    }
}

/// What the pool keeps about one connection.
#[derive(Debug)]
pub(crate) struct Record<C> {
    pub(crate) raw: C,
    pub(crate) id: u64,
    pub(crate) created_at: Stamp,
    /// When it was last returned (its creation, if never used).
    pub(crate) last_used: Stamp,
    /// How many times it has been checked out.
    pub(crate) times_used: u64,
    /// Last successful validation or keepalive ping (or creation).
    pub(crate) checked_at: Stamp,
    /// When max lifetime (minus this connection's jitter) is reached;
    /// [`Stamp::NEVER`] without a max lifetime.
    pub(crate) retire_at: Stamp,
    /// The same moment on the monotonic clock, which confirms a retirement
    /// the pool's clock calls for (see the clock's notes on jumps); `None`
    /// without a max lifetime.
    pub(crate) retire_by: Option<tokio::time::Instant>,
    /// The pool's eviction generation when this connection was made.
    pub(crate) generation: u64,
    /// Opened beyond `max_size`; closed when returned with nobody waiting.
    pub(crate) overflow: bool,
    /// When its current checkout began (kept here rather than in the
    /// guard, whose size every get's result and every caller pays for).
    pub(crate) checked_out_at: Stamp,
    /// Its holder marked it broken: it is closed when it comes back (and
    /// so never checked out again with the mark set).
    pub(crate) broken: bool,
}

impl<C> Record<C> {
    /// Whether this connection must be pinged before checkout under `rule`.
    #[inline]
    pub(crate) fn needs_validation(&self, rule: ValidationRule, now: Stamp) -> bool {
        match rule {
            ValidationRule::Always => true,
            ValidationRule::Never => false,
            ValidationRule::IfIdleFor(window_ns) => {
                now > self.last_used.max(self.checked_at).add_nanos(window_ns)
            }
        }
    }

    /// Its info as of `now`, for the checkout that began at `since`.
    pub(crate) fn info(&self, now: Stamp, since: Stamp) -> ConnectionInfo {
        ConnectionInfo {
            id: self.id,
            times_used: self.times_used,
            age_ns: now.nanos_since(self.created_at),
            idle_ns: since.nanos_since(self.last_used),
        }
    }
}
