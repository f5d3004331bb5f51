//! Settings deserialize from TOML with defaults, and bad values are named.
mod common;

use std::time::Duration;

use tidepool::{IdleOrder, Pool, PoolConfig, Validation, WarmUp};

#[test]
fn toml_with_durations_and_off() {
    let cfg: PoolConfig = toml::from_str(
        r#"
        max_size = 20
        min_idle = 2
        acquire_timeout = "2s"
        max_lifetime = "off"
        idle_timeout = "90s"
        validation = "always"
        idle_order = "fifo"
        warm_up = "eager_fail_fast"
        [health]
        degraded_utilization = 0.7
        "#,
    )
    .unwrap();
    assert_eq!(cfg.max_size, 20);
    assert_eq!(cfg.acquire_timeout, Duration::from_secs(2));
    assert_eq!(cfg.max_lifetime, None);
    assert_eq!(cfg.idle_timeout, Some(Duration::from_secs(90)));
    assert_eq!(cfg.validation, Validation::Always);
    assert_eq!(cfg.idle_order, IdleOrder::Fifo);
    assert_eq!(cfg.warm_up, WarmUp::EagerFailFast);
    assert_eq!(cfg.health.degraded_utilization, 0.7);
    assert_eq!(
        cfg.keepalive_interval,
        PoolConfig::default().keepalive_interval
    );
    cfg.validate().unwrap();
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let err = toml::from_str::<PoolConfig>("max_sise = 3")
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_sise"), "{err}");
    let err = toml::from_str::<PoolConfig>("idle_timeout = \"soon\"")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("idle_timeout") || err.contains("soon"),
        "{err}"
    );
    assert!(err.contains("\"off\""), "says what would be valid: {err}");
    let err = toml::from_str::<PoolConfig>("max_size = \"ten\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_size"), "{err}");
}

#[test]
fn round_trips_through_serialization() {
    let cfg = PoolConfig::default();
    let text = toml::to_string(&cfg).unwrap();
    assert!(text.contains("max_lifetime = \"30m\""), "{text}");
    let back: PoolConfig = toml::from_str(&text).unwrap();
    assert_eq!(back, cfg);
}

#[tokio::test]
async fn build_rejects_invalid_settings_without_panicking() {
    let err = Pool::builder(common::Fake::new())
        .max_size(0)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_size");
    let err = Pool::builder(common::Fake::new())
        .max_size(2)
        .min_idle(3)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("`min_idle`"), "{err}");
}

#[test]
fn building_outside_a_runtime_is_an_error() {
    let err = Pool::builder(common::Fake::new()).build().unwrap_err();
    assert_eq!(err.field(), "runtime");
}
