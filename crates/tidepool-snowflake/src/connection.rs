//! [`SnowflakeConnection`]: a Snowflake session that remembers whether it
//! died.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};

use snowflake_connector_rs::{
    ErrorKind, FromRow, IntoStatement, ResultCursor, Session, TypedResultCursor,
};

/// One pooled Snowflake session. Its queries (through
/// [`query`](Self::query) and [`query_as`](Self::query_as), which the
/// connection's own methods shadow) are watched: one that fails because
/// the session expired, the login was refused or the HTTP exchange failed
/// marks the session broken, and the pool closes it on return instead of
/// handing it on. Calls on [`session`](Self::session) directly are not
/// watched. It derefs to the driver's [`Session`] for everything else.
pub struct SnowflakeConnection {
    session: Session,
    broken: AtomicBool,
}

impl SnowflakeConnection {
    pub(crate) fn new(session: Session) -> Self {
        Self {
            session,
            broken: AtomicBool::new(false),
        }
    }

    /// Runs a statement (see [`Session::query`]), watching for a dead
    /// session.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn query<S: IntoStatement>(
        &self,
        statement: S,
    ) -> snowflake_connector_rs::Result<ResultCursor> {
        let result = self.session.query(statement).await;
        self.watch(result)
    }

    /// Runs a statement with typed rows (see [`Session::query_as`]),
    /// watching for a dead session.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn query_as<T: FromRow, S: IntoStatement>(
        &self,
        statement: S,
    ) -> snowflake_connector_rs::Result<TypedResultCursor<T>> {
        let result = self.session.query_as(statement).await;
        self.watch(result)
    }

    /// Whether a watched query found the session dead: expired or refused
    /// (`SessionExpired`, `Auth`), or the HTTP exchange failed (`Network`,
    /// which is how an unknown session token is answered: HTTP 401).
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// The driver session, unwatched.
    pub fn session(&self) -> &Session {
        &self.session
    }

    fn watch<T>(
        &self,
        result: snowflake_connector_rs::Result<T>,
    ) -> snowflake_connector_rs::Result<T> {
        if let Err(e) = &result
            && matches!(
                e.kind(),
                ErrorKind::SessionExpired | ErrorKind::Auth | ErrorKind::Network
            )
        {
            self.broken.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl Deref for SnowflakeConnection {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl fmt::Debug for SnowflakeConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The driver's Debug redacts the session token.
        f.debug_struct("SnowflakeConnection")
            .field("session", &self.session)
            .field("broken", &self.is_broken())
            .finish()
    }
}
