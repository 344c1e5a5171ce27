//! Operation groups (seed 003's `run_parallel_operations` and
//! `run_in_transaction`): a named handle on a pool that runs a list of
//! operations either side by side over at most `k` connections, or one
//! after another in a single transaction retried as a whole, and counts
//! what it did.
//!
//! The parallel runner polls every operation from the caller's task (no
//! spawning, so operations may borrow the caller's data); a semaphore of
//! `k` permits, taken before a connection is checked out and held until it
//! is returned, is what bounds the connections in use. Operations that are
//! cancelled are dropped, and the pool cleans or discards whatever
//! connection they held, as for any dropped guard. The transaction runner
//! uses the connection's [`Queryable`] face and [`RetryPolicy`], with the
//! same backoff as [`transaction`](crate::transaction), and tells the
//! breaker how it went as [`Pool::transaction`] does.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use tokio::time::Instant;

use crate::error::{Error, FailureKind};
use crate::histogram::{Histogram, HistogramSnapshot};
use crate::manager::Manager;
use crate::pool::Pool;
use crate::query::{BoxFuture, Classify, Queryable, RetryPolicy};
use crate::Pooled;

/// One operation of a parallel group: given a connection, a future that
/// may borrow it. Build one with [`operation`].
pub type Operation<'a, C, T, E> =
    Box<dyn for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, Result<T, E>> + Send + 'a>;

/// One operation of a transaction group. It may run more than once (the
/// group retries the whole transaction), so it is `FnMut`. Build one with
/// [`tx_operation`].
pub type TxOperation<'a, C, T, E> =
    Box<dyn for<'c> FnMut(&'c mut C) -> BoxFuture<'c, Result<T, E>> + Send + 'a>;

/// Boxes a closure as a parallel [`Operation`] (the closure's type is then
/// the same for every operation of a list).
///
/// ```
/// # type Conn = Vec<u32>;
/// let op = tidepool::operation(|conn: &mut Conn| Box::pin(async move {
///     conn.push(1);
///     Ok::<_, std::io::Error>(conn.len())
/// }));
/// # let _ = op;
/// ```
pub fn operation<'a, C, T, E, F>(f: F) -> Operation<'a, C, T, E>
where
    F: for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, Result<T, E>> + Send + 'a,
{
    Box::new(f)
}

/// Boxes a closure as a [`TxOperation`].
pub fn tx_operation<'a, C, T, E, F>(f: F) -> TxOperation<'a, C, T, E>
where
    F: for<'c> FnMut(&'c mut C) -> BoxFuture<'c, Result<T, E>> + Send + 'a,
{
    Box::new(f)
}

/// What a parallel group does with the operations still running when one
/// fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Drop them at once (their connections are cleaned or closed by the
    /// pool) and report the failure. The default.
    #[default]
    CancelRest,
    /// Let every operation finish, then report the first failure; the
    /// other outcomes are in [`GroupError::outcomes`].
    FinishRest,
}

/// Why one operation of a group failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupFailure<E, PE: std::error::Error + 'static> {
    /// No connection could be checked out for it.
    #[error("{0}")]
    Acquire(#[source] Error<PE>),
    /// The operation itself (or, in a transaction group, its `BEGIN` or
    /// `COMMIT`) returned this error.
    #[error("{0}")]
    Operation(#[source] E),
}

/// What became of one operation when its group failed.
#[derive(Debug)]
pub enum Outcome<T, E, PE: std::error::Error + 'static> {
    /// It finished with this value (in a transaction group, only when the
    /// transaction committed, which it did not if you are reading this).
    Done(T),
    /// It failed.
    Failed(GroupFailure<E, PE>),
    /// It ran in a transaction that was rolled back.
    RolledBack,
    /// It was cancelled or never started.
    Cancelled,
}

/// A group that failed: which operation failed first, why, and what became
/// of the others.
pub struct GroupError<T, E, PE: std::error::Error + 'static> {
    group: Arc<str>,
    index: Option<usize>,
    failure: GroupFailure<E, PE>,
    outcomes: Vec<Outcome<T, E, PE>>,
}

impl<T, E, PE: std::error::Error + 'static> GroupError<T, E, PE> {
    /// The index, in the list given, of the operation that failed first;
    /// `None` when a transaction group's own `BEGIN` or `COMMIT` failed or
    /// no connection could be had for it.
    pub fn index(&self) -> Option<usize> {
        self.index
    }

    /// The group's name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Why it failed.
    pub fn failure(&self) -> &GroupFailure<E, PE> {
        &self.failure
    }

    /// Takes the failure out.
    pub fn into_failure(self) -> GroupFailure<E, PE> {
        self.failure
    }

    /// What became of every operation, in the order given; the first
    /// failure itself is at [`index`](Self::index), as
    /// [`Outcome::Cancelled`] (it was moved into
    /// [`failure`](Self::failure)).
    pub fn outcomes(&self) -> &[Outcome<T, E, PE>] {
        &self.outcomes
    }

    /// Takes the outcomes out.
    pub fn into_outcomes(self) -> Vec<Outcome<T, E, PE>> {
        self.outcomes
    }
}

impl<T, E: fmt::Display, PE: std::error::Error + 'static> fmt::Display for GroupError<T, E, PE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(
                f,
                "operation {i} of group `{}` failed: {}",
                self.group, self.failure
            ),
            None => write!(f, "group `{}` failed: {}", self.group, self.failure),
        }
    }
}

impl<T, E: fmt::Debug, PE: std::error::Error + 'static> fmt::Debug for GroupError<T, E, PE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupError")
            .field("group", &self.group)
            .field("index", &self.index)
            .field("failure", &self.failure)
            .field("operations", &self.outcomes.len())
            .finish()
    }
}

impl<T, E, PE> std::error::Error for GroupError<T, E, PE>
where
    E: std::error::Error + 'static,
    PE: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.failure)
    }
}

/// What a group has done since it was made, read with
/// [`OperationGroup::stats`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupStats {
    /// The group's name.
    pub name: String,
    /// Runs started (parallel and transaction).
    pub runs: u64,
    /// Runs that ended in an error.
    pub runs_failed: u64,
    /// Operations that got a connection and started.
    pub operations_started: u64,
    /// Operations that returned `Ok`.
    pub operations_succeeded: u64,
    /// Operations that returned an error, or got no connection.
    pub operations_failed: u64,
    /// Operations dropped before they finished, or never started, because
    /// another failed.
    pub operations_cancelled: u64,
    /// Transactions begun by transaction runs, retries included.
    pub transaction_attempts: u64,
    /// Transactions run again after a serialization failure or deadlock.
    pub transaction_retries: u64,
    /// The most operations this group has had running at once.
    pub peak_parallel: usize,
    /// How long runs took, start to result.
    pub run_time: HistogramSnapshot,
    /// How long single operations took, connection in hand to result.
    pub operation_time: HistogramSnapshot,
}

struct Counters {
    runs: AtomicU64,
    runs_failed: AtomicU64,
    started: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    running: AtomicUsize,
    peak: AtomicUsize,
    run_time: Histogram,
    operation_time: Histogram,
}

impl Counters {
    fn new() -> Self {
        Counters {
            runs: AtomicU64::new(0),
            runs_failed: AtomicU64::new(0),
            started: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            run_time: Histogram::new(),
            operation_time: Histogram::new(),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Counts an operation as running for as long as it is alive, so a
/// cancelled one is counted out too.
struct Running<'a>(&'a Counters);

impl<'a> Running<'a> {
    fn start(counters: &'a Counters) -> Self {
        let now = counters.running.fetch_add(1, Ordering::AcqRel) + 1;
        counters.peak.fetch_max(now, Ordering::AcqRel);
        Counters::add(&counters.started, 1);
        Running(counters)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A named group of operations on one pool. Cheap to clone; clones share
/// the counters.
///
/// ```
/// # use tidepool::{Manager, Pool, OperationGroup, OnError, operation};
/// # struct M;
/// # impl Manager for M {
/// #     type Connection = Vec<u32>;
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> std::io::Result<Vec<u32>> { Ok(Vec::new()) }
/// #     async fn validate(&self, _: &mut Vec<u32>) -> std::io::Result<()> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(M).max_size(8).build().await?;
/// let reports = OperationGroup::new(&pool, "nightly-reports");
/// let ops = (0..10u32)
///     .map(|i| operation(move |conn: &mut Vec<u32>| Box::pin(async move {
///         conn.push(i);
///         Ok::<_, std::io::Error>(i * 10)
///     })))
///     .collect();
/// let results = reports.run_parallel(3, OnError::CancelRest, ops).await?;
/// assert_eq!(results, (0..10).map(|i| i * 10).collect::<Vec<_>>());
/// assert!(reports.stats().peak_parallel <= 3);
/// # Ok(()) }
/// ```
pub struct OperationGroup<M: Manager> {
    pool: Pool<M>,
    name: Arc<str>,
    counters: Arc<Counters>,
}

impl<M: Manager> Clone for OperationGroup<M> {
    fn clone(&self) -> Self {
        OperationGroup {
            pool: self.pool.clone(),
            name: self.name.clone(),
            counters: self.counters.clone(),
        }
    }
}

impl<M: Manager> fmt::Debug for OperationGroup<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationGroup")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

type Slot<'f, T, E, PE> =
    Option<Pin<Box<dyn Future<Output = Result<T, GroupFailure<E, PE>>> + Send + 'f>>>;

impl<M: Manager> OperationGroup<M> {
    /// A group named `name` on `pool`.
    pub fn new(pool: &Pool<M>, name: impl Into<String>) -> Self {
        OperationGroup {
            pool: pool.clone(),
            name: Arc::from(name.into()),
            counters: Arc::new(Counters::new()),
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pool the group runs on.
    pub fn pool(&self) -> &Pool<M> {
        &self.pool
    }

    /// Counts and timings since the group was made.
    pub fn stats(&self) -> GroupStats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GroupStats {
            name: self.name.to_string(),
            runs: load(&c.runs),
            runs_failed: load(&c.runs_failed),
            operations_started: load(&c.started),
            operations_succeeded: load(&c.succeeded),
            operations_failed: load(&c.failed),
            operations_cancelled: load(&c.cancelled),
            transaction_attempts: load(&c.attempts),
            transaction_retries: load(&c.retries),
            peak_parallel: c.peak.load(Ordering::Relaxed),
            run_time: c.run_time.snapshot(),
            operation_time: c.operation_time.snapshot(),
        }
    }

    /// Runs `ops` side by side, each on its own connection, never more
    /// than `k` at once (`k` of 0 counts as 1; the pool's `max_size` bounds
    /// it too). Results come back in the order of `ops`. When one fails,
    /// the error names its index, and `on_error` says whether the others
    /// are cancelled or finish first.
    pub async fn run_parallel<'a, T, E>(
        &self,
        k: usize,
        on_error: OnError,
        ops: Vec<Operation<'a, M::Connection, T, E>>,
    ) -> Result<Vec<T>, GroupError<T, E, M::Error>>
    where
        T: Send + 'a,
        E: Send + 'a,
    {
        let started = Instant::now();
        let counters = &*self.counters;
        Counters::add(&counters.runs, 1);
        let permits = tokio::sync::Semaphore::new(k.max(1));
        let n = ops.len();
        let mut slots: Vec<Slot<'_, T, E, M::Error>> = ops
            .into_iter()
            .map(|op| {
                let permits = &permits;
                let pool = &self.pool;
                let run: Pin<Box<dyn Future<Output = _> + Send + '_>> = Box::pin(async move {
                    // Held until the connection is back: the bound is on
                    // connections in use, not on futures polled.
                    let Ok(_permit) = permits.acquire().await else {
                        unreachable!("the group's semaphore is never closed")
                    };
                    let mut conn = pool.get().await.map_err(GroupFailure::Acquire)?;
                    let _running = Running::start(counters);
                    let op_started = Instant::now();
                    let result = op(&mut *conn).await;
                    counters.operation_time.record(op_started.elapsed());
                    result.map_err(GroupFailure::Operation)
                });
                Some(run)
            })
            .collect();
        let mut outcomes: Vec<Option<Outcome<T, E, M::Error>>> = (0..n).map(|_| None).collect();
        let mut first_failure: Option<usize> = None;
        std::future::poll_fn(|cx| {
            for (i, slot) in slots.iter_mut().enumerate() {
                let Some(run) = slot else { continue };
                if let Poll::Ready(result) = run.as_mut().poll(cx) {
                    *slot = None;
                    outcomes[i] = Some(match result {
                        Ok(value) => {
                            Counters::add(&counters.succeeded, 1);
                            Outcome::Done(value)
                        }
                        Err(failure) => {
                            Counters::add(&counters.failed, 1);
                            first_failure.get_or_insert(i);
                            Outcome::Failed(failure)
                        }
                    });
                    if first_failure.is_some() && on_error == OnError::CancelRest {
                        return Poll::Ready(());
                    }
                }
            }
            if slots.iter().all(Option::is_none) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        let cancelled = slots.iter().filter(|s| s.is_some()).count() as u64;
        // Dropping the rest cancels them; their guards go back to the pool.
        drop(slots);
        Counters::add(&counters.cancelled, cancelled);
        counters.run_time.record(started.elapsed());
        let mut outcomes: Vec<Outcome<T, E, M::Error>> = outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Cancelled))
            .collect();
        match first_failure {
            None => Ok(outcomes
                .into_iter()
                .filter_map(|o| match o {
                    Outcome::Done(v) => Some(v),
                    _ => None,
                })
                .collect()),
            Some(index) => {
                Counters::add(&counters.runs_failed, 1);
                let failure = match std::mem::replace(&mut outcomes[index], Outcome::Cancelled) {
                    Outcome::Failed(failure) => failure,
                    _ => unreachable!("the first failure's outcome is a failure"),
                };
                Err(GroupError {
                    group: self.name.clone(),
                    index: Some(index),
                    failure,
                    outcomes,
                })
            }
        }
    }
}

impl<M> OperationGroup<M>
where
    M: Manager,
    M::Connection: Queryable<Error = M::Error>,
    M::Error: Classify,
{
    /// Runs `ops` one after another on one connection inside one
    /// transaction, and commits. When an operation fails the transaction
    /// is rolled back; when the failure is a serialization failure or
    /// deadlock (of an operation, or of the `COMMIT`), the whole list runs
    /// again from the first operation, up to `policy.max_attempts`, with
    /// [`transaction`](crate::transaction)'s backoff. The breaker hears of
    /// the outcome as for [`Pool::transaction`].
    pub async fn run_in_transaction<'a, T>(
        &self,
        policy: RetryPolicy,
        mut ops: Vec<TxOperation<'a, M::Connection, T, M::Error>>,
    ) -> Result<Vec<T>, GroupError<T, M::Error, M::Error>>
    where
        T: Send + 'a,
    {
        let started = Instant::now();
        let counters = &*self.counters;
        Counters::add(&counters.runs, 1);
        let n = ops.len();
        let fail = |index: Option<usize>, failure, ran: usize| {
            Counters::add(&counters.runs_failed, 1);
            Counters::add(&counters.cancelled, (n - ran) as u64);
            counters.run_time.record(started.elapsed());
            let outcomes = (0..n)
                .map(|i| {
                    if i < ran && Some(i) != index {
                        Outcome::RolledBack
                    } else {
                        Outcome::Cancelled
                    }
                })
                .collect();
            GroupError {
                group: self.name.clone(),
                index,
                failure,
                outcomes,
            }
        };
        let mut conn = match self.pool.get().await {
            Ok(conn) => conn,
            Err(e) => {
                Counters::add(&counters.failed, 1);
                return Err(fail(None, GroupFailure::Acquire(e), 0));
            }
        };
        let mut attempt = 1u32;
        loop {
            Counters::add(&counters.attempts, 1);
            // (index of the failed operation, how many ran, the error)
            let outcome: Result<Vec<T>, (Option<usize>, usize, M::Error)> = async {
                conn.begin().await.map_err(|e| (None, 0, e))?;
                let mut values = Vec::with_capacity(n);
                for (i, op) in ops.iter_mut().enumerate() {
                    let _running = Running::start(counters);
                    let op_started = Instant::now();
                    let result = op(&mut *conn).await;
                    counters.operation_time.record(op_started.elapsed());
                    match result {
                        Ok(v) => values.push(v),
                        Err(e) => {
                            Counters::add(&counters.failed, 1);
                            return Err((Some(i), i + 1, e));
                        }
                    }
                }
                conn.commit().await.map_err(|e| (None, n, e))?;
                Counters::add(&counters.succeeded, n as u64);
                Ok(values)
            }
            .await;
            match outcome {
                Ok(values) => {
                    self.pool.report_success();
                    counters.run_time.record(started.elapsed());
                    return Ok(values);
                }
                Err((index, ran, e)) => {
                    if conn.in_transaction() {
                        let _ = conn.rollback().await;
                    }
                    if e.is_retryable_transaction() && attempt < policy.max_attempts.max(1) {
                        let delay =
                            crate::backoff::delay(policy.base_delay, policy.max_delay, attempt);
                        tracing::debug!(target: "tidepool::groups", group = %self.name, attempt, ?delay, error = %e, "retrying the group's transaction");
                        Counters::add(&counters.retries, 1);
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                        continue;
                    }
                    let kind = e.failure_kind();
                    if kind == FailureKind::Connect {
                        Pooled::mark_broken(&mut conn);
                    }
                    self.pool.report_failure(kind, &e);
                    return Err(fail(index, GroupFailure::Operation(e), ran));
                }
            }
        }
    }
}
