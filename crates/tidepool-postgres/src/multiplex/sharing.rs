//! Which statements may share a connection with other statements in
//! flight. It owns the one rule of the multiplexer's safety: a statement
//! that opens, ends or depends on a transaction, or that changes session
//! state, must never run on a shared connection — tokio-postgres pipelines
//! whatever it is given, so such a statement would reach every read queued
//! behind it. When in doubt the answer is no.

use tidepool::QueryKind;
use tidepool_sql::{Analyzer, Dialect, SessionState};

use crate::txstate::{statement_effect, Effect};

/// SQL text the caller vouches for as a read, for a statement the
/// classifier would call a write (a `SELECT` of a function it cannot see
/// into, say). The mark overrides the read/write judgement only: a
/// statement the classifier sees opening or ending a transaction, changing
/// session state, or doing maintenance (which includes `SET`, `RESET`,
/// `DISCARD`, `LISTEN`, `PREPARE` and DDL) is refused all the same.
///
/// ```
/// use tidepool_postgres::{sharing, ReadOnly, Sharing};
/// // nextval() writes, so the classifier refuses it; the caller may vouch.
/// assert!(matches!(sharing("SELECT nextval('ids')"), Sharing::Refused { .. }));
/// assert_eq!(sharing(&ReadOnly("SELECT nextval('ids')")), Sharing::Shareable);
/// // No mark makes BEGIN or SET shareable.
/// assert!(matches!(sharing(&ReadOnly("SET search_path = app")), Sharing::Refused { .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOnly<'a>(pub &'a str);

mod sealed {
    pub trait Sealed {}
    impl Sealed for str {}
    impl Sealed for String {}
    impl<T: Sealed + ?Sized> Sealed for &T {}
    impl Sealed for super::ReadOnly<'_> {}
}

/// A statement for the multiplexer: SQL text (classified), or
/// [`ReadOnly`] text (marked by the caller). Sealed.
pub trait SharedSql: sealed::Sealed {
    /// The SQL text.
    fn sql(&self) -> &str;
    /// Whether the caller marked it as a read.
    fn marked_read(&self) -> bool {
        false
    }
}

impl SharedSql for str {
    fn sql(&self) -> &str {
        self
    }
}

impl SharedSql for String {
    fn sql(&self) -> &str {
        self
    }
}

impl<T: SharedSql + ?Sized> SharedSql for &T {
    fn sql(&self) -> &str {
        (**self).sql()
    }
    fn marked_read(&self) -> bool {
        (**self).marked_read()
    }
}

impl SharedSql for ReadOnly<'_> {
    fn sql(&self) -> &str {
        self.0
    }
    fn marked_read(&self) -> bool {
        true
    }
}

/// Whether a statement may run on a shared connection, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sharing {
    /// A read with no session effect: it may share a connection.
    Shareable,
    /// It must have a connection of its own ([`tidepool::Pool::get`]).
    Refused {
        /// The statement's kind as tidepool-sql reads it.
        kind: QueryKind,
        /// The session state it changes (empty when refused for its kind).
        session: SessionState,
    },
}

/// Whether `statement` may be multiplexed: tidepool-sql must read it as a
/// [`QueryKind::Read`] or [`QueryKind::Analytics`] (or a
/// [`QueryKind::Write`] the caller marked [`ReadOnly`]), it must
/// change no session state, and the connection's own transaction tracking
/// must see no transaction control in it.
///
/// ```
/// use tidepool_postgres::{sharing, Sharing};
/// assert_eq!(sharing("SELECT abalance FROM pgbench_accounts WHERE aid = $1"), Sharing::Shareable);
/// assert!(matches!(sharing("BEGIN"), Sharing::Refused { kind: tidepool::QueryKind::Transaction, .. }));
/// assert!(matches!(sharing("UPDATE t SET x = 1"), Sharing::Refused { .. }));
/// ```
pub fn sharing<S: SharedSql + ?Sized>(statement: &S) -> Sharing {
    let sql = statement.sql();
    let analysis = Analyzer::global(Dialect::Postgres).analyze(sql);
    let kind = analysis.kind;
    let session = analysis.session;
    let readable = match kind {
        QueryKind::Read | QueryKind::Analytics => true,
        // Maintenance holds SET, RESET, DISCARD, LISTEN, UNLISTEN,
        // PREPARE, DEALLOCATE and DDL: never vouched for.
        QueryKind::Write => statement.marked_read(),
        _ => false,
    };
    if readable && session.is_empty() && statement_effect(sql) == Effect::None {
        Sharing::Shareable
    } else {
        Sharing::Refused { kind, session }
    }
}
