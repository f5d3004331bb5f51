//! Does a Prometheus scrape move get + return? The uncontended loop of
//! suite 2 on tidepool, with and without a thread that scrapes the pool.
//!
//! # Method
//! A tidepool pool of [`POOL_SIZE`](crate::uncontended::POOL_SIZE) warmed
//! connections, in a registry under an `AppState`. The loop (get,
//! increment, drop) runs on a runtime worker for the loop budget after a
//! tenth of it as warm-up. In the "scraped" variant an OS thread, started
//! before the loop and stopped after it, wakes every 100 ms, takes
//! `pool.stats()` and renders the whole `/metrics` text
//! (`tidepool_http::metrics::render`, run on the calling thread), as a
//! Prometheus server scraping that often would make it. Each repetition
//! runs both variants on fresh pools, in a random order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::runtime::{Handle, Runtime};

use super::ScaleConfig;
use crate::pools::{AsyncPool, Tidepool};
use crate::stats::Spread;
use crate::uncontended::{POOL_SIZE, loop_async};

/// The comparison's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScrapeResults {
    /// ns per get + return with nobody reading, one per repetition.
    pub quiet_ns: Vec<f64>,
    /// ns per get + return while scraped, one per repetition.
    pub scraped_ns: Vec<f64>,
    /// Scrapes made during each scraped loop.
    pub scrapes: Vec<u64>,
    /// Mean time of one scrape (`stats()` and the rendering), µs, per
    /// repetition.
    pub scrape_us: Vec<f64>,
    /// How often the thread scraped, ms.
    pub every_ms: u64,
}

impl ScrapeResults {
    /// Min / median / max without scraping.
    pub fn quiet(&self) -> Spread {
        Spread::of(&self.quiet_ns)
    }

    /// Min / median / max while scraped.
    pub fn scraped(&self) -> Spread {
        Spread::of(&self.scraped_ns)
    }

    /// The difference of the medians as a share of the quiet median, and
    /// whether it stays within the noise: no larger than the quiet
    /// repetitions' own range (max − min) relative to their median.
    pub fn verdict(&self) -> (f64, f64, bool) {
        let quiet = self.quiet();
        let scraped = self.scraped();
        let change = if quiet.median > 0.0 {
            scraped.median / quiet.median - 1.0
        } else {
            0.0
        };
        let noise = quiet.relative_range();
        (change, noise, change.abs() <= noise)
    }
}

/// Runs the comparison.
pub fn run(rt: &Runtime, cfg: &ScaleConfig, progress: &mut dyn FnMut(&str)) -> ScrapeResults {
    let budget = Duration::from_millis(cfg.scrape_loop_ms);
    let every = Duration::from_millis(cfg.scrape_every_ms);
    let mut out = ScrapeResults {
        quiet_ns: Vec::new(),
        scraped_ns: Vec::new(),
        scrapes: Vec::new(),
        scrape_us: Vec::new(),
        every_ms: cfg.scrape_every_ms,
    };
    let mut rng = fastrand::Rng::new();
    for rep in 0..cfg.scrape_reps {
        for variant in crate::pools::run_order(2, &mut rng) {
            let scraped = variant == 1;
            let m = once(rt, budget, scraped.then_some(every));
            progress(&format!(
                "scale scrape rep {}/{} {:<8} {:>6.1} ns/op{}",
                rep + 1,
                cfg.scrape_reps,
                if scraped { "scraped" } else { "quiet" },
                m.ns,
                if scraped {
                    format!(", {} scrapes of {:.0} µs", m.scrapes, m.scrape_us)
                } else {
                    String::new()
                }
            ));
            if scraped {
                out.scraped_ns.push(m.ns);
                out.scrapes.push(m.scrapes);
                out.scrape_us.push(m.scrape_us);
            } else {
                out.quiet_ns.push(m.ns);
            }
        }
    }
    out
}

struct Measured {
    ns: f64,
    scrapes: u64,
    scrape_us: f64,
}

/// One loop, scraped every `every` when given.
fn once(rt: &Runtime, budget: Duration, every: Option<Duration>) -> Measured {
    let (pool, state) = rt.block_on(async {
        let pool = Tidepool::build(POOL_SIZE);
        pool.warm(POOL_SIZE).await;
        let registry = Arc::new(tidepool::Registry::new());
        registry
            .insert(pool.0.clone())
            .expect("an empty registry takes any name");
        (pool, tidepool_http::AppState::builder(registry).build())
    });
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = every.map(|every| {
        let (pool, state, stop) = (pool.clone(), state.clone(), Arc::clone(&stop));
        let handle = rt.handle().clone();
        std::thread::spawn(move || scrape_until(&pool, &state, &handle, every, &stop))
    });
    let ns = rt.block_on(async move {
        tokio::spawn(async move {
            loop_async(&pool, budget / 10).await;
            loop_async(&pool, budget).await
        })
        .await
        .expect("the measuring task panicked")
    });
    stop.store(true, Ordering::Release);
    let (scrapes, scrape_us) = scraper
        .map(|t| t.join().expect("the scraping thread panicked"))
        .unwrap_or((0, 0.0));
    Measured {
        ns,
        scrapes,
        scrape_us,
    }
}

/// Scrapes every `every` until `stop`; returns the number of scrapes and
/// their mean time in µs.
fn scrape_until(
    pool: &Tidepool,
    state: &tidepool_http::AppState,
    handle: &Handle,
    every: Duration,
    stop: &AtomicBool,
) -> (u64, f64) {
    let mut scrapes = 0u64;
    let mut busy = Duration::ZERO;
    let mut next = Instant::now() + every;
    // Slept in short steps so that stopping does not wait a whole period.
    let step = Duration::from_millis(5).min(every);
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(step.min(next - now));
            continue;
        }
        next += every;
        let start = Instant::now();
        drop(std::hint::black_box(pool.0.stats()));
        let text = handle
            .block_on(tidepool_http::metrics::render(state, None))
            .expect("rendering to a String cannot fail");
        drop(std::hint::black_box(text));
        busy += start.elapsed();
        scrapes += 1;
    }
    let mean_us = if scrapes == 0 {
        0.0
    } else {
        busy.as_secs_f64() * 1e6 / scrapes as f64
    };
    (scrapes, mean_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scraper_scrapes_while_the_loop_runs() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let m = once(
            &rt,
            Duration::from_millis(120),
            Some(Duration::from_millis(10)),
        );
        assert!(m.ns > 0.0);
        assert!(m.scrapes >= 2, "{} scrapes", m.scrapes);
        let quiet = once(&rt, Duration::from_millis(20), None);
        assert_eq!(quiet.scrapes, 0);
        let r = ScrapeResults {
            quiet_ns: vec![60.0, 62.0, 64.0],
            scraped_ns: vec![61.0, 63.0, 66.0],
            scrapes: vec![10, 10, 10],
            scrape_us: vec![50.0; 3],
            every_ms: 100,
        };
        let (change, noise, within) = r.verdict();
        assert!((change - (63.0 / 62.0 - 1.0)).abs() < 1e-9);
        assert!((noise - 4.0 / 62.0).abs() < 1e-9);
        assert!(within);
    }
}
