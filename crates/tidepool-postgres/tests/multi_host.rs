//! Multi-host lists are tried in order, `target_session_attrs` filters them,
//! and unix-socket hosts connect.

use std::path::Path;

use tidepool::{Queryable, Value};
use tidepool_postgres::PgManager;

mod support;

#[tokio::test]
async fn a_multi_host_url_skips_a_dead_host_and_connects_to_the_next() {
    let Some(url) = support::url("multi_host") else {
        return;
    };
    let (host, port) = tidepool_testkit::host_port(&url, 5432).unwrap();
    // Port 1 on loopback refuses; the second host is the real server.
    let multi = format!(
        "postgres://postgres@127.0.0.1:1,{host}:{port}/test?sslmode=disable&connect_timeout=5"
    );
    let mut conn = PgManager::from_url(&multi)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    let row = conn
        .query_one_values("SELECT 1::int4 AS one", &[])
        .await
        .unwrap();
    assert_eq!(row.get("one"), Some(&Value::Int(1)));

    let kv = format!("host=127.0.0.1,{host} port=1,{port} user=postgres dbname=test sslmode=disable target_session_attrs=read-write");
    PgManager::from_url(&kv)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
}

#[tokio::test]
async fn target_session_attrs_read_only_refuses_a_primary() {
    let Some(url) = support::url("multi_host_read_only") else {
        return;
    };
    let (host, port) = tidepool_testkit::host_port(&url, 5432).unwrap();
    let url = format!(
        "postgres://postgres@{host}:{port}/test?sslmode=disable&target_session_attrs=read-only"
    );
    let err = PgManager::from_url(&url)
        .unwrap()
        .connect_one()
        .await
        .expect_err("the only server is a primary");
    assert_eq!(
        tidepool::Classify::failure_kind(&err),
        tidepool::FailureKind::Connect,
        "{err:?}"
    );
}

#[tokio::test]
async fn a_unix_socket_host_connects() {
    let dir = Path::new("/var/run/postgresql");
    if support::url("unix_socket").is_none() {
        return;
    }
    if !dir.join(".s.PGSQL.5432").exists() {
        eprintln!("SKIPPED unix_socket: no server socket in {}", dir.display());
        return;
    }
    for url in [
        "postgres://postgres@%2Fvar%2Frun%2Fpostgresql/test",
        "host=/var/run/postgresql user=postgres dbname=test",
    ] {
        let mut conn = PgManager::from_url(url)
            .unwrap()
            .connect_one()
            .await
            .unwrap();
        let row = conn
            .query_one_values("SELECT inet_server_addr() IS NULL AS via_socket", &[])
            .await
            .unwrap();
        assert_eq!(row.get("via_socket"), Some(&Value::Bool(true)), "{url}");
    }
}

#[tokio::test]
async fn no_read_write_host_fails_with_an_error_naming_each_host_and_why_without_the_password() {
    let Some(url) = support::url("multi_host_no_read_write") else {
        return;
    };
    let Some(replica) = tidepool_testkit::replica_url("multi_host_no_read_write") else {
        return;
    };
    let (rh, rp) = tidepool_testkit::host_port(&replica, 5433).unwrap();
    let _ = url;
    // The replica is read-only; nothing listens on port 1.
    let url = format!(
        "postgres://postgres:n0t-sh0wn@{rh}:{rp},127.0.0.1:1/test?sslmode=disable&target_session_attrs=read-write"
    );
    let err = PgManager::from_url(&url)
        .unwrap()
        .connect_one()
        .await
        .expect_err("no read-write host");
    let shown = err.to_string();
    assert!(
        matches!(err, tidepool_postgres::PgError::NoHost { ref attempts } if attempts.len() == 2),
        "{err:?}"
    );
    assert!(
        shown.contains(&format!("{rh}:{rp}: ")) && shown.contains("127.0.0.1:1: "),
        "{shown}"
    );
    assert!(
        !shown.contains("n0t-sh0wn") && !format!("{err:?}").contains("n0t-sh0wn"),
        "{shown}"
    );
    assert_eq!(
        tidepool::Classify::failure_kind(&err),
        tidepool::FailureKind::Connect
    );
    assert!(err.is_retryable_connect(), "a refused host may come back");
    eprintln!("{shown}");
}
