//! The reset between users: what a new session looks like, recorded once,
//! and the batch that brings a returned session back to it.
//!
//! # Implementation notes
//! SQL Server's own reset, `sp_reset_connection`, is requested with the
//! RESETCONNECTION bit of a TDS packet header; tiberius offers no way to set
//! it (and a T-SQL `EXEC sp_reset_connection` is refused by the server). So
//! the reset is a batch, built once per connection from the settings the
//! session had right after login ([`INITIAL_STATE_SQL`]): every value in it
//! is an integer this crate formats, never text from elsewhere.
//!
//! What the batch does, in order:
//! 1. rolls back an open transaction (`@@TRANCOUNT > 0`);
//! 2. fails (so the pool closes the connection) if the session moved to
//!    another database with `USE`: `USE` cannot name a database from a
//!    variable, and closing is the safe answer to a rare case;
//! 3. sets the fourteen `SET` options of `@@OPTIONS` back (`ANSI_NULLS`,
//!    `QUOTED_IDENTIFIER`, `XACT_ABORT`, `NOCOUNT`, `IMPLICIT_TRANSACTIONS`,
//!    ...), then the language (which resets `DATEFORMAT`), `DATEFIRST`,
//!    `LOCK_TIMEOUT`, `TEXTSIZE`, `DEADLOCK_PRIORITY` and the transaction
//!    isolation level;
//! 4. drops the session's local temporary tables (`#name`), found in
//!    `tempdb.sys.tables` and checked with `OBJECT_ID` to belong to this
//!    session.
//!
//! Not reset (the crate README lists them too): global cursors, `CONTEXT_INFO`
//! and `sp_set_session_context` values, application locks held by the
//! session, temporary procedures, and a temporary table whose own name ends
//! in `_` (its name cannot be told from tempdb's padding).

use std::fmt::Write as _;

/// Reads the settings a session starts with. Every column is an `int`.
pub const INITIAL_STATE_SQL: &str = "SELECT CAST(@@OPTIONS AS int), CAST(@@LANGID AS int), \
CAST(@@DATEFIRST AS int), CAST(@@LOCK_TIMEOUT AS int), CAST(@@TEXTSIZE AS int), \
CAST(s.transaction_isolation_level AS int), CAST(s.deadlock_priority AS int), CAST(DB_ID() AS int) \
FROM sys.dm_exec_sessions AS s WHERE s.session_id = @@SPID";

/// The `SET` options in `@@OPTIONS`, by bit (SQL Server's documented
/// order). Bit 1, `DISABLE_DEF_CNST_CHK`, has no effect since SQL Server
/// 2000 and is left alone.
const OPTIONS: [(i32, &str); 14] = [
    (2, "IMPLICIT_TRANSACTIONS"),
    (4, "CURSOR_CLOSE_ON_COMMIT"),
    (8, "ANSI_WARNINGS"),
    (16, "ANSI_PADDING"),
    (32, "ANSI_NULLS"),
    (64, "ARITHABORT"),
    (128, "ARITHIGNORE"),
    (256, "QUOTED_IDENTIFIER"),
    (512, "NOCOUNT"),
    (1024, "ANSI_NULL_DFLT_ON"),
    (2048, "ANSI_NULL_DFLT_OFF"),
    (4096, "CONCAT_NULL_YIELDS_NULL"),
    (8192, "NUMERIC_ROUNDABORT"),
    (16384, "XACT_ABORT"),
];

/// A session's settings right after login, as [`INITIAL_STATE_SQL`] reads
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialState {
    /// `@@OPTIONS`.
    pub options: i32,
    /// `@@LANGID`.
    pub language_id: i32,
    /// `@@DATEFIRST`.
    pub date_first: i32,
    /// `@@LOCK_TIMEOUT` (milliseconds, -1: wait forever).
    pub lock_timeout: i32,
    /// `@@TEXTSIZE`.
    pub text_size: i32,
    /// `sys.dm_exec_sessions.transaction_isolation_level` (0 to 5).
    pub isolation_level: i32,
    /// `sys.dm_exec_sessions.deadlock_priority`.
    pub deadlock_priority: i32,
    /// `DB_ID()`.
    pub database_id: i32,
}

impl InitialState {
    /// The batch that brings a session back to this state (see the module
    /// notes).
    pub fn reset_sql(&self) -> String {
        let mut sql = String::with_capacity(1600);
        sql.push_str("IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION;\n");
        let _ = writeln!(
            sql,
            "IF DB_ID() <> {} THROW 50000, N'tidepool reset: the session changed database with USE; closing it', 1;",
            self.database_id
        );
        // Switch off before on: turning ANSI_NULL_DFLT_ON on turns
        // ANSI_NULL_DFLT_OFF off and the reverse.
        for (bit, name) in OPTIONS {
            if self.options & bit == 0 {
                let _ = writeln!(sql, "SET {name} OFF;");
            }
        }
        for (bit, name) in OPTIONS {
            if self.options & bit != 0 {
                let _ = writeln!(sql, "SET {name} ON;");
            }
        }
        let _ = writeln!(
            sql,
            "DECLARE @tidepool_language sysname = (SELECT name FROM sys.syslanguages WHERE langid = {});\n\
             SET LANGUAGE @tidepool_language;",
            self.language_id
        );
        let _ = writeln!(sql, "SET DATEFIRST {};", self.date_first);
        let _ = writeln!(sql, "SET LOCK_TIMEOUT {};", self.lock_timeout);
        let _ = writeln!(sql, "SET TEXTSIZE {};", self.text_size);
        let _ = writeln!(sql, "SET DEADLOCK_PRIORITY {};", self.deadlock_priority);
        if let Some(level) = isolation_level_name(self.isolation_level) {
            let _ = writeln!(sql, "SET TRANSACTION ISOLATION LEVEL {level};");
        }
        // A local temporary table `#t` is `#t` padded with `_` and a
        // 12-character suffix in tempdb; `OBJECT_ID` resolves `#t` to this
        // session's own, so a table is dropped only if it is ours.
        sql.push_str(
            "DECLARE @tidepool_drop nvarchar(max) = N'';\n\
             SELECT @tidepool_drop += N'DROP TABLE ' + QUOTENAME(b.name) + N';'\n\
             FROM tempdb.sys.tables AS t\n\
             CROSS APPLY (SELECT LEFT(t.name, LEN(t.name) - 12) AS padded) AS p\n\
             CROSS APPLY (SELECT LEFT(p.padded, LEN(p.padded) - PATINDEX(N'%[^_]%', REVERSE(p.padded)) + 1) AS name) AS b\n\
             WHERE t.name LIKE N'#%' AND t.name NOT LIKE N'##%' AND LEN(t.name) > 12\n\
             AND OBJECT_ID(N'tempdb..' + b.name) = t.object_id;\n\
             IF @tidepool_drop <> N'' EXEC sys.sp_executesql @tidepool_drop;",
        );
        sql
    }
}

fn isolation_level_name(level: i32) -> Option<&'static str> {
    match level {
        1 => Some("READ UNCOMMITTED"),
        2 => Some("READ COMMITTED"),
        3 => Some("REPEATABLE READ"),
        4 => Some("SERIALIZABLE"),
        5 => Some("SNAPSHOT"),
        // 0: unspecified; nothing to restore.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(options: i32) -> InitialState {
        InitialState {
            options,
            language_id: 0,
            date_first: 7,
            lock_timeout: -1,
            text_size: 2_147_483_647,
            isolation_level: 2,
            deadlock_priority: 0,
            database_id: 5,
        }
    }

    #[test]
    fn every_option_is_set_back_to_its_initial_value() {
        // ANSI_WARNINGS, ANSI_PADDING, ANSI_NULLS, QUOTED_IDENTIFIER,
        // ANSI_NULL_DFLT_ON, CONCAT_NULL_YIELDS_NULL: a tiberius login.
        let sql = state(8 | 16 | 32 | 256 | 1024 | 4096).reset_sql();
        for on in ["ANSI_NULLS", "QUOTED_IDENTIFIER", "ANSI_NULL_DFLT_ON"] {
            assert!(sql.contains(&format!("SET {on} ON;")), "{sql}");
        }
        for off in [
            "XACT_ABORT",
            "NOCOUNT",
            "IMPLICIT_TRANSACTIONS",
            "ANSI_NULL_DFLT_OFF",
        ] {
            assert!(sql.contains(&format!("SET {off} OFF;")), "{sql}");
        }
        let last_off = sql.rfind(" OFF;").unwrap();
        let first_on = sql.find(" ON;").unwrap();
        assert!(last_off < first_on, "offs come first: {sql}");
    }

    #[test]
    fn the_batch_rolls_back_first_and_restores_the_rest() {
        let sql = state(0).reset_sql();
        assert!(sql.starts_with("IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION;"));
        assert!(sql.contains("IF DB_ID() <> 5 THROW"));
        assert!(sql.contains("SET LOCK_TIMEOUT -1;"));
        assert!(sql.contains("SET DATEFIRST 7;"));
        assert!(sql.contains("SET TRANSACTION ISOLATION LEVEL READ COMMITTED;"));
        assert!(sql.contains("DROP TABLE"));
    }
}
