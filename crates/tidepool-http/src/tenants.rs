//! Tenants: who may call, with which role, on which pools, and how much.
//!
//! # Implementation notes
//! A [`Tenant`] is configuration; [`Tenants`] is the table the router uses at
//! run time. Each tenant has its own rate limiter (`governor`, a GCRA token
//! bucket: `requests_per_second` sustained, `burst` at once) and, per pool,
//! a semaphore of `max_concurrent_queries` permits, taken without waiting: a
//! tenant over its share is answered 429 at once and never queues in front
//! of the others. A caller is identified by its tenant's index, found by
//! comparing the presented token with every configured token in constant
//! time (see the `auth` module).

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// What a tenant may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything: admin actions (evict, resize, pause, resume, config,
    /// advice), sessions on every pool, every tenant's statistics.
    Admin,
    /// Sessions on the pools it is granted (and on its own connection
    /// descriptions, when the server allows them); its own statistics.
    Query,
    /// Read-only monitoring: pool statistics, health, metrics.
    Monitor,
}

/// Per-tenant limits. Every field has a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Quotas {
    /// Most live sessions the tenant may hold. Default: 100.
    pub max_sessions: usize,
    /// Most statements the tenant may run at once on one pool; more answer
    /// 429 at once. Default: 2.
    pub max_concurrent_queries: usize,
    /// Most on-demand pools (connection descriptions) the tenant may have
    /// open. Default: 2.
    pub max_on_demand_pools: usize,
    /// Sustained requests per second. Default: 50.
    pub requests_per_second: u32,
    /// Requests allowed at once above the sustained rate. Default: 100.
    pub burst: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            max_sessions: 100,
            max_concurrent_queries: 2,
            max_on_demand_pools: 2,
            requests_per_second: 50,
            burst: 100,
        }
    }
}

/// One tenant: a name, its tokens, a role, the pools it is granted and its
/// quotas. `Debug` never prints a token.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct Tenant {
    /// Unique name, used in logs and as the owner of sessions and pools.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Bearer tokens that identify it (one or more).
    pub tokens: Vec<String>,
    /// Configured pools a [`Role::Query`] tenant may open sessions on;
    /// `"*"` grants every pool. Admins are granted every pool.
    pub pools: Vec<String>,
    /// Its limits.
    pub quotas: Quotas,
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenant")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("tokens", &self.tokens.len())
            .field("pools", &self.pools)
            .field("quotas", &self.quotas)
            .finish()
    }
}

impl Tenant {
    /// A tenant with no token, no pool granted and the default quotas.
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Self {
            name: name.into(),
            role,
            tokens: Vec::new(),
            pools: Vec::new(),
            quotas: Quotas::default(),
        }
    }

    /// Adds a bearer token.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.tokens.push(token.into());
        self
    }

    /// Grants a pool (`"*"`: every pool).
    #[must_use]
    pub fn pool(mut self, pool: impl Into<String>) -> Self {
        self.pools.push(pool.into());
        self
    }

    /// Sets the quotas. Default: [`Quotas::default`].
    #[must_use]
    pub fn quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// Whether the tenant may open sessions on the configured pool `pool`.
    pub fn may_query(&self, pool: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Query => self.pools.iter().any(|p| p == "*" || p == pool),
            Role::Monitor => false,
        }
    }
}

/// Who called: which tenant (an index into the state's tenants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Caller(pub(crate) usize);

/// A tenant with its run-time state.
pub(crate) struct Live {
    pub(crate) tenant: Tenant,
    limiter: DefaultDirectRateLimiter,
    queries: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Serializes this tenant's session creations, so its quotas are
    /// checked and used without a race (other tenants are not held up).
    pub(crate) creating: tokio::sync::Mutex<()>,
}

/// The tenants of a server.
pub(crate) struct Tenants {
    live: Vec<Live>,
}

impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.live.iter().map(|l| &l.tenant))
            .finish()
    }
}

impl Tenants {
    pub(crate) fn new(tenants: Vec<Tenant>) -> Self {
        let live = tenants
            .into_iter()
            .map(|tenant| {
                let per_second = NonZeroU32::new(tenant.quotas.requests_per_second.max(1))
                    .unwrap_or(NonZeroU32::MIN);
                let burst = NonZeroU32::new(tenant.quotas.burst.max(1)).unwrap_or(NonZeroU32::MIN);
                Live {
                    limiter: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
                    tenant,
                    queries: Mutex::default(),
                    creating: tokio::sync::Mutex::new(()),
                }
            })
            .collect();
        Self { live }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live.iter().all(|l| l.tenant.tokens.is_empty())
    }

    pub(crate) fn get(&self, caller: Caller) -> &Live {
        &self.live[caller.0]
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Tenant> {
        self.live.iter().map(|l| &l.tenant)
    }

    /// The tenant whose token `presented` is, compared with every token in
    /// constant time without stopping at a match.
    pub(crate) fn find(&self, presented: &str) -> Option<Caller> {
        use subtle::ConstantTimeEq;
        let mut found = None;
        for (i, live) in self.live.iter().enumerate() {
            for token in &live.tenant.tokens {
                let equal: bool = presented.as_bytes().ct_eq(token.as_bytes()).into();
                if equal && found.is_none() {
                    found = Some(Caller(i));
                }
            }
        }
        found
    }
}

impl Live {
    /// Counts one request against the rate limit.
    pub(crate) fn admit(&self) -> Result<(), ApiError> {
        self.limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "tenant `{}` sent more than {} requests per second (burst {}); retry in {} s",
                    self.tenant.name,
                    self.tenant.quotas.requests_per_second,
                    self.tenant.quotas.burst,
                    seconds.max(1)
                ),
            )
            .retry_after(seconds.max(1))
        })
    }

    /// A permit to run one statement on `pool`, or 429 when the tenant is
    /// already running its share there.
    pub(crate) fn query_permit(&self, pool: &str) -> Result<OwnedSemaphorePermit, ApiError> {
        let semaphore = {
            let mut map = self.queries.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(map.entry(pool.to_owned()).or_insert_with(|| {
                Arc::new(Semaphore::new(self.tenant.quotas.max_concurrent_queries))
            }))
        };
        semaphore.try_acquire_owned().map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_queries",
                format!(
                    "tenant `{}` is already running {} statement(s) on pool `{pool}`, its share; retry when one ends",
                    self.tenant.name, self.tenant.quotas.max_concurrent_queries
                ),
            )
            .retry_after(1)
        })
    }

    /// Forgets the semaphore of a pool that is gone.
    pub(crate) fn forget_pool(&self, pool: &str) {
        self.queries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(pool);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_find_their_tenant_and_grants_apply() {
        let tenants = Tenants::new(vec![
            Tenant::new("ops", Role::Admin).token("t-ops-0123456789"),
            Tenant::new("ana", Role::Query)
                .token("t-ana-0123456789")
                .token("t-ana-second-000")
                .pool("demo"),
        ]);
        assert_eq!(tenants.find("t-ana-second-000"), Some(Caller(1)));
        assert_eq!(tenants.find("t-ops-0123456789"), Some(Caller(0)));
        assert_eq!(tenants.find("t-ops-012345678"), None);
        let ana = &tenants.get(Caller(1)).tenant;
        assert!(ana.may_query("demo") && !ana.may_query("other"));
        assert!(tenants.get(Caller(0)).tenant.may_query("other"));
        assert!(!format!("{ana:?}").contains("t-ana"));
    }

    #[test]
    fn the_concurrent_query_share_is_per_pool() {
        let quotas = Quotas {
            max_concurrent_queries: 1,
            ..Quotas::default()
        };
        let tenants = Tenants::new(vec![Tenant::new("a", Role::Query).quotas(quotas)]);
        let live = tenants.get(Caller(0));
        let first = live.query_permit("p").unwrap();
        assert_eq!(
            live.query_permit("p").unwrap_err().code(),
            "too_many_queries"
        );
        let _other = live.query_permit("q").unwrap();
        drop(first);
        assert!(live.query_permit("p").is_ok());
    }
}
