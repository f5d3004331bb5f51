//! [`PgError`]: the driver's error, displayed with its causes.

use std::error::Error as StdError;
use std::fmt;

use tokio_postgres::error::{DbError, SqlState};

/// The error [`PgManager`](crate::PgManager) reports to the pool: a
/// [`tokio_postgres::Error`] whose `Display` includes its causes.
///
/// The driver's own `Display` stops at the category ("error connecting to
/// server", "db error") and keeps the reason in
/// [`source`](std::error::Error::source); the pool's errors and logs show
/// `Display` only. This one reads
/// `error connecting to server: Connection refused (os error 111)` or
/// `db error: FATAL: role "nosuchuser" does not exist`.
pub struct PgError(tokio_postgres::Error);

impl PgError {
    /// The driver's error.
    pub fn driver_error(&self) -> &tokio_postgres::Error {
        &self.0
    }

    /// Gives back the driver's error.
    pub fn into_driver_error(self) -> tokio_postgres::Error {
        self.0
    }

    /// The server's error, when the server sent one.
    pub fn as_db_error(&self) -> Option<&DbError> {
        self.0.as_db_error()
    }

    /// The server's SQLSTATE code, when the server sent an error.
    pub fn code(&self) -> Option<&SqlState> {
        self.0.code()
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self(e)
    }
}

impl From<PgError> for tokio_postgres::Error {
    fn from(e: PgError) -> Self {
        e.0
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

impl fmt::Debug for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl StdError for PgError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn display_includes_the_cause() {
        let port = tidepool_testkit::closed_port();
        let err = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=postgres"),
            tokio_postgres::NoTls,
        )
        .await
        .map(drop)
        .unwrap_err();
        let shown = PgError::from(err).to_string();
        assert!(shown.starts_with("error connecting to server: "), "{shown}");
        assert!(
            shown.to_lowercase().contains("connection refused"),
            "{shown}"
        );
    }
}
