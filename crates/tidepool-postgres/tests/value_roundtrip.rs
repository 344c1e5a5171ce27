//! Every `Value` goes to the server and back unchanged, common column types
//! read into the right `Value`, parameters are converted to the column's
//! declared type instead of being refused, and rows read into Rust types.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::json;
use tidepool::{Decimal, FromRow, Queryable, RetryPolicy, RowError, Value, ValueError};

mod support;

async fn conn(test: &str) -> Option<tidepool_postgres::PgConnection> {
    let url = support::url(test)?;
    Some(
        tidepool_postgres::PgManager::from_url(&url)
            .unwrap()
            .connect_one()
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn every_value_type_round_trips_through_a_typed_column() {
    let Some(mut conn) = conn("value_roundtrip").await else {
        return;
    };
    let table = support::table("values");
    conn.batch_execute(&format!(
        "CREATE TEMP TABLE {table} (b bool, i int8, f float8, t text, y bytea, ts timestamp, n text, \
         d date, tm time, tz timestamptz, num numeric, u uuid, jb jsonb, j json)"
    ))
    .await
    .unwrap();
    let at = NaiveDate::from_ymd_opt(1999, 12, 31)
        .unwrap()
        .and_hms_micro_opt(23, 59, 59, 999_999)
        .unwrap();
    let values = vec![
        Value::Bool(true),
        Value::Int(i64::MIN),
        Value::Float(-1.5e300),
        Value::Text("héllo, 'world' \\ ✓".into()),
        Value::Bytes(vec![0, 1, 2, 255, 0]),
        Value::Timestamp(at),
        Value::Null,
        Value::Date(NaiveDate::from_ymd_opt(-44, 3, 15).unwrap()),
        Value::Time(NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap()),
        Value::TimestampTz(at.and_utc()),
        // More digits than a 128-bit decimal holds: none may be lost.
        Value::Decimal(exact_decimal()),
        Value::Uuid(uuid::Uuid::from_u128(
            0xa0ee_bc99_9c0b_4ef8_bb6d_6bb9_bd38_0a11,
        )),
        Value::Json(json!({"a": [1, 2.5, "x ✓"], "b": null, "c": {"d": true}})),
        Value::Json(json!([1, "two"])),
    ];
    conn.execute_values(
        &format!("INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"),
        &values,
    )
    .await
    .unwrap();
    let row = conn
        .query_one_values(
            &format!("SELECT b, i, f, t, y, ts, n, d, tm, tz, num, u, jb, j FROM {table}"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.values(), values.as_slice());
    assert_eq!(
        row.columns(),
        &["b", "i", "f", "t", "y", "ts", "n", "d", "tm", "tz", "num", "u", "jb", "j"]
    );
    // And each value is found again by a parameter of its own type.
    let found = conn
        .query_one_values(
            &format!(
                "SELECT count(*) AS n FROM {table} WHERE d = $1 AND tm = $2 AND tz = $3 AND num = $4 AND u = $5 AND jb = $6"
            ),
            &values[7..13],
        )
        .await
        .unwrap();
    assert_eq!(found.get("n"), Some(&Value::Int(1)));
}

fn exact_decimal() -> Decimal {
    format!(
        "-{}.{}",
        "1234567890".repeat(4),
        "0987654321".repeat(3) + "0"
    )
    .parse()
    .unwrap()
}

#[tokio::test]
async fn in_pooler_mode_each_new_value_type_says_what_it_is() {
    let Some(url) = support::url("value_roundtrip_pooler") else {
        return;
    };
    let mut conn = tidepool_postgres::PgManager::builder_from_url(&url)
        .unwrap()
        .transaction_pooler(true)
        .build()
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    // Nothing is prepared in pooler mode and `SELECT $1` has no column to
    // infer a type from: each value must carry its own.
    let values = [
        Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
        Value::Time(NaiveTime::from_hms_micro_opt(0, 0, 0, 1).unwrap()),
        Value::TimestampTz(DateTime::<Utc>::from_timestamp(1_700_000_000, 123_456_000).unwrap()),
        Value::Decimal("0.000000000000000000000000000000000001".parse().unwrap()),
        Value::Uuid(uuid::Uuid::nil()),
        Value::Json(json!({"nested": [null, 1.5]})),
    ];
    for value in values {
        let row = conn
            .query_one_values("SELECT $1 AS v", std::slice::from_ref(&value))
            .await
            .unwrap();
        assert_eq!(row.get("v"), Some(&value));
    }
}

#[tokio::test]
async fn special_postgres_values_are_kept_rather_than_wrapped_or_refused() {
    let Some(mut conn) = conn("value_specials").await else {
        return;
    };
    let row = conn
        .query_one_values(
            "SELECT '24:00:00'::time AS midnight_end, 'NaN'::numeric AS nan, \
             0.100::numeric AS scaled, '{}'::jsonb AS empty",
            &[],
        )
        .await
        .unwrap();
    // chrono would wrap 24:00 to 00:00; text keeps it.
    assert_eq!(
        row.get("midnight_end"),
        Some(&Value::Text("24:00:00".into()))
    );
    assert_eq!(
        row.get("nan"),
        Some(&Value::Decimal("NaN".parse().unwrap()))
    );
    assert_eq!(
        row.get("scaled"),
        Some(&Value::Decimal("0.100".parse().unwrap()))
    );
    assert_eq!(row.get("empty"), Some(&Value::Json(json!({}))));
}

#[tokio::test]
async fn the_new_values_convert_to_other_declared_column_types() {
    let Some(mut conn) = conn("value_crosstypes").await else {
        return;
    };
    let table = support::table("crosstypes");
    conn.batch_execute(&format!(
        "CREATE TEMP TABLE {table} (a timestamptz, b timestamp, c float8, d text, e text, f numeric(6,1), g jsonb, h date)"
    ))
    .await
    .unwrap();
    let day = NaiveDate::from_ymd_opt(2021, 6, 1).unwrap();
    let instant = day.and_hms_opt(8, 30, 0).unwrap().and_utc();
    let id = uuid::Uuid::from_u128(42);
    conn.execute_values(
        &format!("INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
        &[
            Value::Date(day),
            Value::TimestampTz(instant),
            Value::Decimal("2.5".parse().unwrap()),
            Value::Uuid(id),
            Value::Json(json!({"k": 1})),
            Value::Int(7),
            Value::Text("[1, 2]".into()),
            Value::TimestampTz(instant),
        ],
    )
    .await
    .unwrap();
    let row = conn
        .query_one_values(&format!("SELECT * FROM {table}"), &[])
        .await
        .unwrap();
    assert_eq!(
        row.values(),
        &[
            // A date is midnight UTC, whatever the session's TimeZone.
            Value::TimestampTz(day.and_time(NaiveTime::MIN).and_utc()),
            // An instant in a zoneless column is its UTC wall-clock time.
            Value::Timestamp(instant.naive_utc()),
            Value::Float(2.5),
            Value::Text(id.to_string()),
            Value::Text("{\"k\":1}".into()),
            Value::Decimal("7.0".parse().unwrap()),
            Value::Json(json!([1, 2])),
            Value::Date(day),
        ]
    );
}

#[tokio::test]
async fn rows_read_into_rust_types_with_range_checks_and_named_errors() {
    let Some(mut conn) = conn("value_typed_rows").await else {
        return;
    };
    let row = conn
        .query_one_values(
            "SELECT 7::int4 AS id, 'ada'::text AS name, NULL::text AS email, \
             sum(x)::numeric AS total, 70000::int4 AS big, '2024-02-29'::date AS day, \
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '{\"a\": 1}'::json AS doc \
             FROM (VALUES (1), (2)) AS v(x)",
            &[],
        )
        .await
        .unwrap();
    let id: i32 = row.try_get("id").unwrap();
    let name: String = row.try_get("name").unwrap();
    let email: Option<String> = row.try_get("email").unwrap();
    // sum() of integers is numeric in PostgreSQL: it reads as an integer
    // because it has no fraction.
    let total: i64 = row.try_get("total").unwrap();
    let day: NaiveDate = row.try_get("day").unwrap();
    let u: uuid::Uuid = row.try_get("u").unwrap();
    let doc: serde_json::Value = row.try_get("doc").unwrap();
    assert_eq!((id, name.as_str(), email, total), (7, "ada", None, 3));
    assert_eq!(day, NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
    assert_eq!(u.to_string(), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(doc, json!({"a": 1}));
    assert_eq!(
        row.try_get::<i16, _>("big"),
        Err(RowError::Value {
            column: "big".into(),
            error: ValueError::OutOfRange {
                expected: "i16",
                found: "int"
            }
        })
    );
    assert_eq!(
        row.try_get::<String, _>("email"),
        Err(RowError::Value {
            column: "email".into(),
            error: ValueError::UnexpectedNull { expected: "String" }
        })
    );
    let pair = conn
        .query_one_values("SELECT 1::int2, 'x'::text", &[])
        .await
        .unwrap();
    let (n, x): (u8, String) = FromRow::from_row(&pair).unwrap();
    assert_eq!((n, x.as_str()), (1, "x"));
}

#[tokio::test]
async fn a_row_error_in_a_transaction_body_rolls_back_through_question_mark() {
    let Some(mut conn) = conn("value_row_error_tx").await else {
        return;
    };
    let outcome = tidepool::run_in_transaction(&mut conn, RetryPolicy::none(), async |tx| {
        let row = tx.query_one_values("SELECT 'x'::text AS n", &[]).await?;
        let n: i64 = row.try_get("n")?;
        Ok(n)
    })
    .await;
    let err = outcome.unwrap_err();
    assert!(matches!(err, tidepool_postgres::PgError::Row(_)), "{err:?}");
    assert_eq!(err.to_string(), "column `n`: expected i64, found text");
    assert_eq!(
        tidepool::Classify::failure_kind(&err),
        tidepool::FailureKind::Client
    );
    assert!(!conn.in_transaction());
}

#[tokio::test]
async fn common_column_types_read_into_the_right_values() {
    let Some(mut conn) = conn("column_types").await else {
        return;
    };
    let row = conn
        .query_one_values(
            "SELECT 1::int2 AS a, 2::int4 AS b, 3::int8 AS c, 1.5::float4 AS d, 2.25::float8 AS e, \
             12345.678::numeric AS f, -0.0005::numeric AS g, 'x'::varchar AS h, 'y'::char(2) AS i, \
             '\\x00ff'::bytea AS j, '2020-01-02 03:04:05'::timestamp AS k, \
             '2020-01-02 03:04:05+02'::timestamptz AS l, true AS m, NULL::int4 AS n, \
             '2020-01-02'::date AS o, '{\"a\": 1}'::jsonb AS p, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS q",
            &[],
        )
        .await
        .unwrap();
    let ts = NaiveDate::from_ymd_opt(2020, 1, 2)
        .unwrap()
        .and_hms_opt(3, 4, 5)
        .unwrap();
    let tstz = NaiveDate::from_ymd_opt(2020, 1, 2)
        .unwrap()
        .and_hms_opt(1, 4, 5)
        .unwrap()
        .and_utc();
    assert_eq!(
        row.values(),
        &[
            Value::Int(1),
            Value::Int(2),
            Value::Int(3),
            Value::Float(1.5),
            Value::Float(2.25),
            Value::Decimal("12345.678".parse().unwrap()),
            Value::Decimal("-0.0005".parse().unwrap()),
            Value::Text("x".into()),
            Value::Text("y ".into()),
            Value::Bytes(vec![0, 255]),
            Value::Timestamp(ts),
            Value::TimestampTz(tstz),
            Value::Bool(true),
            Value::Null,
            Value::Date(NaiveDate::from_ymd_opt(2020, 1, 2).unwrap()),
            Value::Json(json!({"a": 1})),
            Value::Uuid(uuid::Uuid::from_u128(
                0xa0ee_bc99_9c0b_4ef8_bb6d_6bb9_bd38_0a11
            )),
        ]
    );
}

#[tokio::test]
async fn parameters_are_converted_to_the_declared_column_type() {
    let Some(mut conn) = conn("declared_types").await else {
        return;
    };
    let table = support::table("declared");
    conn.batch_execute(&format!(
        "CREATE TEMP TABLE {table} (a int2, b int4, c numeric(10,2), d float4, e timestamptz, f date, g text, h varchar(10))"
    ))
    .await
    .unwrap();
    let at = NaiveDate::from_ymd_opt(2021, 6, 1)
        .unwrap()
        .and_hms_opt(8, 0, 0)
        .unwrap();
    conn.execute_values(
        &format!("INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
        &[
            Value::Int(12),
            Value::Int(34),
            Value::Float(5.5),
            Value::Int(2),
            Value::Timestamp(at),
            Value::Timestamp(at),
            Value::Int(9),
            "v".into(),
        ],
    )
    .await
    .unwrap();
    let row = conn
        .query_one_values(
            &format!("SELECT a, b, c, d, e, f, g, h FROM {table} WHERE b = $1 AND a = $2"),
            &[Value::Int(34), Value::Int(12)],
        )
        .await
        .unwrap();
    assert_eq!(
        row.values(),
        &[
            Value::Int(12),
            Value::Int(34),
            Value::Decimal("5.50".parse().unwrap()),
            Value::Float(2.0),
            Value::TimestampTz(at.and_utc()),
            Value::Date(NaiveDate::from_ymd_opt(2021, 6, 1).unwrap()),
            Value::Text("9".into()),
            Value::Text("v".into()),
        ]
    );
    // Out of range for the declared type: a typed parameter error, not a panic.
    let err = conn
        .execute_values(
            &format!("INSERT INTO {table} (a) VALUES ($1)"),
            &[Value::Int(1 << 20)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            tidepool_postgres::PgError::Parameter { position: 1, .. }
        ),
        "{err:?}"
    );
    assert_eq!(
        tidepool::Classify::failure_kind(&err),
        tidepool::FailureKind::Client
    );
    // The connection is still usable and not in a transaction.
    assert!(!conn.in_transaction());
    let err = conn
        .execute_values("SELECT $1::int4", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            tidepool_postgres::PgError::ParameterCount {
                expected: 1,
                got: 0
            }
        ),
        "{err:?}"
    );
}
