//! [`RedisConnection`]: a multiplexed connection that remembers whether it
//! broke.

use std::fmt;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// One pooled Redis connection: a [`MultiplexedConnection`] that notes when
/// a command failed in a way that leaves it unusable (the server closed it,
/// a protocol error), so the pool closes it instead of handing it on.
///
/// It implements [`redis::aio::ConnectionLike`], so every command works on
/// it: `conn.get("key")` through [`redis::AsyncCommands`], or
/// `redis::cmd("PING").query_async(&mut *conn)` on a pooled guard. Commands
/// sent on [`inner_mut`](Self::inner_mut) directly are not watched.
pub struct RedisConnection {
    inner: MultiplexedConnection,
    broken: bool,
}

impl RedisConnection {
    pub(crate) fn new(inner: MultiplexedConnection) -> Self {
        Self {
            inner,
            broken: false,
        }
    }

    /// Whether a command failed in a way that the driver says needs a new
    /// connection ([`RedisError::is_unrecoverable_error`]). Server replies
    /// such as `WRONGTYPE` and response timeouts do not count.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The driver connection.
    pub fn inner(&self) -> &MultiplexedConnection {
        &self.inner
    }

    /// The driver connection, for its own methods (`subscribe`,
    /// `set_response_timeout`, ...).
    pub fn inner_mut(&mut self) -> &mut MultiplexedConnection {
        &mut self.inner
    }

    /// Gives back the driver connection, for example after
    /// [`Pooled::detach`](tidepool::Pooled::detach).
    pub fn into_inner(self) -> MultiplexedConnection {
        self.inner
    }

    fn watch<T>(&mut self, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &result {
            self.note(e);
        }
        result
    }

    fn note(&mut self, e: &RedisError) {
        if e.is_unrecoverable_error() {
            self.broken = true;
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.inner.send_packed_command(cmd).await;
            self.watch(result)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self
                .inner
                .send_packed_commands(pipeline, offset, count)
                .await;
            self.watch(result)
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("db", &self.inner.get_db())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}
