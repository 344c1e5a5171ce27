//! Under the clean policy, session state (settings, temporary tables,
//! advisory locks) does not leak to the next borrower; under the fast
//! policy it does (which is why clean exists).

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
        conn.query("SELECT pg_advisory_lock($1)", &[Value::Int(lock_key)])
            .await
            .unwrap();
        // Also inside a transaction that is left open: clean must roll back
        // first, never run its statements inside the transaction.
        conn.begin().await.unwrap();
        conn.execute("SET LOCAL work_mem = '7MB'", &[])
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
        .query_one(
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
        .query_one(
            "SELECT pg_try_advisory_lock($1) AS got",
            &[Value::Int(lock_key)],
        )
        .await
        .unwrap();
    assert_eq!(got.get("got"), Some(&Value::Bool(true)));
}

#[tokio::test]
async fn session_settings_survive_a_return_under_the_fast_policy() {
    let Some(url) = support::url("session_state_fast") else {
        return;
    };
    let pool = support::pool(&support::plain(&url), 1, ResetPolicy::Fast).await;
    {
        let mut conn = pool.get().await.unwrap();
        conn.batch_execute("SET application_name = 'kept'")
            .await
            .unwrap();
    }
    let mut conn = pool.get().await.unwrap();
    let row = conn
        .query_one("SELECT current_setting('application_name') AS app", &[])
        .await
        .unwrap();
    assert_eq!(row.get("app").and_then(Value::as_str), Some("kept"));
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
    conn.query("SELECT 1", &[]).await.unwrap();
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
    conn.query("SELECT 1", &[]).await.unwrap();
    assert!(!conn.needs_reset(ResetPolicy::Clean));
    conn.begin().await.unwrap();
    assert!(conn.needs_reset(ResetPolicy::Fast));
}
