//! CRUD through diesel-async's own API on a pooled connection: the guard
//! goes straight into `RunQueryDsl` and `AsyncConnection::transaction`,
//! and into functions written for `&mut AsyncPgConnection`.

mod support;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

diesel::table! {
    tp_diesel_people (id) {
        id -> Integer,
        name -> Text,
    }
}

#[derive(Queryable, Selectable, Insertable, Debug, PartialEq)]
#[diesel(table_name = tp_diesel_people)]
struct Person {
    id: i32,
    name: String,
}

/// Insert, read, update, delete, and a committed and a rolled-back
/// transaction, all with diesel's own calls on `&mut guard`. A macro, not
/// a generic function: diesel's bounds for "any backend" would be longer
/// than the test.
macro_rules! crud {
    ($conn:expr) => {{
        let conn = $conn;
        let people = vec![
            Person {
                id: 1,
                name: "ada".into(),
            },
            Person {
                id: 2,
                name: "grace".into(),
            },
        ];
        let inserted = diesel::insert_into(tp_diesel_people::table)
            .values(&people)
            .execute(conn)
            .await
            .unwrap();
        assert_eq!(inserted, 2);

        let read: Vec<Person> = tp_diesel_people::table
            .order(tp_diesel_people::id)
            .select(Person::as_select())
            .load(conn)
            .await
            .unwrap();
        assert_eq!(read, people);

        diesel::update(tp_diesel_people::table.find(2))
            .set(tp_diesel_people::name.eq("hopper"))
            .execute(conn)
            .await
            .unwrap();
        let name: String = tp_diesel_people::table
            .find(2)
            .select(tp_diesel_people::name)
            .first(conn)
            .await
            .unwrap();
        assert_eq!(name, "hopper");

        // A transaction that commits, and one whose error rolls it back.
        conn.transaction::<_, diesel::result::Error, _>(async |tx| {
            diesel::delete(tp_diesel_people::table.find(1))
                .execute(tx)
                .await?;
            Ok(())
        })
        .await
        .unwrap();
        let failed = conn
            .transaction::<(), diesel::result::Error, _>(async |tx| {
                diesel::delete(tp_diesel_people::table).execute(tx).await?;
                Err(diesel::result::Error::RollbackTransaction)
            })
            .await;
        assert!(matches!(
            failed,
            Err(diesel::result::Error::RollbackTransaction)
        ));

        let left: Vec<i32> = tp_diesel_people::table
            .select(tp_diesel_people::id)
            .load(conn)
            .await
            .unwrap();
        assert_eq!(
            left,
            vec![2],
            "the first transaction committed, the second rolled back"
        );
    }};
}

/// Code written for deadpool or bb8 takes the connection type itself.
#[cfg(feature = "postgres")]
async fn count_pg(conn: &mut diesel_async::AsyncPgConnection) -> i64 {
    tp_diesel_people::table
        .count()
        .get_result(conn)
        .await
        .unwrap()
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn crud_runs_through_diesel_async_on_a_pooled_postgres_connection() {
    let Some(url) = support::pg_url("diesel_crud_pg") else {
        return;
    };
    let pool = support::pool(tidepool_diesel::PgManager::new(&url).unwrap(), 2).await;
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(
        "DROP TABLE IF EXISTS tp_diesel_people; CREATE TABLE tp_diesel_people (id INT PRIMARY KEY, name TEXT NOT NULL)",
    )
    .await
    .unwrap();
    crud!(&mut conn);
    assert_eq!(count_pg(&mut conn).await, 1);
    conn.batch_execute("DROP TABLE tp_diesel_people")
        .await
        .unwrap();
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn crud_runs_through_diesel_async_on_a_pooled_mysql_connection() {
    let Some(url) = support::mysql_url("diesel_crud_mysql") else {
        return;
    };
    let pool = support::pool(tidepool_diesel::MysqlManager::new(&url).unwrap(), 2).await;
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute("DROP TABLE IF EXISTS tp_diesel_people")
        .await
        .unwrap();
    conn.batch_execute(
        "CREATE TABLE tp_diesel_people (id INT PRIMARY KEY, name TEXT NOT NULL) ENGINE=InnoDB",
    )
    .await
    .unwrap();
    crud!(&mut conn);
    conn.batch_execute("DROP TABLE tp_diesel_people")
        .await
        .unwrap();
}
