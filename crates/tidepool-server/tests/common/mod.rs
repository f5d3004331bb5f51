//! Runs the real `tidepool` binary and talks HTTP/1.1 to it.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running server; killed on drop if still running.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub log: PathBuf,
    pub dir: PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts `tidepool serve --listen ... [args]` in `dir` with `env`.
    pub async fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_with_files(dir, args, env, None).await
    }

    /// [`start`](Self::start), with the process's open-file limit set to
    /// `nofile` when given (`ulimit -n` in a shell that then runs it).
    pub async fn start_with_files(
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        Self::spawn(dir, &addr, args, env, nofile).await
    }

    /// Starts `tidepool serve --listen addr [args]` in `dir` with `env`.
    pub async fn start_on(dir: &Path, addr: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(dir, addr, args, env, None).await
    }

    async fn spawn(
        dir: &Path,
        addr: &str,
        args: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Self {
        let addr = addr.to_owned();
        let log = dir.join(format!("server-{}.log", addr.replace([':', '.'], "-")));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = match nofile {
            None => Command::new(env!("CARGO_BIN_EXE_tidepool")),
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_tidepool"));
                sh
            }
        };
        cmd.arg("serve")
            .arg("--listen")
            .arg(&addr)
            .args(args)
            .current_dir(dir)
            .env_remove("TIDEPOOL_TOKENS")
            .env("TIDEPOOL_LOG", "debug")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut server = Self {
            child,
            addr,
            log,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("server exited ({status}) at start:\n{}", server.log_text());
            }
            if let Ok(r) = server.request("GET", "/health", None, None).await
                && r.status == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server did not start:\n{}",
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> std::io::Result<Reply> {
        request(&self.addr, method, path, token, body).await
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        self.request(method, path, token, body).await.unwrap()
    }

    /// Opens a session on `pool` with `token`; its id.
    pub async fn open_session(&self, token: &str, pool: &str) -> String {
        let body = format!(r#"{{"pool":"{pool}"}}"#);
        let created = self
            .call("POST", "/api/v1/sessions", Some(token), Some(&body))
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.json["session_id"].as_str().unwrap().to_owned()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> (ExitStatus, String) {
        self.send_sigterm();
        let status = self.wait_exit(Duration::from_secs(30)).await;
        (status, self.log_text())
    }

    /// Sends SIGTERM without waiting.
    pub fn send_sigterm(&self) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
    }

    /// Waits up to `within` for the process to exit; its status.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop within {within:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request (`Connection: close`) to `addr`.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok(Reply {
        status,
        json: serde_json::from_str(&body).unwrap_or(Value::Null),
        head: head.to_owned(),
        body,
    })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
    pub json: Value,
}

impl Server {
    /// Starts, in a task of its own, a query in session `id` that counts
    /// `rows` rows in SQLite (seconds for millions): it holds a connection
    /// while it runs. Its reply when it ends.
    pub fn spawn_counting(
        &self,
        token: &str,
        id: &str,
        rows: u64,
    ) -> tokio::task::JoinHandle<std::io::Result<Reply>> {
        let sql = serde_json::json!({
            "sql": format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
                 SELECT count(*) AS c FROM n"
            )
        })
        .to_string();
        let (addr, path) = (self.addr.clone(), format!("/api/v1/sessions/{id}/query"));
        let token = token.to_owned();
        tokio::spawn(async move { request(&addr, "POST", &path, Some(&token), Some(&sql)).await })
    }

    /// Writes `toml` to `dir/tidepool.toml` and starts the server with it.
    pub async fn with_config(dir: &Path, toml: &str, env: &[(&str, &str)]) -> Self {
        let config = dir.join("tidepool.toml");
        std::fs::write(&config, toml).unwrap();
        Self::start(dir, &["--config", config.to_str().unwrap()], env).await
    }

    /// Runs one statement in session `id`; the reply.
    pub async fn query(&self, token: &str, id: &str, sql: &str, params: Value) -> Reply {
        let body = serde_json::json!({ "sql": sql, "params": params }).to_string();
        self.call(
            "POST",
            &format!("/api/v1/sessions/{id}/query"),
            Some(token),
            Some(&body),
        )
        .await
    }

    /// Runs `statements` (each `[sql, params]`) atomically in session `id`.
    pub async fn transaction(&self, token: &str, id: &str, statements: Value) -> Reply {
        let body = serde_json::json!({ "statements": statements }).to_string();
        self.call(
            "POST",
            &format!("/api/v1/sessions/{id}/transaction"),
            Some(token),
            Some(&body),
        )
        .await
    }

    /// Opens a session with any JSON body; the reply.
    pub async fn create_session(&self, token: &str, body: Value) -> Reply {
        self.call(
            "POST",
            "/api/v1/sessions",
            Some(token),
            Some(&body.to_string()),
        )
        .await
    }
}

/// Starts a server from `toml` and waits until it exits (it is expected to
/// refuse to start); its exit status and log.
pub async fn start_expecting_exit(dir: &Path, toml: &str) -> (ExitStatus, String) {
    let config = dir.join("tidepool.toml");
    std::fs::write(&config, toml).unwrap();
    let log = dir.join("refused.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--config")
        .arg(&config)
        .current_dir(dir)
        .env_remove("TIDEPOOL_TOKENS")
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, std::fs::read_to_string(&log).unwrap_or_default());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the server did not exit:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A superuser client on the local PostgreSQL, for setting up roles and
/// tables; `None` (test skipped) when PostgreSQL is absent.
pub async fn pg_admin() -> Option<(tidepool_postgres::tokio_postgres::Client, String)> {
    let addr = tidepool_testkit::service("PostgreSQL", "TIDEPOOL_PG_ADDR", "127.0.0.1:5432")?;
    let url = format!("postgres://postgres@{addr}/test");
    let cfg = tidepool_postgres::PgConfig::from_url(&url).unwrap();
    let (client, conn) = cfg
        .to_tokio_postgres()
        .connect(tidepool_postgres::tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    Some((client, addr))
}

/// Makes a login role without privileges (trust authentication) if missing,
/// and a table `table (id int, note text)` owned by postgres that the role may
/// read and write, emptied.
pub async fn pg_plain_role(
    admin: &tidepool_postgres::tokio_postgres::Client,
    role: &str,
    table: &str,
) {
    admin
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock(1414); \
             DO $$ BEGIN CREATE ROLE {role} LOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
             GRANT USAGE, CREATE ON SCHEMA public TO {role}; \
             CREATE TABLE IF NOT EXISTS {table} (id int, note text); \
             GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role}; \
             TRUNCATE {table}; COMMIT;"
        ))
        .await
        .unwrap();
}

/// What a finished `tidepool` command printed.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tidepool args...` in `dir` to its end (at most two minutes).
pub fn tidepool(dir: &Path, args: &[&str]) -> Ran {
    let child = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(args)
        .current_dir(dir)
        .env_remove("TIDEPOOL_TOKENS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(Duration::from_secs(120)) else {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("tidepool {args:?} did not finish within two minutes");
    };
    let out = out.unwrap();
    Ran {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `tidepool load ARGS --json FILE` in `dir`, which must succeed; what
/// it printed and the JSON it wrote.
pub fn load_json(dir: &Path, args: &[&str]) -> (Ran, Value) {
    let json = dir.join("out.json");
    let mut all = vec!["load", "--json", json.to_str().unwrap()];
    all.extend_from_slice(args);
    let ran = tidepool(dir, &all);
    assert!(
        ran.status.success(),
        "{:?}\n{}\n{}",
        ran.status,
        ran.stdout,
        ran.stderr
    );
    let text = std::fs::read_to_string(&json).unwrap();
    (ran, serde_json::from_str(&text).unwrap())
}

/// A count in a JSON report.
pub fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Failures of `kind` in a run's report.
pub fn errors_of(run: &Value, kind: &str) -> u64 {
    run["errors_by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| count(&e["count"]))
        .sum()
}

/// The checks every run's report must pass: each request counted once
/// (and, with a pool, once as a `get` of the pool), percentiles in order,
/// the timeline adding up to the total.
pub fn consistent(run: &Value) {
    let requests = count(&run["requests"]);
    assert_eq!(count(&run["ok"]) + count(&run["errors"]), requests, "{run}");
    let by_kind: u64 = run["errors_by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| count(&e["count"]))
        .sum();
    assert_eq!(
        by_kind,
        count(&run["errors"]),
        "errors counted once, by kind"
    );
    let statements = run["by_statement"].as_array().unwrap();
    let sum = |key: &str| statements.iter().map(|s| count(&s[key])).sum::<u64>();
    assert_eq!(
        sum("requests"),
        requests,
        "each request under its statement"
    );
    assert_eq!(sum("errors"), count(&run["errors"]), "{statements:?}");
    let per_second: u64 = run["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| count(&p["requests"]))
        .sum();
    assert_eq!(per_second, requests, "the timeline adds up");
    let l = &run["latency_ms"];
    assert_eq!(count(&l["count"]), requests);
    let q: Vec<f64> = ["p50", "p90", "p99", "p999", "max"]
        .iter()
        .map(|k| l[k].as_f64().unwrap())
        .collect();
    assert!(q.windows(2).all(|w| w[0] <= w[1]) && q[0] > 0.0, "{l}");
    if let Some(pool) = run["pool"].as_object() {
        let c = &pool["counters"];
        assert_eq!(count(&c["gets"]), requests, "requests = the pool's gets");
        let served = count(&c["checkouts"]) - count(&c["checkout_rejections"]);
        let not_served = errors_of(run, "acquire timeout") + errors_of(run, "connect failed");
        assert_eq!(served + not_served, requests, "{c}");
        assert_eq!(
            count(&pool["hold_ms"]["count"]),
            served,
            "one hold per served get"
        );
    }
}

/// Runs `tidepool load --url URL --token-file TOKEN --pool POOL` in `dir`.
pub fn load_gateway(dir: &Path, url: &str, token: &Path, pool: &str) -> Ran {
    let token = token.to_str().unwrap();
    tidepool(
        dir,
        &["load", "--url", url, "--token-file", token, "--pool", pool],
    )
}
