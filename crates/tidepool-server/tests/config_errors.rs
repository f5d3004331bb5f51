//! Configuration errors through the real binary (`check-config` and
//! `serve --config`): a value of the wrong type or shape, taken from the
//! environment or written in the file, is never quoted — the message names
//! the file, the line and the key, and says what was expected.

use std::process::Command;

const SECRET: &str = "tok-SECRET-config-0123456789abcdef";

/// Each file puts `${MY_ADMIN_TOKEN}` where a value of another type or
/// shape belongs; the key the error must name.
const CASES: &[(&str, &str)] = &[
    (
        "[server]\ntokens = \"${MY_ADMIN_TOKEN}\"\n",
        "server.tokens",
    ),
    (
        "[server]\nmax_rows = \"${MY_ADMIN_TOKEN}\"\n",
        "server.max_rows",
    ),
    (
        "[server]\nrequest_timeout = \"${MY_ADMIN_TOKEN}\"\n",
        "server.request_timeout",
    ),
    (
        "[server]\nlisten = \"${MY_ADMIN_TOKEN}\"\n",
        "server.listen",
    ),
    (
        "[pools.x]\nbackend = \"sqlite\"\npath = \"x.db\"\nwarm_up = \"${MY_ADMIN_TOKEN}\"\n",
        "pools.x.warm_up",
    ),
    (
        "[pools.x]\nbackend = \"sqlite\"\npath = \"x.db\"\nmax_size = \"${MY_ADMIN_TOKEN}\"\n",
        "pools.x.max_size",
    ),
    (
        "[pools.x]\nbackend = \"sqlite\"\npath = \"x.db\"\ngateway = \"${MY_ADMIN_TOKEN}\"\n",
        "pools.x.gateway",
    ),
    (
        "[pools.x]\nbackend = \"postgres\"\nurl = \"${MY_ADMIN_TOKEN}\"\n",
        "pools.x.url",
    ),
    (
        "[[tenants]]\nname = \"a\"\nrole = \"${MY_ADMIN_TOKEN}\"\ntokens = [\"t-0123456789abcdef0123456789abcdef\"]\n",
        "tenants[0].role",
    ),
    (
        "[descriptions]\nenabled = true\n[[descriptions.allow]]\nbackend = \"${MY_ADMIN_TOKEN}\"\n",
        "descriptions.allow[0]",
    ),
    (
        "[descriptions]\nenabled = true\n[[descriptions.allow]]\nbackend = \"postgres\"\nhost = \"h\"\nport = \"${MY_ADMIN_TOKEN}\"\ndatabase = \"d\"\nuser = \"u\"\n",
        "descriptions.allow[0]",
    ),
];

fn run(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(args)
        .current_dir(dir)
        .env("MY_ADMIN_TOKEN", SECRET)
        .env_remove("TIDEPOOL_TOKENS")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn config_errors_never_quote_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    let file = file.to_str().unwrap();
    for (toml, key) in CASES {
        std::fs::write(file, toml).unwrap();
        for args in [
            &["check-config", file][..],
            &["serve", "--listen", "127.0.0.1:0", "--config", file][..],
        ] {
            let (code, out) = run(dir.path(), args);
            assert_eq!(code, 2, "{args:?} on\n{toml}\n{out}");
            assert!(
                out.contains(&format!("key `{key}`")),
                "the key is named: {args:?} on\n{toml}\n{out}"
            );
            assert!(
                !out.contains(SECRET) && !out.contains("SECRET"),
                "the value is quoted: {args:?} on\n{toml}\n{out}"
            );
        }
    }
}

#[test]
fn a_literal_value_of_the_wrong_type_is_not_quoted_either() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(
        &file,
        "[pools.x]\nbackend = \"sqlite\"\npath = \"x.db\"\nwarm_up = \"hunter2-literal\"\n",
    )
    .unwrap();
    let (code, out) = run(dir.path(), &["check-config", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("key `pools.x.warm_up`"), "{out}");
    assert!(
        out.contains("expected one of `lazy`, `eager`, `eager_fail_fast`"),
        "what was expected is said: {out}"
    );
    assert!(!out.contains("hunter2"), "{out}");
}
