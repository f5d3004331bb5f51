//! The config resource: `GET /api/v1/config`, the effective configuration
//! with every secret redacted.

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use crate::auth::Admin;
use crate::error::{MASK, Redactor};
use crate::state::AppState;

/// Keys whose values are always masked, whatever they hold.
const SECRET_KEYS: &[&str] = &["password", "token", "tokens", "secret", "admin_tokens"];

/// Masks secret-named keys and passes every string through the redactor.
pub(crate) fn redact(value: &mut Value, redactor: &Redactor) {
    match value {
        Value::String(s) => *s = redactor.clean(s),
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, redactor)),
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                    *v = match v {
                        Value::Array(a) => Value::Array(a.iter().map(|_| json!(MASK)).collect()),
                        Value::Null => Value::Null,
                        _ => json!(MASK),
                    };
                } else {
                    redact(v, redactor);
                }
            }
        }
        _ => {}
    }
}

/// `GET /api/v1/config`
pub(crate) async fn show(State(state): State<AppState>, _: Admin) -> Json<Value> {
    let mut doc = if state.inner.config_document.is_null() {
        let s = state.settings();
        let mut pools = Map::new();
        for h in state.registry().handles() {
            pools.insert(
                h.name().to_owned(),
                serde_json::to_value(h.config()).unwrap_or(Value::Null),
            );
        }
        json!({
            "http": {
                "tenants": state.inner.tenants.all().map(|t| json!({
                    "name": t.name,
                    "role": t.role,
                    "tokens": t.tokens.iter().map(|_| MASK).collect::<Vec<_>>(),
                    "pools": t.pools,
                    "quotas": t.quotas,
                })).collect::<Vec<_>>(),
                "monitoring_requires_token": s.monitoring_requires_token,
                "max_body_bytes": s.max_body_bytes,
                "request_timeout_ms": s.request_timeout.as_millis() as u64,
                "statement_timeout_ms": s.statement_timeout.as_millis() as u64,
                "max_rows": s.max_rows,
                "max_result_bytes": s.max_result_bytes,
                "session_ttl_seconds": s.session_ttl.as_secs(),
            },
            "pools": pools,
        })
    } else {
        state.inner.config_document.clone()
    };
    redact(&mut doc, state.redactor());
    Json(doc)
}
