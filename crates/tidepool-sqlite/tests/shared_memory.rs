//! `sqlite::memory:` means one database per manager, shared by all of its
//! connections and kept alive while the manager lives.

use tidepool::{Manager, Queryable, Value};
use tidepool_sqlite::SqliteManager;

#[tokio::test]
async fn an_in_memory_database_is_shared_by_all_connections_of_one_manager() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(manager.connect().await.unwrap());
    }
    conns[0]
        .execute_values("CREATE TABLE shared (who INTEGER)", &[])
        .await
        .unwrap();
    for (i, conn) in conns.iter_mut().enumerate() {
        conn.execute_values("INSERT INTO shared VALUES ($1)", &[(i as i64).into()])
            .await
            .unwrap();
    }
    for conn in &mut conns {
        let row = conn
            .query_one_values("SELECT count(*) FROM shared", &[])
            .await
            .unwrap();
        assert_eq!(row.get(0), Some(&Value::Int(3)));
    }
}

#[tokio::test]
async fn two_managers_get_two_separate_in_memory_databases() {
    let a = SqliteManager::from_url("sqlite::memory:").unwrap();
    let b = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut ca = a.connect().await.unwrap();
    let mut cb = b.connect().await.unwrap();
    ca.execute_values("CREATE TABLE only_in_a (x INTEGER)", &[])
        .await
        .unwrap();
    let err = cb
        .query_values("SELECT * FROM only_in_a", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no such table"), "{err}");
}

#[tokio::test]
async fn the_in_memory_database_outlives_its_connections_while_the_manager_lives() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    {
        let mut conn = manager.connect().await.unwrap();
        conn.execute_values("CREATE TABLE kept (x INTEGER)", &[])
            .await
            .unwrap();
        conn.execute_values("INSERT INTO kept VALUES (42)", &[])
            .await
            .unwrap();
    }
    // Every connection the caller opened is closed; the data is still there.
    tokio::task::yield_now().await;
    let mut conn = manager.connect().await.unwrap();
    let row = conn
        .query_one_values("SELECT x FROM kept", &[])
        .await
        .unwrap();
    assert_eq!(row.get(0), Some(&Value::Int(42)));
}

#[tokio::test]
async fn a_writer_on_a_shared_in_memory_database_waits_for_another_instead_of_failing() {
    let manager = SqliteManager::from_url("sqlite::memory:?busy_timeout=10s").unwrap();
    let mut a = manager.connect().await.unwrap();
    let mut b = manager.connect().await.unwrap();
    a.execute_values("CREATE TABLE w (x INTEGER)", &[])
        .await
        .unwrap();
    a.begin().await.unwrap();
    a.execute_values("INSERT INTO w VALUES (1)", &[])
        .await
        .unwrap();
    let writer = tokio::spawn(async move {
        let n = b.execute_values("INSERT INTO w VALUES (2)", &[]).await;
        (n, b)
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    a.commit().await.unwrap();
    let (n, _b) = writer.await.unwrap();
    assert_eq!(
        n.unwrap(),
        1,
        "the second writer should wait on busy_timeout, not fail"
    );
    let row = a
        .query_one_values("SELECT count(*) FROM w", &[])
        .await
        .unwrap();
    assert_eq!(row.get(0), Some(&Value::Int(2)));
}
