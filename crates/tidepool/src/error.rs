//! Errors returned by the pool.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why making a connection failed. Cheap to clone, so the last one can be
/// handed to every caller whose wait it explains.
#[derive(Debug)]
pub enum ConnectError<E> {
    /// The backend refused or failed (`connect` or `after_create`).
    Backend(Arc<E>),
    /// One attempt took longer than `create_timeout`.
    TimedOut {
        /// How long the attempt was allowed to take.
        after: Duration,
    },
    /// A manager hook panicked on a new connection (the panic's message).
    Panicked(Arc<String>),
    /// A new connection opened but could not be handed out: the check named
    /// failed on it before any caller had it (`validate`, `before_checkout`,
    /// or `has_broken`), with the backend's error when there was one.
    Unusable {
        /// The check that refused it.
        check: Check,
        /// What the check reported.
        cause: Option<Arc<E>>,
    },
}

impl<E> Clone for ConnectError<E> {
    fn clone(&self) -> Self {
        match self {
            Self::Backend(e) => Self::Backend(Arc::clone(e)),
            Self::TimedOut { after } => Self::TimedOut { after: *after },
            Self::Panicked(message) => Self::Panicked(Arc::clone(message)),
            Self::Unusable { check, cause } => Self::Unusable {
                check: *check,
                cause: cause.clone(),
            },
        }
    }
}

impl<E: StdError> fmt::Display for ConnectError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backend(e) => {
                // Drivers often keep the real reason ("connection refused") in
                // the source chain; show it unless the message already does.
                let text = e.to_string();
                f.write_str("connect failed: ")?;
                f.write_str(&text)?;
                let mut cause = e.source();
                while let Some(c) = cause {
                    let more = c.to_string();
                    if !text.contains(&more) {
                        write!(f, ": {more}")?;
                    }
                    cause = c.source();
                }
                Ok(())
            }
            Self::TimedOut { after } => write!(f, "connect timed out after {after:?}"),
            Self::Panicked(message) => write!(f, "a manager hook panicked: {message}"),
            Self::Unusable {
                check,
                cause: Some(e),
            } => write!(f, "a new connection failed `{check}`: {e}"),
            Self::Unusable { check, cause: None } => {
                write!(f, "a new connection failed `{check}`")
            }
        }
    }
}

impl<E: StdError + 'static> StdError for ConnectError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Backend(e) | Self::Unusable { cause: Some(e), .. } => Some(&**e),
            Self::TimedOut { .. } | Self::Panicked(_) | Self::Unusable { cause: None, .. } => None,
        }
    }
}

/// An error from [`Pool::get`](crate::Pool::get) and its relatives.
///
/// The payloads of the two errors that carry one are boxed: a get's result
/// is then no larger than its guard and a pointer, which every caller of
/// every get moves around, while an error is rare.
#[derive(Debug)]
#[non_exhaustive]
pub enum PoolError<E> {
    /// No connection became available before the deadline.
    Timeout(Box<TimeoutError<E>>),
    /// Creating a connection for this caller failed on every attempt.
    Connect(Box<ConnectFailure<E>>),
    /// The pool is closed (or draining) and hands out nothing.
    Closed,
    /// [`try_get`](crate::Pool::try_get) found no idle connection.
    NoneIdle,
}

/// What a [`PoolError::Timeout`] knows.
#[derive(Debug)]
#[non_exhaustive]
pub struct TimeoutError<E> {
    /// How long the caller waited.
    pub waited: Duration,
    /// The last connect failure, when creating connections kept failing;
    /// the usual real reason behind a timeout.
    pub last_error: Option<ConnectError<E>>,
    /// What the pool was doing when the wait ended.
    pub cause: TimeoutCause,
}

/// What a [`PoolError::Connect`] knows.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConnectFailure<E> {
    /// Attempts made (the first plus retries).
    pub attempts: u32,
    /// The last attempt's failure.
    pub error: ConnectError<E>,
}

impl<E> PoolError<E> {
    /// A [`Timeout`](PoolError::Timeout).
    pub fn timeout(
        waited: Duration,
        last_error: Option<ConnectError<E>>,
        cause: TimeoutCause,
    ) -> Self {
        Self::Timeout(Box::new(TimeoutError {
            waited,
            last_error,
            cause,
        }))
    }

    /// A [`Connect`](PoolError::Connect).
    pub fn connect(attempts: u32, error: ConnectError<E>) -> Self {
        Self::Connect(Box::new(ConnectFailure { attempts, error }))
    }
}

impl<E: StdError> fmt::Display for PoolError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(t) => match &t.last_error {
                Some(e) => write!(
                    f,
                    "timed out after {:?} waiting for a connection; last connect error: {e}",
                    t.waited
                ),
                None => write!(
                    f,
                    "timed out after {:?} waiting for a connection ({})",
                    t.waited, t.cause
                ),
            },
            Self::Connect(c) => {
                write!(
                    f,
                    "could not open a connection after {} attempt(s): {}",
                    c.attempts, c.error
                )
            }
            Self::Closed => f.write_str("the pool is closed"),
            Self::NoneIdle => f.write_str("no idle connection available"),
        }
    }
}

impl<E: StdError + 'static> StdError for PoolError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.connect_error().map(|e| e as &(dyn StdError + 'static))
    }
}

impl<E> PoolError<E> {
    /// Whether this is a [`Timeout`](PoolError::Timeout).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// The connect failure behind this error: the one that failed this
    /// caller, or the last one before its wait timed out.
    pub fn connect_error(&self) -> Option<&ConnectError<E>> {
        match self {
            Self::Timeout(t) => t.last_error.as_ref(),
            Self::Connect(c) => Some(&c.error),
            _ => None,
        }
    }

    /// The backend error behind this one, if any.
    pub fn backend_error(&self) -> Option<&E> {
        match self.connect_error()? {
            ConnectError::Backend(e) | ConnectError::Unusable { cause: Some(e), .. } => Some(e),
            _ => None,
        }
    }
}

/// A check a new connection must pass before a caller has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// [`Manager::validate`](crate::Manager::validate), before checkout.
    Validate,
    /// [`Manager::before_checkout`](crate::Manager::before_checkout).
    BeforeCheckout,
    /// [`Manager::has_broken`](crate::Manager::has_broken), before checkout.
    HasBroken,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Validate => "validate",
            Self::BeforeCheckout => "before_checkout",
            Self::HasBroken => "has_broken",
        })
    }
}

/// What a pool was doing when a caller's wait for a connection ended, read
/// from its state at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutCause {
    /// Every connection the pool may open was checked out.
    Busy {
        /// Connections checked out by callers.
        in_use: u32,
        /// The pool's `max_size`.
        max_size: u32,
    },
    /// The pool is paused.
    Paused,
    /// No connection was open.
    NoConnection {
        /// Connects under way.
        connecting: u32,
    },
    /// Connections were handed to the caller, and each failed its checks
    /// (validation, `before_checkout`, the driver's closed check) until its
    /// time ran out.
    Checks,
}

impl TimeoutCause {
    /// The cause without its numbers: what repeats of one are alike in.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Busy { .. } => "busy",
            Self::Paused => "paused",
            Self::NoConnection { .. } => "no connection",
            Self::Checks => "checks",
        }
    }
}

impl fmt::Display for TimeoutCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Busy { in_use, max_size } => {
                write!(f, "all connections busy: {in_use} in use of {max_size}")
            }
            Self::Paused => f.write_str("the pool is paused"),
            Self::NoConnection { connecting: 0 } => f.write_str("no connection is open"),
            Self::NoConnection { connecting } => write!(
                f,
                "no connection is open yet; {connecting} connect(s) under way"
            ),
            Self::Checks => f.write_str("the connections handed to it failed their checks"),
        }
    }
}

/// A pool setting that is out of range, or a builder that cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    message: String,
}

impl ConfigError {
    /// An error about `field`, for backends validating their own settings.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    /// The setting at fault, as spelled in the configuration (`max_size`).
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid pool setting `{}`: {}", self.field, self.message)
    }
}

impl StdError for ConfigError {}

/// An error from [`Builder::build_warm`](crate::Builder::build_warm).
#[derive(Debug)]
pub enum BuildError<E> {
    /// The configuration is invalid.
    Config(ConfigError),
    /// Warm-up with `fail_fast` could not open the first connection.
    Connect(PoolError<E>),
}

impl<E: StdError> fmt::Display for BuildError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => e.fmt(f),
            Self::Connect(e) => write!(f, "pool warm-up failed: {e}"),
        }
    }
}

impl<E: StdError + 'static> StdError for BuildError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::Connect(e) => Some(e),
        }
    }
}

impl<E> From<ConfigError> for BuildError<E> {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("error connecting to server")
        }
    }

    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_cause_chain_is_shown() {
        let inner =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e: ConnectError<Outer> = ConnectError::Backend(Arc::new(Outer(inner)));
        assert_eq!(
            e.to_string(),
            "connect failed: error connecting to server: Connection refused"
        );
        let err = PoolError::connect(2, e);
        assert!(err.to_string().ends_with(
            "after 2 attempt(s): connect failed: error connecting to server: Connection refused"
        ));
    }
}
