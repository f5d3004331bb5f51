//! The in-memory contenders: one manager per pool crate that hands out an
//! `i32`, and [`AsyncPool`], the one interface the suites drive them through.
//!
//! Every pool runs with its defaults except the size (and mobc's `max_idle`,
//! raised to `max_open` so it keeps its connections instead of closing and
//! reopening them). Managers never fail and do no work: what is measured is
//! the pool itself.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::ops::DerefMut;

/// An async pool of `i32` "connections", as the suites see it.
///
/// Implemented for each async pool crate; the suites are generic over it, so
/// no dynamic dispatch or boxing is added to anyone's hot path.
pub trait AsyncPool: Clone + Send + Sync + 'static {
    /// The pool's guard: derefs to the connection, returns it on drop.
    type Guard<'a>: DerefMut<Target = i32> + Send
    where
        Self: 'a;

    /// The contender's name in tables and charts.
    const NAME: &'static str;

    /// Builds a pool of at most `max_size` connections with the crate's
    /// defaults otherwise. Must be called inside a tokio runtime.
    fn build(max_size: usize) -> Self;

    /// Gets a connection, waiting as long as it takes.
    ///
    /// # Panics
    /// If the pool reports an error: the managers never fail and no timeout
    /// is short enough to fire in these benchmarks, so an error is a bug.
    fn acquire(&self) -> impl Future<Output = Self::Guard<'_>> + Send;

    /// Opens all `n` connections by holding `n` guards at once, then returns
    /// them, so a measurement never pays for connecting.
    fn warm(&self, n: usize) -> impl Future<Output = ()> + Send {
        async move {
            let mut held = Vec::with_capacity(n);
            for _ in 0..n {
                held.push(self.acquire().await);
            }
            drop(held);
        }
    }
}

/// The manager of the tidepool contender.
#[derive(Debug, Clone, Copy, Default)]
pub struct TidepoolInts;

impl tidepool::Manager for TidepoolInts {
    type Connection = i32;
    type Error = Infallible;

    async fn connect(&self) -> Result<i32, Infallible> {
        Ok(0)
    }

    async fn validate(&self, _conn: &mut i32) -> Result<(), Infallible> {
        Ok(())
    }
}

/// tidepool with its default configuration (statistics are always on).
#[derive(Debug, Clone)]
pub struct Tidepool(pub tidepool::Pool<TidepoolInts>);

impl AsyncPool for Tidepool {
    type Guard<'a> = tidepool::Pooled<'a, TidepoolInts>;
    const NAME: &'static str = "tidepool";

    fn build(max_size: usize) -> Self {
        Self(
            tidepool::Pool::builder(TidepoolInts)
                .max_size(max_size)
                .build()
                .expect("tidepool builds inside a runtime"),
        )
    }

    async fn acquire(&self) -> Self::Guard<'_> {
        self.0.get().await.expect("tidepool get")
    }
}

/// The manager of the deadpool contender.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadpoolInts;

impl deadpool::managed::Manager for DeadpoolInts {
    type Type = i32;
    type Error = Infallible;

    async fn create(&self) -> Result<i32, Infallible> {
        Ok(0)
    }

    async fn recycle(
        &self,
        _obj: &mut i32,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

/// deadpool's managed pool with its defaults.
#[derive(Clone)]
pub struct Deadpool(pub deadpool::managed::Pool<DeadpoolInts>);

impl fmt::Debug for Deadpool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Deadpool").field(&self.0.status()).finish()
    }
}

impl AsyncPool for Deadpool {
    type Guard<'a> = deadpool::managed::Object<DeadpoolInts>;
    const NAME: &'static str = "deadpool";

    fn build(max_size: usize) -> Self {
        Self(
            deadpool::managed::Pool::builder(DeadpoolInts)
                .max_size(max_size)
                .build()
                .expect("deadpool builds"),
        )
    }

    async fn acquire(&self) -> Self::Guard<'_> {
        self.0.get().await.expect("deadpool get")
    }
}

/// The manager of the bb8 contender.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bb8Ints;

impl bb8::ManageConnection for Bb8Ints {
    type Connection = i32;
    type Error = Infallible;

    async fn connect(&self) -> Result<i32, Infallible> {
        Ok(0)
    }

    async fn is_valid(&self, _conn: &mut i32) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut i32) -> bool {
        false
    }
}

/// bb8 with its defaults (which test every connection on checkout, here a
/// no-op).
#[derive(Debug, Clone)]
pub struct Bb8(pub bb8::Pool<Bb8Ints>);

impl AsyncPool for Bb8 {
    type Guard<'a> = bb8::PooledConnection<'a, Bb8Ints>;
    const NAME: &'static str = "bb8";

    fn build(max_size: usize) -> Self {
        let max_size = u32::try_from(max_size).expect("pool size fits in u32");
        Self(
            bb8::Pool::builder()
                .max_size(max_size)
                .build_unchecked(Bb8Ints),
        )
    }

    async fn acquire(&self) -> Self::Guard<'_> {
        self.0.get().await.expect("bb8 get")
    }
}

/// The manager of the qp contender.
#[derive(Debug, Clone, Copy, Default)]
pub struct QpInts;

#[qp::async_trait]
impl qp::resource::Manage for QpInts {
    type Output = i32;
    type Error = Infallible;

    async fn try_create(&self) -> Result<i32, Infallible> {
        Ok(0)
    }

    async fn validate(&self, _resource: &i32) -> bool {
        true
    }
}

/// qp ("Quick Pool") with its defaults.
#[derive(Clone)]
pub struct Qp(pub qp::Pool<QpInts>);

impl fmt::Debug for Qp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qp")
            .field("max_size", &self.0.max_size())
            .field("available", &self.0.size())
            .finish()
    }
}

impl AsyncPool for Qp {
    type Guard<'a> = qp::Pooled<'a, QpInts>;
    const NAME: &'static str = "qp";

    fn build(max_size: usize) -> Self {
        Self(qp::Pool::new(QpInts, max_size))
    }

    async fn acquire(&self) -> Self::Guard<'_> {
        match self.0.acquire().await {
            Ok(guard) => guard,
            Err(never) => match never {},
        }
    }
}

/// The manager of the mobc contender.
#[derive(Debug, Clone, Copy, Default)]
pub struct MobcInts;

#[mobc::async_trait]
impl mobc::Manager for MobcInts {
    type Connection = i32;
    type Error = Infallible;

    async fn connect(&self) -> Result<i32, Infallible> {
        Ok(0)
    }

    async fn check(&self, conn: i32) -> Result<i32, Infallible> {
        Ok(conn)
    }
}

/// mobc with `max_idle = max_open` (its default `max_idle` of 2 would close
/// and reopen connections all the time) and its defaults otherwise, which
/// include a `check` on every checkout (here a no-op).
#[derive(Clone)]
pub struct Mobc(pub mobc::Pool<MobcInts>);

impl fmt::Debug for Mobc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mobc").finish_non_exhaustive()
    }
}

impl AsyncPool for Mobc {
    type Guard<'a> = mobc::Connection<MobcInts>;
    const NAME: &'static str = "mobc";

    fn build(max_size: usize) -> Self {
        let n = u64::try_from(max_size).expect("pool size fits in u64");
        Self(
            mobc::Pool::builder()
                .max_open(n)
                .max_idle(n)
                .build(MobcInts),
        )
    }

    async fn acquire(&self) -> Self::Guard<'_> {
        self.0.get().await.expect("mobc get")
    }
}

/// The manager of the r2d2 contender (a blocking pool, driven from OS
/// threads).
#[derive(Debug, Clone, Copy, Default)]
pub struct R2d2Ints;

impl r2d2::ManageConnection for R2d2Ints {
    type Connection = i32;
    type Error = Infallible;

    fn connect(&self) -> Result<i32, Infallible> {
        Ok(0)
    }

    fn is_valid(&self, _conn: &mut i32) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut i32) -> bool {
        false
    }
}

/// Builds an r2d2 pool of `max_size` connections with its defaults (it
/// opens them all before returning, as its `min_idle` defaults to the size).
///
/// # Panics
/// If r2d2 cannot build the pool, which a manager that never fails rules out.
pub fn r2d2_pool(max_size: usize) -> r2d2::Pool<R2d2Ints> {
    let max_size = u32::try_from(max_size).expect("pool size fits in u32");
    r2d2::Pool::builder()
        .max_size(max_size)
        .build(R2d2Ints)
        .expect("r2d2 builds")
}

/// The floor of a fair pool: a FIFO-fair `tokio::sync::Semaphore` with one
/// permit per connection and no connections, statistics or clock. Every get
/// waits its turn in arrival order and every drop hands the permit to the
/// oldest waiter, which is the least a pool that serves callers in order
/// must do; a pool measured below this line lets callers overtake.
#[derive(Debug, Clone)]
pub struct FifoFloor(pub std::sync::Arc<tokio::sync::Semaphore>);

/// A permit of [`FifoFloor`], with an `i32` of its own to increment.
#[derive(Debug)]
pub struct FloorGuard<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
    value: i32,
}

impl std::ops::Deref for FloorGuard<'_> {
    type Target = i32;

    fn deref(&self) -> &i32 {
        &self.value
    }
}

impl DerefMut for FloorGuard<'_> {
    fn deref_mut(&mut self) -> &mut i32 {
        &mut self.value
    }
}

impl AsyncPool for FifoFloor {
    type Guard<'a> = FloorGuard<'a>;
    const NAME: &'static str = "fifo floor";

    fn build(max_size: usize) -> Self {
        Self(std::sync::Arc::new(tokio::sync::Semaphore::new(max_size)))
    }

    async fn acquire(&self) -> Self::Guard<'_> {
        FloorGuard {
            _permit: self
                .0
                .acquire()
                .await
                .expect("the semaphore is never closed"),
            value: 0,
        }
    }
}

/// Whether the contender `name` is among `only` (everyone when `None`).
pub fn selected(only: Option<&[String]>, name: &str) -> bool {
    only.is_none_or(|names| names.iter().any(|n| n == name))
}

/// The order to run `n` contenders in, for one round of a matrix cell or
/// one repetition of a suite: a fresh random permutation each time. What
/// ran just before matters (a contender that leaves the runtime's threads
/// parked, or the caches full of OS-thread start-up, slows whichever comes
/// next by a few percent), and a fixed order, or a rotation, which varies
/// who goes first, leaves each contender right behind the same one, its
/// neighbour in the list, time after time.
pub fn run_order(n: usize, rng: &mut fastrand::Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    order
}

/// Every in-memory contender, in the order tables list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contender {
    /// tidepool, the reference every ratio is taken against.
    Tidepool,
    /// deadpool (managed).
    Deadpool,
    /// bb8.
    Bb8,
    /// qp.
    Qp,
    /// mobc.
    Mobc,
    /// r2d2, blocking, on OS threads.
    R2d2,
    /// No pool at all: an atomic increment in place of get + drop.
    NoPool,
    /// A FIFO semaphore: what serving callers in order costs by itself.
    FifoFloor,
}

impl Contender {
    /// The async pools (every contender but r2d2 and the baseline).
    pub const ASYNC: [Contender; 5] = [
        Contender::Tidepool,
        Contender::Deadpool,
        Contender::Bb8,
        Contender::Qp,
        Contender::Mobc,
    ];

    /// The name in tables and charts.
    pub fn name(self) -> &'static str {
        match self {
            Contender::Tidepool => Tidepool::NAME,
            Contender::Deadpool => Deadpool::NAME,
            Contender::Bb8 => Bb8::NAME,
            Contender::Qp => Qp::NAME,
            Contender::Mobc => Mobc::NAME,
            Contender::R2d2 => "r2d2",
            Contender::NoPool => "no pool",
            Contender::FifoFloor => FifoFloor::NAME,
        }
    }
}

/// Runs `$body` with `$P` bound to the [`AsyncPool`] type of an async
/// [`Contender`]; evaluates `$other` for r2d2 and the baseline.
macro_rules! with_async_pool {
    ($contender:expr, $P:ident => $body:expr, _ => $other:expr) => {
        match $contender {
            $crate::pools::Contender::Tidepool => {
                type $P = $crate::pools::Tidepool;
                $body
            }
            $crate::pools::Contender::Deadpool => {
                type $P = $crate::pools::Deadpool;
                $body
            }
            $crate::pools::Contender::Bb8 => {
                type $P = $crate::pools::Bb8;
                $body
            }
            $crate::pools::Contender::Qp => {
                type $P = $crate::pools::Qp;
                $body
            }
            $crate::pools::Contender::Mobc => {
                type $P = $crate::pools::Mobc;
                $body
            }
            $crate::pools::Contender::FifoFloor => {
                type $P = $crate::pools::FifoFloor;
                $body
            }
            $crate::pools::Contender::R2d2 | $crate::pools::Contender::NoPool => $other,
        }
    };
}
pub(crate) use with_async_pool;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_many_rounds_every_contender_goes_first_and_follows_every_other() {
        let n = 8;
        let mut rng = fastrand::Rng::with_seed(7);
        let mut first = vec![0; n];
        let mut follows = vec![vec![0; n]; n];
        for _ in 0..2000 {
            let order = run_order(n, &mut rng);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "each runs once a round");
            first[order[0]] += 1;
            for pair in order.windows(2) {
                follows[pair[1]][pair[0]] += 1;
            }
        }
        assert!(first.iter().all(|&f| f > 0), "{first:?}");
        for (j, before) in follows.iter().enumerate() {
            for (i, &count) in before.iter().enumerate() {
                if i != j {
                    assert!(count > 0, "{} never ran right after {}", j, i);
                }
            }
        }
    }

    async fn round_trip<P: AsyncPool>() {
        let pool = P::build(2);
        pool.warm(2).await;
        for _ in 0..3 {
            let mut a = pool.acquire().await;
            let mut b = pool.acquire().await;
            *a += 1;
            *b += 1;
        }
        // Both connections were used three times.
        let a = pool.acquire().await;
        let b = pool.acquire().await;
        assert_eq!(*a + *b, 6, "{}", P::NAME);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_async_pool_reuses_its_connections() {
        round_trip::<Tidepool>().await;
        round_trip::<Deadpool>().await;
        round_trip::<Bb8>().await;
        round_trip::<Qp>().await;
        round_trip::<Mobc>().await;
    }

    #[tokio::test]
    async fn the_fifo_floor_serves_waiters_in_arrival_order() {
        let floor = FifoFloor::build(1);
        let held = floor.acquire().await;
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (floor, order) = (floor.clone(), std::sync::Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let _g = floor.acquire().await;
                order.lock().unwrap().push(i);
            }));
            // One runtime thread: task i queues before task i + 1 exists.
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn r2d2_reuses_its_connections() {
        let pool = r2d2_pool(2);
        for _ in 0..3 {
            let mut a = pool.get().unwrap();
            let mut b = pool.get().unwrap();
            *a += 1;
            *b += 1;
        }
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();
        assert_eq!(*a + *b, 6);
    }
}
