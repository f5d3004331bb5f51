//! What the clients drive: a pool of this process, the same database with a
//! new connection per request, or (in `http`) the server's query gateway.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidepool::{Advice, Pool, Stats};

use super::exec::{Backend, Failure, pool_failure};
use super::workload::Request;

/// A pool's sizes at one moment, for the progress line and the timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolGauges {
    /// Open connections.
    pub size: usize,
    /// Connections checked out.
    pub in_use: usize,
    /// Connections ready.
    pub idle: usize,
    /// Callers queued for a connection.
    pub waiting: usize,
    /// The configured maximum.
    pub max_size: usize,
}

impl From<tidepool::Gauges> for PoolGauges {
    fn from(g: tidepool::Gauges) -> Self {
        Self {
            size: g.size,
            in_use: g.in_use,
            idle: g.idle,
            waiting: g.waiting,
            max_size: g.max_size,
        }
    }
}

/// Something the clients send requests to.
pub trait Target: Send + Sync + 'static {
    /// Runs one request for client number `client`.
    fn call(&self, client: usize, req: Request)
    -> impl Future<Output = Result<(), Failure>> + Send;

    /// The pool's sizes now, when there is a pool to ask.
    fn gauges(&self) -> impl Future<Output = Option<PoolGauges>> + Send;
}

/// Requests through a pool built by this process.
#[derive(Debug)]
pub struct Pooled<B: Backend> {
    /// The pool.
    pub pool: Pool<B>,
}

impl<B: Backend> Pooled<B> {
    /// The pool's statistics and advice now.
    pub fn snapshot(&self) -> (Stats, Advice) {
        (self.pool.stats(), self.pool.advice())
    }
}

impl<B: Backend> Target for Pooled<B> {
    async fn call(&self, _client: usize, req: Request) -> Result<(), Failure> {
        let conn = self.pool.get().await.map_err(|e| pool_failure(&e))?;
        B::run(&conn, req.sql, req.params).await.map(drop)
    }

    async fn gauges(&self) -> Option<PoolGauges> {
        Some(self.pool.gauges().into())
    }
}

/// Requests that each open a connection of their own, run, and close it:
/// life without a pool.
#[derive(Debug)]
pub struct Unpooled<B: Backend> {
    manager: Arc<B>,
    connect_timeout: Duration,
}

impl<B: Backend> Unpooled<B> {
    /// Connections from `manager`, each attempt given `connect_timeout`.
    pub fn new(manager: B, connect_timeout: Duration) -> Self {
        Self {
            manager: Arc::new(manager),
            connect_timeout,
        }
    }
}

impl<B: Backend> Target for Unpooled<B>
where
    B::Connection: Send + Sync,
{
    async fn call(&self, _client: usize, req: Request) -> Result<(), Failure> {
        let conn = match tokio::time::timeout(self.connect_timeout, self.manager.connect()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(B::connect_failure(&e)),
            Err(_) => {
                return Err(Failure::new(
                    "connect timeout",
                    format!("connecting took longer than {:?}", self.connect_timeout),
                ));
            }
        };
        B::run(&conn, req.sql, req.params).await.map(drop)
    }

    async fn gauges(&self) -> Option<PoolGauges> {
        None
    }
}
