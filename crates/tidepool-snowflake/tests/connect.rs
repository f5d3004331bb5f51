//! A pool logs in and runs a statement: against fakesnow always (password
//! and key-pair logins), against a real account when
//! `TIDEPOOL_SNOWFLAKE_ACCOUNT` is set.

mod common;

use tidepool_snowflake::SnowflakeAuth;

#[tokio::test]
async fn a_password_session_inserts_on_fakesnow() {
    let Some(server) = common::Fakesnow::start() else {
        return;
    };
    let pool = common::pool(server.config(), 2);
    let conn = pool.get().await.expect("a session");
    assert_eq!(common::insert(&conn, 1).await, 1);
    drop(conn);
    assert_eq!(server.rows(), 1);
}

#[tokio::test]
async fn a_key_pair_session_inserts_on_fakesnow() {
    let Some(server) = common::Fakesnow::start() else {
        return;
    };
    let key = openssl::rsa::Rsa::generate(2048).unwrap();
    let pem = openssl::pkey::PKey::from_rsa(key)
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    let mut cfg = server.config();
    cfg.auth = SnowflakeAuth::KeyPair {
        private_key_pem: String::from_utf8(pem).unwrap(),
        passphrase: None,
    };
    let pool = common::pool(cfg, 1);
    let conn = pool.get().await.expect("a session signed in with a JWT");
    assert_eq!(common::insert(&conn, 2).await, 1);
}

#[tokio::test]
async fn a_session_runs_a_query_on_a_real_account() {
    let Some(cfg) = common::real_config("connect") else {
        return;
    };
    let pool = tidepool_snowflake::SnowflakeManager::new(cfg)
        .unwrap()
        .pool_builder()
        .max_size(2)
        .build()
        .unwrap();
    let conn = pool.get().await.expect("a session");
    let rows = conn
        .query_as::<(i64,), _>("SELECT 1 + 1")
        .await
        .unwrap()
        .collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(rows, vec![(2,)]);
}
