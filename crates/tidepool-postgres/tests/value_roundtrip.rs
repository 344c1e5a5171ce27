//! Every `Value` goes to the server and back unchanged, common column types
//! read into the right `Value`, and parameters are converted to the column's
//! declared type instead of being refused.

use chrono::NaiveDate;
use tidepool::{Queryable, Value};

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
        "CREATE TEMP TABLE {table} (b bool, i int8, f float8, t text, y bytea, ts timestamp, n text)"
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
    ];
    conn.execute_values(
        &format!("INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7)"),
        &values,
    )
    .await
    .unwrap();
    let row = conn
        .query_one_values(&format!("SELECT b, i, f, t, y, ts, n FROM {table}"), &[])
        .await
        .unwrap();
    assert_eq!(row.values(), values.as_slice());
    assert_eq!(row.columns(), &["b", "i", "f", "t", "y", "ts", "n"]);
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
        .unwrap();
    assert_eq!(
        row.values(),
        &[
            Value::Int(1),
            Value::Int(2),
            Value::Int(3),
            Value::Float(1.5),
            Value::Float(2.25),
            Value::Text("12345.678".into()),
            Value::Text("-0.0005".into()),
            Value::Text("x".into()),
            Value::Text("y ".into()),
            Value::Bytes(vec![0, 255]),
            Value::Timestamp(ts),
            Value::Timestamp(tstz),
            Value::Bool(true),
            Value::Null,
            Value::Text("2020-01-02".into()),
            Value::Text("{\"a\": 1}".into()),
            Value::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()),
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
            Value::Text("5.50".into()),
            Value::Float(2.0),
            Value::Timestamp(at),
            Value::Text("2021-06-01".into()),
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
