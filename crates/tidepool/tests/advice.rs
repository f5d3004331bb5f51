//! Sizing advice that survives bursts: the estimate is made over the span
//! in which load ran, with the peak beside the mean, and no two parts of
//! one answer disagree.
mod common;

use std::time::Duration;

use common::{pool, quiet};
use tidepool::{Advice, AdviceKind, SizingVerdict};

/// Every recommendation about `max_size` suggests the estimate's number,
/// and the verdict agrees with it.
fn assert_consistent(advice: &Advice) {
    let s = &advice.sizing;
    for r in &advice.recommendations {
        if matches!(r.kind, AdviceKind::RaiseMaxSize | AdviceKind::LowerMaxSize) {
            assert_eq!(r.suggested, Some(s.recommended_max_size), "{advice:?}");
        }
        if r.kind == AdviceKind::RaiseMaxSize {
            assert_eq!(s.verdict, SizingVerdict::Undersized, "{advice:?}");
        }
        if r.kind == AdviceKind::LowerMaxSize {
            assert_eq!(s.verdict, SizingVerdict::Oversized, "{advice:?}");
        }
    }
    match s.verdict {
        SizingVerdict::Undersized => {
            assert!(s.recommended_max_size > s.configured_max_size, "{advice:?}")
        }
        SizingVerdict::RightSized => {
            assert!(
                s.recommended_max_size <= s.configured_max_size,
                "{advice:?}"
            )
        }
        _ => {}
    }
}

#[tokio::test(start_paused = true)]
async fn five_simultaneous_requests_are_not_sized_as_one() {
    let (pool, _) = pool(quiet(2));
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn = pool.get().await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
                drop(conn);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let advice = pool.advice();
    let s = &advice.sizing;
    // All five asked at once, before any connection was open.
    assert_eq!((s.peak_in_use, s.peak_demand), (2, 5), "{s:?}");
    assert_eq!(s.recommended_max_size, 5, "{advice:?}");
    assert_eq!(s.verdict, SizingVerdict::Undersized);
    assert_consistent(&advice);
}

#[tokio::test(start_paused = true)]
async fn the_rate_is_measured_over_the_span_in_which_load_ran() {
    let mut cfg = quiet(8);
    cfg.stats_window = Duration::from_secs(60);
    let (pool, _) = pool(cfg);
    tokio::time::sleep(Duration::from_secs(23)).await;
    // 15 s of load at 28.8 requests/s, each held 20 ms, ending 38 s into
    // the window.
    let interval = Duration::from_secs_f64(1.0 / 28.8);
    let mut tasks = Vec::new();
    for _ in 0..432 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.get().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(conn);
        }));
        tokio::time::sleep(interval).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let advice = pool.advice();
    let rate = advice.sizing.arrival_rate;
    assert!(
        (rate - 28.8).abs() < 28.8 * 0.05,
        "{rate} requests/s: {advice:?}"
    );
    assert_consistent(&advice);
}

#[tokio::test(start_paused = true)]
async fn a_pool_near_full_on_average_gets_one_answer() {
    let (pool, _) = pool(quiet(2));
    // Two callers keep both connections busy most of the time.
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..200 {
                    let conn = pool.get().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(45)).await;
                    drop(conn);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let advice = pool.advice();
    assert!(
        advice
            .recommendations
            .iter()
            .any(|r| r.kind == AdviceKind::RaiseMaxSize),
        "{advice:?}"
    );
    assert_consistent(&advice);
}
