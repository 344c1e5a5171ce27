//! CRUD through sqlx's own API on a pooled connection: `&mut *conn` is an
//! executor, `conn.begin()` and `Connection::transaction` work on it.

mod support;

use sqlx::{Connection, Row};

#[cfg(feature = "postgres")]
#[tokio::test]
async fn crud_runs_through_sqlx_on_a_pooled_postgres_connection() {
    let Some(url) = support::pg_url("sqlx_crud_pg") else {
        return;
    };
    let pool = support::pool(tidepool_sqlx::PgManager::new(&url).unwrap(), 2).await;
    let mut conn = pool.get().await.unwrap();
    sqlx::raw_sql("DROP TABLE IF EXISTS tp_sqlx_people; CREATE TABLE tp_sqlx_people (id INT PRIMARY KEY, name TEXT NOT NULL)")
        .execute(&mut *conn)
        .await
        .unwrap();
    for (id, name) in [(1, "ada"), (2, "grace")] {
        sqlx::query("INSERT INTO tp_sqlx_people (id, name) VALUES ($1, $2)")
            .bind(id)
            .bind(name)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let rows: Vec<(i32, String)> =
        sqlx::query_as("SELECT id, name FROM tp_sqlx_people ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(rows, vec![(1, "ada".to_string()), (2, "grace".to_string())]);
    sqlx::query("UPDATE tp_sqlx_people SET name = $1 WHERE id = $2")
        .bind("hopper")
        .bind(2)
        .execute(&mut *conn)
        .await
        .unwrap();
    let row = sqlx::query("SELECT name FROM tp_sqlx_people WHERE id = $1")
        .bind(2)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("name"), "hopper");

    // A transaction that commits, and one whose error rolls it back.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("DELETE FROM tp_sqlx_people WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let failed: Result<(), sqlx::Error> = conn
        .transaction(|tx| {
            Box::pin(async move {
                sqlx::query("DELETE FROM tp_sqlx_people")
                    .execute(&mut **tx)
                    .await?;
                Err(sqlx::Error::RowNotFound)
            })
        })
        .await;
    assert!(failed.is_err());
    let left: Vec<i32> = sqlx::query_scalar("SELECT id FROM tp_sqlx_people")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        left,
        vec![2],
        "the first transaction committed, the second rolled back"
    );
    sqlx::raw_sql("DROP TABLE tp_sqlx_people")
        .execute(&mut *conn)
        .await
        .unwrap();
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn crud_runs_through_sqlx_on_a_pooled_mysql_connection() {
    let Some(url) = support::mysql_url("sqlx_crud_mysql") else {
        return;
    };
    let pool = support::pool(tidepool_sqlx::MySqlManager::new(&url).unwrap(), 2).await;
    let mut conn = pool.get().await.unwrap();
    sqlx::raw_sql("DROP TABLE IF EXISTS tp_sqlx_people")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE tp_sqlx_people (id INT PRIMARY KEY, name TEXT NOT NULL) ENGINE=InnoDB",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    for (id, name) in [(1, "ada"), (2, "grace")] {
        sqlx::query("INSERT INTO tp_sqlx_people (id, name) VALUES (?, ?)")
            .bind(id)
            .bind(name)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let rows: Vec<(i32, String)> =
        sqlx::query_as("SELECT id, name FROM tp_sqlx_people ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(rows, vec![(1, "ada".to_string()), (2, "grace".to_string())]);
    sqlx::query("UPDATE tp_sqlx_people SET name = ? WHERE id = ?")
        .bind("hopper")
        .bind(2)
        .execute(&mut *conn)
        .await
        .unwrap();
    let row = sqlx::query("SELECT name FROM tp_sqlx_people WHERE id = ?")
        .bind(2)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("name"), "hopper");

    let mut tx = conn.begin().await.unwrap();
    sqlx::query("DELETE FROM tp_sqlx_people WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let failed: Result<(), sqlx::Error> = conn
        .transaction(|tx| {
            Box::pin(async move {
                sqlx::query("DELETE FROM tp_sqlx_people")
                    .execute(&mut **tx)
                    .await?;
                Err(sqlx::Error::RowNotFound)
            })
        })
        .await;
    assert!(failed.is_err());
    let left: Vec<i32> = sqlx::query_scalar("SELECT id FROM tp_sqlx_people")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        left,
        vec![2],
        "the first transaction committed, the second rolled back"
    );
    sqlx::raw_sql("DROP TABLE tp_sqlx_people")
        .execute(&mut *conn)
        .await
        .unwrap();
}
