//! Every `tidepool::Value` kind survives a round trip through MariaDB, by
//! both protocols (text without parameters, binary with them): as the same
//! `Value` where MariaDB has the type, and as the same Rust value read with
//! `Row::try_get` where it stores it as text (UUID, JSON) or shows it in
//! the session's time zone (TIMESTAMP).

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::json;
use tidepool::{Decimal, FromRow, Queryable, RetryPolicy, Value};

mod support;

#[tokio::test]
async fn every_value_kind_round_trips_through_typed_columns() {
    let Some(url) = support::url("mysql_values") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    support::fresh_table(
        &mut conn,
        "tp_my_values",
        "n INT NULL, i BIGINT, f DOUBLE, t TEXT, b BLOB, flag BOOLEAN, at DATETIME(6), d DATE, \
         tm TIME(6), num DECIMAL(65, 30)",
    )
    .await;
    let at = NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_micro_opt(23, 59, 58, 123_456)
        .unwrap();
    let day = NaiveDate::from_ymd_opt(1999, 12, 31).unwrap();
    // 65 digits, 30 after the point: more than a double or a 128-bit
    // decimal holds.
    let num: Decimal = format!("-{}.{}", "12345".repeat(7), "67890".repeat(6))
        .parse()
        .unwrap();
    let values = vec![
        Value::Null,
        Value::Int(i64::MIN),
        Value::Float(-1.5e300),
        Value::Text("tidepool ✓ 'quoted' \"double\" \\ back".into()),
        Value::Bytes(vec![0, 1, 2, 255, 0]),
        Value::Bool(true),
        Value::Timestamp(at),
        Value::Date(day),
        Value::Time(NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap()),
        Value::Decimal(num),
    ];
    conn.execute_values(
        "INSERT INTO tp_my_values VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &values,
    )
    .await
    .unwrap();
    // Text protocol (no parameters) and binary protocol (a parameter).
    let text = conn
        .query_one_values("SELECT * FROM tp_my_values", &[])
        .await
        .unwrap();
    let binary = conn
        .query_one_values("SELECT * FROM tp_my_values WHERE 1 = ?", &[1.into()])
        .await
        .unwrap();
    assert_eq!(text.values(), values.as_slice());
    assert_eq!(binary.values(), values.as_slice());
    assert_eq!(
        text.columns(),
        ["n", "i", "f", "t", "b", "flag", "at", "d", "tm", "num"]
    );
    conn.execute_values("DROP TABLE tp_my_values", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn unsigned_decimal_and_time_values_read_back_without_loss() {
    let Some(url) = support::url("mysql_values_wide") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    let sql = "SELECT CAST(18446744073709551615 AS UNSIGNED) AS big, CAST(1.25 AS DECIMAL(10,3)) AS num, \
               TIME '-838:59:59' AS t, TIME '12:34:56.5' AS tod, DATE '2024-02-29' AS d, 7 AS small";
    // Text protocol (no parameters) and binary protocol (a parameter).
    let text = conn.query_one_values(sql, &[]).await.unwrap();
    let binary = conn
        .query_one_values(&format!("{sql} FROM DUAL WHERE 1 = ?"), &[1.into()])
        .await
        .unwrap();
    for row in [text, binary] {
        assert_eq!(
            row.get("big"),
            Some(&Value::Decimal(Decimal::from(u64::MAX)))
        );
        assert_eq!(row.try_get::<u64, _>("big"), Ok(u64::MAX));
        assert_eq!(
            row.get("num"),
            Some(&Value::Decimal("1.250".parse().unwrap()))
        );
        // A duration beyond a day is no time of day: it stays text.
        assert_eq!(row.get("t"), Some(&Value::Text("-838:59:59".into())));
        assert_eq!(
            row.get("tod"),
            Some(&Value::Time(
                NaiveTime::from_hms_milli_opt(12, 34, 56, 500).unwrap()
            ))
        );
        assert_eq!(
            row.get("d"),
            Some(&Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()))
        );
        assert_eq!(row.get("small"), Some(&Value::Int(7)));
    }
}

#[tokio::test]
async fn instants_uuids_and_json_read_back_as_the_same_rust_values() {
    let Some(url) = support::url("mysql_values_typed") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    // TIMESTAMP is shown in the session's zone; the README says to use UTC.
    conn.execute_values("SET time_zone = '+00:00'", &[])
        .await
        .unwrap();
    support::fresh_table(
        &mut conn,
        "tp_my_values_typed",
        "at TIMESTAMP(6) NULL, u_char CHAR(36), u_bin BINARY(16), u_native UUID, doc JSON",
    )
    .await;
    let at: DateTime<Utc> = DateTime::from_timestamp(1_700_000_000, 654_321_000).unwrap();
    let id = uuid::Uuid::from_u128(0xa0ee_bc99_9c0b_4ef8_bb6d_6bb9_bd38_0a11);
    let doc = json!({"a": [1, 2.5, "x ✓"], "b": null});
    conn.execute_values(
        "INSERT INTO tp_my_values_typed VALUES ($1, $2, $3, $4, $5)",
        &[
            Value::TimestampTz(at),
            Value::Uuid(id),
            // BINARY(16) takes the UUID's bytes.
            Value::Bytes(id.as_bytes().to_vec()),
            Value::Uuid(id),
            Value::Json(doc.clone()),
        ],
    )
    .await
    .unwrap();
    let text = conn
        .query_one_values("SELECT * FROM tp_my_values_typed", &[])
        .await
        .unwrap();
    let binary = conn
        .query_one_values("SELECT * FROM tp_my_values_typed WHERE 1 = ?", &[1.into()])
        .await
        .unwrap();
    for row in [text, binary] {
        assert_eq!(row.get("at"), Some(&Value::Timestamp(at.naive_utc())));
        let read: (
            DateTime<Utc>,
            uuid::Uuid,
            uuid::Uuid,
            uuid::Uuid,
            serde_json::Value,
        ) = FromRow::from_row(&row).unwrap();
        assert_eq!(read, (at, id, id, id, doc.clone()));
    }
    // And each is found again by the same parameter.
    let found = conn
        .query_one_values(
            "SELECT count(*) AS n FROM tp_my_values_typed WHERE at = $1 AND u_char = $2 AND u_native = $2",
            &[Value::TimestampTz(at), Value::Uuid(id)],
        )
        .await
        .unwrap();
    assert_eq!(found.try_get::<i64, _>("n"), Ok(1));
    conn.execute_values("DROP TABLE tp_my_values_typed", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn integer_expressions_read_as_rust_types_with_range_checks() {
    let Some(url) = support::url("mysql_values_ranges") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    let row = conn
        .query_one_values(
            "SELECT 1 = 1 AS yes, SUM(x) AS total, 300 AS wide FROM (SELECT 1 AS x UNION ALL SELECT 2) AS v",
            &[],
        )
        .await
        .unwrap();
    // MariaDB's comparisons are integers and SUM() of integers a DECIMAL.
    assert_eq!(row.try_get::<bool, _>("yes"), Ok(true));
    assert_eq!(row.try_get::<i32, _>("total"), Ok(3));
    let err = row.try_get::<u8, _>("wide").unwrap_err();
    assert_eq!(
        err.to_string(),
        "column `wide`: the int value does not fit in u8"
    );
}

#[tokio::test]
async fn a_row_error_in_a_transaction_body_fails_it_through_question_mark() {
    let Some(url) = support::url("mysql_values_row_error") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    let outcome = tidepool::run_in_transaction(&mut conn, RetryPolicy::none(), async |tx| {
        let row = tx.query_one_values("SELECT 'x' AS n", &[]).await?;
        let n: i64 = row.try_get("n")?;
        Ok(n)
    })
    .await;
    let err = outcome.unwrap_err();
    assert!(matches!(err, tidepool_mysql::MysqlError::Row(_)), "{err:?}");
    assert_eq!(
        tidepool::Classify::failure_kind(&err),
        tidepool::FailureKind::Client
    );
    assert!(!conn.in_transaction());
}
