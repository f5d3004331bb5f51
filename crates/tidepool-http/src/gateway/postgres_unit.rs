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
//! half-way — [`UnitGuard`] closes the connection, keeping its pool slot
//! until the session is really gone (see [`UnitGuard`]'s notes).
//!
//! # Closing a connection with a statement in flight
//! Dropping a driver client whose statement still runs does not end the
//! server's process: the driver waits for the statement's answer before it
//! says goodbye, and a statement that catches the cancel (a PL/pgSQL loop
//! with `EXCEPTION WHEN query_canceled`) keeps running. Were the pool slot
//! freed at once, the pool would open a replacement while the old process
//! lives, and hold more server processes than `max_size`. So a connection
//! whose request did not end cleanly is taken out of service with
//! [`Pooled::retire`]: a background task sends the server a cancel (when a
//! statement may still run), closes the session, waits until the driver's
//! connection task has stopped, and only then frees the slot. A statement
//! that ignores its cancel keeps its slot until it ends (logged after
//! [`LINGER_WARNING`]); after [`CLOSE_GIVE_UP`] the socket is closed and
//! the slot freed regardless.

use std::time::Duration;

use tidepool::Pooled;
use tidepool_postgres::{PgConnection, PgManager};
use tokio_postgres::SimpleQueryMessage;

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

/// The query that follows a unit's `START TRANSACTION`: the transaction's
/// marker, and the count of the driver's prepared statements.
pub(super) fn marker_sql() -> String {
    format!("SELECT transaction_timestamp()::text, {DRIVER_STATEMENTS}")
}

/// How long a cancel request may take to be sent.
const CANCEL_WITHIN: Duration = Duration::from_secs(10);
/// A closing session still running after this is logged.
pub(super) const LINGER_WARNING: Duration = Duration::from_secs(30);
/// A closing session still running after this has its socket closed and
/// its slot freed.
pub(super) const CLOSE_GIVE_UP: Duration = Duration::from_secs(600);

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

/// Where a unit stands, for what [`UnitGuard`] does with its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// A statement may be in flight (the request was cut short).
    Running,
    /// Nothing is in flight, but the session's state is unknown.
    Settled,
    /// The unit ended and left the session clean.
    Clean,
}

/// A pooled connection inside a unit. Unless [`finish`](Self::finish) says
/// it came out clean, dropping it closes the connection while keeping its
/// slot until the session is gone — with a cancel first unless
/// [`settled`](Self::settled) said nothing is in flight (see the module
/// notes).
pub(super) struct UnitGuard<'a> {
    conn: Option<Pooled<'a, PgManager>>,
    stage: Stage,
}

impl<'a> UnitGuard<'a> {
    pub(super) fn new(conn: Pooled<'a, PgManager>) -> Self {
        Self {
            conn: Some(conn),
            stage: Stage::Running,
        }
    }

    fn pooled(&mut self) -> &mut Pooled<'a, PgManager> {
        self.conn
            .as_mut()
            .expect("the connection is only taken when dropped")
    }

    pub(super) fn conn(&self) -> &PgConnection {
        self.conn
            .as_ref()
            .expect("the connection is only taken when dropped")
    }

    /// The driver client, for a driver transaction.
    pub(super) fn client_mut(&mut self) -> &mut tokio_postgres::Client {
        self.pooled()
    }

    /// Nothing is in flight on the connection any more.
    pub(super) fn settled(&mut self) {
        self.stage = Stage::Settled;
    }

    /// Returns the connection to the pool as reusable.
    pub(super) fn finish(mut self) {
        self.stage = Stage::Clean;
    }
}

impl Drop for UnitGuard<'_> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if self.stage == Stage::Clean {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to wait on: the pool closes it at once.
            conn.mark_broken();
            return;
        };
        let manager = conn.pool().manager().clone();
        let pool = conn.pool().name().to_owned();
        let cancel = (self.stage == Stage::Running).then(|| conn.cancel_token());
        let (session, slot) = conn.retire();
        runtime.spawn(async move {
            if let Some(token) = cancel {
                match tokio::time::timeout(CANCEL_WITHIN, manager.cancel(&token)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(pool = %pool, error = %e, "could not cancel a statement cut short");
                    }
                    Err(_) => {
                        tracing::warn!(pool = %pool, "the cancel request of a statement cut short took too long");
                    }
                }
            }
            let closing = session.close();
            tokio::pin!(closing);
            if tokio::time::timeout(LINGER_WARNING, &mut closing).await.is_err() {
                tracing::warn!(
                    pool = %pool,
                    waited_s = LINGER_WARNING.as_secs(),
                    "a statement cut short still runs on the server despite its cancel; its connection keeps its pool slot until it ends"
                );
                if tokio::time::timeout(CLOSE_GIVE_UP - LINGER_WARNING, &mut closing)
                    .await
                    .is_err()
                {
                    tracing::error!(
                        pool = %pool,
                        waited_s = CLOSE_GIVE_UP.as_secs(),
                        "gave up waiting for a cancelled statement to end: its socket is closed and its slot freed, though the server may still run it"
                    );
                }
            }
            drop(slot);
        });
    }
}
