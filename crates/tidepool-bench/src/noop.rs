//! The pools under test, each over a manager that does nothing: connecting
//! and checking return at once, so what is measured is the pool itself.
//! Also the floor: the least a pool can be (a tokio `Semaphore` for the
//! size limit and the wait queue, a `parking_lot::Mutex<Vec<_>>` for the
//! idle connections), written here so every pool is compared with it.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{AcquireError, Semaphore, SemaphorePermit};

/// A pretend connection: one counter the benchmark bumps while holding it,
/// so the guard's deref is on the measured path.
#[derive(Debug, Default)]
pub struct Conn {
    /// How many times this connection was used.
    pub uses: u64,
}

/// A manager whose every operation succeeds at once. It implements the
/// manager traits of tidepool, deadpool and bb8.
#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

impl tidepool::Manager for Noop {
    type Connection = Conn;
    type Error = Infallible;

    async fn connect(&self) -> Result<Conn, Infallible> {
        Ok(Conn::default())
    }

    async fn validate(&self, _conn: &mut Conn) -> Result<(), Infallible> {
        Ok(())
    }
}

impl deadpool::managed::Manager for Noop {
    type Type = Conn;
    type Error = Infallible;

    async fn create(&self) -> Result<Conn, Infallible> {
        Ok(Conn::default())
    }

    async fn recycle(
        &self,
        _obj: &mut Conn,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

impl bb8::ManageConnection for Noop {
    type Connection = Conn;
    type Error = Infallible;

    async fn connect(&self) -> Result<Conn, Infallible> {
        Ok(Conn::default())
    }

    async fn is_valid(&self, _conn: &mut Conn) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut Conn) -> bool {
        false
    }
}

/// The floor: a semaphore bounds the checkouts and queues the waiters
/// (FIFO), a mutex-guarded `Vec` holds the idle connections. No timeouts,
/// no validation, no metrics, a borrowed guard: the least a fair async
/// pool can cost.
#[derive(Debug)]
pub struct FloorPool {
    permits: Semaphore,
    idle: Mutex<Vec<Conn>>,
}

/// A connection checked out of a [`FloorPool`]; put back on drop, before
/// its permit is released.
#[derive(Debug)]
pub struct FloorGuard<'a> {
    pool: &'a FloorPool,
    conn: Option<Conn>,
    _permit: SemaphorePermit<'a>,
}

impl FloorPool {
    /// A pool of `size` connections, all opened up front.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tokio::sync::AcquireError> {
    /// let pool = tidepool_bench::noop::FloorPool::new(2);
    /// let mut conn = pool.get().await?;
    /// conn.uses += 1;
    /// # Ok(()) }
    /// ```
    pub fn new(size: usize) -> Self {
        FloorPool {
            permits: Semaphore::new(size),
            idle: Mutex::new((0..size).map(|_| Conn::default()).collect()),
        }
    }

    /// Waits for a permit, then takes an idle connection (or opens one if
    /// none is idle, which a permit holder never sees in practice).
    pub async fn get(&self) -> Result<FloorGuard<'_>, AcquireError> {
        let permit = self.permits.acquire().await?;
        let conn = self.idle.lock().pop().unwrap_or_default();
        Ok(FloorGuard {
            pool: self,
            conn: Some(conn),
            _permit: permit,
        })
    }
}

impl std::ops::Deref for FloorGuard<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match &self.conn {
            Some(c) => c,
            None => unreachable!("a floor guard holds its connection until dropped"),
        }
    }
}

impl std::ops::DerefMut for FloorGuard<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        match &mut self.conn {
            Some(c) => c,
            None => unreachable!("a floor guard holds its connection until dropped"),
        }
    }
}

impl Drop for FloorGuard<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.idle.lock().push(conn);
        }
        // `_permit` is released after this, with the connection back.
    }
}

/// What a task does while it holds a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Hold {
    /// Yield to the scheduler once (as any real query would), so other
    /// tasks contend while the connection is out.
    Yield,
    /// Drop the connection at once.
    None,
}

/// The pools the harness knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolKind {
    /// tidepool as a user gets it: test-on-borrow with a validation
    /// interval, leak detection and metrics on.
    Tidepool,
    /// tidepool with `test_on_borrow(false)` and leak detection off
    /// (metrics are always on).
    TidepoolBare,
    /// tidepool with its defaults and the `balanced` scaling strategy
    /// (warm target moved on the scaling tick), to show what sizing
    /// itself costs the checkout path.
    TidepoolBalanced,
    /// deadpool's managed pool, default configuration (it waits for a
    /// connection without limit).
    Deadpool,
    /// deadpool with a 30 s wait timeout (tidepool's default
    /// `acquire_timeout`), to show what bounding the wait costs.
    DeadpoolWait,
    /// bb8, default configuration (it tests on checkout).
    Bb8,
    /// [`FloorPool`].
    Floor,
}

impl PoolKind {
    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::Tidepool => "tidepool",
            PoolKind::TidepoolBare => "tidepool-bare",
            PoolKind::TidepoolBalanced => "tidepool-balanced",
            PoolKind::Deadpool => "deadpool",
            PoolKind::DeadpoolWait => "deadpool-wait",
            PoolKind::Bb8 => "bb8",
            PoolKind::Floor => "floor",
        }
    }

    /// Every pool, in table order.
    pub const ALL: [PoolKind; 7] = [
        PoolKind::Tidepool,
        PoolKind::TidepoolBare,
        PoolKind::TidepoolBalanced,
        PoolKind::Deadpool,
        PoolKind::DeadpoolWait,
        PoolKind::Bb8,
        PoolKind::Floor,
    ];
}

/// A pool that can run one benchmark cycle: get, hold, drop.
pub trait Cycle: Send + Sync + 'static {
    /// Checks out a connection, holds it as `hold` says, returns it, and
    /// reports how long the checkout (`get()` alone) took.
    fn cycle(&self, hold: Hold) -> impl Future<Output = Result<Duration, String>> + Send;
}

/// The same measured body for every pool: time `get()`, touch the
/// connection, hold, drop.
macro_rules! timed_cycle {
    ($get:expr, $hold:expr) => {{
        let started = Instant::now();
        let mut conn = $get.await.map_err(|e| format!("{e:?}"))?;
        let waited = started.elapsed();
        conn.uses = std::hint::black_box(conn.uses + 1);
        if $hold == Hold::Yield {
            tokio::task::yield_now().await;
        }
        drop(conn);
        Ok(waited)
    }};
}

impl Cycle for tidepool::Pool<Noop> {
    async fn cycle(&self, hold: Hold) -> Result<Duration, String> {
        timed_cycle!(self.get(), hold)
    }
}

impl Cycle for deadpool::managed::Pool<Noop> {
    async fn cycle(&self, hold: Hold) -> Result<Duration, String> {
        timed_cycle!(self.get(), hold)
    }
}

impl Cycle for bb8::Pool<Noop> {
    async fn cycle(&self, hold: Hold) -> Result<Duration, String> {
        timed_cycle!(self.get(), hold)
    }
}

impl Cycle for FloorPool {
    async fn cycle(&self, hold: Hold) -> Result<Duration, String> {
        timed_cycle!(self.get(), hold)
    }
}

/// Builds a pool of `kind` with `size` connections (inside a runtime).
pub async fn build(kind: PoolKind, size: usize) -> Result<Built, String> {
    let size32 = u32::try_from(size).map_err(|_| format!("pool size {size} is too large"))?;
    Ok(match kind {
        PoolKind::Tidepool => Built::Tidepool(Arc::new(
            tidepool::Pool::builder(Noop)
                .max_size(size32)
                .build()
                .await
                .map_err(|e| e.to_string())?,
        )),
        PoolKind::TidepoolBare => Built::Tidepool(Arc::new(
            tidepool::Pool::builder(Noop)
                .max_size(size32)
                .test_on_borrow(false)
                .leak_timeout(None)
                .build()
                .await
                .map_err(|e| e.to_string())?,
        )),
        PoolKind::TidepoolBalanced => Built::Tidepool(Arc::new(
            tidepool::Pool::builder(Noop)
                .max_size(size32)
                .strategy(tidepool::Strategy::Balanced)
                .build()
                .await
                .map_err(|e| e.to_string())?,
        )),
        PoolKind::Deadpool => Built::Deadpool(Arc::new(
            deadpool::managed::Pool::builder(Noop)
                .max_size(size)
                .build()
                .map_err(|e| e.to_string())?,
        )),
        PoolKind::DeadpoolWait => Built::Deadpool(Arc::new(
            deadpool::managed::Pool::builder(Noop)
                .max_size(size)
                .wait_timeout(Some(Duration::from_secs(30)))
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .map_err(|e| e.to_string())?,
        )),
        PoolKind::Bb8 => Built::Bb8(Arc::new(
            bb8::Pool::builder()
                .max_size(size32)
                .build(Noop)
                .await
                .map_err(|e| format!("{e:?}"))?,
        )),
        PoolKind::Floor => Built::Floor(Arc::new(FloorPool::new(size))),
    })
}

/// A built pool of one of the known kinds.
pub enum Built {
    /// Any tidepool configuration.
    Tidepool(Arc<tidepool::Pool<Noop>>),
    /// deadpool.
    Deadpool(Arc<deadpool::managed::Pool<Noop>>),
    /// bb8.
    Bb8(Arc<bb8::Pool<Noop>>),
    /// The floor.
    Floor(Arc<FloorPool>),
}
