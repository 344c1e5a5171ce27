//! [`MysqlManager`]: opens single `mysql_async` connections (never its
//! built-in pool), checks them with a ping, and cleans them on return
//! according to a [`ResetPolicy`].

use mysql_async::Opts;
use tidepool::{Classify, FailureKind, Manager};

use crate::config::MysqlConfig;
use crate::connection::MysqlConnection;
use crate::error::MysqlError;

/// How a returned connection is cleaned. Defaults to [`ResetPolicy::Fast`].
///
/// Every policy first rolls back an open transaction (tracked by the
/// connection, or reported by the server's status flags). A connection
/// whose query future was dropped mid-flight is discarded under every
/// policy: its protocol state is unknown.
///
/// | policy | a clean connection | a dirty one | cost when clean |
/// |---|---|---|---|
/// | `Fast` | `COM_RESET_CONNECTION` if it saw session state touched | `ROLLBACK` (and the same) | none |
/// | `Verified` | ping (or the reset) | `ROLLBACK`, ping | one round trip |
/// | `Clean` | `COM_RESET_CONNECTION` if it ran anything | `ROLLBACK`, `COM_RESET_CONNECTION` | one round trip per used checkout |
///
/// `Fast` is the default, as in `tidepool-postgres`: the next borrower is
/// never inside a transaction, and never gets a session it saw changed, at
/// no cost on the common clean return. Its dirty bits read every statement
/// sent through the uniform face (once per text, cached): user variables
/// (`SET @v`, `@v :=`, `INTO @v`), `SET [SESSION]`, `SET NAMES`, `USE`,
/// `GET_LOCK`, `LOCK TABLES`, temporary tables, `PREPARE`, `CALL`; any of
/// them makes the return reset the session with `COM_RESET_CONNECTION`.
/// What they cannot see: state a stored procedure, function or trigger
/// changes from inside a statement that does not look like it (`SELECT
/// f()`), and statements sent natively through `DerefMut`: use `Clean`
/// when code does that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResetPolicy {
    /// Roll back when a transaction may be open; reset the session when
    /// the dirty bits saw it changed.
    #[default]
    Fast,
    /// Like `Fast`, plus a ping on every return that sent nothing else.
    Verified,
    /// Like `Fast`, plus `COM_RESET_CONNECTION` after any checkout that ran
    /// a statement (or touched the native connection mutably).
    Clean,
}

/// A [`tidepool::Manager`] for MySQL and MariaDB.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use tidepool::Queryable;
/// use tidepool_mysql::{MysqlManager, ResetPolicy};
///
/// let manager = MysqlManager::from_url("mysql://root@127.0.0.1:3306/test")?
///     .with_reset_policy(ResetPolicy::Clean);
/// let pool = tidepool::Pool::builder(manager).max_size(8).build().await?;
/// let mut conn = pool.get().await?;
/// let row = conn.query_one_values("SELECT $1 + 1 AS n", &[41.into()]).await?;
/// assert_eq!(row.get("n").and_then(|v| v.as_i64()), Some(42));
/// # Ok(()) }
/// ```
pub struct MysqlManager {
    config: MysqlConfig,
    opts: Opts,
    policy: ResetPolicy,
    track_session: bool,
}

impl std::fmt::Debug for MysqlManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlManager")
            .field("config", &self.config)
            .field("policy", &self.policy)
            .field("track_session_state", &self.track_session)
            .finish_non_exhaustive()
    }
}

impl MysqlManager {
    /// A manager for `config` with the default reset policy.
    pub fn new(config: MysqlConfig) -> Self {
        let opts = config.to_opts();
        MysqlManager {
            config,
            opts,
            policy: ResetPolicy::default(),
            track_session: true,
        }
    }

    /// A manager from a `mysql://` URL (see [`MysqlConfig`]).
    pub fn from_url(url: &str) -> Result<Self, MysqlError> {
        MysqlConfig::from_url(url).map(Self::new)
    }

    /// Sets the reset policy. Defaults to [`ResetPolicy::Fast`].
    #[must_use]
    pub fn with_reset_policy(mut self, policy: ResetPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Session-state dirty bits: whether connections read, from every
    /// statement's text, which session state it changes, so that `Fast`
    /// and `Verified` reset the session when it was changed. Defaults to
    /// `true`; `false` is the old `Fast`, which hands a borrower's user
    /// variables and settings to the next borrower.
    ///
    /// ```
    /// let manager = tidepool_mysql::MysqlManager::from_url("mysql://root@127.0.0.1:3306/test")?
    ///     .with_session_tracking(false);
    /// # Ok::<(), tidepool_mysql::MysqlError>(())
    /// ```
    #[must_use]
    pub fn with_session_tracking(mut self, on: bool) -> Self {
        self.track_session = on;
        self
    }

    /// The reset policy.
    pub fn reset_policy(&self) -> ResetPolicy {
        self.policy
    }

    /// The configuration.
    pub fn config(&self) -> &MysqlConfig {
        &self.config
    }

    /// `mysql_async` reads `ssl-ca`, `ssl-cert` and `ssl-key` on every
    /// connect and reports a missing or unreadable file as a bare I/O
    /// error, which would pass for a network failure and be retried. Name
    /// the option instead: a configuration error, never retried.
    fn unreadable_ca(&self, error: MysqlError) -> MysqlError {
        let (None, MysqlError::Mysql(mysql_async::Error::Io(mysql_async::IoError::Io(io)))) =
            (self.config.socket(), &error)
        else {
            return error;
        };
        if self.config.ssl_mode() == crate::SslMode::Disabled
            || !matches!(
                io.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            )
        {
            return error;
        }
        // The client certificate and key are read the same way.
        for (name, path) in [
            ("ssl-ca", self.config.ssl_ca()),
            ("ssl-cert", self.config.ssl_cert()),
            ("ssl-key", self.config.ssl_key()),
        ] {
            let Some(path) = path else { continue };
            if let Err(read) = std::fs::File::open(path) {
                return MysqlError::InvalidOption {
                    name: name.into(),
                    reason: format!("cannot read the file `{}`: {read}", path.display()),
                };
            }
        }
        error
    }
}

impl Manager for MysqlManager {
    type Connection = MysqlConnection;
    type Error = MysqlError;

    async fn connect(&self) -> Result<MysqlConnection, MysqlError> {
        if self.config.ssl_mode() != crate::SslMode::Disabled {
            // mysql_async builds its rustls config with the process-wide
            // crypto provider; make sure there is one (ours: ring), unless
            // the application installed its own first.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let mut conn = MysqlConnection::connect(self.opts.clone())
            .await
            .map_err(|e| self.unreadable_ca(e))?;
        conn.set_session_tracking(self.track_session);
        Ok(conn)
    }

    async fn validate(&self, conn: &mut MysqlConnection) -> Result<(), MysqlError> {
        conn.ping().await
    }

    fn needs_reset(&self, conn: &MysqlConnection) -> bool {
        conn.maybe_in_transaction()
            || match self.policy {
                ResetPolicy::Fast => !conn.session_touched().is_empty(),
                ResetPolicy::Verified => true,
                ResetPolicy::Clean => conn.was_used(),
            }
    }

    async fn reset(&self, conn: &mut MysqlConnection) -> Result<(), MysqlError> {
        // Never run session cleanup inside an open transaction: roll back
        // first.
        conn.rollback_if_open().await?;
        match self.policy {
            // The dirty bits saw session state touched: reset it all (the
            // server has no finer reset; one round trip).
            ResetPolicy::Fast if !conn.session_touched().is_empty() => conn.reset_session().await?,
            ResetPolicy::Fast => {}
            ResetPolicy::Verified if !conn.session_touched().is_empty() => {
                conn.reset_session().await?
            }
            ResetPolicy::Verified => conn.ping().await?,
            ResetPolicy::Clean => conn.reset_session().await?,
        }
        conn.mark_clean();
        Ok(())
    }

    /// What the `after_connect` hook set is not a borrower's change: it is
    /// not reset on the first return.
    fn session_baseline(&self, conn: &mut MysqlConnection) {
        conn.mark_session_baseline();
    }

    /// Broken, a query left in flight, or (under `Fast` and `Verified`)
    /// session state changed on a connection whose `after_connect` hook
    /// set some: `COM_RESET_CONNECTION` would lose the hook's too, so the
    /// pool replaces it.
    fn is_broken(&self, conn: &MysqlConnection) -> bool {
        conn.is_broken()
            || conn.has_query_in_flight()
            || (self.policy != ResetPolicy::Clean
                && conn.has_session_setup()
                && !conn.session_touched().is_empty())
    }

    fn classify(&self, error: &MysqlError) -> FailureKind {
        error.failure_kind()
    }

    fn is_retryable(&self, error: &MysqlError) -> bool {
        error.is_retryable_connect()
    }

    /// `1040` ER_CON_COUNT_ERROR (`max_connections`), `1203`
    /// ER_TOO_MANY_USER_CONNECTIONS (`max_user_connections`) and `1226`
    /// ER_USER_LIMIT_REACHED (an account's `MAX_USER_CONNECTIONS`).
    fn is_at_capacity(&self, error: &MysqlError) -> bool {
        matches!(error.server_code(), Some(1040 | 1203 | 1226))
    }

    /// tidepool-sql's fingerprint of `sql`, from a process-wide cache of
    /// the texts seen: the shape under which the pool's statistics and
    /// slow-query log count it.
    fn query_shape(&self, sql: &str) -> Option<tidepool::QueryShape> {
        Some(tidepool_sql::Analyzer::global(tidepool_sql::Dialect::MySql).shape(sql))
    }

    fn describe(&self) -> String {
        self.config.describe()
    }
}
