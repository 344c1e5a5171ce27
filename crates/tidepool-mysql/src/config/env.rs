//! [`MysqlConfig::from_env`]: a configuration from the environment
//! variables the MySQL and MariaDB command-line clients read. The reading is
//! a function of a lookup closure, so tests never touch the process
//! environment; `from_env` is the thin wrapper that passes `std::env::var`.
//! Errors name the variable, never its value.

use crate::config::MysqlConfig;
use crate::error::MysqlError;

impl MysqlConfig {
    /// A configuration from the environment variables the `mysql` and
    /// `mariadb` clients read, exactly these:
    ///
    /// | variable | sets |
    /// | --- | --- |
    /// | `MYSQL_HOST` | the host |
    /// | `MYSQL_TCP_PORT` | the TCP port |
    /// | `MYSQL_UNIX_PORT` | the unix socket path, used instead of TCP when `MYSQL_HOST` is unset or `localhost` (as the clients do) |
    /// | `MYSQL_PWD` | the password (deprecated by MySQL as insecure, still read by both clients) |
    ///
    /// The clients have no variable for the user or the database (they
    /// default the user to the login name, which this does not); set them
    /// with [`with_user`](Self::with_user) and
    /// [`with_database`](Self::with_database). `MYSQL_USER`,
    /// `MYSQL_PASSWORD` and `MYSQL_DATABASE` belong to the Docker images'
    /// first-start setup, not to clients, and are not read. Unset or empty
    /// variables keep the defaults.
    ///
    /// ```no_run
    /// use tidepool_mysql::{MysqlConfig, MysqlManager};
    /// let config = MysqlConfig::from_env()?.with_user("app").with_database("shop");
    /// let manager = MysqlManager::new(config);
    /// # Ok::<(), tidepool_mysql::MysqlError>(())
    /// ```
    pub fn from_env() -> Result<MysqlConfig, MysqlError> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with `lookup` in place of the process
    /// environment: the variable's name in, its value (if set) out.
    ///
    /// ```
    /// use tidepool_mysql::MysqlConfig;
    /// let cfg = MysqlConfig::from_env_with(|name| match name {
    ///     "MYSQL_HOST" => Some("db.local".to_string()),
    ///     "MYSQL_TCP_PORT" => Some("3307".to_string()),
    ///     _ => None,
    /// })?;
    /// assert_eq!((cfg.host(), cfg.port()), ("db.local", 3307));
    /// # Ok::<(), tidepool_mysql::MysqlError>(())
    /// ```
    pub fn from_env_with(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<MysqlConfig, MysqlError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let mut config = MysqlConfig::default();
        if let Some(host) = get("MYSQL_HOST") {
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(&host);
            if !crate::config::valid_host(bare) {
                return Err(MysqlError::Env {
                    var: "MYSQL_HOST",
                    reason: "not a host name or IP address",
                });
            }
            config.host = bare.to_string();
        }
        if let Some(port) = get("MYSQL_TCP_PORT") {
            config.port = match port.trim().parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    return Err(MysqlError::Env {
                        var: "MYSQL_TCP_PORT",
                        reason: "not a port number from 1 to 65535",
                    })
                }
            };
        }
        // As the clients do: the socket is for the local server only.
        let local = get("MYSQL_HOST").is_none_or(|h| h == "localhost");
        if let Some(socket) = get("MYSQL_UNIX_PORT").filter(|_| local) {
            config.socket = Some(socket);
        }
        if let Some(password) = get("MYSQL_PWD") {
            config.password = Some(password);
        }
        config.validate()?;
        Ok(config)
    }
}
