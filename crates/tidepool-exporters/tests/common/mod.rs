//! The examples' pool of numbers (one definition for both).
#![allow(dead_code, unreachable_pub)]

#[path = "../../examples/common/mod.rs"]
mod numbers;

use std::sync::Arc;

use tidepool::{Pool, Registry};

/// Pool `numbers` (max 3) after `gets` gets of 2 ms each, and one eviction.
pub async fn registry(gets: u64) -> (Arc<Registry>, Pool<numbers::Numbers>) {
    let (registry, pool) = numbers::registry(gets).await;
    pool.evict();
    (registry, pool)
}
