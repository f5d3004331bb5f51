//! [`Pooled`]: the guard that hands a connection out and brings it back;
//! [`Closing`]: the slot of a connection its holder is closing.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Stamp;
use crate::conn::{Conn, ConnectionInfo};
use crate::shared::Shared;
use crate::{Manager, Pool};

/// A connection checked out of a [`Pool`]. Derefs to the connection; dropping
/// it returns the connection to the pool (or closes it, if it broke or
/// reached its lifetime).
///
/// [`Pool::get`] lends the guard the pool (`Pooled<'_, M>`), which spares a
/// reference-count update on every checkout and return; a guard that must
/// outlive the pool handle it came from (moved into a spawned task, kept in
/// a map) is a `Pooled<'static, M>` from [`Pool::get_owned`] or
/// [`into_owned`](Self::into_owned).
#[must_use = "dropping the guard returns the connection to the pool at once"]
pub struct Pooled<'a, M: Manager> {
    /// The connection; its record holds when this checkout began and
    /// whether it was marked broken.
    conn: Option<Conn<M::Connection>>,
    pool: PoolRef<'a, M>,
}

/// The pool a guard returns to: lent by the caller, or held.
enum PoolRef<'a, M: Manager> {
    Lent(&'a Pool<M>),
    Held(Pool<M>),
}

impl<M: Manager> Deref for PoolRef<'_, M> {
    type Target = Pool<M>;

    #[inline]
    fn deref(&self) -> &Pool<M> {
        match self {
            Self::Lent(pool) => pool,
            Self::Held(pool) => pool,
        }
    }
}

impl<'a, M: Manager> Pooled<'a, M> {
    pub(crate) fn new(pool: &'a Pool<M>, mut conn: Conn<M::Connection>, since: Stamp) -> Self {
        conn.checked_out_at = since;
        Self {
            conn: Some(conn),
            pool: PoolRef::Lent(pool),
        }
    }

    /// The same checkout, holding its own handle to the pool so that it can
    /// outlive the one it was got from.
    pub fn into_owned(mut self) -> Pooled<'static, M> {
        let pool = Pool::clone(&self.pool);
        Pooled {
            conn: self.conn.take(),
            pool: PoolRef::Held(pool),
        }
    }

    fn conn(&self) -> &Conn<M::Connection> {
        self.conn
            .as_ref()
            .expect("a guard holds its connection until dropped")
    }

    /// Id, age, idle time before this checkout and use count of this
    /// connection.
    pub fn info(&self) -> ConnectionInfo {
        let conn = self.conn();
        conn.info(self.pool.shared.clock.now(), conn.checked_out_at)
    }

    /// How long this checkout has lasted so far.
    pub fn held_for(&self) -> Duration {
        self.pool
            .shared
            .clock
            .now()
            .saturating_duration_since(self.conn().checked_out_at)
    }

    /// The pool this connection belongs to.
    pub fn pool(&self) -> &Pool<M> {
        &self.pool
    }

    /// Closes the connection instead of reusing it when the guard drops —
    /// for a caller who knows it is in a bad state (an aborted protocol
    /// exchange, a transaction that could not be rolled back).
    pub fn mark_broken(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.broken = true;
        }
    }

    /// Takes the connection out of the pool for good. Its slot is freed at
    /// once, so the pool may open another in its place.
    pub fn detach(mut self) -> M::Connection {
        let (conn, held, now) = self.take_out();
        self.pool
            .shared
            .with_state(|st| st.detach(&conn, held, now));
        conn.into_raw()
    }

    /// The connection, taken out of the guard for good; how long it was
    /// held, and now.
    fn take_out(&mut self) -> (Conn<M::Connection>, u64, Stamp) {
        let conn = self
            .conn
            .take()
            .expect("a guard holds its connection until dropped");
        let now = self.pool.shared.clock.now();
        let held = now.nanos_since(conn.checked_out_at);
        (conn, held, now)
    }

    /// Takes the connection out of service for the caller to close, while
    /// it keeps its slot: the pool counts it as open (toward `max_size`;
    /// `closing` in the gauges) until the returned [`Closing`] is dropped,
    /// and opens no replacement before then.
    ///
    /// For a connection whose close takes time and still holds something
    /// on the other side meanwhile — a database session finishing a
    /// statement it was asked to cancel, whose server process lives until
    /// then. Closing it by dropping the guard instead would let the pool
    /// open a replacement at once, so the server would see more sessions
    /// than `max_size`.
    ///
    /// ```
    /// # use tidepool::{Manager, Pool};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<u64, Self::Error> { Ok(0) }
    /// #     async fn validate(&self, _: &mut u64) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder(Numbers).max_size(1).build()?;
    /// let (conn, slot) = pool.get().await?.retire();
    /// assert_eq!(pool.stats().gauges.closing, 1);
    /// tokio::spawn(async move {
    ///     drop(conn); // a close that may take a while
    ///     drop(slot); // only now may the pool open another
    /// })
    /// .await?;
    /// assert_eq!(pool.stats().gauges.size, 0);
    /// # Ok(()) }
    /// ```
    pub fn retire(mut self) -> (M::Connection, Closing<M>) {
        let (conn, held, now) = self.take_out();
        self.pool
            .shared
            .with_state(|st| st.retire(conn.id, held, now));
        let slot = Closing {
            shared: Arc::clone(&self.pool.shared),
            overflow: conn.overflow,
        };
        (conn.into_raw(), slot)
    }
}

/// The slot of a connection being closed by its last holder (see
/// [`Pooled::retire`]): while this guard lives, the pool counts the
/// connection as open. Dropping it frees the slot, so drop it once the
/// connection is really gone.
#[must_use = "dropping it frees the slot at once"]
pub struct Closing<M: Manager> {
    shared: Arc<Shared<M>>,
    overflow: bool,
}

impl<M: Manager> fmt::Debug for Closing<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closing")
            .field("pool", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Drop for Closing<M> {
    fn drop(&mut self) {
        let now = self.shared.clock.now();
        let overflow = self.overflow;
        self.shared.with_state(|st| st.retired(overflow, now));
    }
}

impl<M: Manager> Deref for Pooled<'_, M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self.conn().raw
    }
}

impl<M: Manager> DerefMut for Pooled<'_, M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self
            .conn
            .as_mut()
            .expect("a guard holds its connection until dropped")
            .raw
    }
}

impl<M: Manager> AsRef<M::Connection> for Pooled<'_, M> {
    fn as_ref(&self) -> &M::Connection {
        self
    }
}

impl<M: Manager> AsMut<M::Connection> for Pooled<'_, M> {
    fn as_mut(&mut self) -> &mut M::Connection {
        self
    }
}

impl<M: Manager> fmt::Debug for Pooled<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("pool", &self.pool.name())
            .field("connection", &self.conn.as_ref().map(|c| c.id))
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Drop for Pooled<'_, M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.shared.checkin(conn);
        }
    }
}
