//! How a MariaDB error reads, alone and through a chain printer
//! (`anyhow`'s `{:#}`): the server's message once, with its code and
//! SQLSTATE, its own quotes intact, without mysql_async's `` `...' ``
//! wrapping.

use tidepool::{Manager, Queryable};
use tidepool_mysql::MysqlManager;

mod support;

/// The error and every source, joined as `anyhow` prints `{:#}`.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[tokio::test]
async fn an_unknown_database_reads_once_with_its_own_quotes() {
    let Some(url) = support::url("mysql_display_unknown_db") else {
        return;
    };
    let (host, port) = tidepool_testkit::host_port(&url, 3306).unwrap();
    let manager =
        MysqlManager::from_url(&format!("mysql://root@{host}:{port}/tp_no_such_db")).unwrap();
    let err = manager.connect().await.map(|_| ()).unwrap_err();
    let shown = chain(&err);
    assert_eq!(
        shown,
        "server error 1049 (SQLSTATE 42000): Unknown database 'tp_no_such_db'"
    );
}

#[tokio::test]
async fn a_syntax_error_reads_once() {
    let Some(url) = support::url("mysql_display_syntax") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    let err = conn.execute_values("SELEC 1", &[]).await.unwrap_err();
    let shown = chain(&err);
    assert!(
        shown.starts_with(
            "server error 1064 (SQLSTATE 42000): You have an error in your SQL syntax"
        ),
        "{shown}"
    );
    assert_eq!(shown.matches("You have an error").count(), 1, "{shown}");
    assert!(!shown.contains("`ERROR"), "{shown}");
}

#[tokio::test]
async fn a_refused_connection_names_its_cause_once() {
    // Port 1 on loopback: nothing listens there.
    let manager = MysqlManager::from_url("mysql://root@127.0.0.1:1/test").unwrap();
    let err = manager.connect().await.map(|_| ()).unwrap_err();
    let shown = chain(&err);
    assert!(shown.starts_with("I/O error: "), "{shown}");
    assert_eq!(shown.matches("refused").count(), 1, "{shown}");
}
