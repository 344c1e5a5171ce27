#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod cache;
mod kind;
mod lex;
mod normalize;
mod session;

use tidepool::QueryKind;

pub use cache::Analyzer;
pub use session::SessionState;

/// The SQL dialect to read text in: it decides what the tokenizer takes
/// for a string, an identifier, a comment or a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL: `"ident"`, `E'..'`, `$tag$..$tag$`, `$1`, nested
    /// `/* */` comments, `::` casts.
    Postgres,
    /// MySQL and MariaDB: `` `ident` ``, `"string"`, `?`, `@var`.
    MySql,
    /// SQLite: `"ident"`, `[ident]`, `` `ident` ``, `?`, `?1`, `:name`,
    /// `@name`, `$name`.
    Sqlite,
}

/// A statement's shape: the normalized text (literals folded to `?`,
/// lists of values folded, comments, case and spacing gone) and a stable
/// 64-bit hash of it.
///
/// ```
/// use tidepool_sql::{fingerprint, Dialect};
/// let a = fingerprint("SELECT * FROM users WHERE id = 42", Dialect::Postgres);
/// let b = fingerprint("select *\n  from USERS -- by id\n where id = 7;", Dialect::Postgres);
/// assert_eq!(a, b);
/// assert_eq!(a.normalized, "select * from users where id = ?");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Fingerprint {
    /// A hash of `normalized`: equal texts, equal ids, in any process.
    pub id: u64,
    /// The normalized text, never holding a literal's value.
    pub normalized: String,
}

/// Everything the crate reads from one text, from one tokenization.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Analysis {
    /// The statement's shape.
    pub fingerprint: Fingerprint,
    /// What it does.
    pub kind: QueryKind,
    /// The session state it changes.
    pub session: SessionState,
}

fn fingerprint_of(toks: &[lex::Tok]) -> Fingerprint {
    let folded = normalize::fold(toks);
    let mut normalized = String::with_capacity(folded.len() * 6);
    normalize::render(&folded, &mut normalized);
    Fingerprint {
        id: normalize::hash(normalized.as_bytes()),
        normalized,
    }
}

/// The fingerprint of `sql`. Never fails: text the tokenizer cannot read
/// to the end (an unterminated string or comment) gets a lossy
/// fingerprint — the part before the unreadable token, normalized, then
/// `<unparsed>`.
pub fn fingerprint(sql: &str, dialect: Dialect) -> Fingerprint {
    fingerprint_of(&lex::lex(sql, dialect))
}

/// What `sql` does (the rules are in the crate docs).
///
/// ```
/// use tidepool::QueryKind;
/// use tidepool_sql::{classify, Dialect};
/// let pg = Dialect::Postgres;
/// assert_eq!(classify("SELECT * FROM t WHERE id = $1", pg), QueryKind::Read);
/// assert_eq!(classify("SELECT * FROM t WHERE id = $1 FOR UPDATE", pg), QueryKind::Write);
/// assert_eq!(classify("WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x", pg), QueryKind::Write);
/// assert_eq!(classify("SELECT status, count(*) FROM orders GROUP BY status", pg), QueryKind::Analytics);
/// assert_eq!(classify("BEGIN", pg), QueryKind::Transaction);
/// assert_eq!(classify("VACUUM ANALYZE t", pg), QueryKind::Maintenance);
/// ```
pub fn classify(sql: &str, dialect: Dialect) -> QueryKind {
    kind::classify(&lex::lex(sql, dialect))
}

/// The session state `sql` changes (see [`SessionState`]).
pub fn session_state(sql: &str, dialect: Dialect) -> SessionState {
    session::detect(&lex::lex(sql, dialect), dialect)
}

/// Fingerprint, kind and session state of `sql`, tokenized once.
///
/// ```
/// use tidepool::QueryKind;
/// use tidepool_sql::{analyze, Dialect, SessionState};
/// let a = analyze("CREATE TEMP TABLE scratch (id int)", Dialect::Postgres);
/// assert_eq!(a.kind, QueryKind::Maintenance);
/// assert_eq!(a.session, SessionState::TEMP_OBJECTS);
/// ```
pub fn analyze(sql: &str, dialect: Dialect) -> Analysis {
    let toks = lex::lex(sql, dialect);
    Analysis {
        kind: kind::classify(&toks),
        session: session::detect(&toks, dialect),
        fingerprint: fingerprint_of(&toks),
    }
}
