//! Create, read, update and delete on MariaDB through the uniform face.

use tidepool::{Queryable, Value};

mod support;

#[tokio::test]
async fn crud_works_through_the_uniform_face() {
    let Some(url) = support::url("mysql_crud") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    support::fresh_table(
        &mut conn,
        "tp_my_crud",
        "id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL, age INT",
    )
    .await;
    let inserted = conn
        .execute_values(
            "INSERT INTO tp_my_crud (name, age) VALUES (?, ?), (?, ?)",
            &["ada".into(), 36.into(), "alan".into(), 41.into()],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 2);
    let rows = conn
        .query_values("SELECT id, name, age FROM tp_my_crud ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].columns(), ["id", "name", "age"]);
    assert_eq!(rows[0].get("name"), Some(&Value::Text("ada".into())));
    assert_eq!(rows[1].get("age"), Some(&Value::Int(41)));

    let updated = conn
        .execute_values(
            "UPDATE tp_my_crud SET age = age + 1 WHERE name = $1",
            &["ada".into()],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
    let row = conn
        .query_one_values(
            "SELECT age FROM tp_my_crud WHERE name = $1",
            &["ada".into()],
        )
        .await
        .unwrap();
    assert_eq!(row.get("age"), Some(&Value::Int(37)));

    let deleted = conn
        .execute_values("DELETE FROM tp_my_crud WHERE age > $1", &[40.into()])
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(
        conn.query_values("SELECT * FROM tp_my_crud", &[])
            .await
            .unwrap()
            .len(),
        1
    );
    conn.execute_values("DROP TABLE tp_my_crud", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn dollar_placeholders_bind_by_number_and_ignore_quoted_text() {
    let Some(url) = support::url("mysql_dollar") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    let row = conn
        .query_one_values(
            "SELECT $2 AS b, '$1' AS lit, $1 AS a, $2 AS b2 -- $9 in a comment",
            &["a".into(), "b".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        row.values(),
        [
            Value::Text("b".into()),
            Value::Text("$1".into()),
            Value::Text("a".into()),
            Value::Text("b".into())
        ]
    );
    let err = conn
        .query_values("SELECT $1, $2", &[1.into()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("$2"), "{err}");
}

#[tokio::test]
async fn query_one_insists_on_exactly_one_row() {
    let Some(url) = support::url("mysql_query_one") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    let err = conn
        .query_one_values("SELECT 1 FROM DUAL WHERE 1 = 0", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("got 0"), "{err}");
    let err = conn
        .query_one_values("SELECT 1 UNION ALL SELECT 2", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("got 2"), "{err}");
}

#[tokio::test]
async fn native_access_reaches_mysql_async() {
    use tidepool_mysql::mysql_async::prelude::Queryable as _;
    let Some(url) = support::url("mysql_native") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    let version: Option<String> = conn.query_first("SELECT VERSION()").await.unwrap();
    assert!(version.unwrap().contains("MariaDB") || conn.server_version().0 >= 5);
}

/// Queries without parameters go through the server's prepared-statement
/// protocol (parsed once per connection); a statement the server cannot
/// prepare (error 1295, such as `EXECUTE`) still runs, as plain text.
#[tokio::test]
async fn a_statement_the_server_cannot_prepare_runs_as_text() {
    let Some(url) = support::url("mysql_unpreparable") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    conn.execute_values("PREPARE tp_answer FROM 'SELECT 42 AS answer'", &[])
        .await
        .unwrap();
    let row = conn
        .query_one_values("EXECUTE tp_answer", &[])
        .await
        .unwrap();
    assert_eq!(row.get("answer"), Some(&Value::Int(42)));
    let row = conn
        .query_one_values("SELECT 7 AS seven", &[])
        .await
        .unwrap();
    assert_eq!(row.get("seven"), Some(&Value::Int(7)));
}

/// Under the default Fast policy a connection returned clean goes straight
/// back to idle: no reset task, no round trip — whether it was used
/// through the uniform face or natively.
#[tokio::test]
async fn a_clean_return_needs_no_reset_under_the_fast_policy() {
    use tidepool_mysql::mysql_async::prelude::Queryable as _;
    let Some(url) = support::url("mysql_clean_return") else {
        return;
    };
    let pool = support::pool(&url, 1, tidepool_mysql::ResetPolicy::Fast).await;
    for _ in 0..10 {
        let mut conn = pool.get().await.unwrap();
        conn.query_one_values("SELECT 1 AS one", &[]).await.unwrap();
    }
    for _ in 0..10 {
        let mut conn = pool.get().await.unwrap();
        let one: Option<i64> = conn.exec_first("SELECT 1", ()).await.unwrap();
        assert_eq!(one, Some(1));
    }
    assert_eq!(pool.metrics().resets, 0, "{:?}", pool.metrics());
}
