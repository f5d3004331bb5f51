//! [`SessionStore`]: where sessions live, behind a small interface so that
//! another store (say, one shared by several servers) can replace the
//! in-memory [`MemoryStore`].
//!
//! # Implementation notes
//! Every method returns a boxed future, so the trait is object safe and a
//! store may do I/O. [`SessionStore::create`] checks the server-wide and the
//! tenant's session limits and inserts in one step, so concurrent creations
//! cannot both take the last place. Expiry slides: each
//! [`touch`](SessionStore::touch) pushes a session `ttl` further. The
//! in-memory store is one short mutex, never held across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use uuid::Uuid;

use crate::descriptions::Description;
use crate::gateway::{BoxFuture, TableInfo};

/// What a session is: its owner and the pool it queries.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionRecord {
    /// The tenant that made it; only that tenant may use it.
    pub tenant: String,
    /// The pool it queries (configured, or on demand).
    pub pool: String,
    /// For an on-demand pool, what it was made from, so it can be made
    /// again after being removed for idleness.
    pub description: Option<Description>,
}

impl SessionRecord {
    /// A session of `tenant` on `pool`.
    pub fn new(tenant: impl Into<String>, pool: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            pool: pool.into(),
            description: None,
        }
    }
}

/// Why a store refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// No such session.
    Unknown,
    /// The session expired (and is now gone).
    Expired,
    /// The server holds its most sessions.
    ServerFull {
        /// The limit.
        max: usize,
    },
    /// The tenant holds its most sessions.
    TenantFull {
        /// The limit.
        max: usize,
    },
    /// The session belongs to another tenant (it is not extended).
    NotOwner,
    /// The store cannot be reached.
    Unavailable(String),
}

/// Session counts, for one tenant or all.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionStats {
    /// Live sessions.
    pub active: usize,
    /// Live sessions per pool.
    pub by_pool: BTreeMap<String, usize>,
    /// Sessions made.
    pub created: u64,
    /// Sessions that expired.
    pub expired: u64,
    /// Sessions deleted by their tenant.
    pub deleted: u64,
    /// Statements run.
    pub queries: u64,
    /// Statements that failed.
    pub query_errors: u64,
    /// The sliding expiry, in seconds.
    pub ttl_seconds: u64,
}

/// Where sessions live.
pub trait SessionStore: Send + Sync + fmt::Debug {
    /// Stores a new session, unless the server holds `server_max` sessions
    /// or its tenant `tenant_max`; its id.
    fn create(
        &self,
        record: SessionRecord,
        server_max: usize,
        tenant_max: usize,
    ) -> BoxFuture<'_, Result<Uuid, StoreError>>;

    /// The session `id` of `tenant`, its expiry pushed back; another
    /// tenant's session is refused and left as it was.
    fn touch<'a>(
        &'a self,
        id: Uuid,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<SessionRecord, StoreError>>;

    /// Removes the session `id`; whether it existed.
    fn remove(&self, id: Uuid) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// The schema cached for session `id`, if younger than `max_age`.
    fn cached_schema(
        &self,
        id: Uuid,
        max_age: Duration,
    ) -> BoxFuture<'_, Option<Arc<Vec<TableInfo>>>>;

    /// Caches the schema of session `id`.
    fn cache_schema(&self, id: Uuid, tables: Arc<Vec<TableInfo>>) -> BoxFuture<'_, ()>;

    /// Counts a statement run by `tenant`.
    fn count_query(&self, tenant: &str, ok: bool) -> BoxFuture<'_, ()>;

    /// Removes expired sessions; how many.
    fn remove_expired(&self) -> BoxFuture<'_, usize>;

    /// Counts of `tenant`'s sessions, or of all when `None`.
    fn stats(&self, tenant: Option<&str>) -> BoxFuture<'_, SessionStats>;
}

struct Session {
    record: SessionRecord,
    last_used: Instant,
    schema: Option<(Instant, Arc<Vec<TableInfo>>)>,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    created: u64,
    expired: u64,
    deleted: u64,
    queries: u64,
    query_errors: u64,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<Uuid, Session>,
    counts: HashMap<String, Counts>,
}

/// Sessions in this process's memory: the default store.
pub struct MemoryStore {
    ttl: Duration,
    inner: Mutex<Inner>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("ttl", &self.ttl)
            .field("sessions", &self.lock().sessions.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store whose sessions expire `ttl` after their last use.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_used) < self.ttl
    }
}

impl SessionStore for MemoryStore {
    fn create(
        &self,
        record: SessionRecord,
        server_max: usize,
        tenant_max: usize,
    ) -> BoxFuture<'_, Result<Uuid, StoreError>> {
        let now = Instant::now();
        let mut inner = self.lock();
        let live: Vec<&Session> = inner
            .sessions
            .values()
            .filter(|s| self.live(s, now))
            .collect();
        let result = if live.len() >= server_max {
            Err(StoreError::ServerFull { max: server_max })
        } else if live
            .iter()
            .filter(|s| s.record.tenant == record.tenant)
            .count()
            >= tenant_max
        {
            Err(StoreError::TenantFull { max: tenant_max })
        } else {
            let id = Uuid::new_v4();
            inner
                .counts
                .entry(record.tenant.clone())
                .or_default()
                .created += 1;
            inner.sessions.insert(
                id,
                Session {
                    record,
                    last_used: now,
                    schema: None,
                },
            );
            Ok(id)
        };
        Box::pin(std::future::ready(result))
    }

    fn touch<'a>(
        &'a self,
        id: Uuid,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<SessionRecord, StoreError>> {
        let now = Instant::now();
        let mut inner = self.lock();
        let result = match inner.sessions.get_mut(&id) {
            None => Err(StoreError::Unknown),
            Some(s) if now.duration_since(s.last_used) >= self.ttl => {
                let tenant = s.record.tenant.clone();
                inner.sessions.remove(&id);
                inner.counts.entry(tenant).or_default().expired += 1;
                Err(StoreError::Expired)
            }
            Some(s) if s.record.tenant != tenant => Err(StoreError::NotOwner),
            Some(s) => {
                s.last_used = now;
                Ok(s.record.clone())
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn remove(&self, id: Uuid) -> BoxFuture<'_, Result<bool, StoreError>> {
        let mut inner = self.lock();
        let removed = inner.sessions.remove(&id);
        if let Some(s) = &removed {
            inner
                .counts
                .entry(s.record.tenant.clone())
                .or_default()
                .deleted += 1;
        }
        Box::pin(std::future::ready(Ok(removed.is_some())))
    }

    fn cached_schema(
        &self,
        id: Uuid,
        max_age: Duration,
    ) -> BoxFuture<'_, Option<Arc<Vec<TableInfo>>>> {
        let cached = self.lock().sessions.get(&id).and_then(|s| {
            let (at, tables) = s.schema.as_ref()?;
            (at.elapsed() < max_age).then(|| Arc::clone(tables))
        });
        Box::pin(std::future::ready(cached))
    }

    fn cache_schema(&self, id: Uuid, tables: Arc<Vec<TableInfo>>) -> BoxFuture<'_, ()> {
        if let Some(s) = self.lock().sessions.get_mut(&id) {
            s.schema = Some((Instant::now(), tables));
        }
        Box::pin(std::future::ready(()))
    }

    fn count_query(&self, tenant: &str, ok: bool) -> BoxFuture<'_, ()> {
        let mut inner = self.lock();
        let c = inner.counts.entry(tenant.to_owned()).or_default();
        c.queries += 1;
        c.query_errors += u64::from(!ok);
        Box::pin(std::future::ready(()))
    }

    fn remove_expired(&self) -> BoxFuture<'_, usize> {
        let now = Instant::now();
        let mut inner = self.lock();
        let gone: Vec<Uuid> = inner
            .sessions
            .iter()
            .filter(|(_, s)| !self.live(s, now))
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            if let Some(s) = inner.sessions.remove(id) {
                inner.counts.entry(s.record.tenant).or_default().expired += 1;
            }
        }
        Box::pin(std::future::ready(gone.len()))
    }

    fn stats(&self, tenant: Option<&str>) -> BoxFuture<'_, SessionStats> {
        let now = Instant::now();
        let inner = self.lock();
        let mut stats = SessionStats {
            ttl_seconds: self.ttl.as_secs(),
            ..SessionStats::default()
        };
        let mine = |t: &str| tenant.is_none_or(|want| want == t);
        for s in inner.sessions.values() {
            if self.live(s, now) && mine(&s.record.tenant) {
                stats.active += 1;
                *stats.by_pool.entry(s.record.pool.clone()).or_insert(0) += 1;
            }
        }
        for (t, c) in &inner.counts {
            if mine(t) {
                stats.created += c.created;
                stats.expired += c.expired;
                stats.deleted += c.deleted;
                stats.queries += c.queries;
                stats.query_errors += c.query_errors;
            }
        }
        Box::pin(std::future::ready(stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expiry_slides_with_each_use() {
        let store = MemoryStore::new(Duration::from_secs(60));
        let id = store
            .create(SessionRecord::new("a", "p"), 10, 10)
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(store.touch(id, "a").await.is_ok());
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(
            store.touch(id, "a").await.is_ok(),
            "100 s after creation, 50 s after use"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(store.touch(id, "a").await, Err(StoreError::Expired));
        assert_eq!(store.touch(id, "a").await, Err(StoreError::Unknown));
    }

    #[tokio::test(start_paused = true)]
    async fn limits_are_per_server_and_per_tenant() {
        let store = MemoryStore::new(Duration::from_secs(10));
        store
            .create(SessionRecord::new("a", "p"), 3, 2)
            .await
            .unwrap();
        store
            .create(SessionRecord::new("a", "p"), 3, 2)
            .await
            .unwrap();
        assert_eq!(
            store.create(SessionRecord::new("a", "p"), 3, 2).await,
            Err(StoreError::TenantFull { max: 2 })
        );
        store
            .create(SessionRecord::new("b", "p"), 3, 2)
            .await
            .unwrap();
        assert_eq!(
            store.create(SessionRecord::new("c", "p"), 3, 2).await,
            Err(StoreError::ServerFull { max: 3 })
        );
        assert_eq!(store.stats(Some("a")).await.active, 2);
        assert_eq!(store.stats(None).await.active, 3);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(store.remove_expired().await, 3);
        assert_eq!(store.stats(Some("a")).await.expired, 2);
        assert!(
            store
                .create(SessionRecord::new("a", "p"), 3, 2)
                .await
                .is_ok()
        );
    }
}
