//! The configuration as JSON for `GET /api/v1/config`, with every token and
//! password masked.

use humantime_serde::re::humantime::format_duration;

use super::{Backend, Config, access};

impl Config {
    /// The configuration as JSON for `GET /api/v1/config`, with tokens and
    /// passwords masked.
    pub fn to_redacted_json(&self) -> serde_json::Value {
        let s = &self.server;
        let pools: serde_json::Map<String, serde_json::Value> = self
            .pools
            .iter()
            .map(|(name, p)| {
                let mut v = serde_json::to_value(&p.pool).unwrap_or_default();
                match &p.backend {
                    Backend::Sqlite(cfg) => {
                        v["backend"] = "sqlite".into();
                        v["sqlite"] = serde_json::to_value(cfg).unwrap_or_default();
                    }
                    Backend::Postgres { url, .. } => {
                        v["backend"] = "postgres".into();
                        v["url"] = tidepool_http::mask_url_passwords(url).into();
                    }
                }
                v["gateway"] = p.gateway.as_str().into();
                v["allow_privileged_role"] = p.allow_privileged_role.into();
                (name.clone(), v)
            })
            .collect();
        let d = &self.descriptions;
        let mut doc = serde_json::json!({
            "origin": self.origin,
            "server": {
                "listen": s.listen.to_string(),
                "tokens": s.tokens.iter().map(|_| tidepool_http::MASK).collect::<Vec<_>>(),
                "monitoring_requires_token": s.monitoring_requires_token,
                "max_body_bytes": s.max_body_bytes,
                "request_timeout": format_duration(s.request_timeout).to_string(),
                "statement_timeout": format_duration(s.statement_timeout).to_string(),
                "max_rows": s.max_rows,
                "max_result_bytes": s.max_result_bytes,
                "acquire_timeout": format_duration(s.acquire_timeout).to_string(),
                "session_ttl": format_duration(s.session_ttl).to_string(),
                "schema_ttl": format_duration(s.schema_ttl).to_string(),
                "max_sessions": s.max_sessions,
                "max_transaction_statements": s.max_transaction_statements,
                "resize_ceiling": s.resize_ceiling,
                "health_cache": format_duration(s.health_cache).to_string(),
                "stream_interval": format_duration(s.stream_interval).to_string(),
                "stream_buffer": s.stream_buffer,
                "max_streams": s.max_streams,
                "idle_pool_removal": format_duration(s.idle_pool_removal).to_string(),
                "shutdown_timeout": format_duration(s.shutdown_timeout).to_string(),
            },
            "tenants": self.tenants.iter().map(access::tenant_json).collect::<Vec<_>>(),
            "descriptions": {
                "enabled": d.enabled,
                "gateway": d.mode.as_str(),
                "allow": d.allow,
                "pool": d.pool,
            },
            "pools": pools,
        });
        self.listener.json_into(&mut doc["server"]);
        doc
    }
}
