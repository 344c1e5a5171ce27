//! [`PgConnection`]: a tokio-postgres `Client` plus what the pool needs to
//! return it clean. Its [`Tracker`] follows the transaction state
//! (tokio-postgres does not expose it), marks a query "in flight" before
//! sending and clears the mark after the reply — so a future dropped
//! mid-query leaves the mark set — and keeps a bounded cache of prepared
//! statements. This file holds the connection, the `*_native` methods and
//! the reset under a [`ResetPolicy`]; the tokio-postgres-shaped methods are
//! in `native`, transactions in `transaction`. It never hides the driver:
//! it derefs to `Client`.

use std::ops::Deref;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement};

use tidepool_sql::SessionState;

use crate::cancel::cancel_and_wait;
use crate::error::PgError;
use crate::native::Tracked;
use crate::reset::{ResetPolicy, CLEAN_SQL};
use crate::target::CancelTarget;
use crate::tls::PgTls;
use crate::track::dirty::undo_sql;
use crate::track::{Round, Tracker};
use crate::txstate::{statement_effect, Effect, TxState};

/// How long a reset waits for an abandoned query to end before cancelling
/// it again.
const ABANDONED_QUERY_RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// A PostgreSQL connection as the pool hands it out.
///
/// Three ways in, all tracked:
///
/// - tokio-postgres' own methods, with its signatures: [`prepare_cached`](Self::prepare_cached),
///   [`query`](Self::query), [`query_one`](Self::query_one), [`query_opt`](Self::query_opt),
///   [`execute`](Self::execute), [`batch_execute`](Self::batch_execute),
///   [`transaction`](Self::transaction) (with savepoints), ... — code written
///   for a deadpool-postgres client works unchanged;
/// - [`tidepool::Queryable`] (portable, [`tidepool::Value`] parameters):
///   `execute_values`, `query_values`, `query_one_values`, `begin`, ...;
/// - the `*_native` methods ([`query_one_native`](Self::query_one_native),
///   ...), which return [`PgError`].
///
/// What it tracks: a transaction opened by [`transaction`](Self::transaction),
/// [`tidepool::run_in_transaction`], `begin`, or a raw `BEGIN` sent through
/// any of its own methods; an aborted transaction; a query whose future
/// was dropped before the reply came. A clean return costs nothing. What it
/// cannot see: statements sent through the `Deref`'d `Client` (methods it
/// does not wrap, such as `query_raw` or `copy_in`). Any `Deref` use
/// therefore marks the connection as touched, and it is rolled back on
/// return (one round trip) whatever the policy.
pub struct PgConnection {
    client: Client,
    track: Tracker,
    pooler: bool,
    cancel_tls: Option<PgTls>,
    cancel_target: CancelTarget,
}

impl std::fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConnection")
            .field("tx_state", &self.track.state())
            .field("query_in_flight", &self.track.in_flight())
            .field("cached_statements", &self.track.cache().len())
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
        self.track.mark_native_used();
        &self.client
    }
}

impl PgConnection {
    pub(crate) fn new(
        client: Client,
        cache_capacity: usize,
        pooler: bool,
        track_session: bool,
        cancel_tls: Option<PgTls>,
        cancel_target: CancelTarget,
    ) -> Self {
        PgConnection {
            client,
            // Behind a transaction pooler there is no session of our own to
            // reset, so nothing to classify either.
            track: Tracker::new(
                if pooler { 0 } else { cache_capacity },
                track_session && !pooler,
            ),
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
        self.track.state()
    }

    /// Whether a query was sent and its reply never read (its future was
    /// dropped).
    pub fn has_query_in_flight(&self) -> bool {
        self.track.in_flight()
    }

    /// Whether this connection runs in transaction-pooler mode (no named
    /// prepared statements, no session state assumed).
    pub fn is_transaction_pooler(&self) -> bool {
        self.pooler
    }

    /// How many prepared statements the cache holds.
    pub fn cached_statements(&self) -> usize {
        self.track.cache().len()
    }

    /// Whether `sql` is in the prepared-statement cache.
    pub fn is_statement_cached(&self, sql: &str) -> bool {
        self.track.cache().contains(sql)
    }

    /// Runs a query with native parameters through the statement cache, and
    /// tracks it. The same as [`query`](Self::query) with SQL text, with
    /// this crate's error.
    pub async fn query_native(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, PgError> {
        let round = self.start()?;
        let result = match self.tracked().statement(sql).await {
            Ok(stmt) => self.client.query(&stmt, params).await,
            Err(e) => Err(e),
        };
        self.finish(
            round,
            statement_effect(sql),
            sql,
            result.map_err(PgError::from),
        )
    }

    /// Runs a query that must return exactly one row, with native
    /// parameters, through the statement cache, tracked. The same as
    /// [`query_one`](Self::query_one) with SQL text, with this crate's
    /// error.
    pub async fn query_one_native(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<tokio_postgres::Row, PgError> {
        let round = self.start()?;
        let result = match self.tracked().statement(sql).await {
            Ok(stmt) => exactly_one_row(&self.client, &stmt, params).await,
            Err(e) => Err(e.into()),
        };
        self.finish(round, statement_effect(sql), sql, result)
    }

    /// Runs a statement with native parameters through the statement cache,
    /// and tracks it. Returns the number of rows affected. The same as
    /// [`execute`](Self::execute) with SQL text, with this crate's error.
    pub async fn execute_native(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, PgError> {
        let round = self.start()?;
        let result = match self.tracked().statement(sql).await {
            Ok(stmt) => self.client.execute(&stmt, params).await,
            Err(e) => Err(e),
        };
        self.finish(
            round,
            statement_effect(sql),
            sql,
            result.map_err(PgError::from),
        )
    }

    /// Marks the start of a round trip (see [`Tracker::start`]), refusing a
    /// connection known to be closed.
    pub(crate) fn start(&self) -> Result<Round, PgError> {
        if self.is_broken() {
            self.track.mark_broken();
            return Err(PgError::Closed);
        }
        Ok(self.track.start())
    }

    /// Records the outcome of a round trip started with [`start`](Self::start).
    pub(crate) fn finish<T>(
        &self,
        round: Round,
        effect: Effect,
        sql: &str,
        result: Result<T, PgError>,
    ) -> Result<T, PgError> {
        self.track.finish(round, effect, Some(sql), result)
    }

    pub(crate) fn tracked(&self) -> Tracked<'_> {
        Tracked {
            client: &self.client,
            track: &self.track,
        }
    }

    /// The client and the tracker, borrowed apart: a transaction holds the
    /// first mutably and the second shared.
    pub(crate) fn parts_mut(&mut self) -> (&mut Client, &Tracker) {
        (&mut self.client, &self.track)
    }

    pub(crate) fn raw(&self) -> &Client {
        &self.client
    }

    pub(crate) fn set_state(&self, state: TxState) {
        self.track.set_state(state);
    }

    /// Runs a query the tracked way with pooler-mode typed parameters.
    pub(crate) async fn typed_rows(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<tokio_postgres::Row>, PgError> {
        Ok(self.client.query_typed(sql, params).await?)
    }

    /// Whether this connection has the statement with this
    /// [`tidepool::statement_key`] in its cache (for statement-cache
    /// affinity). Never waits: a cache busy this instant answers `false`.
    pub fn has_prepared(&self, key: u64) -> bool {
        self.track.has_prepared(key)
    }

    /// Whether the connection is closed or saw a fatal error.
    pub fn is_broken(&self) -> bool {
        self.track.is_broken() || self.client.is_closed()
    }

    /// The kinds of session state the statements sent since the last
    /// reset may have changed, as the dirty bits read them (empty when
    /// session tracking is off). `Fast` and `Verified` undo exactly these
    /// on return.
    ///
    /// ```no_run
    /// # async fn demo(pool: tidepool_postgres::PgPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let conn = pool.get().await?;
    /// conn.batch_execute("SET search_path = reporting").await?;
    /// assert!(!conn.session_touched().is_empty()); // RESET ALL on return
    /// # Ok(()) }
    /// ```
    pub fn session_touched(&self) -> SessionState {
        self.track.dirty().touched()
    }

    /// Makes the session as it stands the starting point of every
    /// borrower: forgets the dirty bits, so nothing sent so far is undone
    /// on return. The pool calls it after its `after_connect` hook
    /// ([`tidepool::Manager::session_baseline`]); call it yourself after
    /// other setup. A borrower who later touches the same kind (its own
    /// `SET` after the hook's) cannot be undone without losing the setup,
    /// so under `Fast` and `Verified` that connection is discarded on
    /// return ([`reset_would_lose_setup`](Self::reset_would_lose_setup)):
    /// settings every borrower needs are cheaper in the startup options
    /// ([`PgConfig::options`](crate::PgConfig::options)), which `RESET`
    /// keeps.
    ///
    /// ```no_run
    /// # async fn demo(manager: tidepool_postgres::PgManager) -> Result<(), tidepool_postgres::PgError> {
    /// // A connection opened outside a pool, set up by hand.
    /// let mut conn = manager.connect_one().await?;
    /// conn.batch_execute("SET search_path = app").await?;
    /// conn.mark_session_baseline();
    /// assert!(conn.session_touched().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn mark_session_baseline(&mut self) {
        self.track.mark_baseline();
    }

    /// Whether the session state a `Fast` or `Verified` return would undo
    /// includes some of what the session's setup (the `after_connect`
    /// hook, see [`mark_session_baseline`](Self::mark_session_baseline))
    /// set: undoing it would hand the next borrower a session unlike the
    /// one every borrower starts from, so the pool discards the connection
    /// instead (and opens a new one, hooked again). `Clean` goes back to
    /// the server's defaults, setup included, as documented.
    pub fn reset_would_lose_setup(&self, policy: ResetPolicy) -> bool {
        if policy == ResetPolicy::Clean || self.pooler {
            return false;
        }
        let mut kinds = self.track.dirty().touched();
        if self.track.native_used() && self.track.dirty().enabled() {
            kinds |= SessionState::OPAQUE;
        }
        self.track.dirty().undo_loses_setup(kinds)
    }

    /// Whether returning this connection needs [`reset`](Self::reset)
    /// under `policy`.
    pub fn needs_reset(&self, policy: ResetPolicy) -> bool {
        if self.track.in_flight() || self.track.state().is_dirty() || self.track.native_used() {
            return true;
        }
        match policy {
            ResetPolicy::Fast => !self.pooler && !self.track.dirty().touched().is_empty(),
            ResetPolicy::Verified => true,
            ResetPolicy::Clean => self.track.session_touched() && !self.pooler,
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
        let native = self.track.take_native_used();
        let in_flight = self.track.in_flight();
        let mut round_trip = false;
        if in_flight {
            self.rollback_abandoned().await?;
            round_trip = true;
        } else if native || self.track.state().is_dirty() {
            self.run_reset_sql("ROLLBACK").await?;
            round_trip = true;
        }
        // Fast and Verified undo exactly the session state the dirty bits
        // saw touched; what they could not read (native access through
        // `Deref`) counts as everything. Behind a transaction pooler there
        // is no session of our own to undo.
        if policy != ResetPolicy::Clean && !self.pooler && self.undo_dirty(native).await? {
            round_trip = true;
        }
        match policy {
            ResetPolicy::Clean
                if !self.pooler && (self.track.session_touched() || native || in_flight) =>
            {
                self.undo_session(CLEAN_SQL, true).await?;
            }
            ResetPolicy::Verified if !round_trip => {
                let checked = if self.pooler {
                    self.client.batch_execute("").await
                } else {
                    self.client.check_connection().await
                };
                if let Err(e) = checked {
                    self.track.mark_broken();
                    return Err(e.into());
                }
            }
            _ => {}
        }
        self.track.reset();
        Ok(())
    }

    /// Undoes the session state the dirty bits saw touched (everything
    /// when `unseen`, and tracking is on). Returns whether it sent
    /// anything: nothing when nothing was touched.
    async fn undo_dirty(&mut self, unseen: bool) -> Result<bool, PgError> {
        let mut kinds = self.track.dirty().touched();
        if unseen && self.track.dirty().enabled() {
            kinds |= SessionState::OPAQUE;
        }
        let Some((sql, lists_prepared)) = undo_sql(kinds) else {
            return Ok(false);
        };
        self.undo_session(&sql, lists_prepared).await?;
        Ok(true)
    }

    /// Runs a session reset batch ([`CLEAN_SQL`], or the statements the
    /// dirty bits chose). When `lists_prepared`, its last statement lists
    /// the statements the borrower prepared in SQL (`PREPARE p AS ...`),
    /// and they are deallocated by name: a second round trip, only when
    /// there are any. The protocol-level statements of the cache are not
    /// listed, so the cache stays valid (`DEALLOCATE ALL` would empty it
    /// under the wrapper).
    async fn undo_session(&mut self, sql: &str, lists_prepared: bool) -> Result<(), PgError> {
        self.track.set_in_flight(true);
        let listed = self.client.simple_query(sql).await;
        let names = match listed {
            Ok(messages) if lists_prepared => last_statements_first_column(&messages),
            Ok(_) => Vec::new(),
            Err(e) => {
                self.track.mark_broken();
                return Err(e.into());
            }
        };
        self.track.set_in_flight(false);
        if names.is_empty() {
            return Ok(());
        }
        let deallocate: String = names
            .iter()
            .map(|name| format!("DEALLOCATE {};", quote_ident(name)))
            .collect();
        self.run_reset_sql(&deallocate).await
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
        self.track.set_in_flight(true);
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
        self.track.set_in_flight(false);
        result.map_err(|e| {
            self.track.mark_broken();
            PgError::from(e)
        })
    }

    async fn run_reset_sql(&mut self, sql: &str) -> Result<(), PgError> {
        self.track.set_in_flight(true);
        let result = self.client.batch_execute(sql).await;
        self.track.set_in_flight(false);
        result.map_err(|e| {
            self.track.mark_broken();
            PgError::from(e)
        })
    }
}

/// The first column of the rows of a batch's last statement (the batch's
/// earlier statements may return rows too).
fn last_statements_first_column(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<String> {
    let (mut current, mut last) = (Vec::new(), Vec::new());
    for m in messages {
        match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                current.push(row.get(0).unwrap_or_default().to_string());
            }
            tokio_postgres::SimpleQueryMessage::CommandComplete(_) => {
                last = std::mem::take(&mut current);
            }
            _ => {}
        }
    }
    last
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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
