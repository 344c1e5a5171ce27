//! From a [`PgConfig`] to what tokio-postgres connects with: one config per
//! host, tried in order by the manager, each paired with where its cancel
//! requests must go (the server the connection actually reached).

use std::path::PathBuf;

use crate::config::{PgConfig, PgHost};
use crate::modes::{SslMode, TargetSessionAttrs};

/// Where a connection's cancel requests go: the server it reached.
#[derive(Debug, Clone)]
pub(crate) enum CancelTarget {
    /// A TCP server: the address connected to, the name TLS checks, the port.
    Tcp {
        addr: String,
        tls_name: String,
        port: u16,
    },
    /// A unix socket file.
    Unix { socket: PathBuf },
}

impl PgConfig {
    /// One tokio-postgres config per host, in order (the password
    /// included), each with where its cancel requests go. The manager tries
    /// them in turn, so it knows which server a connection reached.
    pub(crate) fn to_tokio_per_host(&self) -> Vec<(tokio_postgres::Config, CancelTarget)> {
        let default_host = [PgHost::Tcp("localhost".into())];
        let hosts: &[PgHost] = if self.hosts.is_empty() {
            &default_host
        } else {
            &self.hosts
        };
        hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = self
                    .ports
                    .get(i)
                    .or(self.ports.first())
                    .copied()
                    .unwrap_or(5432);
                let mut c = self.to_tokio_common();
                c.port(port);
                let target = match host {
                    PgHost::Tcp(name) => {
                        c.host(name);
                        let addr = match self.hostaddrs.get(i) {
                            Some(a) => {
                                c.hostaddr(*a);
                                a.to_string()
                            }
                            None => name.clone(),
                        };
                        CancelTarget::Tcp {
                            addr,
                            tls_name: name.clone(),
                            port,
                        }
                    }
                    PgHost::Unix(path) => {
                        c.host_path(path);
                        CancelTarget::Unix {
                            socket: path.join(format!(".s.PGSQL.{port}")),
                        }
                    }
                };
                (c, target)
            })
            .collect()
    }

    /// One tokio-postgres configuration per host, in the order given (the
    /// password included; tokio-postgres' `Debug` never shows it), with
    /// `sslmode` mapped to tokio-postgres' three modes (`verify-ca` and
    /// `verify-full` to `Require`: the checking is the
    /// [`tls_connector`](Self::tls_connector)'s). For code that opens
    /// connections itself; try them in turn, as libpq does.
    ///
    /// ```
    /// use tidepool_postgres::PgConfig;
    /// let config = PgConfig::from_url("postgres://app:secret@db1:5432,db2:5433/app?sslmode=verify-full")?;
    /// let per_host = config.to_tokio_configs();
    /// assert_eq!(per_host.len(), 2);
    /// assert_eq!(per_host[1].get_ports(), &[5433]);
    /// assert_eq!(per_host[0].get_ssl_mode(), tidepool_postgres::tokio_postgres::config::SslMode::Require);
    /// # Ok::<(), tidepool_postgres::ConfigError>(())
    /// ```
    pub fn to_tokio_configs(&self) -> Vec<tokio_postgres::Config> {
        self.to_tokio_per_host()
            .into_iter()
            .map(|(config, _)| config)
            .collect()
    }

    fn to_tokio_common(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        if let Some(u) = &self.user {
            c.user(u);
        }
        if let Some(p) = &self.password {
            c.password(p.0.as_bytes());
        }
        if let Some(d) = &self.dbname {
            c.dbname(d);
        }
        if let Some(a) = &self.application_name {
            c.application_name(a);
        }
        if let Some(o) = self.startup_options() {
            c.options(&o);
        }
        if let Some(t) = self.connect_timeout {
            c.connect_timeout(t);
        }
        if let Some(k) = self.keepalives {
            c.keepalives(k);
        }
        if let Some(k) = self.keepalives_idle {
            c.keepalives_idle(k);
        }
        c.ssl_mode(match self.ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        c.target_session_attrs(match self.target_session_attrs {
            TargetSessionAttrs::Any => tokio_postgres::config::TargetSessionAttrs::Any,
            TargetSessionAttrs::ReadWrite => tokio_postgres::config::TargetSessionAttrs::ReadWrite,
            TargetSessionAttrs::ReadOnly => tokio_postgres::config::TargetSessionAttrs::ReadOnly,
        });
        c
    }

    /// The startup packet's `options`: the caller's, then
    /// `-c statement_timeout=<ms>` so the explicit setting wins. The server
    /// applies them while it opens the session, so they cost no round trip.
    pub(crate) fn startup_options(&self) -> Option<String> {
        let timeout = self.statement_timeout.map(|t| {
            // Rounded up: a sub-millisecond timeout must not become 0, "off".
            let ms = t.as_nanos().div_ceil(1_000_000);
            format!("-c statement_timeout={ms}")
        });
        match (
            self.options.as_deref().filter(|o| !o.trim().is_empty()),
            timeout,
        ) {
            (Some(o), Some(t)) => Some(format!("{o} {t}")),
            (Some(o), None) => Some(o.to_string()),
            (None, t) => t,
        }
    }
}
