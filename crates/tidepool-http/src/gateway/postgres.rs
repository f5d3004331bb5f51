//! [`PgGateway`]: the [`Gateway`] over a [`tidepool_postgres::PgPool`].
//!
//! # Implementation notes
//! The statement is prepared so that its parameter and column types are
//! known: JSON parameters are converted to the type the server inferred for
//! each `$n`, and each column is read by its type into JSON (numbers,
//! booleans, text, json/jsonb, uuid, bytea as `\x..` hex, numeric and
//! timestamps as text; any other type as its text form when it is UTF-8).
//! Rows are read through a portal, batch by batch, within the row and byte
//! limits ([`postgres_rows`](super::postgres_rows)); the rest of a result
//! cut short is never read. A connection is taken from the pool within the
//! pool's own `acquire_timeout`; if its session turns out to be gone before
//! the request's transaction began (the server ended it while it was idle),
//! the request is tried once more on another connection, since nothing of
//! it ran.
//!
//! Statements are prepared for the request and closed after it, never
//! cached on the connection: a cached statement's text would be readable by
//! the next tenant in `pg_prepared_statements`. How a request begins, ends
//! and resets its connection, and how a connection cut short (a timeout, a
//! dropped request) is cancelled and closed while it keeps its pool slot,
//! is in [`postgres_unit`](super::postgres_unit).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tidepool_postgres::{PgConnection, PgPool};

use super::budget::Budget;
use super::postgres_rows::{run_statement, session_lost, sql_error};
use super::postgres_unit::{
    PRIVILEGED_ROLES, RESET_SQL, ROLE_CHECK_SQL, UnitGuard, marker_sql, reset_clean, single_text,
    text_at,
};
use super::{
    BoxFuture, ColumnInfo, Gateway, GatewayError, GatewayMode, QueryLimits, QueryOutput, Statement,
    TableInfo, TransactionError, pool_error,
};

/// The gateway for a PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct PgGateway {
    pool: PgPool,
    mode: GatewayMode,
    allow_privileged_role: bool,
    /// The role check's verdict once made: `Some(reason)` when refused.
    verdict: Arc<tokio::sync::OnceCell<Option<String>>>,
}

/// What [`PgGateway::check_role`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCheck {
    /// The role the pool logs in as.
    pub role: String,
    /// What reaches outside the database: `superuser` and the
    /// [`PRIVILEGED_ROLES`] it is a member of. Empty for a plain role.
    pub privileges: Vec<String>,
    /// Why the gateway refuses to serve, when it does.
    pub refusal: Option<String>,
}

impl PgGateway {
    /// A read-only gateway running its statements on `pool`, serving only
    /// if the pool's role is not privileged (see
    /// [`allow_privileged_role`](Self::allow_privileged_role)).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            mode: GatewayMode::ReadOnly,
            allow_privileged_role: false,
            verdict: Arc::default(),
        }
    }

    /// Sets what sessions may do. Default: [`GatewayMode::ReadOnly`].
    #[must_use]
    pub fn mode(mut self, mode: GatewayMode) -> Self {
        self.mode = mode;
        self
    }

    /// Serves even when the pool's role is a superuser or a member of one
    /// of [`PRIVILEGED_ROLES`] (whose statements could read or write the
    /// server's files, run programs on it, or end other sessions). Default:
    /// `false`.
    #[must_use]
    pub fn allow_privileged_role(mut self, allow: bool) -> Self {
        self.allow_privileged_role = allow;
        self
    }

    /// Checks the pool's role now (getting a connection within `within`)
    /// and remembers the verdict; later calls return what was found. Each
    /// request checks first if nobody has yet.
    ///
    /// # Errors
    /// When no connection could be had or the check failed to run; nothing
    /// is remembered then.
    pub async fn check_role(&self, within: Duration) -> Result<RoleCheck, GatewayError> {
        let conn = self
            .pool
            .get_timeout(within)
            .await
            .map_err(|e| pool_error(&e))?;
        let found = self.read_role(&conn).await?;
        let _ = self.verdict.set(found.refusal.clone());
        Ok(found)
    }

    async fn read_role(&self, conn: &PgConnection) -> Result<RoleCheck, GatewayError> {
        let wanted: Vec<&str> = PRIVILEGED_ROLES.to_vec();
        let row = conn
            .query_one(ROLE_CHECK_SQL, &[&wanted])
            .await
            .map_err(|e| sql_error(&e))?;
        let role: String = row.try_get(0).map_err(|e| sql_error(&e))?;
        let superuser: bool = row.try_get(1).map_err(|e| sql_error(&e))?;
        let members: Vec<String> = row.try_get(2).map_err(|e| sql_error(&e))?;
        let privileges: Vec<String> = superuser
            .then(|| "superuser".to_owned())
            .into_iter()
            .chain(members)
            .collect();
        let refusal = (!privileges.is_empty() && !self.allow_privileged_role).then(|| {
            format!(
                "the role `{role}` has privileges beyond its database ({}): set allow_privileged_role = true on the pool to serve it anyway",
                privileges.join(", ")
            )
        });
        Ok(RoleCheck {
            role,
            privileges,
            refusal,
        })
    }

    /// The verdict, made on `conn` if nobody made it yet.
    async fn verify(&self, conn: &PgConnection) -> Result<(), GatewayError> {
        let verdict = self
            .verdict
            .get_or_try_init(|| async {
                let found = self.read_role(conn).await?;
                if let Some(why) = &found.refusal {
                    tracing::error!(pool = %self.pool.name(), "query gateway refused: {why}");
                }
                Ok::<_, GatewayError>(found.refusal)
            })
            .await?;
        match verdict {
            Some(_) => Err(refused(self.pool.name())),
            None => Ok(()),
        }
    }
}

fn refused(pool: &str) -> GatewayError {
    GatewayError::NotAuthorized(format!(
        "the query gateway of pool `{pool}` is disabled by the server's checks; see its log"
    ))
}

const SCHEMA_SQL: &str = "SELECT c.table_schema::text, c.table_name::text, \
       CASE t.table_type WHEN 'VIEW' THEN 'view' ELSE 'table' END, \
       c.column_name::text, c.data_type::text, c.is_nullable = 'YES', \
       EXISTS (SELECT 1 FROM information_schema.table_constraints tc \
               JOIN information_schema.key_column_usage k \
                 ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema \
               WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = c.table_schema \
                 AND tc.table_name = c.table_name AND k.column_name = c.column_name) \
     FROM information_schema.columns c \
     JOIN information_schema.tables t \
       ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
     WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema') \
       AND c.table_schema NOT LIKE 'pg_toast%' \
     ORDER BY 1, 2, c.ordinal_position";

/// How a unit's work ended.
enum Ended {
    /// The session was gone before the transaction began: nothing ran.
    Dead(GatewayError),
    /// The unit's bookkeeping failed; the session's state is unknown.
    Failed(TransactionError),
    /// The unit ran: its outputs, the statement that failed (if one did),
    /// and whether the session came out clean.
    Done {
        outputs: Vec<QueryOutput>,
        failed: Option<TransactionError>,
        clean: bool,
    },
}

/// Runs `statements` as one unit on `client` (see the module notes of
/// [`postgres_unit`](super::postgres_unit)).
async fn run_unit(
    client: &mut tokio_postgres::Client,
    mode: GatewayMode,
    statements: &[(&str, &[Value])],
    limits: &QueryLimits,
    pool: &str,
) -> Ended {
    let at = |index: usize| move |error: GatewayError| TransactionError { index, error };
    let last = statements.len().saturating_sub(1);
    // Read-write is the session's default access mode, as `BEGIN` has it.
    let mut begin = client.build_transaction();
    if mode != GatewayMode::ReadWrite {
        begin = begin.read_only(true);
    }
    let txn = match begin.start().await {
        Ok(txn) => txn,
        Err(e) if session_lost(&e) => return Ended::Dead(sql_error(&e)),
        Err(e) => return Ended::Failed(at(0)(sql_error(&e))),
    };
    let begun = match txn.simple_query(&marker_sql()).await {
        Ok(begun) => begun,
        Err(e) => return Ended::Failed(at(0)(sql_error(&e))),
    };
    let marker = single_text(&begun);
    let driver_before = text_at(&begun, 1).and_then(|t| t.parse::<u64>().ok());
    let mut outputs = Vec::with_capacity(statements.len());
    let mut failed = None;
    let mut budget = Budget::new(limits);
    for (index, (sql, params)) in statements.iter().enumerate() {
        match run_statement(&txn, sql, params, &mut budget).await {
            Ok(out) => outputs.push(out),
            Err(error) => {
                failed = Some(TransactionError { index, error });
                break;
            }
        }
        if index < last {
            let now = match txn
                .simple_query("SELECT transaction_timestamp()::text")
                .await
            {
                Ok(now) => now,
                Err(e) => return Ended::Failed(at(index)(sql_error(&e))),
            };
            if single_text(&now) != marker {
                failed = Some(at(index)(GatewayError::NotAuthorized(format!(
                    "statement {} ended the request's transaction; each request is one transaction, so leave out transaction control",
                    index + 1
                ))));
                break;
            }
        }
    }
    let commit = failed.is_none() && mode == GatewayMode::ReadWrite;
    let ended = if commit {
        txn.commit().await
    } else {
        txn.rollback().await
    };
    let mut clean = true;
    if let Err(e) = ended {
        clean = false;
        // A statement that lost the session said so already.
        failed.get_or_insert(at(last)(sql_error(&e)));
    }
    if clean {
        match client.simple_query(RESET_SQL).await {
            Ok(reply) => clean = reset_clean(&reply, driver_before),
            Err(e) => {
                tracing::warn!(pool = %pool, error = %e, "resetting a gateway connection failed; it is closed");
                clean = false;
            }
        }
    }
    Ended::Done {
        outputs,
        failed,
        clean,
    }
}

impl PgGateway {
    /// Runs `statements` as one unit (see the module notes); the outputs,
    /// or the failing statement and its error.
    async fn unit(
        &self,
        mode: GatewayMode,
        statements: &[(&str, &[Value])],
        limits: QueryLimits,
    ) -> Result<Vec<QueryOutput>, TransactionError> {
        let at = |index: usize| move |error: GatewayError| TransactionError { index, error };
        let last = statements.len().saturating_sub(1);
        let mut tries = 0;
        loop {
            tries += 1;
            let conn = self.pool.get().await.map_err(|e| at(0)(pool_error(&e)))?;
            let mut guard = UnitGuard::new(conn);
            if let Err(e) = self.verify(guard.conn()).await {
                match e {
                    // A refusal: the connection itself is fine.
                    GatewayError::NotAuthorized(_) => guard.finish(),
                    _ => guard.settled(),
                }
                return Err(at(0)(e));
            }
            let work = run_unit(
                guard.client_mut(),
                mode,
                statements,
                &limits,
                self.pool.name(),
            );
            // On timeout the guard cancels the statement and closes the
            // session, holding its slot until it is gone.
            let ended = tokio::time::timeout(limits.statement_timeout, work)
                .await
                .map_err(|_| at(last)(GatewayError::Timeout(limits.statement_timeout)))?;
            guard.settled();
            match ended {
                Ended::Dead(e) if tries == 1 => {
                    tracing::info!(pool = %self.pool.name(), error = %e, "a pooled session was gone before its request began; trying another");
                }
                Ended::Dead(e) => return Err(at(0)(e)),
                Ended::Failed(e) => return Err(e),
                Ended::Done {
                    outputs,
                    failed,
                    clean,
                } => {
                    if clean && !guard.conn().is_closed() {
                        guard.finish();
                    }
                    return match failed {
                        Some(e) => Err(e),
                        None => Ok(outputs),
                    };
                }
            }
        }
    }
}

impl Gateway for PgGateway {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn mode(&self) -> GatewayMode {
        self.mode
    }

    fn refusal(&self) -> Option<String> {
        self.verdict.get().cloned().flatten()
    }

    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Value],
        limits: QueryLimits,
    ) -> BoxFuture<'a, Result<QueryOutput, GatewayError>> {
        Box::pin(async move {
            self.unit(self.mode, &[(sql, params)], limits)
                .await
                .map(|mut outs| outs.remove(0))
                .map_err(|e| e.error)
        })
    }

    fn transaction<'a>(
        &'a self,
        statements: &'a [Statement],
        limits: QueryLimits,
    ) -> BoxFuture<'a, Result<Vec<QueryOutput>, TransactionError>> {
        Box::pin(async move {
            let list: Vec<(&str, &[Value])> = statements
                .iter()
                .map(|s| (s.sql.as_str(), s.params.as_slice()))
                .collect();
            self.unit(self.mode, &list, limits).await
        })
    }

    fn schema(&self, limits: QueryLimits) -> BoxFuture<'_, Result<Vec<TableInfo>, GatewayError>> {
        Box::pin(async move {
            let limits = QueryLimits {
                max_rows: usize::MAX,
                max_result_bytes: usize::MAX,
                ..limits
            };
            let out = self
                .unit(GatewayMode::ReadOnly, &[(SCHEMA_SQL, &[])], limits)
                .await
                .map(|mut outs| outs.remove(0))
                .map_err(|e| e.error)?;
            let mut tables: Vec<TableInfo> = Vec::new();
            for row in out.rows {
                let text = |i: usize| row[i].as_str().unwrap_or_default().to_owned();
                let column = ColumnInfo {
                    name: text(3),
                    data_type: text(4),
                    nullable: row[5].as_bool().unwrap_or(true),
                    primary_key: row[6].as_bool().unwrap_or(false),
                };
                let (schema, name) = (text(0), text(1));
                match tables.last_mut() {
                    Some(t) if t.schema == schema && t.name == name => t.columns.push(column),
                    _ => tables.push(TableInfo {
                        schema,
                        name,
                        kind: text(2),
                        columns: vec![column],
                    }),
                }
            }
            Ok(tables)
        })
    }
}
