//! Session-state dirty bits: which kinds of session state (settings, the
//! role, `LISTEN`, SQL-level `PREPARE`, temporary objects, session advisory
//! locks, cursors `WITH HOLD`) the statements a borrower sent may have
//! changed — read by tidepool-sql from each statement's text, once per text
//! — and the statements that undo exactly those kinds when the connection
//! comes back under [`ResetPolicy::Fast`](crate::ResetPolicy::Fast) or
//! `Verified`.
//!
//! It must never think a session clean that a statement it saw changed
//! (a needless `RESET ALL` is cheap; a `search_path` handed to the next
//! borrower is not), and never send anything for a checkout that touched
//! nothing: the point-select path pays one test of an empty set. What
//! server-side code does (a function that runs `SET`) it cannot see; a `DO`
//! block, `CALL` or native access through `Deref` counts as touching
//! everything.

use std::sync::atomic::{AtomicU16, Ordering::Relaxed};

use tidepool_sql::{Analyzer, Dialect, SessionState};

use crate::reset::CLEAN_SQL;

/// The kinds a PostgreSQL session can hold (MySQL's user variables and
/// table locks are not among them).
const POSTGRES_KINDS: SessionState = SessionState::SETTINGS
    .union(SessionState::ROLE)
    .union(SessionState::LISTEN)
    .union(SessionState::PREPARED)
    .union(SessionState::TEMP_OBJECTS)
    .union(SessionState::ADVISORY_LOCKS)
    .union(SessionState::CURSORS)
    .union(SessionState::OPAQUE);

/// The session state of `sql`, from the process-wide analyzer's cache of
/// texts (a hash, a short lock and a comparison after the first time).
pub(crate) fn session_of(sql: &str) -> SessionState {
    Analyzer::global(Dialect::Postgres).session(sql)
}

/// The dirty bits of one connection. Updated through `&self` (the tracked
/// methods take `&self` and may be pipelined); `Relaxed` for the reason
/// the tracker gives.
pub(crate) struct Dirty {
    /// Kinds touched since the last reset.
    touched: AtomicU16,
    /// Kinds of every text prepared on this connection: a prepared
    /// [`Statement`](tokio_postgres::Statement) does not say its text, so
    /// running one touches all of them (sticky, like the tracker's
    /// `opaque_statements`).
    prepared: AtomicU16,
    /// Kinds the session's setup (the `after_connect` hook) touched: the
    /// starting point every borrower gets, which undoing the same kind
    /// would lose.
    baseline: SessionState,
    /// Off: nothing is classified or recorded (the benchmark's anchor).
    enabled: bool,
}

impl Dirty {
    pub(crate) fn new(enabled: bool) -> Self {
        Dirty {
            touched: AtomicU16::new(0),
            prepared: AtomicU16::new(0),
            baseline: SessionState::EMPTY,
            enabled,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Records that a statement touching `state` is being sent.
    #[inline]
    pub(crate) fn touch(&self, state: SessionState) {
        if !state.is_empty() {
            self.touched.fetch_or(state.bits(), Relaxed);
        }
    }

    /// Records that `sql` is being sent, classifying it (cached per text).
    pub(crate) fn touch_sql(&self, sql: &str) {
        if self.enabled {
            self.touch(session_of(sql));
        }
    }

    /// Records that a statement with this state was prepared: running it
    /// is likely (so it counts as touched now) and any later run of a
    /// prepared statement whose text is unknown touches it again.
    pub(crate) fn note_prepared(&self, state: SessionState) {
        if !state.is_empty() {
            self.prepared.fetch_or(state.bits(), Relaxed);
            self.touch(state);
        }
    }

    /// Records that a prepared statement of unknown text is being run.
    #[inline]
    pub(crate) fn touch_prepared(&self) {
        self.touch(SessionState::from_bits(self.prepared.load(Relaxed)));
    }

    /// Kinds touched since the last reset.
    pub(crate) fn touched(&self) -> SessionState {
        SessionState::from_bits(self.touched.load(Relaxed)).intersection(POSTGRES_KINDS)
    }

    /// Forgets what was touched (after a reset).
    pub(crate) fn clear(&mut self) {
        *self.touched.get_mut() = 0;
    }

    /// Makes what was touched so far part of the session's starting point.
    pub(crate) fn mark_baseline(&mut self) {
        self.baseline |= self.touched();
        self.clear();
    }

    /// Whether undoing `kinds` would also undo some of the session's setup
    /// (a borrower's `SET` after a hook's `SET`: `RESET ALL` takes both).
    pub(crate) fn undo_loses_setup(&self, kinds: SessionState) -> bool {
        let kinds = kinds.intersection(POSTGRES_KINDS);
        kinds.intersects(self.baseline)
            || (kinds.contains(SessionState::OPAQUE) && !self.baseline.is_empty())
    }
}

/// The statements that undo `kinds`, as one simple-protocol batch, and
/// whether its last statement lists the SQL-level prepared statements (to
/// deallocate by name, keeping the statement cache's protocol-level ones).
/// `None` when there is nothing to undo.
pub(crate) fn undo_sql(kinds: SessionState) -> Option<(String, bool)> {
    let kinds = kinds.intersection(POSTGRES_KINDS);
    if kinds.is_empty() {
        return None;
    }
    if kinds.contains(SessionState::OPAQUE) {
        return Some((CLEAN_SQL.to_string(), true));
    }
    let mut sql = String::with_capacity(128);
    // In CLEAN_SQL's order: the role first, so the rest runs as the
    // session user.
    let parts: [(SessionState, &str); 7] = [
        (
            SessionState::ROLE,
            "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; ",
        ),
        (SessionState::SETTINGS, "RESET ALL; "),
        (SessionState::CURSORS, "CLOSE ALL; "),
        (SessionState::LISTEN, "UNLISTEN *; "),
        (
            SessionState::ADVISORY_LOCKS,
            "SELECT pg_advisory_unlock_all(); ",
        ),
        (SessionState::TEMP_OBJECTS, "DISCARD TEMP; "),
        (
            SessionState::PREPARED,
            "SELECT name FROM pg_prepared_statements WHERE from_sql",
        ),
    ];
    for (kind, statements) in parts {
        if kinds.contains(kind) {
            sql.push_str(statements);
        }
    }
    Some((sql, kinds.contains(SessionState::PREPARED)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_touched_means_nothing_to_send() {
        assert_eq!(undo_sql(SessionState::EMPTY), None);
        assert_eq!(undo_sql(SessionState::USER_VARIABLES), None);
    }

    #[test]
    fn each_kind_is_undone_by_its_own_statement_and_only_that() {
        let (sql, lists) = undo_sql(SessionState::LISTEN).unwrap();
        assert_eq!((sql.as_str(), lists), ("UNLISTEN *; ", false));
        let (sql, lists) = undo_sql(SessionState::SETTINGS | SessionState::PREPARED).unwrap();
        assert_eq!(
            sql,
            "RESET ALL; SELECT name FROM pg_prepared_statements WHERE from_sql"
        );
        assert!(lists);
        let (sql, _) = undo_sql(SessionState::ROLE | SessionState::TEMP_OBJECTS).unwrap();
        assert_eq!(
            sql,
            "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; DISCARD TEMP; "
        );
    }

    #[test]
    fn opaque_code_is_undone_with_the_whole_clean_reset() {
        assert_eq!(
            undo_sql(SessionState::OPAQUE | SessionState::LISTEN),
            Some((CLEAN_SQL.to_string(), true))
        );
    }

    #[test]
    fn texts_are_classified_and_an_empty_set_records_nothing() {
        let d = Dirty::new(true);
        d.touch_sql("SELECT * FROM t WHERE id = $1");
        assert!(d.touched().is_empty());
        d.touch_sql("SELECT set_config('search_path', 'x', false)");
        d.touch_sql("LISTEN jobs");
        assert_eq!(d.touched(), SessionState::SETTINGS | SessionState::LISTEN);
        let off = Dirty::new(false);
        off.touch_sql("LISTEN jobs");
        assert!(off.touched().is_empty());
    }

    #[test]
    fn undoing_a_kind_the_setup_touched_would_lose_the_setup() {
        let mut d = Dirty::new(true);
        d.touch(SessionState::SETTINGS);
        d.mark_baseline();
        assert!(d.touched().is_empty());
        assert!(!d.undo_loses_setup(SessionState::LISTEN));
        assert!(d.undo_loses_setup(SessionState::SETTINGS | SessionState::LISTEN));
        assert!(d.undo_loses_setup(SessionState::OPAQUE));
        assert!(!Dirty::new(true).undo_loses_setup(SessionState::OPAQUE));
    }

    #[test]
    fn a_prepared_statement_of_unknown_text_touches_what_was_prepared() {
        let mut d = Dirty::new(true);
        d.note_prepared(SessionState::ADVISORY_LOCKS);
        d.clear();
        d.touch_prepared();
        assert_eq!(d.touched(), SessionState::ADVISORY_LOCKS);
    }
}
