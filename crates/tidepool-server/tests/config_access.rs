//! `[[tenants]]`, `[descriptions]` and the gateway keys of a pool: what
//! parses, the defaults, and errors that name the key without quoting a
//! token.

use tidepool_http::{AllowEntry, GatewayMode, Quotas, Role};
use tidepool_server::config::Config;

fn env(var: &str) -> Option<String> {
    (var == "ANA_TOKEN").then(|| "ana-token-from-env-0123456789".to_owned())
}

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, "t.toml", &env).map_err(|e| e.to_string())
}

#[test]
fn tenants_descriptions_and_gateway_modes_parse_with_their_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("ops-token");
    std::fs::write(&token_file, "ops-token-from-a-file-0123456789\n").unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let cfg = parse(&format!(
        r#"
[[tenants]]
name = "ops"
role = "admin"
token_file = "{}"

[[tenants]]
name = "ana"
role = "query"
tokens = ["${{ANA_TOKEN}}"]
pools = ["orders"]
max_sessions = 5
requests_per_second = 3

[descriptions]
enabled = true
gateway = "read_write"
pool = {{ max_size = 2 }}

[[descriptions.allow]]
backend = "postgres"
host = "db.internal"
database = "reporting"
user = "*"

[[descriptions.allow]]
backend = "sqlite"
directory = "/srv/sqlite"

[pools.orders]
backend = "sqlite"
path = "orders.db"
gateway = "read_write"

[pools.audit]
backend = "postgres"
url = "postgres://audit@db/audit"
allow_privileged_role = true
"#,
        token_file.display()
    ))
    .unwrap();
    let ops = &cfg.tenants[0];
    assert_eq!(
        (ops.role, ops.tokens.as_slice()),
        (
            Role::Admin,
            &["ops-token-from-a-file-0123456789".to_owned()][..]
        )
    );
    assert_eq!(ops.quotas, Quotas::default());
    let ana = &cfg.tenants[1];
    assert_eq!(ana.role, Role::Query);
    assert_eq!(ana.pools, ["orders"]);
    assert_eq!(ana.quotas.max_sessions, 5);
    assert_eq!(ana.quotas.requests_per_second, 3);
    assert_eq!(ana.quotas.burst, Quotas::default().burst);
    assert!(cfg.descriptions.enabled);
    assert_eq!(cfg.descriptions.mode, GatewayMode::ReadWrite);
    assert_eq!(cfg.descriptions.pool.max_size, 2);
    assert!(matches!(
        &cfg.descriptions.allow[0],
        AllowEntry::Postgres { port: 5432, .. }
    ));
    assert!(matches!(
        &cfg.descriptions.allow[1],
        AllowEntry::Sqlite { create: false, .. }
    ));
    assert_eq!(cfg.pools["orders"].gateway, GatewayMode::ReadWrite);
    assert_eq!(cfg.pools["audit"].gateway, GatewayMode::ReadOnly, "default");
    assert!(cfg.pools["audit"].allow_privileged_role);
    let doc = cfg.to_redacted_json().to_string();
    assert!(
        !doc.contains("ana-token-from-env") && !doc.contains("ops-token-from-a-file"),
        "{doc}"
    );

    let defaults = parse("").unwrap();
    assert!(
        !defaults.descriptions.enabled,
        "descriptions are off by default"
    );
    assert!(defaults.tenants.is_empty());
}

#[test]
fn bad_tenants_and_allow_lists_are_named_without_quoting_tokens() {
    let base = "[pools.orders]\nbackend = \"sqlite\"\npath = \"o.db\"\n";
    for (text, expected) in [
        (
            "[[tenants]]\nname = \"a\"\nrole = \"root\"\ntokens = [\"${ANA_TOKEN}\"]\n",
            "tenants[0].role",
        ),
        (
            "[[tenants]]\nname = \"a\"\nrole = \"query\"\n",
            "needs `tokens`",
        ),
        (
            "[[tenants]]\nname = \"a\"\nrole = \"query\"\ntokens = [\"${ANA_TOKEN}\"]\npools = [\"nope\"]\n",
            "no pool named `nope`",
        ),
        (
            "[[tenants]]\nname = \"a\"\nrole = \"query\"\ntokens = [\"${ANA_TOKEN}\"]\n[[tenants]]\nname = \"b\"\nrole = \"admin\"\ntokens = [\"${ANA_TOKEN}\"]\n",
            "used twice",
        ),
        (
            "[[tenants]]\nname = \"a\"\nrole = \"query\"\ntokens = [\"${ANA_TOKEN}\"]\nmax_sessions = 0\n",
            "must be greater than zero",
        ),
        (
            "[[tenants]]\nname = \"a\"\nrole = \"query\"\ntoken_file = \"/no/such/token\"\n",
            "token_file",
        ),
        (
            "[server]\nconnection_allow_list = [\"postgres://x@\"]\n",
            "[descriptions]",
        ),
        ("[descriptions]\nenabled = true\n", "nothing is allowed"),
        (
            "[descriptions]\nenabled = true\n[[descriptions.allow]]\nbackend = \"postgres\"\ndatabase = \"d\"\nuser = \"u\"\n",
            "set `host`",
        ),
        (
            "[descriptions]\nenabled = true\n[[descriptions.allow]]\nbackend = \"sqlite\"\ndirectory = \"relative\"\n",
            "absolute",
        ),
        (
            "[pools.x]\nbackend = \"sqlite\"\npath = \"x.db\"\ngateway = \"sometimes\"\n",
            "pools.x.gateway",
        ),
        ("[server]\nresize_ceiling = 0\n", "server.resize_ceiling"),
    ] {
        let err = parse(&format!("{base}{text}")).unwrap_err();
        assert!(err.contains(expected), "{text}\n=> {err}");
        assert!(!err.contains("ana-token-from-env"), "{err}");
    }
}
