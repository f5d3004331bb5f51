//! Headless Chromium (Debian's `chromium`) driven over WebDriver by
//! chromedriver (Debian's `chromium-driver`) through `fantoccini`: nothing
//! is downloaded at run time. Absent browser: the test is skipped with a
//! printed reason, or fails under `TIDEPOOL_REQUIRE_SERVICES=1`.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

/// A program on the `PATH` (or named by `var`), if present.
fn program(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(var)
        && !p.is_empty()
    {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// A browser session; chromedriver is killed on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    /// Where screenshots go.
    pub out: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a 1400×1000 window;
    /// `None` (after printing why) when either is not installed, unless
    /// services are required.
    pub async fn start(test: &str) -> Option<Self> {
        let chromium = program(
            "TIDEPOOL_CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let driver = program("TIDEPOOL_CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let msg = "chromium and chromedriver are not installed (apt-get install chromium chromium-driver, as .ci/services does)";
            assert!(
                !tidepool_testkit::services_required(),
                "{msg}; TIDEPOOL_REQUIRE_SERVICES=1 makes this a failure"
            );
            eprintln!("skipping {test}: {msg}");
            return None;
        };
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
        std::fs::create_dir_all(&out).unwrap();
        let port = free_port();
        let log = std::fs::File::create(out.join(format!("chromedriver-{test}.log"))).unwrap();
        let mut driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap().keep();
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1400,1000",
                    "--hide-scrollbars", "--no-first-run", "--disable-extensions",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    if let Ok(Some(status)) = driver.try_wait() {
                        panic!("chromedriver exited ({status}): see {}", out.display());
                    }
                    assert!(Instant::now() < deadline, "no browser session: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Some(Self {
            client,
            driver,
            out,
        })
    }

    /// Saves a PNG screenshot of the window as `name.png`; its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = self.out.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// The element at `css`, waiting up to 15 s for it.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// The visible text of the element at `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Whether the element at `css` is displayed.
    pub async fn shown(&self, css: &str) -> bool {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// The text of the element at `css` once `ok` accepts it (up to 20 s).
    pub async fn until_text(&self, what: &str, css: &str, ok: impl Fn(&str) -> bool) -> String {
        eventually(what, Duration::from_secs(20), || async {
            let t = self.text(css).await;
            if ok(&t) { Ok(t) } else { Err(t) }
        })
        .await
    }

    /// Clicks the element at `css`.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }
}

/// Polls `check` every 200 ms until it returns `Some`, up to `within`;
/// panics with `what` and the last value seen.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "{what} did not happen within {within:?}; last seen: {last}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Copies `from` to `to` (for the screenshot the README shows).
pub fn keep(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
}
