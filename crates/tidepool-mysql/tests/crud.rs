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
        .execute(
            "INSERT INTO tp_my_crud (name, age) VALUES (?, ?), (?, ?)",
            &["ada".into(), 36.into(), "alan".into(), 41.into()],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 2);
    let rows = conn
        .query("SELECT id, name, age FROM tp_my_crud ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].columns(), ["id", "name", "age"]);
    assert_eq!(rows[0].get("name"), Some(&Value::Text("ada".into())));
    assert_eq!(rows[1].get("age"), Some(&Value::Int(41)));

    let updated = conn
        .execute(
            "UPDATE tp_my_crud SET age = age + 1 WHERE name = $1",
            &["ada".into()],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
    let row = conn
        .query_one(
            "SELECT age FROM tp_my_crud WHERE name = $1",
            &["ada".into()],
        )
        .await
        .unwrap();
    assert_eq!(row.get("age"), Some(&Value::Int(37)));

    let deleted = conn
        .execute("DELETE FROM tp_my_crud WHERE age > $1", &[40.into()])
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(
        conn.query("SELECT * FROM tp_my_crud", &[])
            .await
            .unwrap()
            .len(),
        1
    );
    conn.execute("DROP TABLE tp_my_crud", &[]).await.unwrap();
}

#[tokio::test]
async fn dollar_placeholders_bind_by_number_and_ignore_quoted_text() {
    let Some(url) = support::url("mysql_dollar") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    let row = conn
        .query_one(
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
    let err = conn.query("SELECT $1, $2", &[1.into()]).await.unwrap_err();
    assert!(err.to_string().contains("$2"), "{err}");
}

#[tokio::test]
async fn query_one_insists_on_exactly_one_row() {
    let Some(url) = support::url("mysql_query_one") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    let err = conn
        .query_one("SELECT 1 FROM DUAL WHERE 1 = 0", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("got 0"), "{err}");
    let err = conn
        .query_one("SELECT 1 UNION ALL SELECT 2", &[])
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
