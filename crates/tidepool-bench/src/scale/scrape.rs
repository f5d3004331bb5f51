//! Does a Prometheus scrape move get + return? The uncontended loop of
//! suite 2 on tidepool, in slices with and without a thread scraping the
//! pool, compared pair by pair.
//!
//! # Method
//! A tidepool pool of [`POOL_SIZE`] warmed
//! connections, in a registry under an `AppState`, and an OS thread that,
//! while switched on, wakes every 100 ms, takes `pool.stats()` and renders
//! the whole `/metrics` text (`tidepool_http::metrics::render`, run on that
//! thread), as a Prometheus server scraping that often would make it. On a
//! runtime worker the loop (get, increment, drop) runs in slices of the
//! slice budget; slices come in pairs, one *quiet* and one *scraped* (the
//! thread switched on for it), in a random order within each pair. A
//! machine shared with other work speeds up and slows down over seconds; a
//! pair's two slices are a fraction of a second apart, so they see the same
//! phase, and the pair's ratio is what is compared.
//!
//! Under "scraping changes nothing", the scraped slice is the slower of its
//! pair as often as not: the scrape is judged not measurable when the share
//! of pairs in which it was slower lies within the 95 % range of a fair coin
//! over that many pairs (a sign test).

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
    /// ns per get + return of each quiet slice, pair by pair.
    pub quiet_ns: Vec<f64>,
    /// ns per get + return of each scraped slice, pair by pair.
    pub scraped_ns: Vec<f64>,
    /// Scrapes made in all.
    pub scrapes: u64,
    /// Mean time of one scrape (`stats()` and the rendering), µs.
    pub scrape_us: f64,
    /// How often the thread scraped, ms.
    pub every_ms: u64,
    /// Length of a slice, ms.
    pub slice_ms: u64,
}

/// The verdict of a comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Median over pairs of scraped / quiet − 1.
    pub change: f64,
    /// Share of pairs whose scraped slice was the slower.
    pub slower_share: f64,
    /// The 95 % range of that share under a fair coin, low end.
    pub fair_low: f64,
    /// The same, high end.
    pub fair_high: f64,
}

impl Verdict {
    /// Whether the scraped slices were slower no more often than chance
    /// allows.
    pub fn within_noise(&self) -> bool {
        self.slower_share >= self.fair_low && self.slower_share <= self.fair_high
    }
}

/// The range of heads, as shares, that a fair coin tossed `n` times lands
/// in with at least 95 % probability (symmetric, from the binomial).
pub fn fair_coin_range(n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    // P(X ≤ k) for X ~ Binomial(n, 1/2), by summing the terms.
    let half_n = 0.5f64.powi(i32::try_from(n).unwrap_or(i32::MAX));
    let mut term = half_n;
    let mut below = 0.0;
    let mut k = 0;
    // The largest k with P(X < k) ≤ 2.5 %.
    while k < n && below + term <= 0.025 {
        below += term;
        term *= (n - k) as f64 / (k + 1) as f64;
        k += 1;
    }
    (k as f64 / n as f64, (n - k) as f64 / n as f64)
}

impl ScrapeResults {
    /// Min / median / max over the quiet slices.
    pub fn quiet(&self) -> Spread {
        Spread::of(&self.quiet_ns)
    }

    /// Min / median / max over the scraped slices.
    pub fn scraped(&self) -> Spread {
        Spread::of(&self.scraped_ns)
    }

    /// Min / median / max over pairs of scraped / quiet − 1.
    pub fn changes(&self) -> Spread {
        let changes: Vec<f64> = self
            .quiet_ns
            .iter()
            .zip(&self.scraped_ns)
            .map(|(q, s)| s / q - 1.0)
            .collect();
        Spread::of(&changes)
    }

    /// The pairs' verdict.
    pub fn verdict(&self) -> Verdict {
        let pairs = self.quiet_ns.len().min(self.scraped_ns.len());
        let slower = self
            .quiet_ns
            .iter()
            .zip(&self.scraped_ns)
            .filter(|(q, s)| s > q)
            .count();
        let (fair_low, fair_high) = fair_coin_range(pairs);
        Verdict {
            change: self.changes().median,
            slower_share: if pairs == 0 {
                0.5
            } else {
                slower as f64 / pairs as f64
            },
            fair_low,
            fair_high,
        }
    }
}

/// Runs the comparison.
pub fn run(rt: &Runtime, cfg: &ScaleConfig, progress: &mut dyn FnMut(&str)) -> ScrapeResults {
    let slice = Duration::from_millis(cfg.scrape_slice_ms);
    let every = Duration::from_millis(cfg.scrape_every_ms);
    let (pool, state) = rt.block_on(async {
        let pool = Tidepool::build(POOL_SIZE);
        pool.warm(POOL_SIZE).await;
        let registry = Arc::new(tidepool::Registry::new());
        registry
            .insert(pool.0.clone())
            .expect("an empty registry takes any name");
        (pool, tidepool_http::AppState::builder(registry).build())
    });
    let switch = Arc::new(Switch::default());
    let scraper = {
        let (pool, state, switch) = (pool.clone(), state.clone(), Arc::clone(&switch));
        let handle = rt.handle().clone();
        std::thread::spawn(move || scrape_while_on(&pool, &state, &handle, every, &switch))
    };
    let mut out = ScrapeResults {
        quiet_ns: Vec::new(),
        scraped_ns: Vec::new(),
        scrapes: 0,
        scrape_us: 0.0,
        every_ms: cfg.scrape_every_ms,
        slice_ms: cfg.scrape_slice_ms,
    };
    let mut rng = fastrand::Rng::new();
    rt.block_on(async {
        let pool = pool.clone();
        tokio::spawn(async move { loop_async(&pool, slice).await })
            .await
            .expect("the warm-up panicked");
    });
    for pair in 0..cfg.scrape_pairs {
        let mut figures = [0.0; 2];
        for variant in crate::pools::run_order(2, &mut rng) {
            switch.on.store(variant == 1, Ordering::Release);
            let pool = pool.clone();
            figures[variant] = rt.block_on(async move {
                tokio::spawn(async move { loop_async(&pool, slice).await })
                    .await
                    .expect("the measuring task panicked")
            });
        }
        switch.on.store(false, Ordering::Release);
        if (pair + 1) % 10 == 0 || pair + 1 == cfg.scrape_pairs {
            progress(&format!(
                "scale scrape pair {}/{}: quiet {:.1} ns/op, scraped {:.1} ns/op",
                pair + 1,
                cfg.scrape_pairs,
                figures[0],
                figures[1]
            ));
        }
        out.quiet_ns.push(figures[0]);
        out.scraped_ns.push(figures[1]);
    }
    switch.stop.store(true, Ordering::Release);
    let (scrapes, scrape_us) = scraper.join().expect("the scraping thread panicked");
    out.scrapes = scrapes;
    out.scrape_us = scrape_us;
    out
}

/// Whether the scraping thread scrapes, and whether it ends.
#[derive(Debug, Default)]
struct Switch {
    on: AtomicBool,
    stop: AtomicBool,
}

/// Scrapes every `every` while switched on, until stopped; returns the
/// number of scrapes and their mean time in µs.
fn scrape_while_on(
    pool: &Tidepool,
    state: &tidepool_http::AppState,
    handle: &Handle,
    every: Duration,
    switch: &Switch,
) -> (u64, f64) {
    let mut scrapes = 0u64;
    let mut busy = Duration::ZERO;
    let mut next = Instant::now();
    // Slept in short steps so that switching takes effect at once.
    let step = Duration::from_millis(1).min(every);
    while !switch.stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if !switch.on.load(Ordering::Acquire) {
            // The first scrape of a scraped slice comes at its start.
            next = now;
            std::thread::sleep(step);
            continue;
        }
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
    fn the_scraper_scrapes_only_in_scraped_slices() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cfg = ScaleConfig {
            scrape_pairs: 3,
            scrape_slice_ms: 30,
            scrape_every_ms: 10,
            ..ScaleConfig::quick()
        };
        let r = run(&rt, &cfg, &mut |_| {});
        assert_eq!((r.quiet_ns.len(), r.scraped_ns.len()), (3, 3));
        assert!(r.quiet_ns.iter().chain(&r.scraped_ns).all(|&ns| ns > 0.0));
        // At most four per scraped slice (at 0, 10, 20 and 30 ms), none in
        // the quiet ones; at least one in all, however slow the machine.
        assert!((1..=12).contains(&r.scrapes), "{} scrapes", r.scrapes);
        assert!(r.scrape_us > 0.0);
    }

    #[test]
    fn pairs_are_judged_by_a_sign_test() {
        assert_eq!(fair_coin_range(20), (0.3, 0.7));
        let (low, high) = fair_coin_range(30);
        assert!((low - 10.0 / 30.0).abs() < 1e-9 && (high - 20.0 / 30.0).abs() < 1e-9);
        let r = |scraped: Vec<f64>| ScrapeResults {
            quiet_ns: vec![100.0; scraped.len()],
            scraped_ns: scraped,
            scrapes: 0,
            scrape_us: 0.0,
            every_ms: 100,
            slice_ms: 300,
        };
        let mixed = r((0..20)
            .map(|i| if i % 2 == 0 { 101.0 } else { 99.0 })
            .collect());
        assert!(mixed.verdict().within_noise());
        let slower = r((0..20).map(|i| if i < 16 { 105.0 } else { 99.0 }).collect());
        let v = slower.verdict();
        assert!((v.slower_share - 0.8).abs() < 1e-9 && !v.within_noise());
        assert!((v.change - 0.05).abs() < 1e-9, "{}", v.change);
    }
}
