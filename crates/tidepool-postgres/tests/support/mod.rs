//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use tidepool::Pool;
use tidepool_postgres::{PgManager, ResetPolicy};

/// The server URL, or None (test skipped) when it is unreachable.
pub fn url(test: &str) -> Option<String> {
    tidepool_testkit::postgres_url(test)
}

/// The URL without TLS unless it names an sslmode: the loop-heavy suites
/// measure resets, not handshakes (TLS has its own suite), and ring is slow
/// in debug builds.
pub fn plain(url: &str) -> String {
    if url.contains("sslmode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
}

/// A pool of `max_size` connections with the given reset policy.
pub async fn pool(url: &str, max_size: u32, policy: ResetPolicy) -> Pool<PgManager> {
    let manager = PgManager::builder_from_url(url)
        .unwrap()
        .reset_policy(policy)
        .build()
        .unwrap();
    Pool::builder(manager)
        .max_size(max_size)
        .acquire_timeout(Duration::from_secs(10))
        .test_on_borrow(false)
        .on_event(|e| {
            if let tidepool::Event::Closed { .. } | tidepool::Event::CreateFailed { .. } = e {
                eprintln!("pool event: {e:?}");
            }
        })
        .build()
        .await
        .unwrap()
}

/// A table name unique to this process and test.
pub fn table(test: &str) -> String {
    format!("tp_{test}_{}", std::process::id())
}

/// The URL with a different user, password and database, same host/port.
pub fn url_with(base: &str, user: &str, password: Option<&str>, db: &str) -> String {
    let (host, port) = tidepool_testkit::host_port(base, 5432).unwrap();
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    match password {
        Some(p) => format!("postgres://{user}:{p}@{host}:{port}/{db}?sslmode=disable"),
        None => format!("postgres://{user}@{host}:{port}/{db}?sslmode=disable"),
    }
}
