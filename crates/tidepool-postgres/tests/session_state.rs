//! Under the clean policy, every kind of session state the docs name
//! (settings, role and session authorization, temporary tables, advisory
//! locks, LISTEN, cursors WITH HOLD, sequences' currval, SQL-level prepared
//! statements) does not leak to the next borrower, while the pool's own
//! statement cache survives; under the fast policy what the dirty bits saw
//! is reset too.

use tidepool::{Pooled, Queryable, Value};
use tidepool_postgres::ResetPolicy;

mod support;

#[tokio::test]
async fn settings_temp_tables_and_advisory_locks_do_not_leak_under_the_clean_policy() {
    let Some(url) = support::url("session_state_clean") else {
        return;
    };
    let pool = support::pool(&support::plain(&url), 1, ResetPolicy::Clean).await;
    let lock_key = 700_000 + i64::from(std::process::id() % 100_000);
    let first;
    {
        let mut conn = pool.get().await.unwrap();
        first = Pooled::id(&conn);
        conn.batch_execute("SET statement_timeout = '123s'; SET application_name = 'leaky'")
            .await
            .unwrap();
        conn.batch_execute("CREATE TEMP TABLE tp_leak (x int)")
            .await
            .unwrap();
        conn.query_values("SELECT pg_advisory_lock($1)", &[Value::Int(lock_key)])
            .await
            .unwrap();
        // Also inside a transaction that is left open: clean must roll back
        // first, never run its statements inside the transaction.
        conn.begin().await.unwrap();
        conn.execute_values("SET LOCAL work_mem = '7MB'", &[])
            .await
            .unwrap();
    }
    let mut conn = pool.get().await.unwrap();
    assert_eq!(
        Pooled::id(&conn),
        first,
        "the connection was replaced, not cleaned"
    );
    let row = conn
        .query_one_values(
            "SELECT current_setting('statement_timeout') AS st, current_setting('application_name') AS app, \
             to_regclass('pg_temp.tp_leak') IS NULL AS no_temp, \
             (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks",
            &[],
        )
        .await
        .unwrap();
    assert_ne!(row.get("st").and_then(Value::as_str), Some("2min 3s"));
    assert_ne!(row.get("app").and_then(Value::as_str), Some("leaky"));
    assert_eq!(row.get("no_temp"), Some(&Value::Bool(true)));
    assert_eq!(row.get("locks"), Some(&Value::Int(0)));
    // Another session can take the advisory lock now.
    drop(conn);
    let manager = tidepool_postgres::PgManager::from_url(&support::plain(&url)).unwrap();
    let mut other = manager.connect_one().await.unwrap();
    let got = other
        .query_one_values(
            "SELECT pg_try_advisory_lock($1) AS got",
            &[Value::Int(lock_key)],
        )
        .await
        .unwrap();
    assert_eq!(got.get("got"), Some(&Value::Bool(true)));
}

#[tokio::test]
async fn session_settings_a_borrower_set_are_reset_under_the_fast_policy_too() {
    // Fast's dirty bits (tests/dirty_bits.rs has one test per kind).
    let Some(url) = support::url("session_state_fast") else {
        return;
    };
    let pool = support::pool(&support::plain(&url), 1, ResetPolicy::Fast).await;
    {
        let conn = pool.get().await.unwrap();
        conn.batch_execute("SET application_name = 'kept'")
            .await
            .unwrap();
    }
    let mut conn = pool.get().await.unwrap();
    let row = conn
        .query_one_values("SELECT current_setting('application_name') AS app", &[])
        .await
        .unwrap();
    assert_ne!(row.get("app").and_then(Value::as_str), Some("kept"));
}

#[tokio::test]
async fn each_policy_asks_for_a_reset_exactly_when_it_promises_to() {
    let Some(url) = support::url("reset_policies") else {
        return;
    };
    let url = support::plain(&url);
    let manager = tidepool_postgres::PgManager::from_url(&url).unwrap();
    let mut conn = manager.connect_one().await.unwrap();
    assert!(!conn.needs_reset(ResetPolicy::Fast));
    assert!(conn.needs_reset(ResetPolicy::Verified));
    assert!(
        !conn.needs_reset(ResetPolicy::Clean),
        "an unused connection has no session state to clean"
    );
    conn.query_values("SELECT 1", &[]).await.unwrap();
    assert!(!conn.needs_reset(ResetPolicy::Fast));
    assert!(conn.needs_reset(ResetPolicy::Clean));
    conn.reset(ResetPolicy::Clean).await.unwrap();
    assert!(!conn.needs_reset(ResetPolicy::Clean));
    conn.reset(ResetPolicy::Verified).await.unwrap();

    // Behind a transaction pooler there is no session to clean.
    let pooled = tidepool_postgres::PgManager::builder_from_url(&url)
        .unwrap()
        .transaction_pooler(true)
        .build()
        .unwrap();
    let mut conn = pooled.connect_one().await.unwrap();
    conn.query_values("SELECT 1", &[]).await.unwrap();
    assert!(!conn.needs_reset(ResetPolicy::Clean));
    conn.begin().await.unwrap();
    assert!(conn.needs_reset(ResetPolicy::Fast));
}

#[tokio::test]
async fn every_kind_of_session_state_the_docs_name_is_cleared_and_the_statement_cache_survives() {
    let Some(url) = support::url("session_state_every_kind") else {
        return;
    };
    let url = support::plain(&url);
    let pool = support::pool(&url, 1, ResetPolicy::Clean).await;
    let sequence = support::table("seq");
    let cached = "SELECT $1::int8 + 1 AS next";
    let first;
    {
        let mut conn = pool.get().await.unwrap();
        first = Pooled::id(&conn);
        conn.batch_execute(&format!(
            "DROP SEQUENCE IF EXISTS {sequence}; CREATE SEQUENCE {sequence}"
        ))
        .await
        .unwrap();
        // The pool's statement cache: protocol-level, kept across returns.
        conn.query_one_values(cached, &[Value::Int(1)])
            .await
            .unwrap();
        conn.prepare_cached("SELECT 2").await.unwrap();
        conn.batch_execute(&format!(
            "SET work_mem = '9MB'; \
             CREATE TEMP TABLE tp_every (x int); \
             SELECT pg_advisory_lock(4242); \
             LISTEN tp_every_channel; \
             DECLARE tp_held CURSOR WITH HOLD FOR SELECT 1; \
             SELECT nextval('{sequence}'); \
             PREPARE p AS SELECT 1; \
             PREPARE \"Odd name\" (int) AS SELECT $1; \
             SET ROLE pg_monitor"
        ))
        .await
        .unwrap();
    }
    let mut conn = pool.get().await.unwrap();
    assert_eq!(
        Pooled::id(&conn),
        first,
        "the connection was replaced, not cleaned"
    );
    let row = conn
        .query_one_values(
            "SELECT current_setting('work_mem') AS work_mem, \
             current_user = session_user AS own_role, \
             to_regclass('pg_temp.tp_every') IS NULL AS no_temp, \
             (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks, \
             (SELECT count(*) FROM pg_listening_channels()) AS channels, \
             (SELECT count(*) FROM pg_cursors WHERE is_holdable) AS cursors, \
             (SELECT count(*) FROM pg_prepared_statements WHERE from_sql) AS sql_prepared",
            &[],
        )
        .await
        .unwrap();
    assert_ne!(row.get("work_mem").and_then(Value::as_str), Some("9MB"));
    assert_eq!(row.get("own_role"), Some(&Value::Bool(true)));
    assert_eq!(row.get("no_temp"), Some(&Value::Bool(true)));
    assert_eq!(row.get("locks"), Some(&Value::Int(0)));
    assert_eq!(row.get("channels"), Some(&Value::Int(0)));
    assert_eq!(row.get("cursors"), Some(&Value::Int(0)));
    assert_eq!(row.get("sql_prepared"), Some(&Value::Int(0)));
    let err = conn
        .query_one(&format!("SELECT currval('{sequence}')"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("55000"), "{err}");
    // The next borrower's own PREPARE p works (42P05 before the fix).
    conn.batch_execute("PREPARE p AS SELECT 2; DEALLOCATE p")
        .await
        .unwrap();
    // The cache is intact: its statements still run, none was prepared
    // again.
    assert!(conn.is_statement_cached(cached));
    assert!(conn.is_statement_cached("SELECT 2"));
    let cached_before = conn.cached_statements();
    let next = conn
        .query_one_values(cached, &[Value::Int(41)])
        .await
        .unwrap();
    assert_eq!(next.get("next"), Some(&Value::Int(42)));
    assert_eq!(conn.cached_statements(), cached_before);
    conn.batch_execute(&format!("DROP SEQUENCE {sequence}"))
        .await
        .unwrap();
}
