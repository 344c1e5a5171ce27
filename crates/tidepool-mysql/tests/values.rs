//! Every `tidepool::Value` kind survives a round trip through MariaDB, by
//! both protocols (text without parameters, binary with them).

use chrono::NaiveDate;
use tidepool::{Queryable, Value};

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
        "n INT NULL, i BIGINT, f DOUBLE, t TEXT, b BLOB, flag BOOLEAN, at DATETIME(6), d DATE",
    )
    .await;
    let at = NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_micro_opt(23, 59, 58, 123_456)
        .unwrap();
    let day = NaiveDate::from_ymd_opt(1999, 12, 31)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let values = vec![
        Value::Null,
        Value::Int(i64::MIN),
        Value::Float(-1.5e300),
        Value::Text("tidepool ✓ 'quoted' \"double\" \\ back".into()),
        Value::Bytes(vec![0, 1, 2, 255, 0]),
        Value::Bool(true),
        Value::Timestamp(at),
        Value::Timestamp(day),
    ];
    conn.execute_values(
        "INSERT INTO tp_my_values VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
    assert_eq!(text.columns(), ["n", "i", "f", "t", "b", "flag", "at", "d"]);
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
    let row = conn
        .query_one_values(
            "SELECT CAST(18446744073709551615 AS UNSIGNED) AS big, CAST(1.25 AS DECIMAL(10,3)) AS num, TIME '-838:59:59' AS t, 7 AS small",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get("big"),
        Some(&Value::Text("18446744073709551615".into()))
    );
    assert_eq!(row.get("num"), Some(&Value::Text("1.250".into())));
    assert_eq!(row.get("t"), Some(&Value::Text("-838:59:59".into())));
    assert_eq!(row.get("small"), Some(&Value::Int(7)));
}
