//! The OpenAPI document against the routes that exist: every documented
//! operation is routed, no documented path answers an undocumented method,
//! the route table and the document agree, and every `$ref` resolves.

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

async fn document() -> Value {
    let app = app().await;
    let r = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["openapi"], "3.1.0");
    r.json
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            ops.insert((method.clone(), path.clone()));
        }
    }
    ops
}

fn concrete(path: &str) -> String {
    path.replace("{name}", "demo")
        .replace("{id}", "00000000-0000-4000-8000-000000000000")
}

fn body_for(path: &str) -> Option<&'static str> {
    if path.ends_with("/resize") {
        Some(r#"{"max_size":3}"#)
    } else if path.ends_with("/query") {
        Some(r#"{"sql":"SELECT 1"}"#)
    } else if path == "/api/v1/sessions" {
        Some(r#"{"pool":"demo"}"#)
    } else {
        None
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let doc = document().await;
    let ops = operations(&doc);
    assert!(ops.len() >= 20, "{ops:?}");
    for (method, path) in &ops {
        let app = app().await;
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = send(&app, m, &concrete(path), Some(TOKEN), body_for(path)).await;
        assert_ne!(r.json["error"], "no_route", "{method} {path}: {}", r.text);
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let documented = doc["paths"][path][method]["responses"].as_object().unwrap();
        assert!(
            documented.contains_key(r.status.as_str()),
            "{method} {path} answered {} which is not documented ({:?})",
            r.status,
            documented.keys().collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn no_documented_path_accepts_an_undocumented_method() {
    let doc = document().await;
    let app = app().await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = send(&app, m, &concrete(path), Some(TOKEN), None).await;
            assert_eq!(
                r.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is routed but not documented: {}",
                r.text
            );
        }
    }
}

#[tokio::test]
async fn the_route_table_and_the_document_agree() {
    let doc = document().await;
    let table: BTreeSet<(String, String)> = tidepool_http::routes::ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(table, operations(&doc));
    for required in [
        ("get", "/health"),
        ("get", "/health/db"),
        ("get", "/metrics"),
        ("get", "/api/v1/pools"),
        ("get", "/api/v1/pools/{name}"),
        ("get", "/api/v1/pools/health"),
        ("get", "/api/v1/pools/metrics"),
        ("get", "/api/v1/pools/{name}/advice"),
        ("post", "/api/v1/pools/{name}/evict"),
        ("post", "/api/v1/pools/evict-all"),
        ("post", "/api/v1/pools/{name}/resize"),
        ("post", "/api/v1/pools/{name}/pause"),
        ("post", "/api/v1/pools/{name}/resume"),
        ("get", "/api/v1/config"),
        ("post", "/api/v1/sessions"),
        ("get", "/api/v1/sessions/{id}/schema"),
        ("post", "/api/v1/sessions/{id}/query"),
        ("delete", "/api/v1/sessions/{id}"),
        ("get", "/api/v1/sessions/stats"),
        ("get", "/api/v1/openapi.json"),
    ] {
        assert!(
            table.contains(&(required.0.to_owned(), required.1.to_owned())),
            "{required:?}"
        );
    }
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    out.push(v.as_str().unwrap().to_owned());
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_reference_resolves_and_every_operation_is_complete() {
    let doc = document().await;
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][&method];
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path}"
        );
        assert!(op["security"].is_array(), "{method} {path}");
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
        let params = path.matches('{').count();
        assert_eq!(
            op["parameters"].as_array().map_or(0, Vec::len),
            params,
            "{method} {path}"
        );
    }
}
