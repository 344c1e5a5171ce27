//! The uniform query face: SQL text with positional parameters of basic
//! types, rows of values, and the kinds of work a query does. All three
//! drivers implement [`Queryable`] on their connections, so the CLI's
//! `bench` and `serve`, [`Pool::execute_query`](crate::Pool::execute_query)
//! and [`transaction`] work on any of them. Native driver access stays
//! available through the pool's guard; this face is for portable code.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::FailureKind;
use crate::row::Row;
use crate::value::Value;

/// What a query does; routing, affinity and metrics group by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum QueryKind {
    /// A read that may go to a replica.
    Read,
    /// A write.
    Write,
    /// Part of a multi-statement transaction.
    Transaction,
    /// A long-running analytical read.
    Analytics,
    /// Maintenance (DDL, VACUUM, ANALYZE).
    Maintenance,
}

impl fmt::Display for QueryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryKind::Read => "read",
            QueryKind::Write => "write",
            QueryKind::Transaction => "transaction",
            QueryKind::Analytics => "analytics",
            QueryKind::Maintenance => "maintenance",
        })
    }
}

/// A driver error that knows what kind of failure it is.
pub trait Classify {
    /// The kind of failure, for the breaker and for error metrics.
    fn failure_kind(&self) -> FailureKind;
    /// Whether the transaction that hit this error may succeed if run again
    /// from the start (serialization failure, deadlock). Defaults to `false`.
    fn is_retryable_transaction(&self) -> bool {
        false
    }
}

/// A boxed future borrowing the connection, as returned by a transaction
/// body.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The uniform query face, implemented by each driver's connection.
///
/// A driver tracks its own transaction state so that a connection returned
/// to the pool inside a transaction is rolled back, whatever way the
/// transaction was left open.
///
/// The query methods end in `_values` (they take and return [`Value`]s) so
/// that no driver's own methods share their names: importing this trait
/// never changes what `conn.query_one(..)` means on a connection that has a
/// native `query_one`, and the native and portable calls can sit side by
/// side in one function.
pub trait Queryable: Send {
    /// The driver's query error.
    type Error: std::error::Error + Classify + Send + Sync + 'static;

    /// Runs a statement and returns the number of rows it affected.
    fn execute_values(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Runs a query and returns all its rows.
    fn query_values(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> impl Future<Output = Result<Vec<Row>, Self::Error>> + Send;

    /// Runs a query that must return exactly one row.
    fn query_one_values(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> impl Future<Output = Result<Row, Self::Error>> + Send;

    /// Opens a transaction.
    fn begin(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Commits the open transaction.
    fn commit(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Rolls back the open transaction.
    fn rollback(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Whether a transaction is open, as tracked by the driver.
    fn in_transaction(&self) -> bool;
}

/// How [`transaction`] retries serialization failures and deadlocks.
///
/// ```
/// let policy = tidepool::RetryPolicy::default();
/// assert_eq!(policy.max_attempts, 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first. Defaults to 3.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled each time, with jitter.
    /// Defaults to 10 ms.
    pub base_delay: Duration,
    /// Cap on the delay between attempts. Defaults to 1 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// Runs `body` inside a transaction on `conn`: commits when it returns
/// `Ok`, rolls back when it returns `Err`, and runs it again from the start
/// (after a backoff with jitter) when the error is a serialization failure
/// or deadlock, up to `policy.max_attempts`. If the returned future is
/// dropped mid-way the transaction stays open on the connection, and the
/// pool rolls it back when the connection is returned.
///
/// `body` is an async closure (Rust 1.85), so it can borrow locals and use
/// data moved into it on every attempt, with no `Box::pin` and no clones
/// made just to satisfy the borrow checker:
///
/// ```no_run
/// # async fn demo<C: tidepool::Queryable>(conn: &mut C) -> Result<(), C::Error> {
/// use tidepool::{run_in_transaction, RetryPolicy, Value};
/// let from = Value::Int(1);                 // borrowed by the body
/// let note = String::from("monthly fee");   // moved into it
/// run_in_transaction(conn, RetryPolicy::default(), async move |tx| {
///     tx.execute_values("UPDATE accounts SET balance = balance - 10 WHERE id = $1", &[from.clone()]).await?;
///     tx.execute_values("INSERT INTO ledger (note) VALUES ($1)", &[note.as_str().into()]).await
/// }).await?;
/// # Ok(()) }
/// ```
///
/// On a task that must be `Send` (`tokio::spawn`, most web handlers), give
/// the body owned data (`async move` over owned values, or an `Arc`): a
/// body that captures a reference there trips a current compiler
/// limitation ("implementation of `Send` is not general enough",
/// rust-lang/rust#139475) although the future is `Send`.
///
/// [`transaction`] is the same with the closure shape sqlx uses (a plain
/// closure returning a boxed future).
pub async fn run_in_transaction<C, T, F>(
    conn: &mut C,
    policy: RetryPolicy,
    mut body: F,
) -> Result<T, C::Error>
where
    C: Queryable,
    F: AsyncFnMut(&mut C) -> Result<T, C::Error>,
{
    let mut attempt = 1u32;
    loop {
        // A busy database may refuse the BEGIN itself (SQLite's
        // `BEGIN IMMEDIATE` under a writer): that is retried like the body.
        let outcome = match conn.begin().await {
            Err(e) => Err(e),
            Ok(()) => match body(conn).await {
                Ok(value) => conn.commit().await.map(|()| value),
                Err(e) => Err(roll_back_after(conn, e).await),
            },
        };
        match outcome {
            Err(e) if retry_after(conn, &policy, attempt, &e).await => attempt += 1,
            other => return other,
        }
    }
}

/// Runs `body` inside a transaction on `conn`, with the same commit,
/// rollback and retry rules as [`run_in_transaction`], for a body written
/// as a plain closure returning a boxed future (the shape sqlx uses).
///
/// The closure is called again on each retry and its future may only
/// borrow the connection, so data used inside must be cloned into it or
/// owned by something that outlives the call with a `'static` borrow;
/// [`run_in_transaction`] has neither limit.
///
/// ```no_run
/// # async fn demo<C: tidepool::Queryable>(conn: &mut C) -> Result<(), C::Error> {
/// use tidepool::{transaction, RetryPolicy, Value};
/// let moved = transaction(conn, RetryPolicy::default(), |tx| Box::pin(async move {
///     tx.execute_values("UPDATE accounts SET balance = balance - 10 WHERE id = $1", &[Value::Int(1)]).await?;
///     tx.execute_values("UPDATE accounts SET balance = balance + 10 WHERE id = $1", &[Value::Int(2)]).await
/// })).await?;
/// # Ok(()) }
/// ```
pub async fn transaction<C, T, F>(
    conn: &mut C,
    policy: RetryPolicy,
    mut body: F,
) -> Result<T, C::Error>
where
    C: Queryable,
    F: for<'c> FnMut(&'c mut C) -> BoxFuture<'c, Result<T, C::Error>> + Send,
    T: Send,
{
    // The same loop as `run_in_transaction`, not a call to it: wrapping
    // `body` in an async closure would make this future `Send` only for
    // one lifetime, and callers spawn it.
    let mut attempt = 1u32;
    loop {
        let outcome = match conn.begin().await {
            Err(e) => Err(e),
            Ok(()) => match body(conn).await {
                Ok(value) => conn.commit().await.map(|()| value),
                Err(e) => Err(roll_back_after(conn, e).await),
            },
        };
        match outcome {
            Err(e) if retry_after(conn, &policy, attempt, &e).await => attempt += 1,
            other => return other,
        }
    }
}

/// Rolls back after the body failed with `e`, and gives `e` back: the
/// rollback's own error is secondary, the body's is what the caller needs.
/// A failed rollback leaves the connection marked in-transaction, so the
/// pool resets or discards it on return.
async fn roll_back_after<C: Queryable>(conn: &mut C, e: C::Error) -> C::Error {
    if conn.in_transaction() {
        let _ = conn.rollback().await;
    }
    e
}

/// Whether attempt number `attempt`, which failed with `e`, is to be run
/// again; if so, waits out the backoff first.
async fn retry_after<C: Queryable>(
    conn: &mut C,
    policy: &RetryPolicy,
    attempt: u32,
    e: &C::Error,
) -> bool {
    if !e.is_retryable_transaction() || attempt >= policy.max_attempts.max(1) {
        return false;
    }
    if conn.in_transaction() {
        let _ = conn.rollback().await;
    }
    let delay = crate::backoff::delay(policy.base_delay, policy.max_delay, attempt);
    tracing::debug!(target: "tidepool::transaction", attempt, ?delay, error = %e, "retrying transaction");
    tokio::time::sleep(delay).await;
    true
}
