//! [`MssqlConnection`]: a tiberius client plus what the pool needs to know
//! about it.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use tokio_util::compat::Compat;

use crate::stream::{Closed, MssqlStream};

/// The tiberius client type a pooled connection wraps.
pub type MssqlClient = tiberius::Client<Compat<MssqlStream>>;

/// One pooled SQL Server connection: a [`tiberius::Client`] (it derefs to
/// it, so every driver method is at hand) over a TCP stream whose end the
/// pool notices.
pub struct MssqlConnection {
    client: MssqlClient,
    closed: Closed,
    reset_sql: Option<Arc<str>>,
}

impl MssqlConnection {
    pub(crate) fn new(client: MssqlClient, closed: Closed) -> Self {
        Self {
            client,
            closed,
            reset_sql: None,
        }
    }

    pub(crate) fn set_reset_sql(&mut self, sql: String) {
        self.reset_sql = Some(sql.into());
    }

    pub(crate) fn reset_sql(&self) -> Option<Arc<str>> {
        self.reset_sql.clone()
    }

    pub(crate) fn resets(&self) -> bool {
        self.reset_sql.is_some()
    }

    /// Whether the TCP connection has ended: the server closed it (a
    /// `KILL`, a restart, a network cut noticed by the last read or write)
    /// or an I/O error broke it. Costs no round trip; a connection that
    /// died while nobody used it is noticed only at its next use.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// The driver client.
    pub fn client(&self) -> &MssqlClient {
        &self.client
    }

    /// Gives back the driver client, for example after
    /// [`Pooled::detach`](tidepool::Pooled::detach).
    pub fn into_client(self) -> MssqlClient {
        self.client
    }
}

impl Deref for MssqlConnection {
    type Target = MssqlClient;

    fn deref(&self) -> &MssqlClient {
        &self.client
    }
}

impl DerefMut for MssqlConnection {
    fn deref_mut(&mut self) -> &mut MssqlClient {
        &mut self.client
    }
}

impl fmt::Debug for MssqlConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MssqlConnection")
            .field("closed", &self.is_closed())
            .field("resets", &self.reset_sql.is_some())
            .finish_non_exhaustive()
    }
}
