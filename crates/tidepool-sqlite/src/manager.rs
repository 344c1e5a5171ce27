//! [`SqliteManager`]: how the pool opens, checks and cleans SQLite
//! connections. For in-memory configurations it also owns the shared
//! database's name and an anchor connection that keeps it alive.

use std::sync::Mutex;

use tidepool::{Classify, FailureKind, Manager};

use crate::config::{SqliteConfig, Target};
use crate::connection::SqliteConnection;
use crate::error::SqliteError;

/// A [`tidepool::Manager`] for SQLite.
///
/// * `validate` runs `SELECT 1`;
/// * a connection returned inside a transaction (SQLite's autocommit is
///   off), or with a call still running whose caller gave up, is reset:
///   the reset waits for that call on the connection's thread and then
///   runs `ROLLBACK` if a transaction is open;
/// * a connection whose thread stopped (closed, or a call panicked) is
///   broken and discarded.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tidepool_sqlite::SqliteError> {
/// use tidepool::{Manager, Queryable};
/// use tidepool_sqlite::SqliteManager;
///
/// let manager = SqliteManager::from_url("sqlite::memory:")?;
/// let mut a = manager.connect().await?;
/// let mut b = manager.connect().await?;
/// a.execute_values("CREATE TABLE t (x INTEGER)", &[]).await?;
/// a.execute_values("INSERT INTO t VALUES (1)", &[]).await?;
/// // Both connections see the same in-memory database.
/// let row = b.query_one_values("SELECT count(*) AS n FROM t", &[]).await?;
/// assert_eq!(row.get("n").and_then(|v| v.as_i64()), Some(1));
/// # Ok(()) }
/// ```
pub struct SqliteManager {
    config: SqliteConfig,
    /// The shared in-memory database's URI (empty for files).
    memory_uri: String,
    /// Keeps the in-memory database alive while the manager lives. Opened
    /// lazily by the first `connect`, on the connection's own thread.
    anchor: Mutex<Option<SqliteConnection>>,
}

impl std::fmt::Debug for SqliteManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteManager")
            .field("config", &self.config)
            .field("memory_uri", &self.memory_uri)
            .finish_non_exhaustive()
    }
}

impl SqliteManager {
    /// A manager for `config`. Each call with an in-memory configuration
    /// makes a new, separate database.
    pub fn new(config: SqliteConfig) -> Self {
        let memory_uri = match config.target() {
            Target::Memory => crate::config::unique_memory_uri(),
            Target::File(_) => String::new(),
        };
        SqliteManager {
            config,
            memory_uri,
            anchor: Mutex::new(None),
        }
    }

    /// A manager from a `sqlite:` URL (see [`SqliteConfig`]).
    pub fn from_url(url: &str) -> Result<Self, SqliteError> {
        SqliteConfig::from_url(url).map(Self::new)
    }

    /// The configuration.
    pub fn config(&self) -> &SqliteConfig {
        &self.config
    }

    fn anchored(&self) -> bool {
        self.anchor.lock().map(|a| a.is_some()).unwrap_or(true)
    }
}

impl Manager for SqliteManager {
    type Connection = SqliteConnection;
    type Error = SqliteError;

    async fn connect(&self) -> Result<SqliteConnection, SqliteError> {
        if matches!(self.config.target(), Target::Memory) && !self.anchored() {
            let anchor = SqliteConnection::open_at(&self.config, self.memory_uri.clone()).await?;
            if let Ok(mut slot) = self.anchor.lock() {
                slot.get_or_insert(anchor);
            }
        }
        SqliteConnection::open_at(&self.config, self.memory_uri.clone()).await
    }

    async fn validate(&self, conn: &mut SqliteConnection) -> Result<(), SqliteError> {
        conn.call(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
            .await
            .map(drop)
    }

    fn needs_reset(&self, conn: &SqliteConnection) -> bool {
        conn.may_be_in_transaction()
    }

    async fn reset(&self, conn: &mut SqliteConnection) -> Result<(), SqliteError> {
        // Queued behind any abandoned call, so it also waits for that call.
        conn.call(|c| {
            if c.is_autocommit() {
                Ok(())
            } else {
                c.execute_batch("ROLLBACK")
            }
        })
        .await
    }

    fn is_broken(&self, conn: &SqliteConnection) -> bool {
        conn.is_dead()
    }

    fn classify(&self, error: &SqliteError) -> FailureKind {
        error.failure_kind()
    }

    fn is_retryable(&self, error: &SqliteError) -> bool {
        error.is_retryable()
    }

    /// tidepool-sql's fingerprint of `sql`, from a process-wide cache of
    /// the texts seen: the shape under which the pool's statistics and
    /// slow-query log count it.
    fn query_shape(&self, sql: &str) -> Option<tidepool::QueryShape> {
        Some(tidepool_sql::Analyzer::global(tidepool_sql::Dialect::Sqlite).shape(sql))
    }

    fn describe(&self) -> String {
        self.config.describe()
    }
}
