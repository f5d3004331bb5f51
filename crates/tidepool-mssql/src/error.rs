//! [`MssqlError`]: what went wrong opening, checking or resetting a
//! connection.

use std::error::Error as StdError;
use std::fmt;
use std::io;

/// SQL Server error numbers that another login attempt cannot fix.
const LOGIN_FAILURES: [u32; 5] = [
    18456, // Login failed for user
    18470, // Login failed: the account is disabled
    18486, // Login failed: the account is locked out
    18488, // Login failed: the password must be changed
    4060,  // Cannot open the database requested by the login
];

/// The error [`MssqlManager`](crate::MssqlManager) reports to the pool.
///
/// Messages name the server address where it helps and never contain the
/// password (the server's own login errors name the login, not the
/// password).
#[derive(Debug)]
#[non_exhaustive]
pub enum MssqlError {
    /// The TCP connection to the server could not be opened (nothing
    /// listens there, a firewall, an unknown host).
    Connect {
        /// The `host:port` tried.
        addr: String,
        /// Why it failed.
        source: io::Error,
    },
    /// The driver failed: TLS, the login, a query, the reset.
    Driver(tiberius::error::Error),
    /// Reading a new session's initial settings returned no row.
    NoInitialState,
}

impl MssqlError {
    /// The SQL Server error number, when the server sent an error.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Driver(e) => e.code(),
            _ => None,
        }
    }

    /// Whether the server refused the login itself (wrong login or
    /// password, a disabled or locked account, a database it may not open):
    /// retrying cannot help.
    pub fn is_login_failure(&self) -> bool {
        self.code().is_some_and(|c| LOGIN_FAILURES.contains(&c))
    }

    /// The driver's error, if that is what this is.
    pub fn driver_error(&self) -> Option<&tiberius::error::Error> {
        match self {
            Self::Driver(e) => Some(e),
            _ => None,
        }
    }
}

impl From<tiberius::error::Error> for MssqlError {
    fn from(e: tiberius::error::Error) -> Self {
        Self::Driver(e)
    }
}

impl fmt::Display for MssqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect { addr, source } => {
                write!(f, "could not connect to SQL Server at {addr}: {source}")
            }
            Self::Driver(e) => write!(f, "SQL Server: {e}"),
            Self::NoInitialState => f.write_str(
                "SQL Server: reading the new session's settings returned no row \
                 (sys.dm_exec_sessions has no row for @@SPID)",
            ),
        }
    }
}

impl StdError for MssqlError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Connect { source, .. } => Some(source),
            Self::Driver(e) => Some(e),
            Self::NoInitialState => None,
        }
    }
}
