//! Queries straight on the pool: check out, run, return, and tell the
//! circuit breaker how it went — a server-side failure counts against the
//! database, a caller's bad SQL does not, and a connection that failed at
//! the connection level is closed rather than returned.

use crate::error::Error;
use crate::manager::Manager;
use crate::pool::Pool;
use crate::query::{transaction, BoxFuture, Classify, QueryKind, Queryable, RetryPolicy};
use crate::row::Row;
use crate::value::Value;
use crate::{FailureKind, Pooled};

impl<M: Manager> Pool<M> {
    /// The kind of `sql` as the manager classifies it
    /// ([`Manager::query_shape`]; tidepool-sql in the drivers), or
    /// [`QueryKind::Write`] — the safe guess — when the manager does not
    /// classify. What [`execute_query`](Pool::execute_query) uses when
    /// given no kind.
    ///
    /// ```
    /// # use tidepool::{Manager, Pool, QueryKind};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> std::io::Result<()> { Ok(()) }
    /// #     async fn validate(&self, _: &mut ()) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder(M).build().await?;
    /// // This manager does not classify SQL: everything is a write.
    /// assert_eq!(pool.query_kind("SELECT 1"), QueryKind::Write);
    /// # Ok(()) }
    /// ```
    pub fn query_kind(&self, sql: &str) -> QueryKind {
        self.shared()
            .manager
            .query_shape(sql)
            .map_or(QueryKind::Write, |s| s.kind())
    }
}

impl<M> Pool<M>
where
    M: Manager,
    M::Connection: Queryable<Error = M::Error>,
    M::Error: Classify,
{
    /// Runs one query on a pooled connection and returns its rows.
    ///
    /// `kind` is a [`QueryKind`], or `None` to have it inferred from the
    /// SQL ([`query_kind`](Pool::query_kind): the drivers classify with
    /// tidepool-sql, so `SELECT ... FOR UPDATE` and a writing `WITH` are
    /// writes). Query errors come back as [`Error::Query`]; the breaker
    /// hears of every failure except the caller's own mistakes.
    ///
    /// ```no_run
    /// # async fn demo<M>(pool: tidepool::Pool<M>) -> Result<(), tidepool::Error<M::Error>>
    /// # where M: tidepool::Manager, M::Connection: tidepool::Queryable<Error = M::Error>, M::Error: tidepool::Classify {
    /// use tidepool::{QueryKind, Value};
    /// let rows = pool.execute_query(QueryKind::Read, "SELECT name FROM users WHERE id = $1", &[Value::Int(7)]).await?;
    /// // The kind inferred from the statement (a write here).
    /// pool.execute_query(None, "UPDATE users SET seen = now() WHERE id = $1", &[Value::Int(7)]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute_query(
        &self,
        kind: impl Into<Option<QueryKind>>,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Row>, Error<M::Error>> {
        let kind = kind.into();
        let shared = self.shared();
        // One look-up serves both the statistics and the inference.
        let shape = if shared.config.query_stats || kind.is_none() {
            shared.manager.query_shape(sql)
        } else {
            None
        };
        let kind = kind
            .or_else(|| shape.as_ref().map(crate::QueryShape::kind))
            .unwrap_or(QueryKind::Write);
        let shape = shape.filter(|_| shared.config.query_stats);
        let mut conn = self.get_for(crate::statement_key(sql)).await?;
        let timer = crate::stats::QueryTimer::with_shape(self, &conn, shape, params);
        let outcome = conn.query_values(sql, params).await;
        timer.finish(outcome.as_ref().ok().map(|rows| rows.len() as u64));
        self.settle(&mut conn, kind, outcome)
    }

    /// [`execute_query`](Pool::execute_query) (a kind, or `None` to infer
    /// it) with a deadline for the whole
    /// call, checkout included (seed 000's `timeout=5.0`). Past it the
    /// call fails with [`Error::QueryTimeout`] and the statement is
    /// abandoned: the drivers cancel an abandoned statement on the server
    /// and clean the connection before anyone else gets it, so a timeout
    /// never leaves work running or a dirty session behind. The breaker
    /// counts it as a `Timeout`.
    ///
    /// ```no_run
    /// # async fn demo<M>(pool: tidepool::Pool<M>) -> Result<(), tidepool::Error<M::Error>>
    /// # where M: tidepool::Manager, M::Connection: tidepool::Queryable<Error = M::Error>, M::Error: tidepool::Classify {
    /// use std::time::Duration;
    /// use tidepool::QueryKind;
    /// let rows = pool
    ///     .execute_query_within(Duration::from_secs(5), QueryKind::Analytics, "SELECT count(*) FROM events", &[])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute_query_within(
        &self,
        timeout: std::time::Duration,
        kind: impl Into<Option<QueryKind>>,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Row>, Error<M::Error>> {
        match tokio::time::timeout(timeout, self.execute_query(kind, sql, params)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let text = format!("query did not finish within {timeout:?}");
                self.report_failure(FailureKind::Timeout, &text);
                Err(Error::QueryTimeout { after: timeout })
            }
        }
    }

    /// Runs `body` in a transaction on a pooled connection, with
    /// [`transaction`]'s commit / rollback / retry rules.
    pub async fn transaction<T, F>(
        &self,
        policy: RetryPolicy,
        body: F,
    ) -> Result<T, Error<M::Error>>
    where
        T: Send,
        F: for<'c> FnMut(&'c mut M::Connection) -> BoxFuture<'c, Result<T, M::Error>> + Send,
    {
        let mut conn = self.get().await?;
        let outcome = transaction(&mut *conn, policy, body).await;
        self.settle(&mut conn, QueryKind::Transaction, outcome)
    }

    fn settle<T>(
        &self,
        conn: &mut Pooled<M>,
        kind: QueryKind,
        outcome: Result<T, M::Error>,
    ) -> Result<T, Error<M::Error>> {
        match outcome {
            Ok(value) => {
                self.report_success();
                Ok(value)
            }
            Err(e) => {
                let failure = e.failure_kind();
                tracing::debug!(target: "tidepool::pool", %kind, failure = %failure, error = %e, "query failed");
                if failure == FailureKind::Connect {
                    Pooled::mark_broken(conn);
                }
                self.report_failure(failure, &e);
                Err(Error::Query(e))
            }
        }
    }
}
