//! The authorizer every SQLite gateway statement is prepared under.
//!
//! # Implementation notes
//! SQLite asks the authorizer about each action a statement would take while
//! it compiles the statement, so what is refused never runs: the decision
//! rests on what SQLite parsed, not on the SQL text. Refused in every mode:
//! `ATTACH`/`DETACH` (files the operator did not name), transaction control
//! and savepoints (the gateway owns the transaction), TEMP objects (they
//! would outlive the request on the pooled connection), virtual tables,
//! `load_extension`, writes to raw pages (`sqlite_dbpage`), and every
//! PRAGMA except a short list that only reads (the table-valued
//! `pragma_*` functions ask the same question). `VACUUM` (and `VACUUM INTO`)
//! cannot run inside the request's transaction, so SQLite refuses it too.
//! In [`GatewayMode::ReadOnly`] every write and schema change is refused as
//! well. The first refusal's reason is kept so the client hears what was
//! refused.

use std::sync::{Arc, Mutex, PoisonError};

use tidepool_sqlite::rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use super::GatewayMode;

/// PRAGMAs that only read, and may be asked without a value.
const READ_PRAGMAS: &[&str] = &[
    "application_id",
    "collation_list",
    "compile_options",
    "data_version",
    "encoding",
    "foreign_keys",
    "freelist_count",
    "function_list",
    "module_list",
    "page_count",
    "page_size",
    "pragma_list",
    "query_only",
    "schema_version",
    "table_list",
    "user_version",
];

/// PRAGMAs that only read and take a table or index name as argument.
const READ_PRAGMAS_WITH_ARGUMENT: &[&str] = &[
    "foreign_key_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "table_info",
    "table_xinfo",
];

/// Functions no gateway statement may call.
const DENIED_FUNCTIONS: &[&str] = &["load_extension", "fts3_tokenizer"];

/// Where the reason for the last refusal is kept.
pub(super) type Refusal = Arc<Mutex<Option<String>>>;

/// The authorizer for `mode`; it records why it refused in `refusal`.
pub(super) fn authorizer(
    mode: GatewayMode,
    refusal: Refusal,
) -> impl for<'r> FnMut(AuthContext<'r>) -> Authorization + Send + 'static {
    move |ctx: AuthContext<'_>| match decide(mode, &ctx.action) {
        Ok(()) => Authorization::Allow,
        Err(why) => {
            let mut slot = refusal.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(why);
            }
            Authorization::Deny
        }
    }
}

fn decide(mode: GatewayMode, action: &AuthAction<'_>) -> Result<(), String> {
    let read_only = mode != GatewayMode::ReadWrite;
    let write = |what: &str| {
        if read_only {
            Err(format!("{what}: this pool's gateway is read-only"))
        } else {
            Ok(())
        }
    };
    match *action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => Ok(()),
        AuthAction::Function { function_name } => {
            if DENIED_FUNCTIONS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(function_name))
            {
                Err(format!("the function {function_name}()"))
            } else {
                Ok(())
            }
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            let reads = match pragma_value {
                None => READ_PRAGMAS.contains(&name.as_str())
                    || READ_PRAGMAS_WITH_ARGUMENT.contains(&name.as_str()),
                Some(_) => READ_PRAGMAS_WITH_ARGUMENT.contains(&name.as_str()),
            };
            if reads {
                Ok(())
            } else {
                Err(format!(
                    "PRAGMA {pragma_name}{}",
                    if pragma_value.is_some() {
                        " with a value"
                    } else {
                        ""
                    }
                ))
            }
        }
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => {
            Err("ATTACH and DETACH".to_owned())
        }
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Err(
            "transaction control: each request is a transaction of its own; send several statements to /transaction"
                .to_owned(),
        ),
        AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::DropTempIndex { .. }
        | AuthAction::DropTempTable { .. }
        | AuthAction::DropTempTrigger { .. }
        | AuthAction::DropTempView { .. } => {
            Err("TEMP objects (they would outlive the request)".to_owned())
        }
        AuthAction::CreateVtable { .. } | AuthAction::DropVtable { .. } => {
            Err("virtual tables".to_owned())
        }
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. } => {
            // SQLite guards its schema table itself (DDL writes it, and
            // must); raw pages are never for a gateway.
            if table_name.eq_ignore_ascii_case("sqlite_dbpage") {
                Err(format!("writing to {table_name}"))
            } else {
                write("writing")
            }
        }
        AuthAction::CreateIndex { .. }
        | AuthAction::CreateTable { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::CreateView { .. }
        | AuthAction::DropIndex { .. }
        | AuthAction::DropTable { .. }
        | AuthAction::DropTrigger { .. }
        | AuthAction::DropView { .. }
        | AuthAction::AlterTable { .. }
        | AuthAction::Reindex { .. }
        | AuthAction::Analyze { .. } => write("changing the schema"),
        _ => Err("this kind of statement".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pass_and_state_changes_do_not() {
        let ro = GatewayMode::ReadOnly;
        assert!(decide(ro, &AuthAction::Select).is_ok());
        let pragma = |name, value| AuthAction::Pragma {
            pragma_name: name,
            pragma_value: value,
        };
        assert!(decide(ro, &pragma("foreign_keys", None)).is_ok());
        assert!(decide(ro, &pragma("table_info", Some("t"))).is_ok());
        assert!(decide(ro, &pragma("foreign_keys", Some("OFF"))).is_err());
        assert!(decide(ro, &pragma("database_list", None)).is_err());
        assert!(decide(ro, &pragma("wal_checkpoint", None)).is_err());
        let insert = AuthAction::Insert { table_name: "t" };
        assert!(decide(ro, &insert).is_err());
        assert!(decide(GatewayMode::ReadWrite, &insert).is_ok());
        let pages = AuthAction::Update {
            table_name: "sqlite_dbpage",
            column_name: "data",
        };
        assert!(decide(GatewayMode::ReadWrite, &pages).is_err());
        let attach = AuthAction::Attach { filename: "x" };
        assert!(decide(GatewayMode::ReadWrite, &attach).is_err());
        let f = AuthAction::Function {
            function_name: "LOAD_EXTENSION",
        };
        assert!(decide(GatewayMode::ReadWrite, &f).is_err());
    }
}
