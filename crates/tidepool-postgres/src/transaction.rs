//! [`PgTransaction`]: tokio-postgres' `Transaction`, tracked. It commits
//! with [`commit`](PgTransaction::commit), rolls back with
//! [`rollback`](PgTransaction::rollback) or when dropped, and nests with
//! savepoints, as tokio-postgres' own does (it is one inside).
//!
//! Drop cannot wait for the server. tokio-postgres' `Transaction` sends its
//! `ROLLBACK` (or `ROLLBACK TO` a savepoint) when dropped without waiting
//! for the reply, so anything the borrower runs next goes after it; on top
//! of that a dropped transaction leaves the tracked state `Unknown`, so the
//! pool rolls back once more on return rather than trust a reply nobody
//! read. Only the committed or rolled-back paths count as clean.

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Error, IsolationLevel, Row, SimpleQueryMessage, Statement};

use crate::native::{AsStatement, Tracked};
use crate::track::Tracker;
use crate::txstate::{Effect, TxState};

/// A transaction (or, nested, a savepoint) on a [`PgConnection`](crate::PgConnection),
/// from [`PgConnection::transaction`](crate::PgConnection::transaction).
///
/// Its methods are tokio-postgres' `Transaction` methods, tracked; SQL
/// text is prepared through the connection's statement cache.
///
/// ```no_run
/// # async fn demo(pool: tidepool_postgres::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// let mut conn = pool.get().await?;
/// let mut tx = conn.transaction().await?;
/// tx.execute("INSERT INTO audit (what) VALUES ($1)", &[&"transfer"]).await?;
/// {
///     // A savepoint: rolled back to when dropped, without touching the insert.
///     let sp = tx.transaction().await?;
///     sp.execute("UPDATE accounts SET balance = balance - 10 WHERE id = $1", &[&1i32]).await?;
/// }
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub struct PgTransaction<'a> {
    inner: tokio_postgres::Transaction<'a>,
    track: &'a Tracker,
    depth: u32,
    open: OpenMark<'a>,
}

/// Marks the tracked state `Unknown` if the transaction is dropped open.
/// A field of its own, so that `commit` and `rollback` can move the inner
/// transaction out of [`PgTransaction`] (which therefore has no `Drop`).
struct OpenMark<'a> {
    track: &'a Tracker,
    armed: bool,
}

impl Drop for OpenMark<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.track.set_state(TxState::Unknown);
        }
    }
}

impl std::fmt::Debug for PgTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTransaction")
            .field("savepoint_depth", &self.depth)
            .field("tx_state", &self.track.state())
            .finish_non_exhaustive()
    }
}

impl<'a> PgTransaction<'a> {
    pub(crate) fn new(
        inner: tokio_postgres::Transaction<'a>,
        track: &'a Tracker,
        depth: u32,
    ) -> Self {
        PgTransaction {
            inner,
            track,
            depth,
            open: OpenMark { track, armed: true },
        }
    }

    fn tracked(&self) -> Tracked<'_> {
        Tracked {
            client: self.inner.client(),
            track: self.track,
        }
    }

    /// Commits (a savepoint: releases it).
    pub async fn commit(mut self) -> Result<(), Error> {
        self.open.armed = false;
        let effect = if self.depth == 0 {
            Effect::End
        } else {
            Effect::None
        };
        let round = self.track.start();
        let result = self.inner.commit().await;
        self.track.finish(round, effect, None, result)
    }

    /// Rolls back (a savepoint: rolls back to it, and the enclosing
    /// transaction goes on).
    pub async fn rollback(mut self) -> Result<(), Error> {
        self.open.armed = false;
        let effect = if self.depth == 0 {
            Effect::End
        } else {
            Effect::RollbackTo
        };
        let round = self.track.start();
        let result = self.inner.rollback().await;
        self.track.finish(round, effect, None, result)
    }

    /// A nested transaction: a savepoint named `sp_<depth>`.
    pub async fn transaction(&mut self) -> Result<PgTransaction<'_>, Error> {
        let round = self.track.start();
        let result = self.inner.transaction().await;
        let inner = self.track.finish(round, Effect::None, None, result)?;
        Ok(PgTransaction::new(inner, self.track, self.depth + 1))
    }

    /// A nested transaction: a savepoint with the given name.
    pub async fn savepoint<I: Into<String>>(
        &mut self,
        name: I,
    ) -> Result<PgTransaction<'_>, Error> {
        let round = self.track.start();
        let result = self.inner.savepoint(name).await;
        let inner = self.track.finish(round, Effect::None, None, result)?;
        Ok(PgTransaction::new(inner, self.track, self.depth + 1))
    }

    /// Like `Transaction::prepare`, tracked (not cached).
    pub async fn prepare(&self, query: &str) -> Result<Statement, Error> {
        self.tracked().prepare_typed(query, &[]).await
    }

    /// Like `Transaction::prepare_typed`, tracked.
    pub async fn prepare_typed(
        &self,
        query: &str,
        parameter_types: &[Type],
    ) -> Result<Statement, Error> {
        self.tracked().prepare_typed(query, parameter_types).await
    }

    /// Prepares `query`, or returns the connection's cached statement.
    pub async fn prepare_cached(&self, query: &str) -> Result<Statement, Error> {
        self.tracked().prepare_cached(query).await
    }

    /// Like `Transaction::query`, tracked.
    pub async fn query<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + AsStatement,
    {
        self.tracked().query(statement, params).await
    }

    /// Like `Transaction::query_one`, tracked.
    pub async fn query_one<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error>
    where
        T: ?Sized + AsStatement,
    {
        self.tracked().query_one(statement, params).await
    }

    /// Like `Transaction::query_opt`, tracked.
    pub async fn query_opt<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error>
    where
        T: ?Sized + AsStatement,
    {
        self.tracked().query_opt(statement, params).await
    }

    /// Like `Transaction::execute`, tracked.
    pub async fn execute<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error>
    where
        T: ?Sized + AsStatement,
    {
        self.tracked().execute(statement, params).await
    }

    /// Like `Transaction::query_typed`, tracked.
    pub async fn query_typed(
        &self,
        query: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, Error> {
        self.tracked().query_typed(query, params).await
    }

    /// Like `Transaction::execute_typed`, tracked.
    pub async fn execute_typed(
        &self,
        query: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<u64, Error> {
        self.tracked().execute_typed(query, params).await
    }

    /// Like `Transaction::batch_execute`, tracked.
    pub async fn batch_execute(&self, query: &str) -> Result<(), Error> {
        self.tracked().batch_execute(query).await
    }

    /// Like `Transaction::simple_query`, tracked.
    pub async fn simple_query(&self, query: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.tracked().simple_query(query).await
    }

    /// The native client, for anything not wrapped here. The tracker cannot
    /// see what is sent through it, so using it marks the connection for a
    /// `ROLLBACK` on return.
    pub fn client(&self) -> &Client {
        self.track.mark_native_used();
        self.inner.client()
    }
}

/// Builds a transaction with options, from
/// [`PgConnection::build_transaction`](crate::PgConnection::build_transaction).
///
/// ```no_run
/// # async fn demo(pool: tidepool_postgres::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// use tidepool_postgres::tokio_postgres::IsolationLevel;
/// let mut conn = pool.get().await?;
/// let tx = conn
///     .build_transaction()
///     .isolation_level(IsolationLevel::Serializable)
///     .start()
///     .await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub struct PgTransactionBuilder<'a> {
    inner: tokio_postgres::TransactionBuilder<'a>,
    track: &'a Tracker,
}

impl std::fmt::Debug for PgTransactionBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTransactionBuilder")
            .finish_non_exhaustive()
    }
}

impl<'a> PgTransactionBuilder<'a> {
    pub(crate) fn new(inner: tokio_postgres::TransactionBuilder<'a>, track: &'a Tracker) -> Self {
        PgTransactionBuilder { inner, track }
    }

    /// Sets the isolation level. Defaults to the server's.
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.inner = self.inner.isolation_level(level);
        self
    }

    /// Makes the transaction read-only (or read-write). Defaults to the
    /// server's.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.inner = self.inner.read_only(read_only);
        self
    }

    /// Makes a serializable read-only transaction deferrable. Defaults to
    /// the server's.
    pub fn deferrable(mut self, deferrable: bool) -> Self {
        self.inner = self.inner.deferrable(deferrable);
        self
    }

    /// Opens the transaction.
    pub async fn start(self) -> Result<PgTransaction<'a>, Error> {
        let round = self.track.start();
        let result = self.inner.start().await;
        let tx = self.track.finish(round, Effect::Begin, None, result)?;
        Ok(PgTransaction::new(tx, self.track, 0))
    }
}
