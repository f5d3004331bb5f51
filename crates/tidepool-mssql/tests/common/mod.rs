//! Helpers shared by the SQL Server behaviour tests: Microsoft's mock TDS
//! server (`mssql-mock-tds`) run in-process, and the optional real server.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mssql_mock_tds::{
    ColumnDefinition, ColumnValue, ConnectionStore, MockTdsServer, QueryRegistry, QueryResponse,
    Row, SqlDataType,
};
use tidepool::Pool;
use tidepool_mssql::{
    Encrypt, INITIAL_STATE_SQL, MssqlConfig, MssqlManager, MssqlPool, MssqlPooled,
};
use tokio::runtime::Runtime;
use tokio::sync::Mutex;

/// The initial settings the mock reports for every session: those of a
/// tiberius login on a default SQL Server (`ANSI_WARNINGS`, `ANSI_PADDING`,
/// `ANSI_NULLS`, `QUOTED_IDENTIFIER`, `ANSI_NULL_DFLT_ON`,
/// `CONCAT_NULL_YIELDS_NULL`), us_english, READ COMMITTED, database 1.
pub const INITIAL_OPTIONS: i32 = 8 | 16 | 32 | 256 | 1024 | 4096;

/// How the mock server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// No TLS: the server answers "not supported" in the prelogin.
    None,
    /// TLS after the prelogin when the client asks (TDS 7.x).
    Optional,
    /// TLS before any TDS byte (TDS 8.0 strict).
    Strict,
}

/// A self-signed certificate for `localhost` (PEM) and its key.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCert {
    pub fn new() -> Self {
        use openssl::asn1::Asn1Time;
        use openssl::bn::BigNum;
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::rsa::Rsa;
        use openssl::x509::extension::SubjectAlternativeName;
        use openssl::x509::{X509, X509NameBuilder};

        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "localhost").unwrap();
        let name = name.build();
        let mut cert = X509::builder().unwrap();
        cert.set_version(2).unwrap();
        let serial = BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap();
        cert.set_serial_number(&serial).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .build(&cert.x509v3_context(None, None))
            .unwrap();
        cert.append_extension(san).unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        let pem = |b: Vec<u8>| String::from_utf8(b).unwrap();
        Self {
            cert_pem: pem(cert.build().to_pem().unwrap()),
            key_pem: pem(key.private_key_to_pem_pkcs8().unwrap()),
        }
    }
}

/// Microsoft's mock TDS server, on a runtime of its own so that a test can
/// kill it (every connection closes at once, as when a server dies) and
/// start it again on the same port.
pub struct MockServer {
    addr: SocketAddr,
    registry: Arc<Mutex<QueryRegistry>>,
    store: Arc<Mutex<ConnectionStore>>,
    runtime: Option<Runtime>,
}

impl MockServer {
    /// A plain server on an ephemeral port, answering the session-settings
    /// query every new pooled connection sends.
    pub async fn start() -> Self {
        Self::start_with("127.0.0.1:0", Tls::None, None).await
    }

    /// A server with the given TLS mode (`cert` is needed unless `Tls::None`).
    pub async fn start_with(addr: &str, tls: Tls, cert: Option<&TestCert>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the mock server");
        let addr = addr.to_owned();
        let identity = cert.map(|c| {
            mssql_mock_tds::create_test_identity(c.cert_pem.as_bytes(), c.key_pem.as_bytes())
                .expect("a TLS identity")
        });
        let server = runtime
            .spawn(async move {
                match (tls, identity) {
                    (Tls::None, _) => MockTdsServer::new(&addr).await,
                    (Tls::Optional, id) => MockTdsServer::new_with_tls(&addr, id).await,
                    (Tls::Strict, Some(id)) => MockTdsServer::new_with_strict_tls(&addr, id).await,
                    (Tls::Strict, None) => panic!("strict TLS needs a certificate"),
                }
            })
            .await
            .expect("the bind task")
            .expect("the mock server binds");
        let this = Self {
            addr: server.local_addr(),
            registry: server.query_registry(),
            store: server.connection_store(),
            runtime: Some(runtime),
        };
        this.runtime().spawn(server.run());
        this.register(INITIAL_STATE_SQL, initial_state()).await;
        this
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("the server is running")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registers the answer to `sql` (matched case-insensitively).
    pub async fn register(&self, sql: &str, response: QueryResponse) {
        self.registry.lock().await.register(sql, response);
    }

    /// The connections that logged in so far.
    pub async fn logins(&self) -> usize {
        let store = self.store.lock().await;
        store.all().values().filter(|c| c.authenticated).count()
    }

    /// For each connection (in the order they were accepted), the
    /// transaction descriptor of every SQL batch or RPC it sent: 0 outside a
    /// transaction.
    pub async fn requests(&self) -> Vec<Vec<u64>> {
        let store = self.store.lock().await;
        store
            .all()
            .values()
            .map(|c| {
                c.transaction_descriptor_headers
                    .iter()
                    .map(|h| h.0)
                    .collect()
            })
            .collect()
    }

    /// Stops the server and closes every connection, as a crash would.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Starts a fresh server on the same port (its query registry and
    /// connection store start over).
    pub async fn restart(&mut self) {
        self.kill();
        let addr = self.addr.to_string();
        *self = Self::start_with(&addr, Tls::None, None).await;
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The mock's answer to [`INITIAL_STATE_SQL`].
pub fn initial_state() -> QueryResponse {
    let columns = (0..8)
        .map(|i| ColumnDefinition::new(format!("c{i}"), SqlDataType::Int))
        .collect();
    let values = [INITIAL_OPTIONS, 0, 7, -1, i32::MAX, 2, 0, 1]
        .into_iter()
        .map(ColumnValue::Int)
        .collect();
    QueryResponse::new(columns, vec![Row::new(values)])
}

/// One `int` column `name` with one row holding `value`.
pub fn int_response(name: &str, value: i32) -> QueryResponse {
    QueryResponse::new(
        vec![ColumnDefinition::new(name, SqlDataType::Int)],
        vec![Row::new(vec![ColumnValue::Int(value)])],
    )
}

/// Plain-text settings for the mock at `addr` (it accepts any login).
pub fn mock_config(addr: SocketAddr) -> MssqlConfig {
    MssqlConfig::builder()
        .host(addr.ip().to_string())
        .port(addr.port())
        .sql_login("sa", "mock-password")
        .encrypt(Encrypt::NotSupported)
        .build()
        .expect("valid settings")
}

/// A pool of at most `max_size` connections made with `cfg`.
pub fn pool(cfg: MssqlConfig, max_size: usize) -> MssqlPool {
    Pool::builder(MssqlManager::new(cfg))
        .max_size(max_size)
        .build()
        .expect("a valid pool")
}

/// Settings for a real SQL Server, when `TIDEPOOL_MSSQL_ADDR` (`host:port`)
/// is set: login `TIDEPOOL_MSSQL_USER` (default `sa`) with
/// `TIDEPOOL_MSSQL_PASSWORD`, database `TIDEPOOL_MSSQL_DATABASE` (default:
/// the login's), TLS required but any certificate trusted (development
/// servers have self-signed ones). Prints why the real-server part of
/// `test` is skipped otherwise.
pub fn real_config(test: &str) -> Option<MssqlConfig> {
    let addr = tidepool_testkit::real_server("SQL Server", "TIDEPOOL_MSSQL_ADDR", test)?;
    let (host, port) = addr
        .rsplit_once(':')
        .expect("TIDEPOOL_MSSQL_ADDR is host:port");
    let user = tidepool_testkit::env_or("TIDEPOOL_MSSQL_USER", "sa");
    let password = std::env::var("TIDEPOOL_MSSQL_PASSWORD").unwrap_or_default();
    let mut builder = MssqlConfig::builder()
        .host(host)
        .port(
            port.parse()
                .expect("TIDEPOOL_MSSQL_ADDR has a numeric port"),
        )
        .sql_login(user, password)
        .encrypt(Encrypt::Required)
        .trust_server_certificate(true);
    if let Ok(db) = std::env::var("TIDEPOOL_MSSQL_DATABASE") {
        builder = builder.database(db);
    }
    Some(builder.build().expect("valid settings"))
}

/// The server's id for the session behind `conn` (`@@SPID`).
pub async fn spid(conn: &mut MssqlPooled<'_>) -> i32 {
    let row = conn
        .simple_query("SELECT CAST(@@SPID AS int)")
        .await
        .expect("SELECT @@SPID")
        .into_row()
        .await
        .expect("a result")
        .expect("a row");
    row.get::<i32, _>(0).expect("an int")
}

/// Runs `sql` (a batch), reading every result.
pub async fn exec(conn: &mut MssqlPooled<'_>, sql: impl AsRef<str>) {
    let sql = sql.as_ref();
    conn.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_results()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The first column of the first row of `sql`, as an `i32`.
pub async fn scalar(conn: &mut MssqlPooled<'_>, sql: &str) -> Option<i32> {
    let row = conn
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_row()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))?;
    row.get::<i32, _>(0)
}

/// Waits (up to 10 s) until every connection of `pool` is idle, so that
/// background resets have finished.
pub async fn settled(pool: &MssqlPool) {
    for _ in 0..1000 {
        let g = pool.gauges();
        if g.in_use == 0 && g.checking == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("connections still in use: {:?}", pool.gauges());
}
