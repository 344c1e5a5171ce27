//! [`PgConnection`]: a tokio-postgres `Client` plus what the pool needs to
//! return it clean. It tracks transaction state itself (tokio-postgres does
//! not expose it), marks a query "in flight" before sending and clears the
//! mark after the reply — so a future dropped mid-query leaves the mark
//! set — keeps a bounded cache of prepared statements, and knows how to
//! reset itself under a [`ResetPolicy`]. It never hides the driver: it
//! derefs to `Client`.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, SimpleQueryMessage, Statement};

use crate::cache::StatementCache;
use crate::cancel::cancel_and_wait;
use crate::error::PgError;
use crate::reset::{ResetPolicy, CLEAN_SQL};
use crate::target::CancelTarget;
use crate::tls::PgTls;
use crate::txstate::{batch_effect, statement_effect, Effect, TxState};

/// How long a reset waits for an abandoned query to end before cancelling
/// it again.
const ABANDONED_QUERY_RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// A PostgreSQL connection as the pool hands it out.
///
/// Use it through [`tidepool::Queryable`] (portable, [`tidepool::Value`]
/// parameters), through its tracked native methods
/// ([`query_native`](Self::query_native), [`execute_native`](Self::execute_native),
/// [`batch_execute`](Self::batch_execute), [`prepare_cached`](Self::prepare_cached)),
/// or through `Deref` to [`tokio_postgres::Client`] for anything else.
///
/// What it tracks: a transaction opened by [`tidepool::transaction`], by
/// `begin`, or by a raw `BEGIN` sent through any of its own methods; an
/// aborted transaction; a query whose future was dropped before the reply
/// came. What it cannot see: statements sent through the `Deref`'d
/// `Client`. Any `Deref` use therefore marks the connection as touched, and
/// it is rolled back on return (one round trip) whatever the policy.
pub struct PgConnection {
    client: Client,
    cache: StatementCache,
    state: TxState,
    in_flight: bool,
    session_touched: bool,
    native_used: AtomicBool,
    broken: bool,
    pooler: bool,
    cancel_tls: Option<PgTls>,
    cancel_target: CancelTarget,
}

impl std::fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConnection")
            .field("tx_state", &self.state)
            .field("query_in_flight", &self.in_flight)
            .field("cached_statements", &self.cache.len())
            .field("transaction_pooler", &self.pooler)
            .field("closed", &self.client.is_closed())
            .finish_non_exhaustive()
    }
}

impl Deref for PgConnection {
    type Target = Client;

    /// The native client. The wrapper cannot see what is sent through it,
    /// so using it marks the connection for a ROLLBACK on return.
    fn deref(&self) -> &Client {
        self.native_used.store(true, Ordering::Relaxed);
        &self.client
    }
}

impl PgConnection {
    pub(crate) fn new(
        client: Client,
        cache_capacity: usize,
        pooler: bool,
        cancel_tls: Option<PgTls>,
        cancel_target: CancelTarget,
    ) -> Self {
        PgConnection {
            client,
            cache: StatementCache::new(if pooler { 0 } else { cache_capacity }),
            state: TxState::Idle,
            in_flight: false,
            session_touched: false,
            native_used: AtomicBool::new(false),
            broken: false,
            pooler,
            cancel_tls,
            cancel_target,
        }
    }

    /// The native client (same as `Deref`; marks the connection touched).
    pub fn client(&self) -> &Client {
        self
    }

    /// The transaction state as tracked by the wrapper.
    pub fn tx_state(&self) -> TxState {
        self.state
    }

    /// Whether a query was sent and its reply never read (its future was
    /// dropped).
    pub fn has_query_in_flight(&self) -> bool {
        self.in_flight
    }

    /// Whether this connection runs in transaction-pooler mode (no named
    /// prepared statements, no session state assumed).
    pub fn is_transaction_pooler(&self) -> bool {
        self.pooler
    }

    /// How many prepared statements the cache holds.
    pub fn cached_statements(&self) -> usize {
        self.cache.len()
    }

    /// Whether `sql` is in the prepared-statement cache.
    pub fn is_statement_cached(&self, sql: &str) -> bool {
        self.cache.contains(sql)
    }

    /// Prepares `sql`, or returns the cached statement. In pooler mode
    /// nothing is cached and the statement is closed when dropped.
    pub async fn prepare_cached(&mut self, sql: &str) -> Result<Statement, PgError> {
        self.start()?;
        let result = self.statement(sql).await;
        self.finish(Effect::None, sql, result)
    }

    /// Runs a query with native parameters through the statement cache, and
    /// tracks it.
    pub async fn query_native(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, PgError> {
        self.start()?;
        let result = match self.statement(sql).await {
            Ok(stmt) => self
                .client
                .query(&stmt, params)
                .await
                .map_err(PgError::from),
            Err(e) => Err(e),
        };
        self.finish(statement_effect(sql), sql, result)
    }

    /// Runs a query that must return exactly one row, with native
    /// parameters, through the statement cache, tracked.
    pub async fn query_one_native(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<tokio_postgres::Row, PgError> {
        self.start()?;
        let result = match self.statement(sql).await {
            Ok(stmt) => exactly_one_row(&self.client, &stmt, params).await,
            Err(e) => Err(e),
        };
        self.finish(statement_effect(sql), sql, result)
    }

    /// Runs a statement with native parameters through the statement cache,
    /// and tracks it. Returns the number of rows affected.
    pub async fn execute_native(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, PgError> {
        self.start()?;
        let result = match self.statement(sql).await {
            Ok(stmt) => self
                .client
                .execute(&stmt, params)
                .await
                .map_err(PgError::from),
            Err(e) => Err(e),
        };
        self.finish(statement_effect(sql), sql, result)
    }

    /// Runs one or more statements with the simple protocol (no
    /// parameters), tracked. A batch that mentions transaction control in
    /// any way the wrapper cannot follow makes the state `Unknown`, so the
    /// connection is rolled back on return.
    pub async fn batch_execute(&mut self, sql: &str) -> Result<(), PgError> {
        self.start()?;
        let result = self.client.batch_execute(sql).await.map_err(PgError::from);
        self.finish(batch_effect(sql), sql, result)
    }

    /// Like [`batch_execute`](Self::batch_execute), returning the rows as
    /// text (tracked).
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, PgError> {
        self.start()?;
        let result = self.client.simple_query(sql).await.map_err(PgError::from);
        self.finish(batch_effect(sql), sql, result)
    }

    /// Marks the start of a round trip: from here until [`finish`], the
    /// connection counts as having a query in flight.
    pub(crate) fn start(&mut self) -> Result<(), PgError> {
        if self.broken || self.client.is_closed() {
            self.broken = true;
            return Err(PgError::Closed);
        }
        self.in_flight = true;
        self.session_touched = true;
        Ok(())
    }

    /// Records the outcome of a round trip started with [`start`].
    pub(crate) fn finish<T>(
        &mut self,
        effect: Effect,
        sql: &str,
        result: Result<T, PgError>,
    ) -> Result<T, PgError> {
        self.in_flight = false;
        match &result {
            Ok(_) => self.state = effect.after_success(self.state),
            Err(e) => {
                if e.is_fatal_for_connection() {
                    self.broken = true;
                }
                if let Some(code) = e.sqlstate() {
                    self.state = effect.after_error(self.state);
                    // A statement the server forgot (DISCARD ALL, DEALLOCATE)
                    // or whose plan no longer fits (schema change) is dropped
                    // from the cache, so the next call prepares it again.
                    if matches!(code, "26000" | "0A000") {
                        self.cache.remove(sql);
                        if code == "26000" {
                            self.cache.clear();
                        }
                    }
                }
            }
        }
        result
    }

    pub(crate) async fn statement(&mut self, sql: &str) -> Result<Statement, PgError> {
        if let Some(stmt) = self.cache.get(sql) {
            return Ok(stmt);
        }
        let stmt = self.client.prepare(sql).await?;
        self.cache.insert(sql, stmt.clone());
        Ok(stmt)
    }

    pub(crate) fn raw(&self) -> &Client {
        &self.client
    }

    pub(crate) fn set_state(&mut self, state: TxState) {
        self.state = state;
    }

    /// Runs a query the tracked way with pooler-mode typed parameters.
    pub(crate) async fn typed_rows(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<tokio_postgres::Row>, PgError> {
        Ok(self.client.query_typed(sql, params).await?)
    }

    /// Whether the connection is closed or saw a fatal error.
    pub fn is_broken(&self) -> bool {
        self.broken || self.client.is_closed()
    }

    /// Whether returning this connection needs [`reset`](Self::reset)
    /// under `policy`.
    pub fn needs_reset(&self, policy: ResetPolicy) -> bool {
        if self.in_flight || self.state.is_dirty() || self.native_used.load(Ordering::Relaxed) {
            return true;
        }
        match policy {
            ResetPolicy::Fast => false,
            ResetPolicy::Verified => true,
            ResetPolicy::Clean => self.session_touched && !self.pooler,
        }
    }

    /// Makes the connection clean for the next borrower: cancels a query
    /// left in flight, rolls back an open or aborted transaction, then
    /// applies `policy` (see [`ResetPolicy`]). On error the connection must
    /// be discarded.
    pub async fn reset(&mut self, policy: ResetPolicy) -> Result<(), PgError> {
        if self.is_broken() {
            return Err(PgError::Closed);
        }
        let native = self.native_used.swap(false, Ordering::Relaxed);
        let in_flight = self.in_flight;
        let mut round_trip = false;
        if in_flight {
            self.rollback_abandoned().await?;
            round_trip = true;
        } else if native || self.state.is_dirty() {
            self.run_reset_sql("ROLLBACK").await?;
            round_trip = true;
        }
        match policy {
            ResetPolicy::Clean if !self.pooler && (self.session_touched || native || in_flight) => {
                self.run_reset_sql(CLEAN_SQL).await?;
            }
            ResetPolicy::Verified if !round_trip => {
                let checked = if self.pooler {
                    self.client.batch_execute("").await
                } else {
                    self.client.check_connection().await
                };
                if let Err(e) = checked {
                    self.broken = true;
                    return Err(e.into());
                }
            }
            _ => {}
        }
        self.state = TxState::Idle;
        self.in_flight = false;
        self.session_touched = false;
        Ok(())
    }

    /// A query was left in flight: it may not have reached the server yet,
    /// may be running, or may be done. Cancel it, then roll back; the
    /// ROLLBACK is answered only after the abandoned query's reply. If the
    /// ROLLBACK is still waiting after a short while (the cancel arrived
    /// before the query started), cancel again. Each cancel is awaited
    /// until the server has it, so none can land on a later borrower's
    /// query. The pool's `reset_timeout` bounds the whole loop; on timeout
    /// the connection is discarded.
    async fn rollback_abandoned(&mut self) -> Result<(), PgError> {
        let token = self.client.cancel_token();
        let tls = self.cancel_tls.clone();
        let target = self.cancel_target.clone();
        let cancel = || {
            let token = token.clone();
            let tls = tls.clone();
            let target = target.clone();
            async move {
                if let Err(e) = cancel_and_wait(&token, &target, tls.as_ref()).await {
                    tracing::debug!(target: "tidepool::postgres", error = %e, "could not send a cancel request for an abandoned query");
                }
            }
        };
        self.in_flight = true;
        let client = &self.client;
        let rollback = client.batch_execute("ROLLBACK");
        tokio::pin!(rollback);
        let mut result = loop {
            cancel().await;
            if let Ok(result) = tokio::time::timeout(ABANDONED_QUERY_RECHECK, &mut rollback).await {
                break result;
            }
        };
        // A cancel that reached the server while it sat idle, just before
        // the abandoned query arrived, can be taken by the ROLLBACK instead
        // (57014). The cancel is spent then; roll back again.
        for _ in 0..2 {
            match &result {
                Err(e) if e.code().is_some_and(|c| c.code() == "57014") => {
                    result = client.batch_execute("ROLLBACK").await;
                }
                _ => break,
            }
        }
        self.in_flight = false;
        result.map_err(|e| {
            self.broken = true;
            PgError::from(e)
        })
    }

    async fn run_reset_sql(&mut self, sql: &str) -> Result<(), PgError> {
        self.in_flight = true;
        let result = self.client.batch_execute(sql).await;
        self.in_flight = false;
        result.map_err(|e| {
            self.broken = true;
            PgError::from(e)
        })
    }
}

/// Runs `stmt` and reads its rows as a stream, keeping the first: no
/// vector for the common single row. The rest are still read, so the
/// count in the error is exact and the connection is left between
/// statements.
async fn exactly_one_row(
    client: &Client,
    stmt: &Statement,
    params: &[&(dyn ToSql + Sync)],
) -> Result<tokio_postgres::Row, PgError> {
    use futures_util::TryStreamExt as _;
    let rows = client.query_raw(stmt, params.iter().copied()).await?;
    let mut rows = std::pin::pin!(rows);
    let (mut first, mut got) = (None, 0);
    while let Some(row) = rows.try_next().await? {
        got += 1;
        first.get_or_insert(row);
    }
    match (first, got) {
        (Some(row), 1) => Ok(row),
        (_, got) => Err(PgError::RowCount {
            expected: "exactly one",
            got,
        }),
    }
}
