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
