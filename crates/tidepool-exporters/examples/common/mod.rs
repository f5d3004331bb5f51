//! The examples' (and tests') pool: connections that are numbers, and a
//! registry holding pool `numbers` after some gets.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use tidepool::{Manager, Pool, Registry};

/// A connection that is a number.
#[derive(Debug)]
pub struct Numbers;

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

/// Pool `numbers` (max 3) in a registry, after `gets` gets, each holding
/// its connection for 2 ms.
pub async fn registry(gets: u64) -> (Arc<Registry>, Pool<Numbers>) {
    let registry = Arc::new(Registry::new());
    let pool = Pool::builder(Numbers)
        .name("numbers")
        .max_size(3)
        .build()
        .expect("a valid pool");
    registry.insert(pool.clone()).expect("a new name");
    for _ in 0..gets {
        let conn = pool.get().await.expect("a connection");
        tokio::time::sleep(Duration::from_millis(2)).await;
        drop(conn);
    }
    (registry, pool)
}
