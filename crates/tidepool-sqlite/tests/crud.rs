//! Create, read, update and delete through the uniform query face, on a
//! file database and on an in-memory one.

use tidepool::{Manager, Queryable, Value};
use tidepool_sqlite::{SqliteConnection, SqliteManager};

async fn crud(mut conn: SqliteConnection) {
    let created = conn
        .execute_values(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(created, 0);
    let inserted = conn
        .execute_values(
            "INSERT INTO people (name, age) VALUES ($1, $2), ($3, $4)",
            &["ada".into(), 36.into(), "alan".into(), 41.into()],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 2);

    let rows = conn
        .query_values("SELECT id, name, age FROM people ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].columns(), ["id", "name", "age"]);
    assert_eq!(rows[0].get("name"), Some(&Value::Text("ada".into())));
    assert_eq!(rows[1].get(2), Some(&Value::Int(41)));

    let updated = conn
        .execute_values(
            "UPDATE people SET age = age + 1 WHERE name = ?",
            &["ada".into()],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
    let row = conn
        .query_one_values("SELECT age FROM people WHERE name = ?1", &["ada".into()])
        .await
        .unwrap();
    assert_eq!(row.get("age").and_then(Value::as_i64), Some(37));

    let deleted = conn
        .execute_values("DELETE FROM people WHERE age > $1", &[40.into()])
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let rows = conn
        .query_values("SELECT name FROM people", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);

    // A statement that only reads changes nothing, even right after a write.
    assert_eq!(conn.execute_values("SELECT 1", &[]).await.unwrap(), 0);
}

#[tokio::test]
async fn crud_works_on_a_file_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("crud.db").display());
    let manager = SqliteManager::from_url(&url).unwrap();
    crud(manager.connect().await.unwrap()).await;
    assert!(dir.path().join("crud.db").exists());
}

#[tokio::test]
async fn crud_works_on_an_in_memory_database() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    crud(manager.connect().await.unwrap()).await;
}

#[tokio::test]
async fn numbered_placeholders_bind_by_number_not_by_order() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    let row = conn
        .query_one_values(
            "SELECT $2 AS b, $1 AS a, $2 AS b2",
            &["a".into(), "b".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        row.values(),
        [
            Value::Text("b".into()),
            Value::Text("a".into()),
            Value::Text("b".into())
        ]
    );
}

#[tokio::test]
async fn query_one_insists_on_exactly_one_row() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    let none = conn
        .query_one_values("SELECT 1 WHERE 0", &[])
        .await
        .unwrap_err();
    assert!(
        none.to_string().contains("exactly one row, got 0"),
        "{none}"
    );
    let two = conn
        .query_one_values("SELECT 1 UNION ALL SELECT 2", &[])
        .await
        .unwrap_err();
    assert!(two.to_string().contains("got 2"), "{two}");
}

#[tokio::test]
async fn a_wrong_number_of_parameters_is_refused() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    let too_few = conn
        .query_values("SELECT $1, $2", &[1.into()])
        .await
        .unwrap_err();
    assert!(too_few.to_string().contains("parameter 2"), "{too_few}");
    let too_many = conn
        .query_values("SELECT ?", &[1.into(), 2.into()])
        .await
        .unwrap_err();
    assert!(
        too_many.to_string().contains("does not use parameter 2"),
        "{too_many}"
    );
}

#[tokio::test]
async fn native_access_runs_rusqlite_on_the_connection() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let conn = manager.connect().await.unwrap();
    let version: String = conn
        .call(|c| c.query_row("SELECT sqlite_version()", [], |r| r.get(0)))
        .await
        .unwrap();
    assert!(version.starts_with('3'), "{version}");
}
