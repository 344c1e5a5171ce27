//! Every `tidepool::Value` kind survives a round trip through SQLite.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::json;
use tidepool::{FromRow, Manager, Queryable, RetryPolicy, Value};
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

#[tokio::test]
async fn dates_times_instants_decimals_uuids_and_json_round_trip_through_declared_columns() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    // `DECIMAL TEXT`: TEXT affinity keeps every digit, and the first word
    // says to read it back as a decimal.
    conn.execute_values(
        "CREATE TABLE n (d DATE, tm TIME, tz TIMESTAMPTZ, tz2 TIMESTAMP WITH TIME ZONE, \
         num DECIMAL TEXT, u UUID, j JSON)",
        &[],
    )
    .await
    .unwrap();
    let at = NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_micro_opt(23, 59, 58, 123_456)
        .unwrap()
        .and_utc();
    let values = vec![
        Value::Date(NaiveDate::from_ymd_opt(1999, 12, 31).unwrap()),
        Value::Time(NaiveTime::from_hms_micro_opt(13, 5, 9, 250_001).unwrap()),
        Value::TimestampTz(at),
        Value::TimestampTz(DateTime::<Utc>::UNIX_EPOCH),
        Value::Decimal(
            format!("-{}.{}", "1234567890".repeat(4), "0987654321".repeat(3))
                .parse()
                .unwrap(),
        ),
        Value::Uuid(uuid::Uuid::from_u128(
            0xa0ee_bc99_9c0b_4ef8_bb6d_6bb9_bd38_0a11,
        )),
        Value::Json(json!({"a": [1, 2.5, "x ✓"], "b": null})),
    ];
    conn.execute_values("INSERT INTO n VALUES ($1, $2, $3, $4, $5, $6, $7)", &values)
        .await
        .unwrap();
    let row = conn.query_one_values("SELECT * FROM n", &[]).await.unwrap();
    assert_eq!(row.values(), values.as_slice());
    // Stored as text SQLite's own functions understand.
    let row = conn
        .query_one_values(
            "SELECT typeof(d) AS ty, d, tm, tz, datetime(tz) AS utc, json_extract(j, '$.a[1]') AS a1, \
             length(u) AS ulen FROM n",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get("ty"), Some(&Value::Text("text".into())));
    assert_eq!(
        row.values()[1..4],
        [
            Value::Date(NaiveDate::from_ymd_opt(1999, 12, 31).unwrap()),
            Value::Time(NaiveTime::from_hms_micro_opt(13, 5, 9, 250_001).unwrap()),
            Value::TimestampTz(at),
        ]
    );
    assert_eq!(
        row.get("utc"),
        Some(&Value::Text("2024-02-29 23:59:58".into()))
    );
    assert_eq!(row.get("a1"), Some(&Value::Float(2.5)));
    assert_eq!(row.get("ulen"), Some(&Value::Int(36)));
}

#[tokio::test]
async fn text_the_declared_type_cannot_parse_stays_text_and_numeric_affinity_is_explained() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    conn.execute_values(
        "CREATE TABLE m (d DATE, u UUID, j JSON, num NUMERIC(10, 2), ub UUID, plain TEXT)",
        &[],
    )
    .await
    .unwrap();
    let id = uuid::Uuid::from_u128(7);
    conn.execute_values(
        "INSERT INTO m VALUES ('someday', 'not-a-uuid', '{oops', $1, $2, $3)",
        &[
            Value::Decimal("12.50".parse().unwrap()),
            Value::Bytes(id.as_bytes().to_vec()),
            Value::Uuid(id),
        ],
    )
    .await
    .unwrap();
    let row = conn.query_one_values("SELECT * FROM m", &[]).await.unwrap();
    assert_eq!(
        row.values()[..3],
        [
            Value::Text("someday".into()),
            Value::Text("not-a-uuid".into()),
            Value::Text("{oops".into()),
        ]
    );
    // NUMERIC affinity stored 12.50 as the REAL 12.5: the scale is gone,
    // which is why exact decimals want a `DECIMAL TEXT` column.
    assert_eq!(
        row.get("num"),
        Some(&Value::Decimal("12.5".parse().unwrap()))
    );
    // A 16-byte blob in a UUID column is a UUID too.
    assert_eq!(row.get("ub"), Some(&Value::Uuid(id)));
    // An undeclared (TEXT) column gives text, which try_get still reads.
    assert_eq!(row.get("plain"), Some(&Value::Text(id.to_string())));
    assert_eq!(row.try_get::<uuid::Uuid, _>("plain"), Ok(id));
    let err = row.try_get::<NaiveDate, _>("d").unwrap_err();
    assert_eq!(
        err.to_string(),
        "column `d`: expected NaiveDate, found text that does not parse as one"
    );
}

#[tokio::test]
async fn rows_read_into_rust_types_and_row_errors_leave_transaction_bodies_through_question_mark() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    let row = conn
        .query_one_values(
            "SELECT 7 AS id, 'ada' AS name, NULL AS email, 1 = 1 AS yes, CURRENT_TIMESTAMP AS now",
            &[],
        )
        .await
        .unwrap();
    let (id, name, email, yes, now): (i32, String, Option<String>, bool, DateTime<Utc>) =
        FromRow::from_row(&row).unwrap();
    assert_eq!((id, name.as_str(), email, yes), (7, "ada", None, true));
    assert!((Utc::now() - now).num_seconds().abs() < 60);
    let outcome = tidepool::run_in_transaction(&mut conn, RetryPolicy::none(), async |tx| {
        let row = tx.query_one_values("SELECT 'x' AS n", &[]).await?;
        let n: i64 = row.try_get("n")?;
        Ok(n)
    })
    .await;
    let err = outcome.unwrap_err();
    assert!(
        matches!(err, tidepool_sqlite::SqliteError::Row(_)),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "column `n`: expected i64, found text");
    assert!(!conn.in_transaction());
}
