//! Helpers shared by the Snowflake behaviour tests: a fakesnow server (the
//! PyPI package, in server mode) started per test from the virtual
//! environment `.ci/services` makes, and the optional real account.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tidepool_snowflake::snowflake_connector_rs;
use tidepool_snowflake::{SnowflakeAuth, SnowflakeConfig, SnowflakeManager, SnowflakePool};

/// The table every fakesnow test writes to: `TIDEPOOL.PUBLIC.EVENTS (ID INT)`.
pub const TABLE: &str = "EVENTS";

/// Sets up the database for a fakesnow test through the Python Snowflake
/// connector (which, unlike the Rust one, reads fakesnow's Arrow results):
/// `python - PORT SQL...` runs each statement and prints the first column
/// of the first row of the last one.
const FIXTURE: &str = r#"
import sys, snowflake.connector
conn = snowflake.connector.connect(user="fixture", password="fixture", account="fakesnow",
    host="127.0.0.1", port=int(sys.argv[1]), protocol="http")
cur = conn.cursor()
for sql in sys.argv[2:]:
    cur.execute(sql)
row = cur.fetchone() if cur.description else None
print(row[0] if row else "")
"#;

/// A fakesnow server on a port of its own, stopped when dropped.
pub struct Fakesnow {
    python: PathBuf,
    port: u16,
    log: PathBuf,
    child: Child,
}

impl Fakesnow {
    /// Starts fakesnow with the venv's Python (`TIDEPOOL_FAKESNOW_PYTHON`,
    /// default `$HOME/.cache/tidepool/venv/bin/python`) and creates
    /// [`TABLE`]. When that Python is missing, prints why and returns `None`
    /// (the test should return), unless `TIDEPOOL_REQUIRE_SERVICES=1`.
    pub fn start() -> Option<Self> {
        let python = match std::env::var_os("TIDEPOOL_FAKESNOW_PYTHON") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/tidepool/venv/bin/python"),
        };
        if !python.exists() {
            let msg = format!(
                "fakesnow's Python is not at {} (run .ci/services, or set TIDEPOOL_FAKESNOW_PYTHON)",
                python.display()
            );
            if tidepool_testkit::services_required() {
                panic!("{msg}; TIDEPOOL_REQUIRE_SERVICES=1 makes this a failure");
            }
            eprintln!("skipping: {msg}");
            return None;
        }
        let port = tidepool_testkit::closed_port();
        let log = std::env::temp_dir().join(format!("tidepool-fakesnow-{port}.log"));
        let child = spawn(&python, port, &log);
        let server = Self {
            python,
            port,
            log,
            child,
        };
        server.wait_until_up();
        server.fixture(&[
            "CREATE DATABASE IF NOT EXISTS TIDEPOOL",
            "CREATE SCHEMA IF NOT EXISTS TIDEPOOL.PUBLIC",
            "CREATE TABLE IF NOT EXISTS TIDEPOOL.PUBLIC.EVENTS (ID INT)",
        ]);
        Some(server)
    }

    fn wait_until_up(&self) {
        let addr = format!("127.0.0.1:{}", self.port);
        for _ in 0..600 {
            if tidepool_testkit::reachable(&addr) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "fakesnow did not start on {addr}: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// The `http://127.0.0.1:PORT` base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs `sql` through the Python connector; returns the first column of
    /// the last statement's first row, as text.
    pub fn fixture(&self, sql: &[&str]) -> String {
        let out = Command::new(&self.python)
            .arg("-c")
            .arg(FIXTURE)
            .arg(self.port.to_string())
            .args(sql)
            .output()
            .expect("run the fixture");
        assert!(
            out.status.success(),
            "fixture {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Rows in [`TABLE`].
    pub fn rows(&self) -> i64 {
        self.fixture(&["SELECT COUNT(*) FROM TIDEPOOL.PUBLIC.EVENTS"])
            .parse()
            .expect("a count")
    }

    /// Sessions opened so far (fakesnow logs each login), the fixtures'
    /// own included.
    pub fn logins(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("Session login")
            .count()
    }

    /// Stops fakesnow (every session is forgotten, as when Snowflake drops
    /// them) and starts it again on the same port, with the table created
    /// again.
    pub fn restart(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
        self.child = spawn(&self.python, self.port, &self.log);
        self.wait_until_up();
        self.fixture(&[
            "CREATE DATABASE IF NOT EXISTS TIDEPOOL",
            "CREATE SCHEMA IF NOT EXISTS TIDEPOOL.PUBLIC",
            "CREATE TABLE IF NOT EXISTS TIDEPOOL.PUBLIC.EVENTS (ID INT)",
        ]);
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Password settings for this server.
    pub fn config(&self) -> SnowflakeConfig {
        let mut cfg = SnowflakeConfig::new(
            "fakesnow",
            "tidepool",
            SnowflakeAuth::Password("fake-password".to_owned()),
        );
        cfg.database = Some("TIDEPOOL".to_owned());
        cfg.schema = Some("PUBLIC".to_owned());
        cfg.base_url = Some(self.base_url());
        cfg
    }
}

impl Drop for Fakesnow {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn spawn(python: &PathBuf, port: u16, log: &PathBuf) -> Child {
    let out = std::fs::File::create(log).expect("a log file");
    let err = out.try_clone().expect("a log file");
    Command::new(python)
        .args(["-m", "fakesnow", "-s", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start fakesnow")
}

/// A pool for fakesnow: `SELECT` results come back from fakesnow as Arrow,
/// which the Rust driver cannot read, so validation before checkout and
/// keepalive pings (both `SELECT 1`) are off.
pub fn pool(cfg: SnowflakeConfig, max_size: usize) -> SnowflakePool {
    SnowflakeManager::new(cfg)
        .expect("valid settings")
        .pool_builder()
        .max_size(max_size)
        .validation(tidepool::Validation::Never)
        .keepalive_interval(None)
        .build()
        .expect("a valid pool")
}

/// Inserts one row into [`TABLE`] through `conn`; returns the driver's
/// count of inserted rows.
pub async fn insert(conn: &tidepool_snowflake::SnowflakeConnection, id: i64) -> i64 {
    let rows = conn
        .query(format!("INSERT INTO {TABLE} (ID) VALUES ({id})"))
        .await
        .expect("the insert runs")
        .collect::<Vec<_>>()
        .await
        .expect("its result");
    match rows.first().and_then(|r| r.values().first().cloned()) {
        Some(snowflake_connector_rs::CellValue::Integer(n)) => {
            i64::try_from(n).expect("a small count")
        }
        other => panic!("an inserted-rows count, got {other:?}"),
    }
}

/// Settings for a real account, when `TIDEPOOL_SNOWFLAKE_ACCOUNT` is set:
/// user `TIDEPOOL_SNOWFLAKE_USER`, `TIDEPOOL_SNOWFLAKE_PRIVATE_KEY_PATH`
/// (PKCS#8 PEM) or else `TIDEPOOL_SNOWFLAKE_PASSWORD`, and the optional
/// `TIDEPOOL_SNOWFLAKE_WAREHOUSE`, `_DATABASE`, `_SCHEMA`, `_ROLE`. Prints
/// why the real-account part of `test` is skipped otherwise.
pub fn real_config(test: &str) -> Option<SnowflakeConfig> {
    let account = tidepool_testkit::real_server("Snowflake", "TIDEPOOL_SNOWFLAKE_ACCOUNT", test)?;
    let var = |name: &str| std::env::var(format!("TIDEPOOL_SNOWFLAKE_{name}")).ok();
    let auth = match var("PRIVATE_KEY_PATH") {
        Some(path) => SnowflakeAuth::KeyPair {
            private_key_pem: std::fs::read_to_string(path).expect("the private key"),
            passphrase: var("PRIVATE_KEY_PASSPHRASE"),
        },
        None => SnowflakeAuth::Password(var("PASSWORD").unwrap_or_default()),
    };
    let mut cfg = SnowflakeConfig::new(account, var("USER").unwrap_or_default(), auth);
    cfg.warehouse = var("WAREHOUSE");
    cfg.database = var("DATABASE");
    cfg.schema = var("SCHEMA");
    cfg.role = var("ROLE");
    Some(cfg)
}

/// `SELECT CURRENT_SESSION()` on a real account.
pub async fn current_session(conn: &tidepool_snowflake::SnowflakeConnection) -> String {
    let rows = conn
        .query_as::<(String,), _>("SELECT CURRENT_SESSION()")
        .await
        .expect("CURRENT_SESSION()")
        .collect::<Vec<_>>()
        .await
        .expect("its row");
    rows.into_iter().next().expect("a row").0
}
