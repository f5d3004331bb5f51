//! Named pools of different managers behind one handle.
mod common;

use std::convert::Infallible;
use std::time::Duration;

use tidepool::{Manager, Pool, Registry, RegistryError};

struct Strings;

impl Manager for Strings {
    type Connection = String;
    type Error = Infallible;
    async fn connect(&self) -> Result<String, Infallible> {
        Ok(String::new())
    }
    async fn validate(&self, _: &mut String) -> Result<(), Infallible> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn pools_of_different_managers_share_one_registry() {
    let registry = Registry::new();
    let mut made = 0;
    for _ in 0..3 {
        let pool = registry
            .get_or_create("fake", |name| {
                made += 1;
                Pool::builder(common::Fake::new())
                    .name(name)
                    .max_size(3)
                    .build()
            })
            .unwrap();
        drop(pool.get().await.unwrap());
    }
    assert_eq!(made, 1, "created lazily, once");
    let strings = registry
        .get_or_create("strings", |name| {
            Pool::builder(Strings).name(name).max_size(5).build()
        })
        .unwrap();
    let mut s = strings.get().await.unwrap();
    s.push('x');

    assert_eq!(registry.names(), vec!["fake", "strings"]);
    assert!(registry.get::<Strings>("strings").is_some());
    assert!(registry.get::<Strings>("fake").is_none());
    assert!(matches!(
        registry.get_or_create("fake", |n| Pool::builder(Strings).name(n).build()),
        Err(RegistryError::TypeMismatch { .. })
    ));

    let h = registry.handle("strings").unwrap();
    assert_eq!(h.name(), "strings");
    assert_eq!(h.gauges().in_use, 1);
    let agg = registry.aggregate();
    assert_eq!(
        (
            agg.pools,
            agg.connections,
            agg.active,
            agg.idle,
            agg.capacity
        ),
        (2, 2, 1, 1, 8)
    );
    assert_eq!(agg.gets, 4);
    assert_eq!(agg.created, 2);
    assert_eq!(agg.reused, 2);
    assert_eq!(agg.reuse_ratio, Some(1.0));
    assert!((agg.utilization - 1.0 / 8.0).abs() < 1e-9);
    drop(s);

    registry.handle("fake").unwrap().resize(1).unwrap();
    assert_eq!(
        registry
            .get::<common::Fake>("fake")
            .unwrap()
            .gauges()
            .max_size,
        1
    );
    assert!(
        registry
            .handle("fake")
            .unwrap()
            .check(Duration::from_secs(1))
            .await
            .is_ok()
    );
    registry.close_all();
    assert!(registry.get::<Strings>("strings").unwrap().is_closed());
    assert!(registry.remove("fake"));
    assert!(!registry.remove("fake"));
    assert_eq!(registry.names(), vec!["strings"]);
}

#[tokio::test(start_paused = true)]
async fn on_demand_pools_unused_for_the_idle_period_are_removed() {
    let registry = Registry::with_idle_removal(Duration::from_secs(1800));
    let fixed = Pool::builder(Strings).name("fixed").build().unwrap();
    registry.insert(fixed).unwrap();
    assert!(matches!(
        registry.insert(Pool::builder(Strings).name("fixed").build().unwrap()),
        Err(RegistryError::Duplicate { .. })
    ));
    let busy = registry
        .get_or_create("busy", |n| Pool::builder(Strings).name(n).build())
        .unwrap();
    let held = busy.get().await.unwrap();
    let idle = registry
        .get_or_create("idle", |n| Pool::builder(Strings).name(n).build())
        .unwrap();
    drop(idle.get().await.unwrap());
    tokio::time::sleep(Duration::from_secs(1799)).await;
    assert!(registry.remove_idle().is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(registry.remove_idle(), vec!["idle"]);
    assert!(idle.is_closed());
    assert_eq!(
        registry.names(),
        vec!["busy", "fixed"],
        "in use, or inserted: kept"
    );
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn a_handle_drains_its_pool() {
    let registry = Registry::new();
    let pool = registry
        .get_or_create("s", |n| Pool::builder(Strings).name(n).build())
        .unwrap();
    let held = pool.get_owned().await.unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(held);
    });
    let outcome = registry
        .handle("s")
        .unwrap()
        .drain(Duration::from_secs(10))
        .await;
    assert!(outcome.is_complete());
    assert!(pool.is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_check_tells_a_busy_or_paused_pool_from_a_failing_database() {
    use tidepool::{CheckError, PoolHandle};
    let pool = Pool::builder(common::Fake::new())
        .name("one")
        .max_size(1)
        .build()
        .unwrap();
    let handle: &dyn PoolHandle = &pool;
    assert_eq!(handle.check(Duration::from_secs(1)).await, Ok(()));
    let held = pool.get().await.unwrap();
    let busy = handle.check(Duration::from_secs(1)).await.unwrap_err();
    assert!(busy.is_busy(), "{busy}");
    assert!(busy.message().contains("all connections busy"), "{busy}");
    drop(held);
    pool.pause();
    let paused = handle.check(Duration::from_secs(1)).await.unwrap_err();
    assert!(paused.is_busy(), "{paused}");
    pool.resume();

    let fake = common::Fake::new();
    fake.0.set_fail_all(true);
    let failing = Pool::builder(fake).name("down").build().unwrap();
    let down = PoolHandle::check(&failing, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(down, CheckError::Down(_)), "{down}");
}
