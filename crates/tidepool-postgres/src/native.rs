//! The tokio-postgres way of writing queries, tracked: `prepare`,
//! `prepare_cached`, `query`, `query_one`, `query_opt`, `execute`,
//! `batch_execute`, `simple_query` with tokio-postgres' own signatures
//! (`&self`, a statement or SQL text, `&[&(dyn ToSql + Sync)]`, its
//! `Error`), on [`PgConnection`] and on [`PgTransaction`](crate::PgTransaction).
//!
//! Code written for a deadpool-postgres client compiles against a pooled
//! connection unchanged, and each call goes through the tracker, so a
//! clean return costs nothing. SQL text is prepared through the
//! connection's statement cache (tokio-postgres would prepare it anew on
//! every call).

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Error, Row, SimpleQueryMessage, Statement};

use crate::connection::PgConnection;
use crate::track::Tracker;
use crate::transaction::{PgTransaction, PgTransactionBuilder};
use crate::txstate::{batch_effect, statement_effect, Effect};

mod sealed {
    /// What a statement argument is: a prepared statement, or SQL text.
    pub enum Resolved<'a> {
        Statement(&'a tokio_postgres::Statement),
        Sql(&'a str),
    }

    pub trait Sealed {
        fn resolve(&self) -> Resolved<'_>;
    }
}

use sealed::Resolved;

/// A statement argument: what tokio-postgres' [`ToStatement`](tokio_postgres::ToStatement)
/// accepts — a prepared [`Statement`], or SQL text as `str` or `String`.
///
/// The tracked methods need to see which one they were given (SQL text
/// goes through the statement cache, and says what it does to the
/// transaction), which tokio-postgres' trait keeps private; this trait is
/// implemented for exactly the same types, and is sealed.
pub trait AsStatement: tokio_postgres::ToStatement + sealed::Sealed {}

impl sealed::Sealed for Statement {
    fn resolve(&self) -> Resolved<'_> {
        Resolved::Statement(self)
    }
}
impl AsStatement for Statement {}

impl sealed::Sealed for str {
    fn resolve(&self) -> Resolved<'_> {
        Resolved::Sql(self)
    }
}
impl AsStatement for str {}

impl sealed::Sealed for String {
    fn resolve(&self) -> Resolved<'_> {
        Resolved::Sql(self)
    }
}
impl AsStatement for String {}

/// A client and its tracker: the tracked operations, shared by the
/// connection and its transactions.
#[derive(Clone, Copy)]
pub(crate) struct Tracked<'a> {
    pub(crate) client: &'a Client,
    pub(crate) track: &'a Tracker,
}

/// Runs `$call` (an expression using the prepared statement `$stmt`) on the
/// statement argument, inside one tracked round trip. A macro, not a
/// closure: the call's future borrows the statement, and a macro keeps the
/// whole thing one unboxed future.
macro_rules! tracked_call {
    ($t:expr, $statement:expr, |$stmt:ident| $call:expr) => {{
        let t: Tracked<'_> = $t;
        let round = t.track.start();
        match $statement.resolve() {
            Resolved::Statement($stmt) => {
                t.track.dirty().touch_prepared();
                let result = $call.await;
                t.track
                    .finish(round, t.track.prepared_effect(), None, result)
            }
            Resolved::Sql(sql) => {
                let result = match t.statement(sql).await {
                    Ok(prepared) => {
                        let $stmt = &prepared;
                        $call.await
                    }
                    Err(e) => Err(e),
                };
                t.track
                    .finish(round, statement_effect(sql), Some(sql), result)
            }
        }
    }};
}

impl<'a> Tracked<'a> {
    /// The cached statement for `sql`, prepared (and cached) on a miss,
    /// and recorded in the session dirty bits: the statement is about to
    /// run. A hit reads the session state from the cache entry, never the
    /// text. Not a round trip of its own: the caller's round covers it.
    pub(crate) async fn statement(self, sql: &str) -> Result<Statement, Error> {
        if let Some((stmt, _, session)) = self.track.cached(sql) {
            self.track.dirty().touch(session);
            return Ok(stmt);
        }
        let stmt = self.client.prepare(sql).await?;
        let session = self.track.session_of(sql);
        self.track.dirty().touch(session);
        self.track.cache().insert(sql, stmt.clone(), session);
        Ok(stmt)
    }

    /// A cache hit is no round trip, so it is not counted as one: the
    /// deadpool way (`prepare_cached`, then `query_one(&stmt, ..)`) costs
    /// the same as one tracked call.
    pub(crate) async fn prepare_cached(self, query: &str) -> Result<Statement, Error> {
        if let Some((stmt, effect, session)) = self.track.cached(query) {
            self.track.note_prepared(effect);
            self.track.dirty().note_prepared(session);
            return Ok(stmt);
        }
        self.track.note_prepared(statement_effect(query));
        self.track
            .dirty()
            .note_prepared(self.track.session_of(query));
        let round = self.track.start();
        let result = self.statement(query).await;
        self.track.finish(round, Effect::None, Some(query), result)
    }

    pub(crate) async fn prepare_typed(
        self,
        query: &str,
        parameter_types: &[Type],
    ) -> Result<Statement, Error> {
        self.track.note_prepared(statement_effect(query));
        self.track
            .dirty()
            .note_prepared(self.track.session_of(query));
        let round = self.track.start();
        let result = self.client.prepare_typed(query, parameter_types).await;
        self.track.finish(round, Effect::None, None, result)
    }

    pub(crate) async fn query<T>(
        self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + AsStatement,
    {
        tracked_call!(self, statement, |s| self.client.query(s, params))
    }

    pub(crate) async fn query_one<T>(
        self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error>
    where
        T: ?Sized + AsStatement,
    {
        tracked_call!(self, statement, |s| self.client.query_one(s, params))
    }

    pub(crate) async fn query_opt<T>(
        self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error>
    where
        T: ?Sized + AsStatement,
    {
        tracked_call!(self, statement, |s| self.client.query_opt(s, params))
    }

    pub(crate) async fn execute<T>(
        self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error>
    where
        T: ?Sized + AsStatement,
    {
        tracked_call!(self, statement, |s| self.client.execute(s, params))
    }

    pub(crate) async fn query_typed(
        self,
        query: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, Error> {
        self.track.dirty().touch_sql(query);
        let round = self.track.start();
        let result = self.client.query_typed(query, params).await;
        self.track
            .finish(round, statement_effect(query), None, result)
    }

    pub(crate) async fn execute_typed(
        self,
        query: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<u64, Error> {
        self.track.dirty().touch_sql(query);
        let round = self.track.start();
        let result = self.client.execute_typed(query, params).await;
        self.track
            .finish(round, statement_effect(query), None, result)
    }

    pub(crate) async fn batch_execute(self, query: &str) -> Result<(), Error> {
        self.track.dirty().touch_sql(query);
        let round = self.track.start();
        let result = self.client.batch_execute(query).await;
        self.track.finish(round, batch_effect(query), None, result)
    }

    pub(crate) async fn simple_query(self, query: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.track.dirty().touch_sql(query);
        let round = self.track.start();
        let result = self.client.simple_query(query).await;
        self.track.finish(round, batch_effect(query), None, result)
    }
}

/// The tokio-postgres methods, tracked. Each has `Client`'s signature and
/// meaning, except that SQL text is prepared through the statement cache.
impl PgConnection {
    /// Like [`Client::prepare`], tracked: prepares a statement (not cached;
    /// see [`prepare_cached`](Self::prepare_cached)).
    pub async fn prepare(&self, query: &str) -> Result<Statement, Error> {
        self.tracked().prepare_typed(query, &[]).await
    }

    /// Like [`Client::prepare_typed`], tracked.
    pub async fn prepare_typed(
        &self,
        query: &str,
        parameter_types: &[Type],
    ) -> Result<Statement, Error> {
        self.tracked().prepare_typed(query, parameter_types).await
    }

    /// Prepares `query`, or returns the statement cached for it (as
    /// deadpool-postgres' `prepare_cached` does). In transaction-pooler mode
    /// nothing is cached and the statement is closed when dropped.
    pub async fn prepare_cached(&self, query: &str) -> Result<Statement, Error> {
        self.tracked().prepare_cached(query).await
    }

    /// Like [`Client::query`], tracked.
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

    /// Like [`Client::query_one`], tracked: exactly one row, or an error.
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

    /// Like [`Client::query_opt`], tracked: at most one row.
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

    /// Like [`Client::execute`], tracked: the number of rows affected.
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

    /// Like [`Client::query_typed`], tracked (the unnamed statement, no
    /// cache: one round trip, for transaction poolers).
    pub async fn query_typed(
        &self,
        query: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, Error> {
        self.tracked().query_typed(query, params).await
    }

    /// Like [`Client::execute_typed`], tracked.
    pub async fn execute_typed(
        &self,
        query: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<u64, Error> {
        self.tracked().execute_typed(query, params).await
    }

    /// Like [`Client::batch_execute`], tracked: one or more statements with
    /// the simple protocol. A batch that mentions transaction control in a
    /// way the tracker cannot follow makes the state `Unknown`, so the
    /// connection is rolled back on return.
    pub async fn batch_execute(&self, query: &str) -> Result<(), Error> {
        self.tracked().batch_execute(query).await
    }

    /// Like [`Client::simple_query`], tracked (rows as text).
    pub async fn simple_query(&self, query: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.tracked().simple_query(query).await
    }

    /// Like [`Client::transaction`]: opens a transaction that commits with
    /// [`PgTransaction::commit`] and rolls back with
    /// [`rollback`](PgTransaction::rollback) or when dropped. The tracker
    /// sees all of it, so the pool rolls back only a transaction that was
    /// dropped open.
    ///
    /// ```no_run
    /// # async fn demo(pool: tidepool_postgres::PgPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut conn = pool.get().await?;
    /// let tx = conn.transaction().await?;
    /// tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = $1", &[&1i32]).await?;
    /// tx.execute("UPDATE accounts SET balance = balance + 10 WHERE id = $1", &[&2i32]).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn transaction(&mut self) -> Result<PgTransaction<'_>, Error> {
        let (client, track) = self.parts_mut();
        let round = track.start();
        let result = client.transaction().await;
        let tx = track.finish(round, Effect::Begin, None, result)?;
        Ok(PgTransaction::new(tx, track, 0))
    }

    /// Like [`Client::build_transaction`]: a transaction with an isolation
    /// level, read-only or deferrable, tracked like
    /// [`transaction`](Self::transaction).
    pub fn build_transaction(&mut self) -> PgTransactionBuilder<'_> {
        let (client, track) = self.parts_mut();
        PgTransactionBuilder::new(client.build_transaction(), track)
    }
}
