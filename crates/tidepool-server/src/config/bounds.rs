//! What `[server] acquire_timeout` means: the `acquire_timeout` of every
//! pool that sets none (configured pools, on-demand pools from
//! `[descriptions.pool]`, the bundled demo). A gateway request waits for a
//! connection as long as its pool's `acquire_timeout` says, no longer.

use std::collections::BTreeMap;
use std::time::Duration;

use tidepool_http::Descriptions;
use toml::{Table, Value};

use super::PoolSection;

/// Gives each pool whose table has no `acquire_timeout` the server's.
pub(super) fn default_acquire_timeouts(
    root: &Table,
    default: Duration,
    pools: &mut BTreeMap<String, PoolSection>,
    descriptions: &mut Descriptions,
) {
    let sets = |table: Option<&Value>| {
        table
            .and_then(Value::as_table)
            .is_some_and(|t| t.contains_key("acquire_timeout"))
    };
    let raw_pools = root.get("pools").and_then(Value::as_table);
    for (name, section) in pools.iter_mut() {
        if !sets(raw_pools.and_then(|t| t.get(name))) {
            section.pool.acquire_timeout = default;
        }
    }
    let raw_descriptions = root.get("descriptions").and_then(Value::as_table);
    if !sets(raw_descriptions.and_then(|t| t.get("pool"))) {
        descriptions.pool.acquire_timeout = default;
    }
}
