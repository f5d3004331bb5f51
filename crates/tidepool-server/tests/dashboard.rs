//! The live dashboard of the real `tidepool` binary, in headless Chromium:
//! what a person sees (the demo pool's card, a chart that gains points while
//! load runs through the gateway, a health badge that turns degraded when
//! the pool is paused, pause and resume done by clicking with a token
//! entered), what the page says when the server is gone and that it
//! recovers; screenshots go to `CARGO_TARGET_TMPDIR/dashboard/`. Without a
//! browser: the stream's authentication and shutdown, over raw HTTP.
#![cfg(feature = "dashboard")]

mod browser;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use browser::{Browser, eventually};
use common::Server;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

fn admin_token(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("data/admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Queries through the gateway from `clients` sessions until stopped
/// (bounded: at most 60 s and 50 000 queries), each client pausing 45 ms
/// between queries to stay under the demo tenant's rate limit.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    tasks: JoinSet<()>,
}

impl Load {
    async fn start(server: &Server, token: &str, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..clients {
            let id = server.open_session(token, "demo").await;
            let (addr, token) = (server.addr.clone(), token.to_owned());
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            tasks.spawn(async move {
                let path = format!("/api/v1/sessions/{id}/query");
                let body = json!({
                    "sql": "SELECT e.name, s.score FROM employees e JOIN scores s ON s.employee_id = e.id ORDER BY s.score DESC",
                    "params": []
                })
                .to_string();
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed)
                    && std::time::Instant::now() < deadline
                    && done.load(Ordering::Relaxed) < 50_000
                {
                    let r = common::request(&addr, "POST", &path, Some(&token), Some(&body))
                        .await
                        .unwrap();
                    if r.status == 429 {
                        // The demo's admin tenant may send 50 requests/s.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    assert_eq!(r.status, 200, "{}", r.body);
                    tokio::time::sleep(Duration::from_millis(45)).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        Self { stop, done, tasks }
    }

    /// Stops the load; the number of queries run.
    async fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        while let Some(r) = self.tasks.join_next().await {
            r.unwrap();
        }
        self.done.load(Ordering::Relaxed)
    }
}

async fn points(b: &Browser, chart: &str) -> u64 {
    b.find(chart)
        .await
        .attr("data-points")
        .await
        .unwrap()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// Clicks an admin action and confirms it in the page's dialog; the result
/// line once it reports `want`.
async fn act(b: &Browser, button: &str, question: &str, want: &str) -> String {
    b.click(button).await;
    let text = b
        .until_text("the confirmation dialog", "#confirm-text", |t| {
            !t.is_empty()
        })
        .await;
    assert!(b.shown("#confirm").await);
    assert!(text.contains(question), "{text}");
    b.click("#confirm-ok").await;
    b.until_text(want, "#action-result", |r| r.contains(want))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sees_the_demo_pool_at_work_and_pauses_it_by_clicking() {
    let Some(b) = Browser::start("pause").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]).await;
    let token = admin_token(dir.path());
    let base = format!("http://{}", server.addr);
    b.client.goto(&format!("{base}/")).await.unwrap();

    // The demo pool's card, live.
    let card = "a.card[data-pool='demo']";
    eventually("the demo pool's card", Duration::from_secs(15), || async {
        let text = b.text(card).await.to_lowercase();
        match [
            "demo",
            "sqlite",
            "healthy",
            "in use",
            "max 4",
            "hit ratio",
            "/s",
        ]
        .into_iter()
        .find(|want| !text.contains(want))
        {
            None => Ok(()),
            Some(missing) => Err(format!("no {missing:?} in {text}")),
        }
    })
    .await;
    b.until_text("the live indicator", "#live", |t| t.starts_with("live"))
        .await;

    // Without a token there are no actions; with the admin token entered in
    // the page, there are, and the token is kept in sessionStorage only.
    b.click(card).await;
    assert_eq!(b.text("#pool-name").await, "demo");
    assert!(b.shown("#admin-hint").await && !b.shown("#admin").await);
    b.find("#token").await.send_keys(&token).await.unwrap();
    b.click("#token-use").await;
    eventually("signed in", Duration::from_secs(15), || async {
        let who = b.text("#who").await;
        if who.contains("admin (admin)") && b.shown("#admin").await {
            Ok(())
        } else {
            Err(who)
        }
    })
    .await;
    let kept = b
        .client
        .execute(
            "return [sessionStorage.getItem('tidepool.token'), localStorage.length, document.cookie, location.href]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept[0], token.as_str());
    assert_eq!(kept[1], 0);
    assert_eq!(kept[2], "");
    assert!(!kept[3].as_str().unwrap().contains(&token), "{kept}");

    // Load through the gateway: the pool's charts gain points, the gets
    // per second show, and the advice is there for the admin.
    let load = Load::start(&server, &token, 2).await;
    let before = points(&b, "#chart-rates").await;
    let readout = eventually(
        "gets per second under load",
        Duration::from_secs(30),
        || async {
            let now = points(&b, "#chart-rates").await;
            let r = b.text("#chart-rates .readout").await;
            let gets: f64 = r
                .split("gets ")
                .nth(1)
                .and_then(|x| x.split_whitespace().next())
                .and_then(|x| x.replace(',', "").parse().ok())
                .unwrap_or(0.0);
            if now >= before + 5 && gets > 0.0 {
                Ok(r)
            } else {
                Err(format!("{now} points (from {before}), readout {r:?}"))
            }
        },
    )
    .await;
    assert!(readout.contains("/s"), "{readout}");
    let connections = b.text("#chart-connections .readout").await;
    assert!(
        connections.contains("in use") && connections.contains("connection"),
        "{connections}"
    );
    for chart in [
        "#chart-connections",
        "#chart-waiting",
        "#chart-acquire",
        "#chart-hold",
    ] {
        assert!(points(&b, chart).await >= 5, "{chart} has no points");
    }
    let sizing = b.text("#advice").await;
    assert!(
        sizing.contains("configured max_size") && sizing.contains("Little's law"),
        "{sizing}"
    );
    b.client.set_window_size(1400, 1700).await.unwrap();
    b.screenshot("pool-demo-under-load").await;
    b.client.set_window_size(1400, 1000).await.unwrap();
    b.click("nav a[href='#/']").await;
    b.find(card).await;
    b.until_text("the sessions", "#sessions-summary", |t| {
        t.contains("2 active sessions")
    })
    .await;
    b.screenshot("overview-under-load").await;
    let queries = load.stop().await;
    assert!(queries > 0);
    eprintln!("{queries} queries ran through the gateway while the page watched");
    b.click(card).await;

    // Healthy once the load is gone; paused by clicking, degraded.
    b.until_text("a healthy badge", "#pool-badge", |s| {
        s.eq_ignore_ascii_case("healthy")
    })
    .await;
    let result = act(&b, "#act-pause", "Pause pool demo?", "demo paused").await;
    assert!(result.starts_with('✓'), "{result}");
    b.until_text("a degraded badge", "#pool-badge", |s| {
        s.eq_ignore_ascii_case("degraded")
    })
    .await;
    assert!(b.text("#pool-reasons").await.contains("pool is paused"));
    let api = server.call("GET", "/api/v1/pools/demo", None, None).await;
    assert_eq!(api.json["gauges"]["paused"], true, "{}", api.body);
    b.click("nav a[href='#/']").await;
    let text = b
        .until_text("the card turning degraded", card, |t| {
            t.to_lowercase().contains("degraded") && t.contains("pool is paused")
        })
        .await
        .to_lowercase();
    assert!(!text.contains("healthy"), "{text}");
    b.screenshot("overview-paused").await;

    // A cancelled action does nothing; resume by clicking.
    b.click(card).await;
    b.click("#act-evict").await;
    b.find("#confirm-cancel").await.click().await.unwrap();
    b.until_text("the cancellation", "#action-result", |r| {
        r.contains("Cancelled")
    })
    .await;
    let api = server.call("GET", "/api/v1/pools/demo", None, None).await;
    assert_eq!(api.json["counters"]["closed"]["evicted"], 0);
    act(&b, "#act-resume", "Resume pool demo?", "demo resumed").await;
    b.until_text("a healthy badge again", "#pool-badge", |s| {
        s.eq_ignore_ascii_case("healthy")
    })
    .await;
    let api = server.call("GET", "/api/v1/pools/demo", None, None).await;
    assert_eq!(api.json["gauges"]["paused"], false);
    let log = server.log_text();
    assert!(log.contains("admin action"), "the actions were not logged");
    assert!(!log.contains(&token), "the token was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_when_the_server_is_gone_and_recovers_when_it_returns() {
    let Some(b) = Browser::start("gone").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]).await;
    let addr = server.addr.clone();
    b.client.goto(&format!("http://{addr}/")).await.unwrap();
    b.find("a.card[data-pool='demo']").await;
    assert!(!b.shown("#banner").await);

    drop(server); // killed
    let message = eventually(
        "the message that the server is gone",
        Duration::from_secs(20),
        || async {
            if b.shown("#banner").await {
                Ok(b.text("#banner").await)
            } else {
                Err("no banner".into())
            }
        },
    )
    .await;
    assert!(
        message.contains("Lost connection to the tidepool server") && message.contains("Retrying"),
        "{message}"
    );
    assert_eq!(b.text("#live").await, "disconnected");
    b.screenshot("server-gone").await;

    let _server = Server::start_on(dir.path(), &addr, &[], &[]).await;
    let recovered = || async {
        let live = b.text("#live").await;
        if !b.shown("#banner").await && live.starts_with("live") {
            Ok(())
        } else {
            Err(live)
        }
    };
    eventually("the page recovering", Duration::from_secs(30), recovered).await;
    b.find("a.card[data-pool='demo']").await;

    // A wrong token is refused with a message, as the API refuses it;
    // forgetting it brings the page back.
    b.find("#token")
        .await
        .send_keys("not-the-token-0123456789")
        .await
        .unwrap();
    b.click("#token-use").await;
    let refused = b
        .until_text("the refusal", "#banner", |t| t.contains("refused"))
        .await;
    assert!(
        refused.contains("the bearer token is not valid"),
        "{refused}"
    );
    assert_eq!(b.text("#live").await, "refused");
    b.click("#token-forget").await;
    eventually(
        "the page back without a token",
        Duration::from_secs(15),
        recovered,
    )
    .await;
}

/// Asks for the stream with `token` over raw HTTP; the status, the text
/// read (a refusal in full; a stream up to its first event) and the socket.
async fn open_stream(addr: &str, token: Option<&str>) -> (u16, String, tokio::net::TcpStream) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    // `Connection: close`: a refusal ends with its body, a stream goes on.
    s.write_all(
        format!("GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while !(text.starts_with("HTTP/1.1 200") && text.contains("event: snapshot")) {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("no answer within 10 s");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_streams_to_whom_the_api_answers_and_shuts_down_with_streams_open() {
    let dir = tempfile::tempdir().unwrap();
    let toml = r#"
[server]
monitoring_requires_token = true
shutdown_timeout = "30s"
max_streams = 1

[[tenants]]
name = "grafana"
role = "monitor"
tokens = ["monitor-token-0123456789abcdef"]

[pools.demo]
backend = "sqlite"
path = "demo.db"
"#;
    let server = Server::with_config(dir.path(), toml, &[]).await;
    for (token, want) in [
        (None, 401),
        (Some("wrong-token-0123456789abcdef"), 401),
        (Some("monitor-token-0123456789abcdef"), 200),
    ] {
        let api = server.call("GET", "/api/v1/pools", token, None).await;
        let (status, text, _) = open_stream(&server.addr, token).await;
        assert_eq!((api.status, status), (want, want), "{token:?}: {text}");
        if want == 200 {
            assert!(text.contains("content-type: text/event-stream"), "{text}");
            assert!(text.contains(r#""name":"demo""#), "{text}");
        } else {
            assert!(text.contains(r#""error":"unauthorized""#), "{text}");
        }
    }
    // One stream at most (the one above goes once the server sees its
    // connection closed); an open stream does not hold shutdown up to its
    // 30 s deadline.
    let monitor = Some("monitor-token-0123456789abcdef");
    let mut open = eventually("a free stream slot", Duration::from_secs(10), || async {
        match open_stream(&server.addr, monitor).await {
            (200, _, s) => Ok(s),
            (status, text, _) => Err(format!("{status}: {text}")),
        }
    })
    .await;
    let (status, text, _) = open_stream(&server.addr, monitor).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("max_streams"), "{text}");
    let started = std::time::Instant::now();
    let (exit, log) = server.terminate().await;
    assert!(exit.success(), "{log}");
    // Generous but meaningful: well under the 30 s shutdown_timeout a
    // stream that never ends would make the server wait.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(!log.contains("did not finish in time"), "{log}");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), open.read_to_end(&mut rest)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_pools_fit_on_the_overview_with_the_troubled_first() {
    let Some(b) = Browser::start("many").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::from("[server]\ntokens = [\"admin-token-0123456789abcdef\"]\n");
    for i in 0..200 {
        toml.push_str(&format!(
            "[pools.p{i:03}]\nbackend = \"sqlite\"\npath = \"p{i:03}.db\"\nmax_size = 2\n"
        ));
    }
    let server = Server::with_config(dir.path(), &toml, &[]).await;
    let paused = server
        .call(
            "POST",
            "/api/v1/pools/p150/pause",
            Some("admin-token-0123456789abcdef"),
            None,
        )
        .await;
    assert_eq!(paused.status, 200, "{}", paused.body);
    b.client
        .goto(&format!("http://{}/", server.addr))
        .await
        .unwrap();
    b.until_text("the pool count", "#count", |t| t == "200 pools")
        .await;
    let cards = b
        .client
        .find_all(fantoccini::Locator::Css("a.card"))
        .await
        .unwrap();
    assert_eq!(cards.len(), 200);
    let first = cards[0].text().await.unwrap();
    assert!(
        first.starts_with("p150") && first.contains("pool is paused"),
        "the degraded pool is not first: {first}"
    );
    assert_eq!(
        cards[1].attr("data-pool").await.unwrap().as_deref(),
        Some("p000")
    );
    b.screenshot("overview-200-pools").await;
    b.find("#filter").await.send_keys("p19").await.unwrap();
    b.until_text("the filtered count", "#count", |t| t == "10 of 200 pools")
        .await;
}
