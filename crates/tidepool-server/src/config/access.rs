//! `[[tenants]]` and `[descriptions]`: who may call, and which connections
//! sessions may describe.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Deserialize;
use tidepool::PoolConfig;
use tidepool_http::{AllowEntry, Descriptions, GatewayMode, Quotas, Role, Tenant};
use toml::Value;

use super::{ConfigError, Ctx, PoolSection, ServerSection, typed};

/// One `[[tenants]]` entry as written. Every field is optional here, so
/// that a wrong one is named on its own; `name` and `role` are required
/// afterwards.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TenantSection {
    name: Option<String>,
    role: Option<Role>,
    tokens: Vec<String>,
    token_file: Option<PathBuf>,
    pools: Vec<String>,
    max_sessions: Option<usize>,
    max_concurrent_queries: Option<usize>,
    max_on_demand_pools: Option<usize>,
    requests_per_second: Option<u32>,
    burst: Option<u32>,
}

/// The name of the tenant that `[server] tokens` and `TIDEPOOL_TOKENS` make.
pub const LEGACY_ADMIN: &str = "admin";

/// Parses `[[tenants]]`: names unique, every tenant with a token (inline or
/// from `token_file`, whose content is never quoted), no token shared,
/// granted pools configured.
pub(super) fn tenants(
    value: Option<&Value>,
    server: &ServerSection,
    pools: &BTreeMap<String, PoolSection>,
    ctx: &Ctx<'_>,
) -> Result<Vec<Tenant>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(ctx.err(Some("tenants"), "must be an array of tables: [[tenants]]"));
    };
    let mut names = BTreeSet::new();
    let mut tokens: BTreeSet<String> = server.tokens.iter().cloned().collect();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("tenants[{i}]");
        let Value::Table(table) = item else {
            return Err(ctx.err(Some("tenants"), "must be an array of tables: [[tenants]]"));
        };
        let t: TenantSection = typed(table, &key, ctx)?;
        let (Some(name), Some(role)) = (t.name.clone(), t.role) else {
            return Err(ctx.err(
                Some(&key),
                "a tenant needs `name` and `role` (\"admin\", \"query\" or \"monitor\")",
            ));
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ctx.err(
                Some(&format!("tenants[{i}].name")),
                "tenant names use letters, digits, `_` and `-` only",
            ));
        }
        let key = format!("tenants[{i}] ({name})");
        if !names.insert(name.clone()) || (name == LEGACY_ADMIN && !server.tokens.is_empty()) {
            return Err(ctx.err(
                Some(&format!("{key}.name")),
                "tenant names must be unique (`admin` is taken when [server] tokens are set)",
            ));
        }
        let mut own = t.tokens.clone();
        if let Some(file) = &t.token_file {
            let read = super::token_file::read(file)
                .map_err(|m| ctx.err(Some(&format!("{key}.token_file")), m))?;
            own.extend(read);
        }
        if own.is_empty() {
            return Err(ctx.err(
                Some(&key),
                "a tenant needs `tokens` or a non-empty `token_file`",
            ));
        }
        for token in &own {
            if token.trim().is_empty() {
                return Err(ctx.err(Some(&format!("{key}.tokens")), "tokens must not be empty"));
            }
            if !tokens.insert(token.clone()) {
                return Err(ctx.err(
                    Some(&format!("{key}.tokens")),
                    "a token may identify one tenant only, and this one is used twice",
                ));
            }
        }
        for p in &t.pools {
            if p != "*" && !pools.contains_key(p) {
                return Err(ctx.err(
                    Some(&format!("{key}.pools")),
                    format!("no pool named `{p}` is configured"),
                ));
            }
        }
        let mut quotas = Quotas::default();
        quotas.max_sessions = t.max_sessions.unwrap_or(quotas.max_sessions);
        quotas.max_concurrent_queries = t
            .max_concurrent_queries
            .unwrap_or(quotas.max_concurrent_queries);
        quotas.max_on_demand_pools = t.max_on_demand_pools.unwrap_or(quotas.max_on_demand_pools);
        quotas.requests_per_second = t.requests_per_second.unwrap_or(quotas.requests_per_second);
        quotas.burst = t.burst.unwrap_or(quotas.burst);
        for (field, zero) in [
            ("max_sessions", quotas.max_sessions == 0),
            ("max_concurrent_queries", quotas.max_concurrent_queries == 0),
            ("requests_per_second", quotas.requests_per_second == 0),
            ("burst", quotas.burst == 0),
        ] {
            if zero {
                return Err(ctx.err(Some(&format!("{key}.{field}")), "must be greater than zero"));
            }
        }
        let mut tenant = Tenant::new(name, role).quotas(quotas);
        tenant.tokens = own;
        tenant.pools = t.pools;
        out.push(tenant);
    }
    Ok(out)
}

/// `[descriptions]` without its sub-tables.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DescriptionKeys {
    enabled: bool,
    gateway: GatewayMode,
}

/// Parses `[descriptions]`: off when absent.
pub(super) fn descriptions(
    value: Option<&Value>,
    ctx: &Ctx<'_>,
) -> Result<Descriptions, ConfigError> {
    let mut out = Descriptions::default();
    let Some(value) = value else {
        return Ok(out);
    };
    let Value::Table(table) = value else {
        return Err(ctx.err(Some("descriptions"), "must be a table: [descriptions]"));
    };
    let mut rest = table.clone();
    if let Some(pool) = rest.remove("pool") {
        let Value::Table(pool) = pool else {
            return Err(ctx.err(Some("descriptions.pool"), "must be a table"));
        };
        let cfg: PoolConfig = typed(&pool, "descriptions.pool", ctx)?;
        cfg.validate().map_err(|e| {
            ctx.err(
                Some(&format!("descriptions.pool.{}", e.field())),
                e.message().to_owned(),
            )
        })?;
        out.pool = cfg;
    }
    if let Some(allow) = rest.remove("allow") {
        let Value::Array(entries) = allow else {
            return Err(ctx.err(
                Some("descriptions.allow"),
                "must be an array of tables: [[descriptions.allow]]",
            ));
        };
        for (i, entry) in entries.iter().enumerate() {
            let key = format!("descriptions.allow[{i}]");
            let Value::Table(entry) = entry else {
                return Err(ctx.err(Some(&key), "must be a table"));
            };
            let parsed: AllowEntry = Value::Table(entry.clone())
                .try_into()
                .map_err(|e: toml::de::Error| ctx.err(Some(&key), e.message().trim().to_owned()))?;
            parsed.validate().map_err(|m| ctx.err(Some(&key), m))?;
            out.allow.push(parsed);
        }
    }
    let keys: DescriptionKeys = typed(&rest, "descriptions", ctx)?;
    if keys.gateway == GatewayMode::Off {
        return Err(ctx.err(
            Some("descriptions.gateway"),
            "use `enabled = false` to turn descriptions off",
        ));
    }
    out.enabled = keys.enabled;
    out.mode = keys.gateway;
    if out.enabled && out.allow.is_empty() {
        return Err(ctx.err(
            Some("descriptions.allow"),
            "descriptions are enabled but nothing is allowed: add [[descriptions.allow]] entries",
        ));
    }
    Ok(out)
}

/// A table of the tenant fields, for `GET /api/v1/config` (tokens masked).
pub(super) fn tenant_json(t: &Tenant) -> serde_json::Value {
    serde_json::json!({
        "name": t.name,
        "role": t.role,
        "tokens": t.tokens.iter().map(|_| tidepool_http::MASK).collect::<Vec<_>>(),
        "pools": t.pools,
        "quotas": t.quotas,
    })
}
