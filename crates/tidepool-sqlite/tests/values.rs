//! Every `tidepool::Value` kind survives a round trip through SQLite.

use chrono::NaiveDate;
use tidepool::{Manager, Queryable, Value};
use tidepool_sqlite::SqliteManager;

#[tokio::test]
async fn every_value_kind_round_trips_through_typed_columns() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    conn.execute_values(
        "CREATE TABLE v (n INTEGER, i INTEGER, f REAL, t TEXT, b BLOB, flag BOOLEAN, at TIMESTAMP, at2 DATETIME)",
        &[],
    )
    .await
    .unwrap();
    let at = NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_micro_opt(23, 59, 58, 123_456)
        .unwrap();
    let at2 = NaiveDate::from_ymd_opt(1970, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let values = vec![
        Value::Null,
        Value::Int(i64::MIN),
        Value::Float(-1.5e300),
        Value::Text("tidepool ✓ 'quoted' \"double\"".into()),
        Value::Bytes(vec![0, 1, 2, 255, 0]),
        Value::Bool(true),
        Value::Timestamp(at),
        Value::Timestamp(at2),
    ];
    conn.execute_values(
        "INSERT INTO v VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &values,
    )
    .await
    .unwrap();
    let row = conn.query_one_values("SELECT * FROM v", &[]).await.unwrap();
    assert_eq!(row.values(), values.as_slice());
    assert_eq!(
        row.columns(),
        ["n", "i", "f", "t", "b", "flag", "at", "at2"]
    );
}

#[tokio::test]
async fn booleans_are_stored_as_integers_and_read_as_booleans_only_from_boolean_columns() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    conn.execute_values("CREATE TABLE b (flag BOOLEAN, n INTEGER)", &[])
        .await
        .unwrap();
    conn.execute_values(
        "INSERT INTO b VALUES ($1, $2)",
        &[false.into(), true.into()],
    )
    .await
    .unwrap();
    let row = conn
        .query_one_values("SELECT flag, n FROM b", &[])
        .await
        .unwrap();
    assert_eq!(row.values(), [Value::Bool(false), Value::Int(1)]);
}

#[tokio::test]
async fn timestamps_are_iso_text_that_sqlite_date_functions_understand() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    let at = NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_milli_opt(13, 5, 9, 250)
        .unwrap();
    let row = conn
        .query_one_values(
            "SELECT $1 AS raw, date($1) AS day, typeof($1) AS ty",
            &[Value::Timestamp(at)],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get("raw"),
        Some(&Value::Text("2024-02-29 13:05:09.250".into()))
    );
    assert_eq!(row.get("day"), Some(&Value::Text("2024-02-29".into())));
    assert_eq!(row.get("ty"), Some(&Value::Text("text".into())));
}

#[tokio::test]
async fn timestamp_columns_written_by_sqlite_itself_read_back_as_timestamps() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    conn.execute_values(
        "CREATE TABLE e (at DATETIME DEFAULT CURRENT_TIMESTAMP, note TEXT)",
        &[],
    )
    .await
    .unwrap();
    conn.execute_values("INSERT INTO e (note) VALUES ('x')", &[])
        .await
        .unwrap();
    conn.execute_values("INSERT INTO e VALUES ('2020-01-02T03:04:05Z', 'iso')", &[])
        .await
        .unwrap();
    conn.execute_values("INSERT INTO e VALUES ('not a time', 'junk')", &[])
        .await
        .unwrap();
    let rows = conn
        .query_values("SELECT at FROM e ORDER BY rowid", &[])
        .await
        .unwrap();
    assert!(
        rows[0].get("at").and_then(Value::as_timestamp).is_some(),
        "{:?}",
        rows[0]
    );
    let iso = NaiveDate::from_ymd_opt(2020, 1, 2)
        .unwrap()
        .and_hms_opt(3, 4, 5)
        .unwrap();
    assert_eq!(rows[1].get("at"), Some(&Value::Timestamp(iso)));
    // Text that is not a time stays text rather than failing the query.
    assert_eq!(rows[2].get("at"), Some(&Value::Text("not a time".into())));
}

#[tokio::test]
async fn integers_and_reals_keep_their_storage_class_in_untyped_expressions() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    let row = conn
        .query_one_values("SELECT 1, 1.0, 'x', x'00ff', NULL", &[])
        .await
        .unwrap();
    assert_eq!(
        row.values(),
        [
            Value::Int(1),
            Value::Float(1.0),
            Value::Text("x".into()),
            Value::Bytes(vec![0, 255]),
            Value::Null
        ]
    );
}
