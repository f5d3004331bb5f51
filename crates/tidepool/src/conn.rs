//! A pooled connection and the metadata the pool keeps about it.

use serde::Serialize;

use crate::config::{PoolConfig, Validation};
use tokio::time::Instant;

/// What the pool knows about one connection, visible through the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// Unique within the pool, increasing in order of creation.
    pub id: u64,
    /// When the connection was opened.
    pub created_at: Instant,
    /// When it was last returned to the pool (its creation, if never used).
    pub last_used: Instant,
    /// How many times it has been checked out, this checkout included.
    pub times_used: u64,
}

impl Serialize for ConnectionInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let now = Instant::now();
        let mut st = s.serialize_struct("ConnectionInfo", 4)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field(
            "age_ms",
            &(now.saturating_duration_since(self.created_at).as_secs_f64() * 1000.0),
        )?;
        st.serialize_field(
            "idle_ms",
            &(now.saturating_duration_since(self.last_used).as_secs_f64() * 1000.0),
        )?;
        st.serialize_field("times_used", &self.times_used)?;
        st.end()
    }
}

/// A raw connection with the pool's bookkeeping.
#[derive(Debug)]
pub(crate) struct Conn<C> {
    pub(crate) raw: C,
    pub(crate) info: ConnectionInfo,
    /// Last successful validation or keepalive ping (or creation).
    pub(crate) checked_at: Instant,
    /// When max lifetime (minus this connection's jitter) is reached.
    pub(crate) retire_at: Option<Instant>,
    /// The pool's eviction generation when this connection was made.
    pub(crate) generation: u64,
    /// Opened beyond `max_size`; closed when returned with nobody waiting.
    pub(crate) overflow: bool,
}

impl<C> Conn<C> {
    /// Whether this connection must be pinged before checkout under `cfg`.
    pub(crate) fn needs_validation(&self, cfg: &PoolConfig, now: Instant) -> bool {
        match cfg.validation {
            Validation::Always => true,
            Validation::Never => false,
            Validation::IfIdle => {
                let fresh = self.info.last_used.max(self.checked_at);
                // An add and a compare: cheaper than a subtraction of instants.
                fresh
                    .checked_add(cfg.validation_window)
                    .is_some_and(|until| now > until)
            }
        }
    }
}
