//! What the scale suite asks of a pool beyond [`AsyncPool`]: a get with its
//! own deadline, and the pool's own statistics. Implemented for tidepool,
//! deadpool and bb8, the pools the suite sets side by side.

use std::future::Future;
use std::time::Duration;

use crate::pools::{AsyncPool, Bb8, Bb8Ints, Deadpool, DeadpoolInts, Tidepool, TidepoolInts};

/// How a get with a deadline ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It timed out, as every get queued behind a held connection should.
    TimedOut,
    /// It got a connection.
    Served,
    /// Any other error.
    Failed,
}

/// A pool the scale suite drives.
pub trait ScalePool: AsyncPool {
    /// A pool of one connection whose gets may each carry their own
    /// deadline. Must be called inside a tokio runtime.
    fn build_single() -> Self;

    /// Gets a connection, giving up after `wait`, and returns it at once.
    fn get_within(&self, wait: Duration) -> impl Future<Output = Outcome> + Send;

    /// Takes the pool's own statistics snapshot (what a metrics exporter
    /// reads) and drops it.
    fn snapshot(&self);
}

impl ScalePool for Tidepool {
    fn build_single() -> Self {
        Self::build(1)
    }

    async fn get_within(&self, wait: Duration) -> Outcome {
        match self.0.get_timeout(wait).await {
            Ok(_) => Outcome::Served,
            Err(tidepool::PoolError::Timeout { .. }) => Outcome::TimedOut,
            Err(_) => Outcome::Failed,
        }
    }

    fn snapshot(&self) {
        drop(std::hint::black_box(self.0.stats()));
    }
}

impl ScalePool for Deadpool {
    fn build_single() -> Self {
        // A per-call wait timeout needs deadpool's runtime set.
        Self(
            deadpool::managed::Pool::builder(DeadpoolInts)
                .max_size(1)
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .expect("deadpool builds"),
        )
    }

    async fn get_within(&self, wait: Duration) -> Outcome {
        let timeouts = deadpool::managed::Timeouts {
            wait: Some(wait),
            create: None,
            recycle: None,
        };
        match self.0.timeout_get(&timeouts).await {
            Ok(_) => Outcome::Served,
            Err(deadpool::managed::PoolError::Timeout(_)) => Outcome::TimedOut,
            Err(_) => Outcome::Failed,
        }
    }

    fn snapshot(&self) {
        std::hint::black_box(self.0.status());
    }
}

impl ScalePool for Bb8 {
    fn build_single() -> Self {
        // bb8 has no per-call deadline: its own pool-wide one is set out of
        // the way and each get is wrapped in `tokio::time::timeout`, which
        // drops (cancels) the get when it fires.
        Self(
            bb8::Pool::builder()
                .max_size(1)
                .connection_timeout(Duration::from_secs(3600))
                .build_unchecked(Bb8Ints),
        )
    }

    async fn get_within(&self, wait: Duration) -> Outcome {
        match tokio::time::timeout(wait, self.0.get()).await {
            Err(_) => Outcome::TimedOut,
            Ok(Ok(_)) => Outcome::Served,
            Ok(Err(_)) => Outcome::Failed,
        }
    }

    fn snapshot(&self) {
        std::hint::black_box(self.0.state());
    }
}

/// A tidepool pool of `max_size` with a name, for registries.
///
/// # Panics
/// Outside a tokio runtime.
pub fn named_tidepool(name: String, max_size: usize) -> tidepool::Pool<TidepoolInts> {
    tidepool::Pool::builder(TidepoolInts)
        .name(name)
        .max_size(max_size)
        .build()
        .expect("tidepool builds inside a runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn times_out_behind_a_held_connection<P: ScalePool>() {
        let pool = P::build_single();
        let held = pool.acquire().await;
        let outcome = pool.get_within(Duration::from_millis(20)).await;
        assert_eq!(outcome, Outcome::TimedOut, "{}", P::NAME);
        drop(held);
        let outcome = pool.get_within(Duration::from_millis(200)).await;
        assert_eq!(outcome, Outcome::Served, "{}", P::NAME);
        pool.snapshot();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_peer_times_out_and_serves() {
        times_out_behind_a_held_connection::<Tidepool>().await;
        times_out_behind_a_held_connection::<Deadpool>().await;
        times_out_behind_a_held_connection::<Bb8>().await;
    }
}
