//! `--url`: the clients drive a running server's query gateway over HTTP,
//! each with a session of its own on one keep-alive connection pool
//! (reqwest), so the figures are the service's, end to end.
//!
//! The pool's statistics come from the server (`GET /api/v1/pools/{name}`
//! before and after the run): counters as the difference, latency
//! summaries as the server has them since it started.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::exec::Failure;
use super::summary::{PoolCounters, PoolLatency, PoolReport};
use super::target::{PoolGauges, Target};
use super::workload::Request;

/// How long opening or closing a session, or reading the pool, may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// The gateway of one server, with a session per client.
#[derive(Debug)]
pub struct Gateway {
    client: reqwest::Client,
    base: String,
    token: String,
    pool: String,
    sessions: Vec<String>,
}

/// Reads the bearer token: the first line of `path`, trimmed.
///
/// # Errors
/// When the file cannot be read or holds no token (never quoting it).
pub fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--token-file {}: cannot read it: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        return Err(format!(
            "--token-file {}: the file's first line is empty; it must hold the bearer token",
            path.display()
        ));
    }
    Ok(token)
}

fn body_error(v: &Value) -> (String, String) {
    (
        v.get("error")
            .and_then(Value::as_str)
            .unwrap_or("error")
            .to_owned(),
        v.get("detail")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    )
}

impl Gateway {
    /// Opens `clients` sessions on `pool` at `base`.
    ///
    /// # Errors
    /// A message saying what the server answered (or that it could not be
    /// reached), without the token.
    pub async fn open(
        base: &str,
        token: String,
        pool: &str,
        clients: usize,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot make the HTTP client: {e}"))?;
        let mut gw = Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token,
            pool: pool.to_owned(),
            sessions: Vec::with_capacity(clients),
        };
        for _ in 0..clients {
            match gw.open_session().await {
                Ok(id) => gw.sessions.push(id),
                Err(e) => {
                    gw.close().await;
                    return Err(e);
                }
            }
        }
        Ok(gw)
    }

    async fn open_session(&self) -> Result<String, String> {
        let url = format!("{}/api/v1/sessions", self.base);
        let reply = self
            .client
            .post(&url)
            .bearer_auth(&self.token)
            .json(&json!({ "pool": self.pool }))
            .timeout(CONTROL_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("cannot reach the gateway at {}: {e}", self.base))?;
        let status = reply.status();
        let body: Value = reply.json().await.unwrap_or(Value::Null);
        if status.as_u16() == 201 {
            return body
                .get("session_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("{url} answered 201 without a session_id"));
        }
        let (code, detail) = body_error(&body);
        Err(match status.as_u16() {
            401 => {
                format!("the gateway refused the token from --token-file (401 {code}): {detail}")
            }
            404 => format!(
                "the gateway has no pool `{}` (404 {code}): {detail}",
                self.pool
            ),
            s => format!(
                "the gateway refused a session on pool `{}` ({s} {code}): {detail}",
                self.pool
            ),
        })
    }

    /// Closes every session (best effort).
    pub async fn close(&self) {
        for id in &self.sessions {
            let _ = self
                .client
                .delete(format!("{}/api/v1/sessions/{id}", self.base))
                .bearer_auth(&self.token)
                .timeout(CONTROL_TIMEOUT)
                .send()
                .await;
        }
    }

    /// The server's JSON for the pool (statistics), if it answers.
    pub async fn pool_stats(&self) -> Option<Value> {
        self.get_json(&format!("/api/v1/pools/{}", self.pool)).await
    }

    async fn get_json(&self, path: &str) -> Option<Value> {
        let reply = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(CONTROL_TIMEOUT)
            .send()
            .await
            .ok()?;
        if !reply.status().is_success() {
            return None;
        }
        reply.json().await.ok()
    }

    /// The pool's figures over the run, from its statistics before and
    /// after (and its advice, when the token may read it).
    pub async fn pool_report(&self, before: Option<&Value>) -> Option<PoolReport> {
        let after = self.pool_stats().await?;
        let counters = |v: &Value| -> PoolCounters {
            serde_json::from_value(v.get("counters").cloned().unwrap_or(Value::Null))
                .unwrap_or_default()
        };
        let latency = |name: &str| -> PoolLatency {
            serde_json::from_value(after.get(name).cloned().unwrap_or(Value::Null))
                .unwrap_or_default()
        };
        let gauge = |name: &str| {
            after["gauges"][name]
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .unwrap_or(0)
        };
        let start = before.map(counters).unwrap_or_default();
        Some(PoolReport {
            source: format!(
                "the server's pool `{}`: counters over the run, latencies since the server started",
                self.pool
            ),
            max_size: gauge("max_size"),
            min_idle: gauge("min_idle"),
            counters: counters(&after).since(&start),
            acquire_ms: latency("acquire"),
            hold_ms: latency("hold"),
            create_ms: latency("create"),
            advice: self
                .get_json(&format!("/api/v1/pools/{}/advice", self.pool))
                .await,
        })
    }
}

impl Target for Gateway {
    async fn call(&self, client: usize, req: Request) -> Result<(), Failure> {
        let id = &self.sessions[client % self.sessions.len()];
        let params: Vec<Value> = req.params.iter().map(|p| p.to_json()).collect();
        let reply = self
            .client
            .post(format!("{}/api/v1/sessions/{id}/query", self.base))
            .bearer_auth(&self.token)
            .json(&json!({ "sql": &*req.sql, "params": params }))
            .send()
            .await
            .map_err(|e| Failure::new("http transport", e.to_string()))?;
        let status = reply.status();
        // Read the whole body either way, so the connection is reused.
        let body = reply
            .bytes()
            .await
            .map_err(|e| Failure::new("http transport", e.to_string()))?;
        if status.is_success() {
            return Ok(());
        }
        let (code, detail) = body_error(&serde_json::from_slice(&body).unwrap_or(Value::Null));
        Err(Failure::new(
            format!("http {} {code}", status.as_u16()),
            detail,
        ))
    }

    async fn gauges(&self) -> Option<PoolGauges> {
        let stats = self.pool_stats().await?;
        serde_json::from_value(stats.get("gauges")?.clone()).ok()
    }
}
