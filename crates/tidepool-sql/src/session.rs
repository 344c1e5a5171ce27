//! Which session state a statement changes — the state that outlives the
//! statement and would reach the next borrower of the connection. A small
//! bitset, so a driver can keep "dirty bits" per connection and reset
//! exactly what was touched. Read from tokens: what is written in the
//! statement text is seen, what server-side code does (a function that
//! calls `SET`) is not, except that `DO` blocks and `CALL` are flagged
//! [`SessionState::OPAQUE`].

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use crate::kind::statements;
use crate::lex::{Lit, Tok};
use crate::Dialect;

/// A set of kinds of session state, as bits.
///
/// ```
/// use tidepool_sql::{session_state, Dialect, SessionState};
/// let s = session_state("SET search_path = app; LISTEN jobs", Dialect::Postgres);
/// assert_eq!(s, SessionState::SETTINGS | SessionState::LISTEN);
/// assert!(session_state("SELECT 1", Dialect::Postgres).is_empty());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SessionState(u16);

impl SessionState {
    /// Nothing.
    pub const EMPTY: SessionState = SessionState(0);
    /// Settings: PostgreSQL `SET` / `RESET` (not `SET LOCAL`),
    /// `set_config(.., .., false)`; MySQL `SET [SESSION] x`, `SET NAMES`,
    /// `SET @@x`, `USE db`; SQLite `PRAGMA x = ..`, `ATTACH`, `DETACH`.
    /// Reset with `RESET ALL` / `COM_RESET_CONNECTION`.
    pub const SETTINGS: SessionState = SessionState(1);
    /// The current role: `SET ROLE`, `SET SESSION AUTHORIZATION`,
    /// `RESET ROLE`. Reset with `RESET ROLE` and
    /// `SET SESSION AUTHORIZATION DEFAULT`.
    pub const ROLE: SessionState = SessionState(1 << 1);
    /// `LISTEN channel`. Reset with `UNLISTEN *`.
    pub const LISTEN: SessionState = SessionState(1 << 2);
    /// Named prepared statements: `PREPARE`, `DEALLOCATE`. Reset with
    /// `DEALLOCATE ALL` (a driver's own statement cache must be told).
    pub const PREPARED: SessionState = SessionState(1 << 3);
    /// Temporary tables, views and sequences: `CREATE TEMP ..`,
    /// `SELECT .. INTO TEMP ..`. Reset with `DISCARD TEMP`.
    pub const TEMP_OBJECTS: SessionState = SessionState(1 << 4);
    /// Session-level advisory locks: `pg_advisory_lock`,
    /// `pg_try_advisory_lock` and their `_shared` forms (not the `_xact_`
    /// ones, which end with the transaction); MySQL's `GET_LOCK`. Reset
    /// with `pg_advisory_unlock_all()` / `RELEASE_ALL_LOCKS()`.
    pub const ADVISORY_LOCKS: SessionState = SessionState(1 << 5);
    /// MySQL user variables: `SET @x = ..`, `@x := ..`, `SELECT .. INTO @x`.
    pub const USER_VARIABLES: SessionState = SessionState(1 << 6);
    /// MySQL `LOCK TABLES`. Reset with `UNLOCK TABLES`.
    pub const TABLE_LOCKS: SessionState = SessionState(1 << 7);
    /// Cursors that outlive their transaction: `DECLARE .. WITH HOLD`.
    /// Reset with `CLOSE ALL`.
    pub const CURSORS: SessionState = SessionState(1 << 8);
    /// Server-side code the text does not show: `DO` blocks, `CALL`. It may
    /// have touched anything; a driver that must be sure resets it all.
    pub const OPAQUE: SessionState = SessionState(1 << 9);

    const NAMES: [(SessionState, &'static str); 10] = [
        (Self::SETTINGS, "settings"),
        (Self::ROLE, "role"),
        (Self::LISTEN, "listen"),
        (Self::PREPARED, "prepared"),
        (Self::TEMP_OBJECTS, "temp_objects"),
        (Self::ADVISORY_LOCKS, "advisory_locks"),
        (Self::USER_VARIABLES, "user_variables"),
        (Self::TABLE_LOCKS, "table_locks"),
        (Self::CURSORS, "cursors"),
        (Self::OPAQUE, "opaque"),
    ];

    /// Whether no state is touched.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every kind in `other` is in `self`.
    pub const fn contains(self, other: SessionState) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` share a kind.
    pub const fn intersects(self, other: SessionState) -> bool {
        self.0 & other.0 != 0
    }

    /// The kinds in either.
    #[must_use]
    pub const fn union(self, other: SessionState) -> SessionState {
        SessionState(self.0 | other.0)
    }

    /// The kinds in both.
    ///
    /// ```
    /// use tidepool_sql::SessionState;
    /// let s = SessionState::SETTINGS | SessionState::USER_VARIABLES;
    /// assert_eq!(s.intersection(SessionState::SETTINGS), SessionState::SETTINGS);
    /// ```
    #[must_use]
    pub const fn intersection(self, other: SessionState) -> SessionState {
        SessionState(self.0 & other.0)
    }

    /// The raw bits (stable within a major version), for an atomic.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// From raw bits; unknown bits are dropped.
    pub const fn from_bits(bits: u16) -> SessionState {
        SessionState(bits & ((1 << Self::NAMES.len()) - 1))
    }

    /// The names of the kinds in the set (`"settings"`, `"listen"`, ..).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(k, _)| self.contains(*k))
            .map(|(_, n)| n)
    }
}

impl BitOr for SessionState {
    type Output = SessionState;
    fn bitor(self, rhs: SessionState) -> SessionState {
        self.union(rhs)
    }
}

impl BitOrAssign for SessionState {
    fn bitor_assign(&mut self, rhs: SessionState) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionState(")?;
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            f.write_str(name)?;
        }
        f.write_str(")")
    }
}

fn word(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Word(w)) => Some(w),
        _ => None,
    }
}

/// A MySQL user variable (`@x`), which its tokenizer reads as a word.
fn user_variable(t: Option<&Tok>) -> bool {
    word(t).is_some_and(|w| w.starts_with('@') && !w.starts_with("@@"))
}

const SESSION_LOCKS: &[&str] = &[
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "get_lock",
];

/// `set_config(name, value, is_local)` (`at` is its `(`) with `is_local` anything but a
/// literal `true` (a placeholder could be `false`: assume it is).
fn session_set_config(toks: &[Tok], at: usize) -> bool {
    let mut depth = 0usize;
    let mut commas = 0usize;
    for t in &toks[at..] {
        match t {
            Tok::Punct("(" | "[") => depth += 1,
            Tok::Punct(")" | "]") => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return true;
                }
            }
            Tok::Punct(",") if depth == 1 => commas += 1,
            t if depth == 1 && commas == 2 => return !matches!(t, Tok::Lit(Lit::True)),
            _ => {}
        }
    }
    true
}

/// The state one `SET` statement (after the word `SET`) touches.
fn set_statement(rest: &[Tok], dialect: Dialect) -> SessionState {
    let first = word(rest.first());
    let second = word(rest.get(1));
    match first {
        // Transaction-scoped: gone at commit or rollback.
        Some("local" | "transaction" | "constraints") => return SessionState::EMPTY,
        Some("role") => return SessionState::ROLE,
        Some("session") if second == Some("authorization") => return SessionState::ROLE,
        Some("global" | "persist" | "persist_only") => return SessionState::EMPTY,
        _ => {}
    }
    if dialect != Dialect::MySql {
        return SessionState::SETTINGS;
    }
    // MySQL lists assignments: `SET @a = 1, sql_mode = '', @@x = 2`.
    let mut state = SessionState::EMPTY;
    let mut depth = 0usize;
    let mut item_start = true;
    for t in rest {
        match t {
            Tok::Punct("(") => depth += 1,
            Tok::Punct(")") => depth = depth.saturating_sub(1),
            Tok::Punct(",") if depth == 0 => {
                item_start = true;
                continue;
            }
            _ if item_start => {
                state |= match word(Some(t)) {
                    // `@@global.x` (read as `@@global` `.` `x`) is server-wide.
                    Some("@@global" | "@@persist" | "@@persist_only") => SessionState::EMPTY,
                    Some(w) if w.starts_with('@') && !w.starts_with("@@") => {
                        SessionState::USER_VARIABLES
                    }
                    Some("global" | "persist" | "persist_only") => SessionState::EMPTY,
                    _ => SessionState::SETTINGS,
                };
            }
            _ => {}
        }
        item_start = false;
    }
    state
}

fn one_statement(toks: &[Tok], dialect: Dialect) -> SessionState {
    let mut state = SessionState::EMPTY;
    let first = word(toks.first());
    let rest = toks.get(1..).unwrap_or_default();
    match first {
        Some("set") => state |= set_statement(rest, dialect),
        Some("reset") => {
            state |= match word(rest.first()) {
                Some("role") => SessionState::ROLE,
                Some("session") => SessionState::ROLE,
                _ => SessionState::SETTINGS,
            }
        }
        Some("use" | "attach" | "detach") if dialect != Dialect::Postgres => {
            state |= SessionState::SETTINGS
        }
        Some("pragma") if toks.iter().any(|t| t.is_punct("=")) => state |= SessionState::SETTINGS,
        Some("listen") => state |= SessionState::LISTEN,
        Some("prepare") if word(rest.first()) != Some("transaction") => {
            state |= SessionState::PREPARED
        }
        Some("deallocate") => state |= SessionState::PREPARED,
        Some("lock") if dialect == Dialect::MySql => state |= SessionState::TABLE_LOCKS,
        Some("do" | "call") => state |= SessionState::OPAQUE,
        Some("declare") if has_pair(toks, "with", "hold") => state |= SessionState::CURSORS,
        Some("create") => {
            // CREATE [OR REPLACE] [GLOBAL | LOCAL] TEMP[ORARY] ..
            let temp = toks
                .iter()
                .take(6)
                .any(|t| t.is_word("temp") || t.is_word("temporary"));
            if temp {
                state |= SessionState::TEMP_OBJECTS;
            }
        }
        _ => {}
    }
    for (i, t) in toks.iter().enumerate() {
        let Tok::Word(w) = t else { continue };
        let called = toks.get(i + 1).is_some_and(|n| n.is_punct("("));
        if called && SESSION_LOCKS.contains(&w.as_str()) {
            state |= SessionState::ADVISORY_LOCKS;
        } else if called && w == "set_config" && session_set_config(toks, i + 1) {
            state |= SessionState::SETTINGS;
        } else if w == "into" && first != Some("insert") && first != Some("replace") {
            let next = toks.get(i + 1);
            if next.is_some_and(|n| n.is_word("temp") || n.is_word("temporary")) {
                state |= SessionState::TEMP_OBJECTS;
            } else if dialect == Dialect::MySql && user_variable(next) {
                state |= SessionState::USER_VARIABLES;
            }
        }
        if dialect == Dialect::MySql
            && user_variable(Some(t))
            && toks.get(i + 1).is_some_and(|n| n.is_punct(":="))
        {
            state |= SessionState::USER_VARIABLES;
        }
    }
    state
}

fn has_pair(toks: &[Tok], a: &str, b: &str) -> bool {
    toks.windows(2).any(|w| w[0].is_word(a) && w[1].is_word(b))
}

/// The union over the statements of a text.
pub(crate) fn detect(toks: &[Tok], dialect: Dialect) -> SessionState {
    statements(toks).fold(SessionState::EMPTY, |s, stmt| {
        s | one_statement(stmt, dialect)
    })
}
