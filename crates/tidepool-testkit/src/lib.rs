#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

pub mod failover;
pub mod pg_cluster;
pub mod proxy;

/// The PostgreSQL URL tests use: `TIDEPOOL_PG_URL`, or the local default
/// `postgres://postgres@127.0.0.1:5432/test`.
pub fn postgres_url_unchecked() -> String {
    std::env::var("TIDEPOOL_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The MariaDB/MySQL URL tests use: `TIDEPOOL_MYSQL_URL`, or the local
/// default `mysql://root@127.0.0.1:3306/test`.
pub fn mysql_url_unchecked() -> String {
    std::env::var("TIDEPOOL_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// The PostgreSQL URL if the server answers on its port; `None` (after
/// printing a skip notice) if not. Panics when `TIDEPOOL_REQUIRE_DB=1`.
pub fn postgres_url(test: &str) -> Option<String> {
    let url = postgres_url_unchecked();
    reachable_or_skip(test, "PostgreSQL", &url, 5432).then_some(url)
}

/// The MariaDB URL if the server answers on its port; `None` (after
/// printing a skip notice) if not. Panics when `TIDEPOOL_REQUIRE_DB=1`.
pub fn mysql_url(test: &str) -> Option<String> {
    let url = mysql_url_unchecked();
    reachable_or_skip(test, "MariaDB", &url, 3306).then_some(url)
}

/// The streaming replica's URL tests use: `TIDEPOOL_PG_REPLICA_URL`, or the
/// local default `postgres://postgres@127.0.0.1:5433/test`
/// (`.ci/setup-topology.sh` starts it).
pub fn replica_url_unchecked() -> String {
    std::env::var("TIDEPOOL_PG_REPLICA_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5433/test".into())
}

/// The PgBouncer URL tests use: `TIDEPOOL_PGBOUNCER_URL`, or the local
/// default `postgres://postgres@127.0.0.1:6432/test` (transaction mode,
/// started by `.ci/setup-topology.sh`).
pub fn pgbouncer_url_unchecked() -> String {
    std::env::var("TIDEPOOL_PGBOUNCER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:6432/test".into())
}

/// The streaming replica's URL if it answers on its port; `None` (after
/// printing a skip notice) if not. Panics when `TIDEPOOL_REQUIRE_DB=1`.
pub fn replica_url(test: &str) -> Option<String> {
    let url = replica_url_unchecked();
    reachable_or_skip(test, "the PostgreSQL streaming replica", &url, 5433).then_some(url)
}

/// The PgBouncer URL if it answers on its port; `None` (after printing a
/// skip notice) if not. Panics when `TIDEPOOL_REQUIRE_DB=1`.
pub fn pgbouncer_url(test: &str) -> Option<String> {
    let url = pgbouncer_url_unchecked();
    reachable_or_skip(test, "PgBouncer", &url, 6432).then_some(url)
}

/// Whether database tests must run (`TIDEPOOL_REQUIRE_DB=1`).
pub fn database_required() -> bool {
    matches!(
        std::env::var("TIDEPOOL_REQUIRE_DB").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// The `host:port` part of a URL like `scheme://user:pass@host:port/db`.
pub fn host_port(url: &str, default_port: u16) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
            Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?))
        }
        _ => Some((hostport.trim_matches(['[', ']']).to_string(), default_port)),
    }
}

fn reachable_or_skip(test: &str, what: &str, url: &str, default_port: u16) -> bool {
    let reachable = host_port(url, default_port)
        .and_then(|(h, p)| (h.as_str(), p).to_socket_addrs().ok())
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr: SocketAddr| {
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
        });
    if !reachable {
        if database_required() {
            panic!("{what} is required (TIDEPOOL_REQUIRE_DB=1) but not reachable for test {test}");
        }
        eprintln!("SKIPPED {test}: {what} not reachable (set TIDEPOOL_REQUIRE_DB=1 to make this a failure)");
    }
    reachable
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn host_port_reads_the_authority() {
        assert_eq!(
            host_port("postgres://u:p@127.0.0.1:5433/db", 5432),
            Some(("127.0.0.1".into(), 5433))
        );
        assert_eq!(
            host_port("mysql://root@localhost/test", 3306),
            Some(("localhost".into(), 3306))
        );
        assert_eq!(
            host_port("postgres://[::1]:5432/x", 5432),
            Some(("::1".into(), 5432))
        );
    }
}
