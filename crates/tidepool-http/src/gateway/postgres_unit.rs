//! How one PostgreSQL gateway request uses its connection, and the check of
//! the pool's role at start.
//!
//! # Implementation notes
//! A request is a unit: `BEGIN` (`BEGIN READ ONLY` for a read-only gateway)
//! and, in the same round trip, `SELECT transaction_timestamp()`. Reading it
//! takes the transaction's snapshot, so a `SET TRANSACTION READ WRITE` sent
//! afterwards is refused by the server; and it marks the transaction: in a
//! request of several statements the mark is read again after each one, and
//! a statement that ended the transaction (`COMMIT`, `ROLLBACK`, `... AND
//! CHAIN`) shows as a different timestamp, so the request stops there
//! before anything runs outside the transaction. The unit ends with
//! `COMMIT` (read-write, success) or `ROLLBACK`, then [`RESET_SQL`]: session
//! settings, the role, cursors, listens, advisory locks, temporary tables and
//! sequence state go back to what a fresh session has. Prepared statements
//! made with SQL `PREPARE` cannot be dropped one by one without knowing
//! them, so a connection that has any is closed instead; so is one that has
//! fewer protocol-level statements than when the request began (a
//! `DEALLOCATE` dropped the driver's own, which it would go on using).
//! Whenever the state
//! is not known — a failed end or reset, a timeout, the request dropped
//! half-way — [`UnitGuard`] marks the connection broken and the pool closes
//! it.

use tidepool::Pooled;
use tidepool_postgres::PgManager;
use tokio_postgres::SimpleQueryMessage;

use super::GatewayMode;

/// The statements that return a connection to a fresh session's state after
/// the request's transaction has ended (`DISCARD ALL` without `DEALLOCATE
/// ALL`, which would drop the driver's own statements), and the count of
/// statements prepared with SQL `PREPARE`, which close the connection.
pub(super) const RESET_SQL: &str = "CLOSE ALL; \
    SET SESSION AUTHORIZATION DEFAULT; \
    RESET ROLE; \
    RESET ALL; \
    UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); \
    DISCARD TEMP; \
    DISCARD SEQUENCES; \
    SELECT (count(*) FILTER (WHERE from_sql))::text, \
           (count(*) FILTER (WHERE NOT from_sql))::text \
    FROM pg_prepared_statements";

/// Counts the driver's prepared statements, at the start of a unit.
const DRIVER_STATEMENTS: &str =
    "(SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql)::text";

/// The predefined roles (besides superuser) that reach outside the
/// database: a gateway on a role that is a member of any of them is refused
/// unless the operator allows it.
pub const PRIVILEGED_ROLES: &[&str] = &[
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
];

/// Asks the server which privileges of the current role reach outside the
/// database: `superuser` (for itself or any role it may `SET ROLE` to) and
/// membership in [`PRIVILEGED_ROLES`].
pub(super) const ROLE_CHECK_SQL: &str = "SELECT current_user::text, \
    EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolsuper \
            AND pg_has_role(current_user, r.oid, 'MEMBER')), \
    ARRAY(SELECT p FROM unnest($1::text[]) p \
          WHERE EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = p) \
            AND pg_has_role(current_user, p, 'MEMBER'))";

/// The statements that open a unit: the transaction, its marker, and the
/// count of the driver's prepared statements.
pub(super) fn begin_sql(mode: GatewayMode) -> String {
    let begin = match mode {
        GatewayMode::ReadWrite => "BEGIN",
        _ => "BEGIN READ ONLY",
    };
    format!("{begin}; SELECT transaction_timestamp()::text, {DRIVER_STATEMENTS}")
}

/// The text of column `i` of the last row of a simple-query reply (the
/// batches here end with the query whose answer counts).
pub(super) fn text_at(messages: &[SimpleQueryMessage], i: usize) -> Option<String> {
    messages.iter().rev().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.try_get(i).ok().flatten().map(str::to_owned),
        _ => None,
    })
}

/// The text of column 0 of the last row of a simple-query reply.
pub(super) fn single_text(messages: &[SimpleQueryMessage]) -> Option<String> {
    text_at(messages, 0)
}

/// Whether the reply of [`RESET_SQL`] leaves the connection reusable: no
/// statement made with SQL `PREPARE`, and none of the driver's dropped
/// since the unit began (`driver_before`).
pub(super) fn reset_clean(reply: &[SimpleQueryMessage], driver_before: Option<u64>) -> bool {
    let count = |i| text_at(reply, i).and_then(|t| t.parse::<u64>().ok());
    match (count(0), count(1), driver_before) {
        (Some(0), Some(now), Some(before)) => now >= before,
        _ => false,
    }
}

/// A pooled connection inside a unit: unless [`finish`](Self::finish) says
/// it came out clean, dropping it marks it broken, so the pool closes it
/// rather than hand out a session whose state is unknown.
pub(super) struct UnitGuard<'a> {
    conn: Option<Pooled<'a, PgManager>>,
    clean: bool,
}

impl<'a> UnitGuard<'a> {
    pub(super) fn new(conn: Pooled<'a, PgManager>) -> Self {
        Self {
            conn: Some(conn),
            clean: false,
        }
    }

    pub(super) fn conn(&self) -> &Pooled<'a, PgManager> {
        self.conn
            .as_ref()
            .expect("the connection is only taken when dropped")
    }

    /// Returns the connection to the pool as reusable.
    pub(super) fn finish(mut self) {
        self.clean = true;
    }
}

impl Drop for UnitGuard<'_> {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take()
            && !self.clean
        {
            conn.mark_broken();
        }
    }
}
