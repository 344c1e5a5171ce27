//! [`PgConfig::from_env`]: a configuration from the environment variables
//! libpq reads. The reading is a function of a lookup closure, so tests
//! never touch the process environment; `from_env` is the thin wrapper that
//! passes `std::env::var`. Errors name the variable, never its value.

use crate::config::PgConfig;
use crate::error::ConfigError;

/// The variables read, in order, with the connection parameter each sets
/// (libpq's names).
pub(crate) const VARIABLES: [(&str, &str); 14] = [
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGDATABASE", "dbname"),
    ("PGAPPNAME", "application_name"),
    ("PGOPTIONS", "options"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
];

impl PgConfig {
    /// A configuration from the environment variables libpq reads:
    /// `PGHOST`, `PGHOSTADDR`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
    /// `PGDATABASE`, `PGAPPNAME`, `PGOPTIONS`, `PGSSLMODE`,
    /// `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, `PGCONNECT_TIMEOUT` and
    /// `PGTARGETSESSIONATTRS`, each with the meaning and syntax of its
    /// connection parameter (`PGHOST=a,b PGPORT=5432,5433` for several
    /// hosts). Unset or empty variables leave the default. `PGSERVICE`,
    /// `PGPASSFILE` and the OS user name as a default user are not read.
    ///
    /// ```no_run
    /// let manager = tidepool_postgres::PgManager::builder(tidepool_postgres::PgConfig::from_env()?)
    ///     .build()?;
    /// # Ok::<(), tidepool_postgres::PgError>(())
    /// ```
    pub fn from_env() -> Result<PgConfig, ConfigError> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with `lookup` in place of the process
    /// environment: the variable's name in, its value (if set) out.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use tidepool_postgres::{PgConfig, SslMode};
    /// let env = HashMap::from([("PGHOST", "db1,db2"), ("PGUSER", "app"), ("PGSSLMODE", "require")]);
    /// let cfg = PgConfig::from_env_with(|name| env.get(name).map(|v| v.to_string()))?;
    /// assert_eq!(cfg.get_hosts().len(), 2);
    /// assert_eq!(cfg.get_ssl_mode(), SslMode::Require);
    /// # Ok::<(), tidepool_postgres::ConfigError>(())
    /// ```
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Result<PgConfig, ConfigError> {
        let mut config = PgConfig::new();
        for (position, (var, parameter)) in VARIABLES.iter().enumerate() {
            let Some(value) = lookup(var).filter(|v| !v.is_empty()) else {
                continue;
            };
            crate::parse::apply(&mut config, parameter, &value, position + 1).map_err(|e| {
                ConfigError::Env {
                    var,
                    error: Box::new(e),
                }
            })?;
        }
        config.validate()?;
        Ok(config)
    }
}
