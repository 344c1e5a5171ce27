//! Create, read, update, delete through the pool and the uniform query face.

use tidepool::{Queryable, Value};
use tidepool_postgres::ResetPolicy;

mod support;

#[tokio::test]
async fn rows_written_through_the_pool_read_back_updated_and_deleted() {
    let Some(url) = support::url("crud_roundtrip") else {
        return;
    };
    let pool = support::pool(&url, 2, ResetPolicy::Fast).await;
    let table = support::table("crud");
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(&format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int4 PRIMARY KEY, name text NOT NULL)"))
        .await
        .unwrap();

    let insert = format!("INSERT INTO {table} (id, name) VALUES ($1, $2)");
    for (id, name) in [(1, "ada"), (2, "grace"), (3, "edsger")] {
        assert_eq!(
            conn.execute_values(&insert, &[Value::Int(id), name.into()])
                .await
                .unwrap(),
            1
        );
    }
    let rows = conn
        .query_values(&format!("SELECT id, name FROM {table} ORDER BY id"), &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].get("name"), Some(&Value::Text("grace".into())));
    assert_eq!(rows[2].get(0), Some(&Value::Int(3)));

    let updated = conn
        .execute_values(
            &format!("UPDATE {table} SET name = $1 WHERE id = $2"),
            &["alan".into(), Value::Int(2)],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
    let row = conn
        .query_one_values(
            &format!("SELECT name FROM {table} WHERE id = $1"),
            &[Value::Int(2)],
        )
        .await
        .unwrap();
    assert_eq!(row.get("name").and_then(Value::as_str), Some("alan"));

    assert_eq!(
        conn.execute_values(
            &format!("DELETE FROM {table} WHERE id <> $1"),
            &[Value::Int(1)]
        )
        .await
        .unwrap(),
        2
    );
    let count = conn
        .query_one_values(&format!("SELECT count(*) AS n FROM {table}"), &[])
        .await
        .unwrap();
    assert_eq!(count.get("n"), Some(&Value::Int(1)));

    let err = conn
        .query_one_values(&format!("SELECT id FROM {table} WHERE id = 99"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, tidepool_postgres::PgError::RowCount { got: 0, .. }),
        "{err:?}"
    );

    conn.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
    drop(conn);
    pool.close(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_statement_cache_reuses_statements_and_stays_bounded() {
    let Some(url) = support::url("statement_cache") else {
        return;
    };
    let manager = tidepool_postgres::PgManager::builder_from_url(&url)
        .unwrap()
        .statement_cache_capacity(4)
        .build()
        .unwrap();
    let mut conn = manager.connect_one().await.unwrap();
    for i in 0..10 {
        let sql = format!("SELECT {i}::int8 AS n");
        let row = conn.query_one_values(&sql, &[]).await.unwrap();
        assert_eq!(row.get("n"), Some(&Value::Int(i)));
        assert!(conn.is_statement_cached(&sql));
    }
    assert_eq!(conn.cached_statements(), 4);
    // Evicted statements are closed on the server too.
    let prepared = conn
        .query_one_values("SELECT count(*) AS n FROM pg_prepared_statements", &[])
        .await
        .unwrap();
    assert!(
        prepared.get("n").and_then(Value::as_i64).unwrap() <= 5,
        "{prepared:?}"
    );
}

#[tokio::test]
async fn transaction_pooler_mode_uses_no_named_prepared_statements() {
    let Some(url) = support::url("pooler_mode") else {
        return;
    };
    let manager = tidepool_postgres::PgManager::builder_from_url(&url)
        .unwrap()
        .transaction_pooler(true)
        .build()
        .unwrap();
    let mut conn = manager.connect_one().await.unwrap();
    let table = support::table("pooler");
    conn.batch_execute(&format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int2, n numeric, at timestamptz, ok bool, t text)"))
        .await
        .unwrap();
    let at = chrono::NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_micro_opt(12, 30, 1, 5)
        .unwrap();
    conn.execute_values(
        &format!("INSERT INTO {table} VALUES ($1, $2, $3, $4, $5)"),
        &[
            Value::Int(7),
            Value::Float(1.25),
            Value::Timestamp(at),
            Value::Bool(true),
            Value::Null,
        ],
    )
    .await
    .unwrap();
    let row = conn
        .query_one_values(
            &format!("SELECT id, n, at, ok, t FROM {table} WHERE id = $1"),
            &[Value::Int(7)],
        )
        .await
        .unwrap();
    assert_eq!(
        row.values(),
        &[
            Value::Int(7),
            Value::Decimal("1.25".parse().unwrap()),
            Value::TimestampTz(at.and_utc()),
            Value::Bool(true),
            Value::Null
        ]
    );
    let row = conn
        .query_one_values("SELECT count(*) AS n FROM pg_prepared_statements", &[])
        .await
        .unwrap();
    assert_eq!(row.get("n"), Some(&Value::Int(0)));
    assert_eq!(conn.cached_statements(), 0);
    conn.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_config_built_from_fields_connects_and_native_queries_are_tracked() {
    let Some(url) = support::url("config_from_fields") else {
        return;
    };
    let (host, port) = tidepool_testkit::host_port(&url, 5432).unwrap();
    let config = tidepool_postgres::PgConfig::new()
        .host(host)
        .port(port)
        .user("postgres")
        .dbname("test")
        .application_name("tidepool-fields")
        .ssl_mode(tidepool_postgres::SslMode::Disable);
    let manager = tidepool_postgres::PgManager::builder(config)
        .build()
        .unwrap();
    let mut conn = manager.connect_one().await.unwrap();
    let row = conn
        .query_one_native(
            "SELECT current_setting('application_name') AS app, $1::int8 + 1 AS n",
            &[&41i64],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>("app"), "tidepool-fields");
    assert_eq!(row.get::<_, i64>("n"), 42);
    conn.execute_native("BEGIN", &[]).await.unwrap();
    assert_eq!(conn.tx_state(), tidepool_postgres::TxState::Active);
    assert!(manager_needs_reset(&manager, &conn));
    conn.execute_native("COMMIT", &[]).await.unwrap();
    assert!(!manager_needs_reset(&manager, &conn));
    // The native client is invisible to tracking: touching it means a
    // rollback on return.
    assert!(!conn.is_closed());
    assert!(manager_needs_reset(&manager, &conn));
}

#[tokio::test]
async fn query_one_native_wants_exactly_one_row_and_counts_the_others() {
    let Some(url) = support::url("query_one_native") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    let mut conn = pool.get().await.unwrap();
    for (rows, want) in [(0i32, 0usize), (3, 3)] {
        let err = conn
            .query_one_native("SELECT g FROM generate_series(1, $1) AS g", &[&rows])
            .await
            .unwrap_err();
        assert!(
            matches!(err, tidepool_postgres::PgError::RowCount { got, .. } if got == want),
            "{rows} rows: {err:?}"
        );
        // Every row was read: nothing is left in flight, and the
        // connection is usable at once.
        assert!(!manager_needs_reset(pool.manager(), &conn));
        let one = conn
            .query_one_native("SELECT g FROM generate_series(1, $1) AS g", &[&1i32])
            .await
            .unwrap();
        assert_eq!(one.get::<_, i32>("g"), 1);
    }
}

fn manager_needs_reset(
    manager: &tidepool_postgres::PgManager,
    conn: &tidepool_postgres::PgConnection,
) -> bool {
    tidepool::Manager::needs_reset(manager, conn)
}
