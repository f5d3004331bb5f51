//! The dashboard's stream (`GET /api/v1/stream`) and its embedded page:
//! authenticated like the JSON API, the same snapshot as the API, rates over
//! each interval, bounded (a slow client is dropped, at most `max_streams`
//! open), ended by `close_streams`; the page and its assets served from the
//! binary.
#![cfg(feature = "dashboard")]

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt;
use serde_json::Value;
use tidepool::{Manager, Pool, Registry};
use tidepool_http::{AppState, Role, Settings, Tenant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const WATCHER_TOKEN: &str = "watcher-token-0123456789abcdef";

/// Reads server-sent events one at a time from a response body.
struct Events {
    body: Body,
    buf: String,
}

impl Events {
    async fn open(app: &axum::Router, token: Option<&str>) -> (StatusCode, Self) {
        let mut req = Request::builder().method(Method::GET).uri("/api/v1/stream");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        (
            status,
            Self {
                body: resp.into_body(),
                buf: String::new(),
            },
        )
    }

    /// The next event's JSON; `None` when the stream ended.
    async fn next(&mut self) -> Option<Value> {
        let read = async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let event: String = self.buf.drain(..end + 2).collect();
                    return Some(event_json(&event));
                }
                match self.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            self.buf.push_str(&String::from_utf8_lossy(&data));
                        }
                    }
                    _ => return None,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("no event and no end within 10 s")
    }
}

#[tokio::test]
async fn the_stream_refuses_a_missing_or_wrong_token_where_the_api_does() {
    for requires_token in [false, true] {
        let mut settings = Settings::default();
        settings.monitoring_requires_token = requires_token;
        let (state, _pool) = state_with(settings).await;
        let app = tidepool_http::router(state);
        let mut statuses = Vec::new();
        for token in [None, Some("not-a-token"), Some(TOKEN)] {
            let api = send(&app, Method::GET, "/api/v1/pools", token, None).await;
            let stream = send(&app, Method::GET, "/api/v1/stream", token, None).await;
            assert_eq!(
                api.status, stream.status,
                "token {token:?}, monitoring_requires_token {requires_token}: {}",
                stream.text
            );
            if stream.status == StatusCode::OK {
                assert!(
                    stream.content_type.starts_with("text/event-stream"),
                    "{}",
                    stream.content_type
                );
                let frame = event_json(&stream.text);
                assert_eq!(frame["pools"][0]["view"]["name"], "demo", "{frame}");
            } else {
                stream.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
            }
            statuses.push(stream.status.as_u16());
        }
        let want = if requires_token {
            [401, 401, 200]
        } else {
            [200, 401, 200]
        };
        assert_eq!(statuses, want, "monitoring_requires_token {requires_token}");
        // A header that is not `Bearer <token>` is refused by both alike.
        let mut req = Request::builder()
            .uri("/api/v1/stream")
            .header(header::AUTHORIZATION, format!("Basic {TOKEN}"));
        req = req.method(Method::GET);
        let r = reply(
            app.clone()
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap(),
        )
        .await;
        r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

#[tokio::test]
async fn the_stream_shows_each_caller_what_the_api_shows_it() {
    let registry = Arc::new(Registry::new());
    let pool = sqlite_pool("demo").await;
    registry.insert(pool.clone()).unwrap();
    let state = AppState::builder(registry)
        .token(TOKEN)
        .tenant(Tenant::new("watcher", Role::Monitor).token(WATCHER_TOKEN))
        .build();
    let app = tidepool_http::router(state);
    drop(pool.get().await.unwrap());

    // The same snapshot functions: on a quiet pool, the stream's figures
    // are the API's.
    let (status, mut anonymous) = Events::open(&app, None).await;
    assert_eq!(status, StatusCode::OK);
    let frame = anonymous.next().await.unwrap();
    let api = get(&app, "/api/v1/pools/demo").await;
    let view = &frame["pools"][0]["view"];
    for part in ["gauges", "counters", "acquire", "hold"] {
        assert_eq!(view["stats"][part], api.json[part], "{part}");
    }
    assert_eq!(view["health"], api.json["health"]);
    assert_eq!(view["status"], api.json["status"]);
    assert_eq!(view["backend"], api.json["backend"]);
    // Anonymous: no advice (admin only in the API), no sessions, no caller.
    assert!(frame["pools"][0].get("advice").is_none(), "{frame}");
    assert!(frame["caller"].is_null() && frame["sessions"].is_null());

    let (_, mut watcher) = Events::open(&app, Some(WATCHER_TOKEN)).await;
    let frame = watcher.next().await.unwrap();
    assert_eq!(frame["caller"]["tenant"], "watcher");
    assert_eq!(frame["caller"]["role"], "monitor");
    assert!(frame["pools"][0].get("advice").is_none(), "{frame}");
    assert_eq!(frame["sessions"]["active"], 0);

    let (_, mut admin) = Events::open(&app, Some(TOKEN)).await;
    let frame = admin.next().await.unwrap();
    assert_eq!(frame["caller"]["role"], "admin");
    let advice = &frame["pools"][0]["advice"];
    let api = admin_get(&app, "/api/v1/pools/demo/advice").await;
    assert_eq!(advice["sizing"], api.json["sizing"], "{frame}");
}

#[tokio::test]
async fn each_snapshot_carries_rates_over_its_interval() {
    let mut settings = Settings::default();
    settings.stream_interval = Duration::from_millis(100);
    let (state, pool) = state_with(settings).await;
    let app = tidepool_http::router(state);
    let (_, mut events) = Events::open(&app, None).await;
    let first = events.next().await.unwrap();
    assert!(
        first["pools"][0]["view"]["rates"].is_null(),
        "the first snapshot has no interval: {first}"
    );
    let gets = 40;
    for _ in 0..gets {
        let conn = pool.get().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        drop(conn);
    }
    // Some interval after the first saw the gets; together they saw all.
    let mut seen = 0.0;
    let mut hold_p50: Option<f64> = None;
    while seen < f64::from(gets) - 0.5 {
        let frame = events.next().await.unwrap();
        let rates = &frame["pools"][0]["view"]["rates"];
        let secs = rates["interval_ms"].as_f64().unwrap() / 1000.0;
        seen += rates["gets_per_s"].as_f64().unwrap() * secs;
        if let Some(p50) = rates["hold_p50_ms"].as_f64() {
            hold_p50 = Some(p50);
        }
        assert!(
            seen <= f64::from(gets) + 0.5,
            "{seen} gets counted: {frame}"
        );
    }
    let p50 = hold_p50.expect("no interval had a hold time");
    assert!(p50 >= 1.0, "connections were held for at least 1 ms: {p50}");
}

#[tokio::test]
async fn failed_gets_show_as_recent_errors_and_errors_per_second() {
    let mut settings = Settings::default();
    settings.stream_interval = Duration::from_millis(100);
    let (state, _pool) = state_with(settings).await;
    let mut cfg = tidepool::PoolConfig::default();
    cfg.max_retries = 0;
    let broken = Pool::builder(
        tidepool_sqlite::SqliteManager::new(tidepool_sqlite::SqliteConfig::file(
            "/nonexistent-dir/for/sure/x.db",
        ))
        .unwrap(),
    )
    .config(cfg)
    .name("broken")
    .build()
    .unwrap();
    state.registry().insert(broken.clone()).unwrap();
    let app = tidepool_http::router(state);
    let (_, mut events) = Events::open(&app, None).await;
    events.next().await.unwrap();
    assert!(broken.get_timeout(Duration::from_secs(5)).await.is_err());
    // The failed connect and the failed get may fall in two intervals.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut said = std::collections::BTreeSet::new();
    let mut rate: f64 = 0.0;
    while said.len() < 2 {
        assert!(Instant::now() < deadline, "the stream said only {said:?}");
        let frame = events.next().await.unwrap();
        let view = frame["pools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["view"].clone())
            .find(|v| v["name"] == "broken")
            .unwrap();
        rate = rate.max(view["rates"]["errors_per_s"].as_f64().unwrap());
        for e in view["recent_errors"].as_array().unwrap() {
            assert!(e["count"].as_u64().unwrap() >= 1 && e["at_ms"].as_u64().unwrap() > 0);
            said.insert(e["what"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        said.into_iter().collect::<Vec<_>>(),
        [
            "connect attempt(s) failed",
            "get(s) failed because connecting failed"
        ],
    );
    assert!(rate > 0.0, "errors per second: {rate}");
}

/// A connection that is a number.
#[derive(Debug)]
struct Numbers;

impl Manager for Numbers {
    type Connection = u64;
    type Error = Infallible;
    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn validate(&self, _: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Many pools (so that snapshots are large and socket buffers fill in a
/// few snapshots) behind a real listener; its address.
async fn serve_many_pools(settings: Settings) -> (AppState, String) {
    let registry = Arc::new(Registry::new());
    for i in 0..100 {
        let pool = Pool::builder(Numbers)
            .name(format!("pool-{i:03}"))
            .max_size(4)
            .build()
            .unwrap();
        registry.insert(pool).unwrap();
    }
    let state = AppState::builder(registry)
        .token(TOKEN)
        .settings(settings)
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = tidepool_http::router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (state, addr)
}

/// Connects (with a small receive buffer for a slow client) and asks for
/// the stream; the socket, after the response's head.
async fn stream_client(addr: &str, slow: bool) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if slow {
        socket.set_recv_buffer_size(4096).unwrap();
    }
    let mut s = socket.connect(addr.parse().unwrap()).await.unwrap();
    s.write_all(
        format!("GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_dropped_not_buffered_and_a_fast_one_keeps_streaming() {
    let mut settings = Settings::default();
    settings.stream_interval = Duration::from_millis(20);
    settings.stream_buffer = 64;
    let (state, addr) = serve_many_pools(settings).await;

    // A fast client reads everything and counts snapshots.
    let snapshots = Arc::new(AtomicU64::new(0));
    let fast_read = Arc::new(AtomicU64::new(0));
    let mut fast = stream_client(&addr, false).await;
    let (count, read) = (Arc::clone(&snapshots), Arc::clone(&fast_read));
    let fast_task = tokio::spawn(async move {
        const MARK: &[u8] = b"event: snapshot";
        let mut buf = vec![0u8; 1 << 20];
        let mut carry = 0;
        loop {
            let n = fast.read(&mut buf[carry..]).await.unwrap();
            assert!(n > 0, "the fast client's stream ended");
            read.fetch_add(n as u64, Ordering::Relaxed);
            let end = carry + n;
            let events = buf[..end]
                .windows(MARK.len())
                .filter(|w| *w == MARK)
                .count();
            count.fetch_add(events as u64, Ordering::Relaxed);
            // Keep the last bytes, which may hold the start of a mark.
            carry = (MARK.len() - 1).min(end);
            buf.copy_within(end - carry..end, 0);
        }
    });

    // The slow client reads its head, then nothing while the fast one
    // receives 300 snapshots: far more than the socket buffers and
    // stream_buffer can hold.
    let mut slow = stream_client(&addr, true).await;
    let start = snapshots.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(120);
    while snapshots.load(Ordering::Relaxed) < start + 300 {
        assert!(
            Instant::now() < deadline,
            "the fast client stalled at {} snapshots, {} bytes",
            snapshots.load(Ordering::Relaxed) - start,
            fast_read.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let produced = fast_read.load(Ordering::Relaxed);

    // Reading again, the slow client gets what was buffered, then the end.
    let mut got: u64 = 0;
    let mut buf = vec![0u8; 1 << 16];
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got += n as u64,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the slow client's stream did not end: it read {got} bytes"
    );
    assert!(
        got < produced,
        "the slow client read {got} bytes, as much as the fast one received ({produced}): it was buffered for"
    );
    assert_eq!(
        state.stream_counts().1,
        1,
        "exactly the slow client was dropped"
    );

    // The fast client still streams.
    let now = snapshots.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while snapshots.load(Ordering::Relaxed) < now + 10 {
        assert!(
            !fast_task.is_finished(),
            "the fast client's stream ended: {:?}",
            fast_task.await
        );
        assert!(Instant::now() < deadline, "the fast client got no snapshot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state.stream_counts(), (1, 1));
    let text = tidepool_http::metrics::render(&state, None).await.unwrap();
    assert!(text.contains("tidepool_dashboard_streams 1\n"), "{text}");
    assert!(
        text.contains("tidepool_dashboard_streams_dropped_total 1\n"),
        "{text}"
    );
    fast_task.abort();
}

#[tokio::test]
async fn no_more_than_max_streams_are_open_at_once() {
    let mut settings = Settings::default();
    settings.max_streams = 2;
    let (state, _pool) = state_with(settings).await;
    let app = tidepool_http::router(state.clone());
    let (s1, mut first) = Events::open(&app, None).await;
    let (s2, second) = Events::open(&app, None).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert!(first.next().await.is_some());
    assert_eq!(state.stream_counts().0, 2);
    let third = send(&app, Method::GET, "/api/v1/stream", None, None).await;
    third.assert_error(StatusCode::SERVICE_UNAVAILABLE, "stream_unavailable");
    assert!(
        third.json["detail"]
            .as_str()
            .unwrap()
            .contains("max_streams")
    );
    drop(second);
    assert_eq!(state.stream_counts().0, 1);
    let again = send(&app, Method::GET, "/api/v1/stream", None, None).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
}

#[tokio::test]
async fn closing_the_streams_ends_them_and_refuses_new_ones() {
    let (state, _pool) = state_with(Settings::default()).await;
    let app = tidepool_http::router(state.clone());
    let (_, mut events) = Events::open(&app, None).await;
    assert!(events.next().await.is_some());
    state.close_streams();
    while events.next().await.is_some() {}
    let r = send(&app, Method::GET, "/api/v1/stream", None, None).await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "stream_unavailable");
    assert!(r.json["detail"].as_str().unwrap().contains("shutting down"));
}

#[tokio::test]
async fn the_page_and_its_assets_are_embedded_and_load_nothing_from_elsewhere() {
    let app = app().await;
    let page = get(&app, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(!page.text.contains("http://") && !page.text.contains("https://"));
    let r = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("connect-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let mut referenced = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in page.text.split(attr).skip(1) {
            let url = part.split('"').next().unwrap();
            if url.starts_with("/dashboard/") {
                referenced.push(url.to_owned());
            }
        }
    }
    referenced.push("/dashboard/uPlot-LICENSE.txt".into());
    assert_eq!(referenced.len(), 5, "{referenced:?}");
    for url in referenced {
        let r = get(&app, &url).await;
        assert_eq!(r.status, StatusCode::OK, "{url}");
        assert!(!r.text.is_empty(), "{url}");
        let want = if url.ends_with(".js") {
            "text/javascript"
        } else if url.ends_with(".css") {
            "text/css"
        } else {
            "text/plain"
        };
        assert!(
            r.content_type.starts_with(want),
            "{url}: {}",
            r.content_type
        );
        if url.ends_with("app.js") {
            assert!(!r.text.contains("http://") && !r.text.contains("https://"));
            assert!(
                !r.text.contains("localStorage"),
                "the token stays in sessionStorage"
            );
        }
        if url.ends_with("uPlot.iife.min.js") {
            assert!(
                r.text
                    .starts_with("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
            );
        }
    }
    let missing = get(&app, "/dashboard/nothing.js").await;
    missing.assert_error(StatusCode::NOT_FOUND, "not_found");
}
