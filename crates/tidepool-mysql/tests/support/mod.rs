//! Shared helpers for the MariaDB tests.
#![allow(dead_code)]

use std::time::Duration;

use tidepool::{Manager, Pool, Queryable, Value};
use tidepool_mysql::{MysqlConnection, MysqlManager, ResetPolicy};

/// The test server's URL, or `None` (test skipped) when it is unreachable.
pub fn url(test: &str) -> Option<String> {
    tidepool_testkit::mysql_url(test)
}

/// A URL for the same server with other credentials (percent-encoded here).
pub fn url_as(base: &str, user: &str, password: &str, db: &str) -> String {
    let (host, port) = tidepool_testkit::host_port(base, 3306).unwrap();
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!("mysql://{}:{}@{host}:{port}/{db}", enc(user), enc(password))
}

/// A standalone connection (not pooled), for setup and admin work.
pub async fn connect(url: &str) -> MysqlConnection {
    MysqlManager::from_url(url)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A pool with the given size and reset policy.
pub async fn pool(url: &str, max_size: u32, policy: ResetPolicy) -> Pool<MysqlManager> {
    let manager = MysqlManager::from_url(url)
        .unwrap()
        .with_reset_policy(policy);
    Pool::builder(manager)
        .max_size(max_size)
        .acquire_timeout(Duration::from_secs(10))
        .build()
        .await
        .unwrap()
}

/// `SELECT @@in_transaction` on the server.
pub async fn server_in_transaction(conn: &mut MysqlConnection) -> bool {
    let row = conn
        .query_one_values("SELECT @@in_transaction AS t", &[])
        .await
        .unwrap();
    match row.get("t") {
        Some(Value::Int(n)) => *n != 0,
        Some(Value::Bool(b)) => *b,
        other => panic!("unexpected @@in_transaction: {other:?}"),
    }
}

/// Drops (if present) and creates a table.
pub async fn fresh_table(conn: &mut MysqlConnection, name: &str, columns: &str) {
    conn.execute_values(&format!("DROP TABLE IF EXISTS {name}"), &[])
        .await
        .unwrap();
    conn.execute_values(
        &format!("CREATE TABLE {name} ({columns}) ENGINE=InnoDB"),
        &[],
    )
    .await
    .unwrap();
}
