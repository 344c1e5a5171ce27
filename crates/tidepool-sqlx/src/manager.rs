//! The managers: sqlx's own connections, opened with sqlx's own options,
//! checked with `Connection::ping`, and cleaned on return.
//!
//! sqlx tracks its transactions itself: `is_in_transaction()` counts the
//! `Transaction`s open on a connection, and a `Transaction` dropped without
//! commit queues its `ROLLBACK` in the write buffer (`should_flush()`). Both
//! are read through `&`, for free, on every return; a connection with
//! either goes through [`clean`], which rolls back what is open and sends
//! what is queued. sqlx cannot tell from `&` that the server closed the
//! connection, so by default every return also makes one round trip (as
//! sqlx's own pool does on release); `check_on_return(false)` skips it.

use std::fmt;
use std::str::FromStr;

use sqlx::{Connection, Database, TransactionManager};
use tidepool::{Classify, FailureKind, Manager};

use crate::error::Error;

/// Runs one statement, boxed: sqlx's `Executor` for `&mut Connection` is
/// implemented per lifetime, and an unboxed call inside the manager's
/// `Send` future trips rust-lang/rust#100013 ("not general enough").
fn run<'c, C>(
    conn: &'c mut C,
    sql: &'static str,
) -> tidepool::BoxFuture<'c, Result<(), sqlx::Error>>
where
    C: Send,
    &'c mut C: sqlx::Executor<'c>,
{
    Box::pin(async move { sqlx::Executor::execute(conn, sql).await.map(|_| ()) })
}

macro_rules! manager {
    (
        $(#[$doc:meta])*
        $name:ident, $pool:ident, $conn:ty, $options:ty, $scheme:literal, $check_sql:expr
    ) => {
        $(#[$doc])*
        pub struct $name {
            options: $options,
            target: String,
            check_on_return: bool,
        }

        impl $name {
            /// A manager for a connection URL, read by sqlx. Refused at
            /// once, with the reason and never the URL, when it cannot be
            /// read.
            pub fn new(url: &str) -> Result<Self, Error> {
                let options = <$options>::from_str(url).map_err(|e| Error::InvalidUrl {
                    scheme: $scheme,
                    reason: url_error_reason(&e, url),
                })?;
                Ok(Self::from_options(options))
            }

            /// A manager for options built in code (sqlx's builder).
            pub fn from_options(options: $options) -> Self {
                $name {
                    target: describe_target($scheme, options.get_username(), options.get_host(), options.get_port(), options.get_database()),
                    options,
                    check_on_return: true,
                }
            }

            /// Whether every return makes one round trip, so that a
            /// connection the server closed under its borrower is closed
            /// instead of handed out again (sqlx's own pool pings on every
            /// release). With `false`, only connections sqlx counts as
            /// inside a transaction, or with a `ROLLBACK` queued, are
            /// cleaned on return, and a closed connection is found by the
            /// pool's next validation (`test_on_borrow`, the health check)
            /// or its next borrower. Defaults to true.
            #[must_use]
            pub fn check_on_return(mut self, check: bool) -> Self {
                self.check_on_return = check;
                self
            }

            /// The options connections are opened with.
            pub fn options(&self) -> &$options {
                &self.options
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("target", &self.target)
                    .field("check_on_return", &self.check_on_return)
                    .finish_non_exhaustive()
            }
        }

        #[doc = concat!("A tidepool pool of sqlx `", stringify!($conn), "`s.")]
        pub type $pool = tidepool::Pool<$name>;

        impl Manager for $name {
            type Connection = $conn;
            type Error = Error;

            async fn connect(&self) -> Result<$conn, Error> {
                <$conn>::connect_with(&self.options)
                    .await
                    .map_err(|source| Error::Connect {
                        target: self.target.clone(),
                        source,
                    })
            }

            async fn validate(&self, conn: &mut $conn) -> Result<(), Error> {
                conn.ping().await.map_err(Error::Query)
            }

            fn needs_reset(&self, conn: &$conn) -> bool {
                self.check_on_return || conn.is_in_transaction() || conn.should_flush()
            }

            /// Rolls back every transaction sqlx counts as open and, when
            /// checking on return or a `ROLLBACK` is still queued, makes a
            /// round trip (which sends what is queued).
            async fn reset(&self, conn: &mut $conn) -> Result<(), Error> {
                let mut rolled_back = false;
                while conn.is_in_transaction() {
                    <<$conn as Connection>::Database as Database>::TransactionManager::rollback(conn)
                        .await
                        .map_err(Error::Query)?;
                    rolled_back = true;
                }
                if (self.check_on_return && !rolled_back) || conn.should_flush() {
                    let check: Option<&str> = $check_sql;
                    match check {
                        Some(sql) => run(conn, sql).await.map_err(Error::Query)?,
                        None => conn.ping().await.map_err(Error::Query)?,
                    }
                }
                Ok(())
            }

            fn classify(&self, error: &Error) -> FailureKind {
                error.failure_kind()
            }

            fn is_retryable(&self, error: &Error) -> bool {
                error.is_retryable_connect()
            }

            fn is_restarting(&self, error: &Error) -> bool {
                error.is_restarting()
            }

            fn is_at_capacity(&self, error: &Error) -> bool {
                error.is_at_capacity()
            }

            fn describe(&self) -> String {
                self.target.clone()
            }
        }
    };
}

/// sqlx's reason for refusing a URL, without anything that may be the
/// password: sqlx repeats option values it does not accept, and a value
/// can be anything a user pasted.
fn url_error_reason(e: &sqlx::Error, url: &str) -> String {
    let text = e.to_string();
    // sqlx nests "error with configuration: " once per layer.
    let prefix = "error with configuration: ";
    let mut reason = text.as_str();
    while let Some(rest) = reason.strip_prefix(prefix) {
        reason = rest;
    }
    let mut reason = reason.to_string();
    if let Some(password) = password_of(url) {
        if !password.is_empty() {
            reason = reason.replace(password, "<redacted>");
        }
    }
    reason
}

/// The password part of `scheme://user:password@host/...`, as written.
fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    Some(userinfo.split_once(':')?.1)
}

/// `scheme://user@host:port/db`, never the password.
fn describe_target(scheme: &str, user: &str, host: &str, port: u16, db: Option<&str>) -> String {
    let at = if user.is_empty() { "" } else { "@" };
    let host = if host.contains(':') && !host.starts_with('/') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("{scheme}://{user}{at}{host}:{port}/{}", db.unwrap_or(""))
}

#[cfg(feature = "postgres")]
manager!(
    /// Opens sqlx `PgConnection`s for a tidepool pool.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = tidepool::Pool::builder(tidepool_sqlx::PgManager::new("postgres://app:secret@127.0.0.1/app")?)
    ///     .max_size(16)
    ///     .build()
    ///     .await?;
    /// let mut conn = pool.get().await?;
    /// let (n,): (i64,) = sqlx::query_as("SELECT $1::int8").bind(7i64).fetch_one(&mut *conn).await?;
    /// # Ok(()) }
    /// ```
    PgManager, PgPool, sqlx::PgConnection, sqlx::postgres::PgConnectOptions, "postgres", None
);

#[cfg(feature = "mysql")]
manager!(
    /// Opens sqlx `MySqlConnection`s (MySQL, MariaDB) for a tidepool pool.
    /// The check on return is a `ROLLBACK` rather than a ping: the same
    /// round trip, silent outside a transaction, and it also ends a
    /// transaction opened with raw SQL, which sqlx does not count.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = tidepool::Pool::builder(tidepool_sqlx::MySqlManager::new("mysql://app:secret@127.0.0.1/app")?)
    ///     .build()
    ///     .await?;
    /// let mut conn = pool.get().await?;
    /// let (n,): (i64,) = sqlx::query_as("SELECT ?").bind(7i64).fetch_one(&mut *conn).await?;
    /// # Ok(()) }
    /// ```
    MySqlManager, MySqlPool, sqlx::MySqlConnection, sqlx::mysql::MySqlConnectOptions, "mysql", Some("ROLLBACK")
);

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn the_postgres_target_names_user_host_and_database_but_never_the_password() {
        let m = PgManager::new("postgres://app:hunter2@db.example:6432/orders").unwrap();
        assert_eq!(m.describe(), "postgres://app@db.example:6432/orders");
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn the_mysql_target_names_user_host_and_database_but_never_the_password() {
        let m = MySqlManager::new("mysql://app:hunter2@db.example:3307/orders").unwrap();
        assert_eq!(m.describe(), "mysql://app@db.example:3307/orders");
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[cfg(all(feature = "postgres", feature = "mysql"))]
    #[test]
    fn a_malformed_url_is_refused_without_repeating_it() {
        for url in [
            "postgres://app:hunter2@db:notaport/x",
            "postgres://app:hunter2@db/x?sslmode=hunter2",
        ] {
            let text = PgManager::new(url).unwrap_err().to_string();
            assert!(
                text.starts_with("invalid postgres connection URL"),
                "{text}"
            );
            assert!(!text.contains("hunter2"), "{text}");
        }
        for url in [
            "mysql://app:hunter2@db:notaport/x",
            "mysql://app:hunter2@db/x?ssl-mode=hunter2",
        ] {
            let text = MySqlManager::new(url).unwrap_err().to_string();
            assert!(text.starts_with("invalid mysql connection URL"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
}
