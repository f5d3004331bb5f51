//! Health classification and advice from live statistics.
mod common;

use std::time::Duration;

use common::{pool, quiet};
use tidepool::{AdviceKind, HealthStatus, SizingVerdict};

#[tokio::test(start_paused = true)]
async fn utilization_moves_health_through_its_three_states() {
    let (pool, _) = pool(quiet(10));
    let h = pool.health();
    assert_eq!(h.status, HealthStatus::Healthy);
    assert!(h.reasons.is_empty());
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(pool.get().await.unwrap());
    }
    let h = pool.health();
    assert_eq!(h.status, HealthStatus::Degraded, "80 % in use: {h:?}");
    assert!(h.reasons[0].contains("utilization 80%"), "{:?}", h.reasons);
    held.push(pool.get().await.unwrap());
    held.push(pool.get().await.unwrap());
    let h = pool.health();
    assert_eq!(h.status, HealthStatus::Degraded, "100 % in use: {h:?}");
    assert!(h.reasons[0].contains("saturated"), "{:?}", h.reasons);
    drop(held);
    assert_eq!(pool.health().status, HealthStatus::Healthy);
    pool.close();
    assert_eq!(pool.health().status, HealthStatus::Unhealthy);
}

#[tokio::test(start_paused = true)]
async fn recent_errors_degrade_then_fail_health_and_age_out() {
    let mut cfg = quiet(2);
    cfg.max_retries = 0;
    cfg.stats_window = Duration::from_secs(60);
    let (pool, knobs) = pool(cfg);
    knobs.set_fail_all(true);
    assert!(pool.get().await.is_err());
    let h = pool.health();
    assert_eq!(h.status, HealthStatus::Degraded, "{h:?}");
    assert_eq!(h.recent_errors, 1);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await; // past the create gate
        assert!(pool.get().await.is_err());
    }
    let h = pool.health();
    assert_eq!(h.status, HealthStatus::Unhealthy, "{h:?}");
    assert!(
        h.reasons.iter().any(|r| r.contains("11 errors")),
        "{:?}",
        h.reasons
    );
    knobs.set_fail_all(false);
    tokio::time::sleep(Duration::from_secs(70)).await;
    assert_eq!(
        pool.health().status,
        HealthStatus::Healthy,
        "errors age out of the window"
    );
    let advice = pool.advice();
    assert!(advice.recommendations.is_empty(), "{advice:?}");
}

#[tokio::test(start_paused = true)]
async fn littles_law_sizes_the_pool_from_arrivals_and_hold_time() {
    let mut cfg = quiet(6);
    cfg.stats_window = Duration::from_secs(60);
    let (pool, _) = pool(cfg);
    // 100 gets per second, each held 50 ms: L = 100 × 0.05 = 5 connections,
    // which 6 serve without queueing.
    let mut tasks = Vec::new();
    for i in 0..3000u64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 10)).await;
            if let Ok(conn) = pool.get().await {
                tokio::time::sleep(Duration::from_millis(50)).await;
                drop(conn);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let advice = pool.advice();
    let s = &advice.sizing;
    assert!((s.arrival_rate - 100.0).abs() < 10.0, "{s:?}");
    assert!((s.mean_hold_ms - 50.0).abs() < 1.0, "{s:?}");
    assert!((s.connections_needed - 5.0).abs() < 0.6, "{s:?}");
    assert_eq!(
        s.recommended_max_size, 7,
        "⌈5 × 1.25⌉ (rounded up from ~6.25)"
    );
    assert_eq!(s.verdict, SizingVerdict::Undersized);
    let raise = advice
        .recommendations
        .iter()
        .find(|r| r.kind == AdviceKind::RaiseMaxSize)
        .expect("advice to raise max_size");
    assert_eq!(raise.suggested, Some(7), "{raise:?}");
    assert_eq!(pool.counters().timeouts, 0);
}

#[tokio::test(start_paused = true)]
async fn a_low_hit_ratio_advises_raising_min_idle() {
    let mut cfg = quiet(50);
    cfg.idle_timeout = Some(Duration::from_millis(100));
    cfg.maintenance_interval = Duration::from_millis(50);
    let (pool, _) = pool(cfg);
    // Every get finds the pool empty: the idle timeout closed the last one.
    for _ in 0..30 {
        drop(pool.get().await.unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let advice = pool.advice();
    let r = advice
        .recommendations
        .iter()
        .find(|r| r.kind == AdviceKind::RaiseMinIdle)
        .unwrap_or_else(|| panic!("advice to raise min_idle: {advice:?}"));
    assert!(r.message.contains("hit ratio 0%"), "{}", r.message);
    assert_eq!(pool.stats().derived.hit_ratio, Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn frequent_overflow_advises_raising_max_size() {
    let mut cfg = quiet(1);
    cfg.max_overflow = 2;
    let (pool, _) = pool(cfg);
    let base = pool.get().await.unwrap();
    for _ in 0..25 {
        drop(pool.get().await.unwrap()); // overflow, closed on return
    }
    drop(base);
    let advice = pool.advice();
    assert!(
        advice
            .recommendations
            .iter()
            .any(|r| r.kind == AdviceKind::RaiseMaxSize && r.message.contains("overflow")),
        "{advice:?}"
    );
}

/// Saturation is not failure: a full pool with callers waiting and no
/// errors is degraded, with the reason.
#[tokio::test(start_paused = true)]
async fn a_saturated_pool_without_errors_is_degraded_not_unhealthy() {
    let (pool, _) = pool(quiet(2));
    let held = [pool.get().await.unwrap(), pool.get().await.unwrap()];
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { drop(pool.get().await) }
    });
    common::settle().await;
    let h = pool.health();
    assert_eq!(h.status, HealthStatus::Degraded, "{h:?}");
    assert!(
        h.reasons.iter().any(|r| r.contains("utilization 100%")),
        "{:?}",
        h.reasons
    );
    assert!(
        h.reasons.iter().any(|r| r.contains("waiting")),
        "{:?}",
        h.reasons
    );
    drop(held);
    waiter.await.unwrap();
}
