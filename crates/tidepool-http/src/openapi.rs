//! The OpenAPI 3.1 document, served at `GET /api/v1/openapi.json`, generated
//! from the route table (paths, methods, security, bodies, statuses) and the
//! schemas below.

use axum::Json;
use serde_json::{Map, Value, json};

use crate::routes::{Access, ROUTES};

fn schema_ref(name: &str) -> Value {
    if name == "Object" {
        json!({ "type": "object" })
    } else {
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }
}

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad request: malformed or invalid input, SQL error",
        401 => "Missing or invalid bearer token, or unknown/expired session",
        403 => "Not allowed for this tenant's role, pool or connection, or by the gateway",
        404 => "Unknown pool",
        408 => "Statement or request timed out",
        413 => "Request body too large",
        415 => "Body is not application/json",
        422 => "Body has wrong types or missing fields",
        429 => "Over a quota or the rate limit (Retry-After says when to retry)",
        503 => "Database unavailable, or no stream can be opened now",
        _ => "Response",
    }
}

fn schemas() -> Value {
    let num = json!({ "type": "number" });
    let int = json!({ "type": "integer", "minimum": 0 });
    let string = json!({ "type": "string" });
    let obj = json!({ "type": "object" });
    json!({
        "Error": {
            "type": "object",
            "required": ["error", "detail"],
            "properties": { "error": string, "detail": string }
        },
        "Live": {
            "type": "object",
            "properties": { "status": string, "version": string }
        },
        "DbHealth": {
            "type": "object",
            "properties": {
                "status": { "enum": ["ok", "degraded", "failing"] },
                "failing": { "type": "array", "items": string },
                "busy": { "type": "array", "items": string },
                "pools": { "type": "object", "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "ok": { "type": "boolean" },
                        "state": { "enum": ["ok", "busy", "down"] },
                        "reason": string,
                        "error": string
                    }
                }},
                "error": string, "detail": string, "age_ms": { "type": "integer" }
            }
        },
        "HealthStatus": { "enum": ["healthy", "degraded", "unhealthy"] },
        "Stats": {
            "type": "object",
            "description": "A pool's statistics snapshot; latencies in milliseconds.",
            "properties": {
                "name": string, "gauges": obj, "counters": obj, "acquire": obj,
                "hold": obj, "create": obj, "derived": obj
            }
        },
        "PoolView": {
            "allOf": [{ "$ref": "#/components/schemas/Stats" }, {
                "type": "object",
                "properties": {
                    "status": { "$ref": "#/components/schemas/HealthStatus" },
                    "backend": { "type": ["string", "null"] }
                }
            }]
        },
        "PoolList": {
            "type": "object",
            "properties": {
                "count": int,
                "pools": { "type": "array", "items": { "$ref": "#/components/schemas/PoolView" } }
            }
        },
        "Health": {
            "type": "object",
            "properties": {
                "status": { "$ref": "#/components/schemas/HealthStatus" },
                "reasons": { "type": "array", "items": string },
                "warnings": { "type": "array", "items": string },
                "utilization": num, "recent_errors": int
            }
        },
        "PoolDetail": {
            "allOf": [{ "$ref": "#/components/schemas/PoolView" }, {
                "type": "object",
                "properties": { "health": { "$ref": "#/components/schemas/Health" } }
            }]
        },
        "HealthReport": {
            "type": "object",
            "properties": {
                "status": { "$ref": "#/components/schemas/HealthStatus" },
                "pools": { "type": "array", "items": { "allOf": [
                    { "$ref": "#/components/schemas/Health" },
                    { "type": "object", "properties": { "name": string } }
                ]}}
            }
        },
        "Aggregate": {
            "type": "object",
            "properties": {
                "pools": int, "connections": int, "active": int, "idle": int, "waiting": int,
                "capacity": int, "utilization": num, "gets": int, "created": int,
                "reused": int, "closed": int, "errors": int, "timeouts": int, "leaks": int,
                "reuse_ratio": { "type": ["number", "null"] }
            }
        },
        "Advice": {
            "type": "object",
            "properties": {
                "pool": string,
                "recommendations": { "type": "array", "items": {
                    "type": "object",
                    "properties": { "kind": string, "message": string, "suggested": { "type": ["integer", "null"] } }
                }},
                "sizing": obj
            }
        },
        "Action": {
            "type": "object",
            "properties": { "pool": string, "action": string, "max_size": int }
        },
        "EvictedAll": {
            "type": "object",
            "properties": { "evicted": { "type": "array", "items": string } }
        },
        "Resize": {
            "type": "object",
            "required": ["max_size"],
            "additionalProperties": false,
            "properties": { "max_size": { "type": "integer", "minimum": 1 } }
        },
        "CreateSession": {
            "description": "Either `pool` (a configured pool the tenant is granted), or a connection description when the server allows them: `backend` and `url`, or for postgres `host`, `port`, `database`, `username`, `password`. A description must match the server's allow-list.",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "pool": string,
                "backend": { "enum": ["sqlite", "postgres"] },
                "url": { "type": "string", "description": "postgres://user:pass@host:port/db, or a SQLite file path under an allowed directory" },
                "host": string,
                "port": { "type": "integer", "minimum": 1, "maximum": 65535 },
                "database": string,
                "username": string,
                "password": string
            }
        },
        "SessionCreated": {
            "type": "object",
            "properties": {
                "session_id": { "type": "string", "format": "uuid" },
                "expires_at": { "type": "string", "format": "date-time" },
                "pool": string, "backend": string,
                "mode": { "enum": ["read_only", "read_write"] }
            }
        },
        "Schema": {
            "type": "object",
            "properties": {
                "session_id": { "type": "string", "format": "uuid" },
                "pool": string,
                "cached": { "type": "boolean" },
                "tables": { "type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "schema": string, "name": string, "kind": string,
                        "columns": { "type": "array", "items": {
                            "type": "object",
                            "properties": {
                                "name": string, "type": string,
                                "nullable": { "type": "boolean" }, "primary_key": { "type": "boolean" }
                            }
                        }}
                    }
                }}
            }
        },
        "QueryRequest": {
            "type": "object",
            "required": ["sql"],
            "additionalProperties": false,
            "properties": {
                "sql": string,
                "params": { "type": "array", "items": {}, "description": "Positional parameters ($1 / ?1)" }
            }
        },
        "QueryResult": {
            "type": "object",
            "properties": {
                "columns": { "type": "array", "items": string },
                "rows": { "type": "array", "items": { "type": "array", "items": {} } },
                "row_count": int,
                "truncated": { "type": "boolean" },
                "truncated_by": { "enum": ["max_rows", "max_result_bytes"], "description": "Which limit cut the result short (present only when it was)" },
                "rows_affected": { "type": ["integer", "null"] },
                "elapsed_ms": num
            }
        },
        "TransactionRequest": {
            "type": "object",
            "required": ["statements"],
            "additionalProperties": false,
            "properties": {
                "statements": {
                    "type": "array",
                    "minItems": 1,
                    "description": "Run in order in one transaction; each is {sql, params} or [sql, params]",
                    "items": { "oneOf": [
                        { "$ref": "#/components/schemas/QueryRequest" },
                        { "type": "array", "prefixItems": [string, { "type": "array", "items": {} }], "minItems": 2, "maxItems": 2 }
                    ]}
                }
            }
        },
        "TransactionResult": {
            "type": "object",
            "properties": {
                "committed": { "type": "boolean", "description": "true on a read_write pool; a read_only pool rolls back" },
                "results": { "type": "array", "items": { "$ref": "#/components/schemas/QueryResult" } },
                "elapsed_ms": num
            }
        },
        "SessionStats": {
            "type": "object",
            "properties": {
                "active": int, "by_pool": { "type": "object", "additionalProperties": int },
                "created": int, "expired": int, "deleted": int, "queries": int,
                "query_errors": int, "ttl_seconds": int
            }
        }
    })
}

/// The OpenAPI document for every route of [`router`](crate::router).
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut op = Map::new();
        op.insert("summary".into(), json!(r.summary));
        op.insert(
            "operationId".into(),
            json!(format!(
                "{}{}",
                r.method,
                r.path.replace(['/', '{', '}', '-', '.'], "_")
            )),
        );
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|p| json!({ "name": p, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some(body) = r.request {
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": schema_ref(body) } } }),
            );
        }
        let mut responses = Map::new();
        let (code, body) = r.success;
        let content = match (body, r.path) {
            (Some(s), _) => json!({ "application/json": { "schema": schema_ref(s) } }),
            (None, "/metrics") => {
                json!({ "application/openmetrics-text": { "schema": { "type": "string" } } })
            }
            (None, "/") => json!({ "text/html": { "schema": { "type": "string" } } }),
            (None, "/api/v1/stream") => {
                json!({ "text/event-stream": { "schema": { "type": "string" } } })
            }
            (None, _) => Value::Null,
        };
        let mut ok = json!({ "description": status_text(code) });
        if !content.is_null() {
            ok["content"] = content;
        }
        responses.insert(code.to_string(), ok);
        for e in r.errors {
            responses.insert(
                e.to_string(),
                json!({
                    "description": status_text(*e),
                    "content": { "application/json": { "schema": schema_ref("Error") } }
                }),
            );
        }
        op.insert("responses".into(), Value::Object(responses));
        match r.access {
            Access::Open => {
                op.insert("security".into(), json!([]));
            }
            Access::Monitor => {
                op.insert("security".into(), json!([{}, { "bearer": [] }]));
                op.insert(
                    "description".into(),
                    json!(
                        "Needs a bearer token only when the server sets monitoring_requires_token."
                    ),
                );
            }
            Access::Admin | Access::Session | Access::Tenant => {
                op.insert("security".into(), json!([{ "bearer": [] }]));
                let who = match r.access {
                    Access::Admin => "Needs the token of a tenant with the admin role.",
                    Access::Session => "Needs the token of a tenant with the query or admin role.",
                    _ => "Needs the token of any tenant.",
                };
                op.insert("description".into(), json!(who));
            }
        }
        let item = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        item[r.method] = Value::Object(op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tidepool",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Monitoring, administration, Prometheus metrics, sessions and a query gateway for tidepool connection pools. Errors are JSON {error, detail}."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        }
    })
}

/// `GET /api/v1/openapi.json`
pub(crate) async fn serve() -> Json<Value> {
    Json(document())
}
