//! One source of truth: a pool is read once into a [`PoolSnapshot`] and
//! every view of it — the JSON API, the Prometheus exposition, the
//! dashboard's stream — derives what it shows (health, advice) from that
//! same snapshot, so no two parts of one answer come from different moments.

use std::sync::Arc;

use tidepool::{Advice, Health, HealthConfig, PoolHandle, Stats};

use crate::state::AppState;
use crate::tenants::Caller;

/// A pool's statistics, read once, with its health classified from them.
#[derive(Debug, Clone)]
pub(crate) struct PoolSnapshot {
    /// The statistics.
    pub(crate) stats: Stats,
    /// Health, classified from `stats`.
    pub(crate) health: Health,
    /// The pool's thresholds, for advice from the same `stats`.
    pub(crate) thresholds: HealthConfig,
    /// The backend of the pool's query gateway, if it has one.
    pub(crate) backend: Option<&'static str>,
}

impl PoolSnapshot {
    /// Reads pool `h` now.
    pub(crate) fn of(state: &AppState, h: &dyn PoolHandle) -> Self {
        let stats = h.stats();
        let thresholds = h.config().health;
        Self {
            health: Health::classify(&stats, &thresholds),
            backend: state.gateway(&stats.name).map(|g| g.backend()),
            stats,
            thresholds,
        }
    }

    /// Recommendations and the sizing estimate, from the same statistics.
    pub(crate) fn advice(&self) -> Advice {
        Advice::from_stats(&self.stats, &self.thresholds)
    }
}

/// The pools `caller` may see (anonymous: the configured pools), in name
/// order.
pub(crate) fn visible_handles(
    state: &AppState,
    caller: Option<Caller>,
) -> Vec<Arc<dyn PoolHandle>> {
    state
        .registry()
        .handles()
        .into_iter()
        .filter(|h| state.visible(caller, h.name()))
        .collect()
}

/// A snapshot of every pool `caller` may see, in name order.
pub(crate) fn visible(state: &AppState, caller: Option<Caller>) -> Vec<PoolSnapshot> {
    visible_handles(state, caller)
        .iter()
        .map(|h| PoolSnapshot::of(state, h.as_ref()))
        .collect()
}
