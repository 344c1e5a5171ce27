//! [`PgManager`]: the [`tidepool::Manager`] for PostgreSQL. It connects
//! (spawning tokio-postgres's connection task), validates with a Sync round
//! trip, resets returned connections under its [`ResetPolicy`], and
//! classifies errors with the crate's one SQLSTATE table. Built from a URL
//! or a [`PgConfig`] through [`PgManagerBuilder`].

use std::path::PathBuf;

use tidepool::{Classify, FailureKind, Manager};
use tokio_postgres::NoTls;

use crate::config::PgConfig;
use crate::connection::PgConnection;
use crate::error::{ConfigError, PgError};
use crate::reset::ResetPolicy;
use crate::target::CancelTarget;
use crate::tls::{self, PgTls};

/// Creates, checks and resets PostgreSQL connections for a
/// [`tidepool::Pool`].
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = tidepool_postgres::PgManager::from_url("postgres://app:secret@127.0.0.1/app")?;
/// let pool = tidepool::Pool::builder(manager).max_size(16).build().await?;
/// let conn = pool.get().await?;
/// # Ok(()) }
/// ```
pub struct PgManager {
    config: PgConfig,
    per_host: Vec<(tokio_postgres::Config, CancelTarget)>,
    tls: Option<PgTls>,
    reset_policy: ResetPolicy,
    cache_capacity: usize,
    pooler: bool,
    track_session: bool,
    described: String,
}

impl std::fmt::Debug for PgManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgManager")
            .field("target", &self.described)
            .field("config", &self.config)
            .field("tls", &self.tls.is_some())
            .field("reset_policy", &self.reset_policy)
            .field("statement_cache_capacity", &self.cache_capacity)
            .field("transaction_pooler", &self.pooler)
            .field("track_session_state", &self.track_session)
            .finish()
    }
}

impl PgManager {
    /// A manager with default settings from a URL or key=value string.
    pub fn from_url(url: &str) -> Result<PgManager, PgError> {
        Self::builder(PgConfig::from_url(url)?).build()
    }

    /// A builder from a URL or key=value string.
    pub fn builder_from_url(url: &str) -> Result<PgManagerBuilder, PgError> {
        Ok(Self::builder(PgConfig::from_url(url)?))
    }

    /// A builder from a [`PgConfig`].
    pub fn builder(config: PgConfig) -> PgManagerBuilder {
        PgManagerBuilder {
            config,
            reset_policy: ResetPolicy::default(),
            cache_capacity: 256,
            pooler: None,
            track_session: true,
            ca_file: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// The reset policy.
    pub fn reset_policy(&self) -> ResetPolicy {
        self.reset_policy
    }

    /// Whether connections run in transaction-pooler mode (the builder's
    /// [`transaction_pooler`](PgManagerBuilder::transaction_pooler), else
    /// the URL's `tidepool_pooler`).
    ///
    /// ```
    /// let m = tidepool_postgres::PgManager::from_url("postgres://app@127.0.0.1:6432/app?tidepool_pooler=true")?;
    /// assert!(m.is_transaction_pooler());
    /// # Ok::<(), tidepool_postgres::PgError>(())
    /// ```
    pub fn is_transaction_pooler(&self) -> bool {
        self.pooler
    }

    /// Opens one connection outside any pool, trying each host in order
    /// (as libpq does). With one host its error is returned as it is; with
    /// several, [`PgError::NoHost`] names each host and why it was refused
    /// (`target_session_attrs` not met, refused, ...).
    pub async fn connect_one(&self) -> Result<PgConnection, PgError> {
        let mut attempts = Vec::new();
        for (i, (config, target)) in self.per_host.iter().enumerate() {
            match self.connect_host(config, target).await {
                Ok(conn) => return Ok(conn),
                Err(e) => {
                    tracing::debug!(target: "tidepool::postgres", error = %e, "host failed; trying the next");
                    attempts.push((self.config.host_label(i), e));
                }
            }
        }
        match attempts.len() {
            0 => Err(PgError::Closed),
            1 => Err(attempts.pop().map_or(PgError::Closed, |(_, e)| e)),
            _ => Err(PgError::NoHost { attempts }),
        }
    }

    async fn connect_host(
        &self,
        config: &tokio_postgres::Config,
        target: &CancelTarget,
    ) -> Result<PgConnection, PgError> {
        let (client, tls) = match &self.tls {
            Some(tls) => {
                let (client, connection) = config
                    .connect(tls.clone())
                    .await
                    .map_err(|e| self.connect_error(e))?;
                spawn_connection(connection);
                // Like libpq, cancel requests go in plaintext unless the
                // sslmode demands TLS (they hold only the cancel key).
                (
                    client,
                    self.config.ssl_mode.requires_tls().then(|| tls.clone()),
                )
            }
            None => {
                let (client, connection) = config
                    .connect(NoTls)
                    .await
                    .map_err(|e| self.connect_error(e))?;
                spawn_connection(connection);
                (client, None)
            }
        };
        Ok(PgConnection::new(
            client,
            self.cache_capacity,
            self.pooler,
            self.track_session,
            tls,
            target.clone(),
        ))
    }

    fn connect_error(&self, e: tokio_postgres::Error) -> PgError {
        if e.to_string().starts_with("error performing TLS handshake") {
            let reason = std::error::Error::source(&e)
                .map_or_else(|| "handshake failed".to_string(), |s| s.to_string());
            return PgError::Tls {
                host: self.described.clone(),
                reason,
            };
        }
        PgError::Driver(e)
    }
}

fn spawn_connection<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(target: "tidepool::postgres", error = %PgError::Driver(e), "connection ended");
        }
    });
}

/// Builds a [`PgManager`]; every setter says its default.
///
/// ```
/// use tidepool_postgres::{PgManager, ResetPolicy};
/// let manager = PgManager::builder_from_url("postgres://app@127.0.0.1/app?sslmode=disable")?
///     .reset_policy(ResetPolicy::Clean)
///     .statement_cache_capacity(64)
///     .build()?;
/// assert_eq!(manager.reset_policy(), ResetPolicy::Clean);
/// # Ok::<(), tidepool_postgres::PgError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct PgManagerBuilder {
    config: PgConfig,
    reset_policy: ResetPolicy,
    cache_capacity: usize,
    pooler: Option<bool>,
    track_session: bool,
    ca_file: Option<PathBuf>,
}

impl PgManagerBuilder {
    /// How returned connections are cleaned. Defaults to
    /// [`ResetPolicy::Fast`].
    pub fn reset_policy(mut self, policy: ResetPolicy) -> Self {
        self.reset_policy = policy;
        self
    }

    /// Prepared statements kept per connection (LRU). Defaults to 256; 0
    /// turns the cache off.
    pub fn statement_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Session-state dirty bits: whether each connection reads, from the
    /// text of every statement it sends, which session state it changes
    /// (`SET`, `LISTEN`, `PREPARE`, temporary tables, advisory locks, ...;
    /// see [`ResetPolicy::Fast`]) so that `Fast` and `Verified` undo it on
    /// return. Defaults to `true`; `false` is the old `Fast`, which hands a
    /// borrower's session state to the next borrower (for measuring what
    /// the tracking costs, or code that relies on that).
    ///
    /// ```
    /// let manager = tidepool_postgres::PgManager::builder_from_url("postgres://app@127.0.0.1/app")?
    ///     .track_session_state(false)
    ///     .build()?;
    /// # Ok::<(), tidepool_postgres::PgError>(())
    /// ```
    pub fn track_session_state(mut self, on: bool) -> Self {
        self.track_session = on;
        self
    }

    /// Behind a transaction pooler (PgBouncer, Supavisor, PgDog in
    /// transaction mode): no named prepared statements (queries use the
    /// unnamed statement, parameters carry their own types) and no session
    /// state assumed. Defaults to the URL's `tidepool_pooler` parameter
    /// ([`PgConfig::transaction_pooler`]), else `false`; this setter wins
    /// over the URL.
    pub fn transaction_pooler(mut self, on: bool) -> Self {
        self.pooler = Some(on);
        self
    }

    /// A PEM file of CA certificates to trust besides the webpki roots.
    /// Defaults to the URL's `sslrootcert`, else none.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Validates the configuration, loads the CA file and builds the
    /// manager.
    pub fn build(self) -> Result<PgManager, PgError> {
        self.config.validate()?;
        if self.config.user.is_none() {
            return Err(ConfigError::InvalidValue {
                name: "user",
                reason: "a user name is required",
            }
            .into());
        }
        let ca_file = self.ca_file.or_else(|| self.config.ssl_root_cert.clone());
        let tls = tls::connector(&self.config, ca_file.as_deref())?;
        Ok(PgManager {
            per_host: self.config.to_tokio_per_host(),
            described: self.config.redacted_url(),
            tls,
            reset_policy: self.reset_policy,
            cache_capacity: self.cache_capacity,
            track_session: self.track_session,
            pooler: self
                .pooler
                .or(self.config.transaction_pooler)
                .unwrap_or(false),
            config: self.config,
        })
    }
}

impl Manager for PgManager {
    type Connection = PgConnection;
    type Error = PgError;

    async fn connect(&self) -> Result<PgConnection, PgError> {
        self.connect_one().await
    }

    async fn validate(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        if conn.is_broken() {
            return Err(PgError::Closed);
        }
        // A bare Sync is the cheapest round trip; poolers get an empty
        // simple query, which every pooler forwards or answers.
        let checked = if self.pooler {
            conn.raw().batch_execute("").await
        } else {
            conn.raw().check_connection().await
        };
        checked.map_err(PgError::from)
    }

    fn needs_reset(&self, conn: &PgConnection) -> bool {
        conn.needs_reset(self.reset_policy)
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        conn.reset(self.reset_policy).await
    }

    /// What the `after_connect` hook set is not a borrower's change: its
    /// `SET`s are not undone on the first return.
    fn session_baseline(&self, conn: &mut PgConnection) {
        conn.mark_session_baseline();
    }

    /// Broken, or (under `Fast` and `Verified`) a borrower changed the
    /// same kind of session state as the `after_connect` hook, which no
    /// reset can undo without losing the hook's: the pool replaces it.
    fn is_broken(&self, conn: &PgConnection) -> bool {
        conn.is_broken() || conn.reset_would_lose_setup(self.reset_policy)
    }

    fn has_prepared(&self, conn: &PgConnection, statement: u64) -> bool {
        conn.has_prepared(statement)
    }

    fn classify(&self, error: &PgError) -> FailureKind {
        error.failure_kind()
    }

    fn is_retryable(&self, error: &PgError) -> bool {
        error.is_retryable_connect()
    }

    fn is_restarting(&self, error: &PgError) -> bool {
        error.is_server_restarting()
    }

    /// `53300` too_many_connections: `max_connections` reached, or the
    /// role's or database's `CONNECTION LIMIT`.
    fn is_at_capacity(&self, error: &PgError) -> bool {
        error.sqlstate() == Some("53300")
    }

    /// tidepool-sql's fingerprint of `sql`, from a process-wide cache of
    /// the texts seen: the shape under which the pool's statistics and
    /// slow-query log count it.
    fn query_shape(&self, sql: &str) -> Option<tidepool::QueryShape> {
        Some(tidepool_sql::Analyzer::global(tidepool_sql::Dialect::Postgres).shape(sql))
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}
