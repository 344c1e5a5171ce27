//! Shared helpers: where the servers are, pools over them, and a look at a
//! backend from outside the connection.
#![allow(dead_code)]

use std::time::Duration;

use tidepool::{Manager, Pool};

/// The PostgreSQL URL, or None (the test prints SKIPPED) when unreachable.
pub fn pg_url(test: &str) -> Option<String> {
    tidepool_testkit::postgres_url(test)
}

/// The MariaDB URL, or None (the test prints SKIPPED) when unreachable.
pub fn mysql_url(test: &str) -> Option<String> {
    tidepool_testkit::mysql_url(test)
}

/// The same server as `base`, as another user and database.
pub fn url_as(
    base: &str,
    scheme: &str,
    default_port: u16,
    user: &str,
    password: &str,
    db: &str,
) -> String {
    let (host, port) = tidepool_testkit::host_port(base, default_port).unwrap();
    format!("{scheme}://{user}:{password}@{host}:{port}/{db}")
}

/// A pool of `max_size` over `manager`, checking nothing on borrow (the
/// tests check the connections themselves).
pub async fn pool<M: Manager>(manager: M, max_size: u32) -> Pool<M> {
    Pool::builder(manager)
        .max_size(max_size)
        .acquire_timeout(Duration::from_secs(10))
        .test_on_borrow(false)
        .build()
        .await
        .unwrap()
}

/// `pg_stat_activity.state` of a backend, seen from `monitor`.
#[cfg(feature = "postgres")]
pub async fn pg_state(monitor: &mut sqlx::PgConnection, pid: i32) -> String {
    sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1")
        .bind(pid)
        .fetch_one(monitor)
        .await
        .unwrap()
}
