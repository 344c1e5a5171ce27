//! What to open and how: the database (a file or a shared in-memory
//! database) and the pragmas applied to every new connection. Parses
//! `sqlite:` URLs; never opens anything itself.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::SqliteError;

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A database file.
    File(PathBuf),
    /// A private in-memory database, shared by every connection of one
    /// manager (see [`SqliteConfig::memory`]).
    Memory,
}

/// SQLite's `journal_mode` pragma.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalMode {
    /// `DELETE` (SQLite's own default).
    Delete,
    /// `TRUNCATE`.
    Truncate,
    /// `PERSIST`.
    Persist,
    /// `MEMORY`.
    Memory,
    /// `WAL`: readers do not block the writer, nor the writer readers.
    Wal,
    /// `OFF`.
    Off,
}

impl JournalMode {
    /// The pragma value.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalMode::Delete => "DELETE",
            JournalMode::Truncate => "TRUNCATE",
            JournalMode::Persist => "PERSIST",
            JournalMode::Memory => "MEMORY",
            JournalMode::Wal => "WAL",
            JournalMode::Off => "OFF",
        }
    }
}

impl FromStr for JournalMode {
    type Err = SqliteError;
    fn from_str(s: &str) -> Result<Self, SqliteError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "delete" => JournalMode::Delete,
            "truncate" => JournalMode::Truncate,
            "persist" => JournalMode::Persist,
            "memory" => JournalMode::Memory,
            "wal" => JournalMode::Wal,
            "off" => JournalMode::Off,
            _ => {
                return Err(invalid_option(
                    "journal_mode",
                    "delete, truncate, persist, memory, wal or off",
                ))
            }
        })
    }
}

/// SQLite's `synchronous` pragma.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// `OFF`.
    Off,
    /// `NORMAL` (safe with WAL).
    Normal,
    /// `FULL`.
    Full,
    /// `EXTRA`.
    Extra,
}

impl Synchronous {
    /// The pragma value.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        }
    }
}

impl FromStr for Synchronous {
    type Err = SqliteError;
    fn from_str(s: &str) -> Result<Self, SqliteError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "off" | "0" => Synchronous::Off,
            "normal" | "1" => Synchronous::Normal,
            "full" | "2" => Synchronous::Full,
            "extra" | "3" => Synchronous::Extra,
            _ => return Err(invalid_option("synchronous", "off, normal, full or extra")),
        })
    }
}

/// How a database file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenMode {
    /// Read-only (`mode=ro`).
    ReadOnly,
    /// Read-write; the file must exist (`mode=rw`).
    ReadWrite,
    /// Read-write, creating the file if missing (`mode=rwc`, the default).
    ReadWriteCreate,
}

/// How [`begin`](tidepool::Queryable::begin) opens a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BeginMode {
    /// `BEGIN DEFERRED` (the default): locks are taken on first use.
    Deferred,
    /// `BEGIN IMMEDIATE`: the write lock is taken at once, so a write
    /// transaction waits (up to `busy_timeout`) at `BEGIN` instead of failing
    /// with `SQLITE_BUSY` when it first writes.
    Immediate,
    /// `BEGIN EXCLUSIVE`.
    Exclusive,
}

impl BeginMode {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            BeginMode::Deferred => "BEGIN DEFERRED",
            BeginMode::Immediate => "BEGIN IMMEDIATE",
            BeginMode::Exclusive => "BEGIN EXCLUSIVE",
        }
    }
}

/// Configuration of a [`SqliteManager`](crate::SqliteManager).
///
/// From a URL:
///
/// ```
/// use std::time::Duration;
/// use tidepool_sqlite::{JournalMode, SqliteConfig, Target};
///
/// let cfg: SqliteConfig = "sqlite://data/app.db?busy_timeout=2500&synchronous=normal".parse()?;
/// assert_eq!(cfg.target(), &Target::File("data/app.db".into()));
/// assert_eq!(cfg.get_journal_mode(), Some(JournalMode::Wal)); // files default to WAL
/// assert_eq!(cfg.get_busy_timeout(), Duration::from_millis(2500));
///
/// let mem = SqliteConfig::from_url("sqlite::memory:")?;
/// assert_eq!(mem.target(), &Target::Memory);
/// # Ok::<(), tidepool_sqlite::SqliteError>(())
/// ```
///
/// Or from fields:
///
/// ```
/// use tidepool_sqlite::{SqliteConfig, Synchronous};
/// let cfg = SqliteConfig::file("app.db").foreign_keys(true).synchronous(Synchronous::Normal);
/// ```
///
/// # URL forms
///
/// * `sqlite://path/to.db` and `sqlite:path/to.db` — a file, relative to the
///   working directory; `sqlite:///abs/path.db` for an absolute path. The
///   path is percent-decoded.
/// * `sqlite::memory:` (also `sqlite://:memory:`) — an in-memory database.
///
/// Options after `?`, each at most once:
///
/// | option | values | default |
/// | --- | --- | --- |
/// | `journal_mode` | `delete`, `truncate`, `persist`, `memory`, `wal`, `off` | `wal` for files, SQLite's own for memory |
/// | `busy_timeout` | milliseconds, or with a unit: `250ms`, `5s` | `5s` |
/// | `foreign_keys` | `true`/`false`, `on`/`off`, `1`/`0` | `true` |
/// | `synchronous` | `off`, `normal`, `full`, `extra` | `normal` with WAL, else SQLite's own (`full`) |
/// | `mode` | `ro`, `rw`, `rwc` | `rwc` |
/// | `begin` | `deferred`, `immediate`, `exclusive` | `deferred` |
///
/// # In-memory databases
///
/// A plain `:memory:` database is private to one connection, which would
/// make a pool of them a pool of unrelated empty databases. So every manager
/// built from [`SqliteConfig::memory`] gets its own uniquely named database
/// `file:/tidepool-mem-<n>?vfs=memdb`, which all its connections share.
/// We use SQLite's `memdb` VFS rather than the older
/// `file:...?mode=memory&cache=shared` form because shared-cache mode uses
/// table-level locks that fail at once with `SQLITE_LOCKED` and ignore
/// `busy_timeout`; `memdb` databases lock the whole database, so writers
/// wait for each other up to `busy_timeout` as with a file. Unlike a file,
/// a reader cannot start while another connection holds an open write
/// transaction: it waits for the commit, up to `busy_timeout` (the crate
/// docs' "In-memory databases" has the full comparison). The manager keeps
/// one extra connection open for its own lifetime, so the database is not
/// destroyed when the pool closes its last idle connection.
#[derive(Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    pub(crate) target: Target,
    pub(crate) journal_mode: Option<JournalMode>,
    pub(crate) busy_timeout: Duration,
    pub(crate) foreign_keys: bool,
    pub(crate) synchronous: Option<Synchronous>,
    pub(crate) open_mode: OpenMode,
    pub(crate) begin_mode: BeginMode,
}

impl fmt::Debug for SqliteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteConfig")
            .field("target", &self.target)
            .field("journal_mode", &self.get_journal_mode())
            .field("busy_timeout", &self.busy_timeout)
            .field("foreign_keys", &self.foreign_keys)
            .field("synchronous", &self.get_synchronous())
            .field("open_mode", &self.open_mode)
            .field("begin_mode", &self.begin_mode)
            .finish()
    }
}

const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl SqliteConfig {
    fn with_target(target: Target) -> Self {
        SqliteConfig {
            target,
            journal_mode: None,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            foreign_keys: true,
            synchronous: None,
            open_mode: OpenMode::ReadWriteCreate,
            begin_mode: BeginMode::Deferred,
        }
    }

    /// A database file (created if missing unless [`open_mode`](Self::open_mode) says otherwise).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::with_target(Target::File(path.into()))
    }

    /// An in-memory database shared by all connections of the manager built
    /// from this configuration (see the type's docs).
    pub fn memory() -> Self {
        Self::with_target(Target::Memory)
    }

    /// Parses a `sqlite:` URL (see the type's docs for the forms and options).
    pub fn from_url(url: &str) -> Result<Self, SqliteError> {
        parse_url(url)
    }

    /// Sets `journal_mode`. Defaults to WAL for files, SQLite's own for
    /// in-memory databases.
    #[must_use]
    pub fn journal_mode(mut self, mode: JournalMode) -> Self {
        self.journal_mode = Some(mode);
        self
    }

    /// Sets how long a statement waits for a lock held by another
    /// connection before failing with `SQLITE_BUSY`. Defaults to 5 s.
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Enforces foreign keys (`PRAGMA foreign_keys`). Defaults to `true`.
    #[must_use]
    pub fn foreign_keys(mut self, on: bool) -> Self {
        self.foreign_keys = on;
        self
    }

    /// Sets `synchronous`. Defaults to `NORMAL` with WAL, SQLite's own
    /// otherwise.
    #[must_use]
    pub fn synchronous(mut self, level: Synchronous) -> Self {
        self.synchronous = Some(level);
        self
    }

    /// Sets how the file is opened. Defaults to [`OpenMode::ReadWriteCreate`].
    #[must_use]
    pub fn open_mode(mut self, mode: OpenMode) -> Self {
        self.open_mode = mode;
        self
    }

    /// Sets how [`begin`](tidepool::Queryable::begin) opens transactions.
    /// Defaults to [`BeginMode::Deferred`].
    #[must_use]
    pub fn begin_mode(mut self, mode: BeginMode) -> Self {
        self.begin_mode = mode;
        self
    }

    /// Where the database lives.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The journal mode applied on connect, if any (`None`: SQLite's own).
    pub fn get_journal_mode(&self) -> Option<JournalMode> {
        match (&self.target, self.journal_mode) {
            (_, Some(mode)) => Some(mode),
            (Target::File(_), None) => Some(JournalMode::Wal),
            (Target::Memory, None) => None,
        }
    }

    /// The busy timeout.
    pub fn get_busy_timeout(&self) -> Duration {
        self.busy_timeout
    }

    /// Whether foreign keys are enforced.
    pub fn get_foreign_keys(&self) -> bool {
        self.foreign_keys
    }

    /// The `synchronous` level applied on connect, if any.
    pub fn get_synchronous(&self) -> Option<Synchronous> {
        match (self.synchronous, self.get_journal_mode()) {
            (Some(level), _) => Some(level),
            (None, Some(JournalMode::Wal)) => Some(Synchronous::Normal),
            (None, _) => None,
        }
    }

    /// How the file is opened.
    pub fn get_open_mode(&self) -> OpenMode {
        self.open_mode
    }

    /// How transactions are opened.
    pub fn get_begin_mode(&self) -> BeginMode {
        self.begin_mode
    }

    /// A short description for logs: `sqlite://<path>` or `sqlite::memory:`.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::File(path) => format!("sqlite://{}", path.display()),
            Target::Memory => "sqlite::memory:".to_string(),
        }
    }
}

impl FromStr for SqliteConfig {
    type Err = SqliteError;
    fn from_str(s: &str) -> Result<Self, SqliteError> {
        parse_url(s)
    }
}

fn invalid_url(reason: impl Into<String>) -> SqliteError {
    SqliteError::InvalidUrl {
        reason: reason.into(),
    }
}

/// A known option with a value it does not take. The value is not
/// repeated: whatever the caller typed may be a secret pasted into the
/// wrong place, and naming what would be accepted is enough to fix it.
fn invalid_option(name: &str, expected: &str) -> SqliteError {
    SqliteError::InvalidOption {
        name: name.to_string(),
        reason: format!("the value is not valid; expected {expected}"),
    }
}

fn decode(part: &str, what: &str) -> Result<String, SqliteError> {
    // Reject malformed escapes (`%` not followed by two hex digits) instead
    // of passing them through, as `percent_decode` would.
    let bytes = part.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(invalid_url(format!(
                    "bad percent-encoding in the {what} at byte {i}: `%` must be followed by two hex digits"
                )));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            invalid_url(format!(
                "the {what} is not valid UTF-8 after percent-decoding"
            ))
        })
}

fn parse_bool(name: &str, value: &str) -> Result<bool, SqliteError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(invalid_option(name, "true or false")),
    }
}

fn parse_duration_ms(name: &str, value: &str) -> Result<Duration, SqliteError> {
    let err = || invalid_option(name, "milliseconds such as `5000`, or `250ms`, `5s`");
    if let Some(ms) = value.strip_suffix("ms") {
        return ms
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| err());
    }
    if let Some(s) = value.strip_suffix('s') {
        return s.parse::<u64>().map(Duration::from_secs).map_err(|_| err());
    }
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| err())
}

/// URL schemes a caller may hand the SQLite driver by mistake. Only these
/// are named in an error; anything else before a `:` might be a password
/// (`secret@host:5432`), so it is not repeated.
const OTHER_SCHEMES: &[&str] = &[
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "sqlite3",
    "file",
    "libsql",
    "http",
    "https",
    "jdbc",
];

/// Whether `text` has a `:` followed later by an `@`: the shape of
/// `user:password@host`, which names no file.
fn looks_like_user_info(text: &str) -> bool {
    text.find(':')
        .is_some_and(|colon| text[colon..].contains('@'))
}

fn parse_url(url: &str) -> Result<SqliteConfig, SqliteError> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        let scheme = url
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .and_then(|s| OTHER_SCHEMES.iter().find(|known| **known == s));
        return Err(invalid_url(match scheme {
            Some(scheme) => format!(
                "expected a `sqlite:` URL (`sqlite://path/to.db` or `sqlite::memory:`), found a `{scheme}:` URL"
            ),
            None => "expected a `sqlite:` URL (`sqlite://path/to.db` or `sqlite::memory:`); \
                     the text given is not repeated here, as it may hold a password"
                .to_string(),
        }));
    };
    let memory_form = rest
        .strip_prefix(":memory:")
        .or_else(|| rest.strip_prefix("//:memory:"));
    if looks_like_user_info(memory_form.unwrap_or(rest)) {
        return Err(invalid_url(
            "a sqlite URL names a file and has no user or password, but this one looks like \
             `user:password@host` (a `:` followed by an `@`); it is not repeated here. \
             Percent-encode the `:` as `%3A` if the path really contains both",
        ));
    }
    let (path_part, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path_part.contains('#') {
        return Err(invalid_url(
            "fragments (`#...`) are not supported in a sqlite URL",
        ));
    }
    let path_part = path_part.strip_prefix("//").unwrap_or(path_part);
    let mut cfg =
        match path_part {
            ":memory:" => SqliteConfig::memory(),
            "" => return Err(invalid_url(
                "the URL names no database: give a path (`sqlite://app.db`) or `sqlite::memory:`",
            )),
            p => {
                let path = decode(p, "path")?;
                if path.contains('\0') {
                    return Err(invalid_url("the path contains a NUL byte"));
                }
                SqliteConfig::file(Path::new(&path))
            }
        };
    let mut seen: Vec<String> = Vec::new();
    for (index, pair) in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(raw_name, "option name")?;
        let value = decode(raw_value, "option value")?;
        if seen.contains(&name) {
            return Err(SqliteError::InvalidOption {
                name,
                reason: "is given more than once".into(),
            });
        }
        match name.as_str() {
            "journal_mode" => cfg.journal_mode = Some(value.parse()?),
            "busy_timeout" => cfg.busy_timeout = parse_duration_ms("busy_timeout", &value)?,
            "foreign_keys" => cfg.foreign_keys = parse_bool("foreign_keys", &value)?,
            "synchronous" => cfg.synchronous = Some(value.parse()?),
            "mode" => {
                cfg.open_mode = match value.as_str() {
                    "ro" => OpenMode::ReadOnly,
                    "rw" => OpenMode::ReadWrite,
                    "rwc" => OpenMode::ReadWriteCreate,
                    "memory" => {
                        return Err(invalid_option(
                            "mode",
                            "ro, rw or rwc (use `sqlite::memory:` for memory)",
                        ))
                    }
                    _ => return Err(invalid_option("mode", "ro, rw or rwc")),
                }
            }
            "begin" => {
                cfg.begin_mode = match value.to_ascii_lowercase().as_str() {
                    "deferred" => BeginMode::Deferred,
                    "immediate" => BeginMode::Immediate,
                    "exclusive" => BeginMode::Exclusive,
                    _ => return Err(invalid_option("begin", "deferred, immediate or exclusive")),
                }
            }
            // Neither the name nor the value is repeated: `?key=...` or a
            // password cut in two by an unencoded `&` lands here.
            _ => {
                return Err(SqliteError::UnknownOption {
                    position: index + 1,
                })
            }
        }
        seen.push(name);
    }
    if cfg.target == Target::Memory && cfg.journal_mode == Some(JournalMode::Wal) {
        return Err(SqliteError::InvalidOption {
            name: "journal_mode".into(),
            reason: "in-memory databases cannot use WAL; choose another mode".into(),
        });
    }
    Ok(cfg)
}

/// A process-wide counter naming each manager's in-memory database.
static MEMORY_DB_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh, process-unique `memdb` URI for one manager's in-memory database.
pub(crate) fn unique_memory_uri() -> String {
    let n = MEMORY_DB_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("file:/tidepool-mem-{}-{n}?vfs=memdb", std::process::id())
}
