//! Shared helpers: where the servers are, pools over them, and server-side
//! looks at a connection that do not go through the connection itself.
#![allow(dead_code)]

use std::time::Duration;

use tidepool::{Manager, Pool};

/// The PostgreSQL URL, or None (the test prints SKIPPED) when unreachable.
pub fn pg_url(test: &str) -> Option<String> {
    tidepool_testkit::postgres_url(test).map(|u| plain(&u))
}

/// The MariaDB URL, or None (the test prints SKIPPED) when unreachable.
pub fn mysql_url(test: &str) -> Option<String> {
    tidepool_testkit::mysql_url(test)
}

/// PostgreSQL without TLS (diesel-async connects without it).
fn plain(url: &str) -> String {
    if url.contains("sslmode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
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
    let tail = if scheme == "postgres" {
        "?sslmode=disable"
    } else {
        ""
    };
    format!("{scheme}://{user}:{password}@{host}:{port}/{db}{tail}")
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

/// A plain tokio-postgres client beside the pool, to look at and kill its
/// backends.
#[cfg(feature = "postgres")]
pub async fn pg_monitor(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// `pg_stat_activity.state` of a backend: `idle`, `idle in transaction`,
/// `idle in transaction (aborted)`, `active`.
#[cfg(feature = "postgres")]
pub async fn pg_state(monitor: &tokio_postgres::Client, pid: i32) -> String {
    monitor
        .query_one("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .await
        .unwrap()
        .get(0)
}
