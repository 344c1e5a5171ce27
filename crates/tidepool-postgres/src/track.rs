//! What a [`PgConnection`](crate::PgConnection) knows about its session
//! between round trips: the transaction state, how many round trips are
//! under way, whether the borrower ran anything or reached past the wrapper
//! to the native client, and the prepared-statement cache.
//!
//! Every field can be updated through a shared reference, so the tracked
//! methods take `&self` like tokio-postgres' own and can be pipelined
//! (`try_join!(conn.query(..), conn.query(..))`). The one rule: the tracker
//! may think a connection dirty when it is clean (a needless `ROLLBACK`),
//! never clean when it is dirty. So a statement that changes the
//! transaction state while another round trip is under way at any moment
//! of its own — their order on the wire, and the order their futures
//! finish in, are not the tracker's to know — makes the state `Unknown`.
//!
//! Orderings are `Relaxed`: each round trip's start and finish happen on
//! the task that awaits it, and the pool reads the tracker only after the
//! borrower's futures are done (returned through the guard's drop), which
//! orders everything before it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tidepool_sql::SessionState;
use tokio_postgres::Statement;

use crate::cache::StatementCache;
use crate::error::PgError;
use crate::txstate::{Effect, TxState};
use dirty::{session_of, Dirty};

pub(crate) mod dirty;

/// The tracked session of one connection.
pub(crate) struct Tracker {
    cache: Mutex<StatementCache>,
    state: AtomicU8,
    in_flight: AtomicU32,
    /// Round trips started so far: a round that sees it move between its
    /// start and its finish overlapped another.
    started: AtomicU64,
    session_touched: AtomicBool,
    native_used: AtomicBool,
    broken: AtomicBool,
    /// Set for good once a transaction-control statement (`BEGIN`,
    /// `COMMIT`, ...) was prepared on this connection: a prepared
    /// [`Statement`] does not say what its SQL was, so from then on running
    /// any prepared statement leaves the state `Unknown`.
    opaque_statements: AtomicBool,
    /// The session state the borrower's statements touched (see `dirty`).
    dirty: Dirty,
}

/// One round trip under way, from [`Tracker::start`] to
/// [`Tracker::finish`]. A future dropped in between never finishes it, and
/// the count it holds marks the connection as having a query in flight.
#[must_use = "a round trip must be finished, or it stays in flight"]
pub(crate) struct Round {
    ticket: u64,
    concurrent: bool,
}

/// What the tracker needs from an error: its SQLSTATE and whether it
/// leaves the connection unusable.
pub(crate) trait RoundError {
    fn sqlstate(&self) -> Option<&str>;
    fn is_fatal(&self) -> bool;
}

impl RoundError for tokio_postgres::Error {
    fn sqlstate(&self) -> Option<&str> {
        self.code().map(|c| c.code())
    }
    fn is_fatal(&self) -> bool {
        crate::classify::driver_error_is_fatal(self)
    }
}

impl RoundError for PgError {
    fn sqlstate(&self) -> Option<&str> {
        PgError::sqlstate(self)
    }
    fn is_fatal(&self) -> bool {
        self.is_fatal_for_connection()
    }
}

impl Tracker {
    pub(crate) fn new(cache_capacity: usize, track_session: bool) -> Self {
        Tracker {
            dirty: Dirty::new(track_session),
            cache: Mutex::new(StatementCache::new(cache_capacity)),
            state: AtomicU8::new(TxState::Idle as u8),
            in_flight: AtomicU32::new(0),
            started: AtomicU64::new(0),
            session_touched: AtomicBool::new(false),
            native_used: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            opaque_statements: AtomicBool::new(false),
        }
    }

    /// Marks the start of a round trip: from here until [`finish`](Self::finish),
    /// the connection counts as having a query in flight.
    pub(crate) fn start(&self) -> Round {
        let ticket = self.started.fetch_add(1, Relaxed);
        let before = self.in_flight.fetch_add(1, Relaxed);
        self.session_touched.store(true, Relaxed);
        Round {
            ticket,
            concurrent: before > 0,
        }
    }

    /// Records the outcome of a round trip: its effect on the transaction
    /// state, a fatal error, and a cached statement the server no longer
    /// accepts (`sql` is the statement's text when the caller gave text).
    pub(crate) fn finish<T, E: RoundError>(
        &self,
        round: Round,
        effect: Effect,
        sql: Option<&str>,
        result: Result<T, E>,
    ) -> Result<T, E> {
        let others = self.in_flight.fetch_sub(1, Relaxed) > 1
            || self.started.load(Relaxed) != round.ticket.wrapping_add(1);
        let effect = if effect != Effect::None && (round.concurrent || others) {
            Effect::Unknown
        } else {
            effect
        };
        match &result {
            Ok(_) => {
                if effect != Effect::None {
                    self.update(|s| effect.after_success(s));
                }
            }
            Err(e) => {
                if e.is_fatal() {
                    self.broken.store(true, Relaxed);
                }
                if let Some(code) = e.sqlstate() {
                    self.update(|s| effect.after_error(s));
                    // A statement the server forgot (DISCARD ALL, DEALLOCATE)
                    // or whose plan no longer fits (schema change) leaves the
                    // cache, so the next call prepares it again. Without the
                    // text, the whole cache goes (rare: DDL under load).
                    match (code, sql) {
                        ("26000", _) | ("0A000", None) => self.cache().clear(),
                        ("0A000", Some(sql)) => self.cache().remove(sql),
                        _ => {}
                    }
                }
            }
        }
        result
    }

    /// The effect of running a prepared [`Statement`] whose text is not
    /// known.
    pub(crate) fn prepared_effect(&self) -> Effect {
        if self.opaque_statements.load(Relaxed) {
            Effect::Unknown
        } else {
            Effect::None
        }
    }

    /// Notes that `sql` was prepared: a transaction-control statement makes
    /// every later prepared statement's effect unknown.
    pub(crate) fn note_prepared(&self, effect: Effect) {
        if effect != Effect::None {
            self.opaque_statements.store(true, Relaxed);
        }
    }

    fn update(&self, f: impl Fn(TxState) -> TxState) {
        let _ = self
            .state
            .fetch_update(Relaxed, Relaxed, |s| Some(f(TxState::from_u8(s)) as u8));
    }

    /// Whether the statement with this key is cached, without waiting: a
    /// cache busy right now answers no (the pool asks under its own lock).
    pub(crate) fn has_prepared(&self, key: u64) -> bool {
        match self.cache.try_lock() {
            Ok(cache) => cache.has_key(key),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().has_key(key),
            Err(std::sync::TryLockError::WouldBlock) => false,
        }
    }

    pub(crate) fn cache(&self) -> MutexGuard<'_, StatementCache> {
        // The cache holds no invariant a panic could break half-way.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The statement cached for `sql`, its effect and the session state
    /// it touches.
    pub(crate) fn cached(&self, sql: &str) -> Option<(Statement, Effect, SessionState)> {
        self.cache().get(sql)
    }

    /// The session dirty bits.
    pub(crate) fn dirty(&self) -> &Dirty {
        &self.dirty
    }

    /// The session state `sql` touches, or nothing when session tracking
    /// is off.
    pub(crate) fn session_of(&self, sql: &str) -> SessionState {
        if self.dirty.enabled() {
            session_of(sql)
        } else {
            SessionState::EMPTY
        }
    }

    pub(crate) fn state(&self) -> TxState {
        TxState::from_u8(self.state.load(Relaxed))
    }

    pub(crate) fn set_state(&self, state: TxState) {
        self.state.store(state as u8, Relaxed);
    }

    pub(crate) fn in_flight(&self) -> bool {
        self.in_flight.load(Relaxed) > 0
    }

    pub(crate) fn set_in_flight(&mut self, on: bool) {
        *self.in_flight.get_mut() = u32::from(on);
    }

    pub(crate) fn session_touched(&self) -> bool {
        self.session_touched.load(Relaxed)
    }

    pub(crate) fn mark_native_used(&self) {
        self.native_used.store(true, Relaxed);
    }

    pub(crate) fn native_used(&self) -> bool {
        self.native_used.load(Relaxed)
    }

    pub(crate) fn take_native_used(&mut self) -> bool {
        std::mem::take(self.native_used.get_mut())
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Relaxed)
    }

    pub(crate) fn mark_broken(&self) {
        self.broken.store(true, Relaxed);
    }

    /// Forgets the borrower: called once the connection is clean again.
    pub(crate) fn reset(&mut self) {
        *self.state.get_mut() = TxState::Idle as u8;
        *self.in_flight.get_mut() = 0;
        *self.session_touched.get_mut() = false;
        self.dirty.clear();
    }

    /// Makes the session as it stands the borrowers' starting point: what
    /// was touched so far is not the next borrower's to undo.
    pub(crate) fn mark_baseline(&mut self) {
        *self.session_touched.get_mut() = false;
        self.dirty.mark_baseline();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Result<(), PgError> {
        Ok(())
    }

    #[test]
    fn rounds_one_after_another_are_followed_exactly() {
        let t = Tracker::new(0, true);
        t.finish(t.start(), Effect::Begin, None, ok()).unwrap();
        assert_eq!(t.state(), TxState::Active);
        t.finish(t.start(), Effect::None, None, ok()).unwrap();
        t.finish(t.start(), Effect::End, None, ok()).unwrap();
        assert_eq!(t.state(), TxState::Idle);
        assert!(!t.in_flight());
    }

    #[test]
    fn a_transaction_statement_that_overlapped_another_round_leaves_the_state_unknown() {
        let t = Tracker::new(0, true);
        t.set_state(TxState::Active);
        // COMMIT is sent, then BEGIN while it is in flight; BEGIN's future
        // happens to finish first, and COMMIT's last, alone.
        let commit = t.start();
        let begin = t.start();
        t.finish(begin, Effect::Begin, None, ok()).unwrap();
        t.finish(commit, Effect::End, None, ok()).unwrap();
        assert_eq!(
            t.state(),
            TxState::Unknown,
            "the server is in a transaction"
        );

        // A round that started and ended inside another's window counts too.
        let t = Tracker::new(0, true);
        let begin = t.start();
        let select = t.start();
        t.finish(select, Effect::None, None, ok()).unwrap();
        t.finish(begin, Effect::Begin, None, ok()).unwrap();
        assert_eq!(t.state(), TxState::Unknown);
    }

    #[test]
    fn a_dropped_round_stays_in_flight_until_the_reset() {
        let mut t = Tracker::new(0, true);
        let _dropped = t.start();
        assert!(t.in_flight());
        t.reset();
        assert!(!t.in_flight());
    }
}
