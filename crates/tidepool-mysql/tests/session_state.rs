//! Under the Clean policy no session state survives a return: user
//! variables, session settings, temporary tables and named locks are reset
//! with COM_RESET_CONNECTION on the same connection.

use tidepool::{Pooled, Queryable, Value};
use tidepool_mysql::ResetPolicy;

mod support;

#[tokio::test]
async fn session_state_does_not_leak_to_the_next_borrower_under_clean() {
    let Some(url) = support::url("mysql_session_clean") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Clean).await;
    let (id, server_id) = {
        let mut conn = pool.get().await.unwrap();
        conn.execute_values("SET @tp_leak = 42", &[]).await.unwrap();
        conn.execute_values("SET SESSION sql_mode = 'ANSI_QUOTES'", &[])
            .await
            .unwrap();
        conn.execute_values("CREATE TEMPORARY TABLE tp_my_tmp (x INT)", &[])
            .await
            .unwrap();
        let lock = conn
            .query_one_values("SELECT GET_LOCK('tp_my_lock', 0) AS got", &[])
            .await
            .unwrap();
        assert_eq!(lock.get("got"), Some(&Value::Int(1)));
        conn.begin().await.unwrap();
        (Pooled::id(&conn), conn.connection_id())
    };
    let mut conn = pool.get().await.unwrap();
    assert_eq!(
        Pooled::id(&conn),
        id,
        "the same connection, reset rather than replaced"
    );
    assert_eq!(conn.connection_id(), server_id);
    assert!(!support::server_in_transaction(&mut conn).await);
    let row = conn
        .query_one_values(
            "SELECT @tp_leak IS NULL AS var_gone, @@SESSION.sql_mode = @@GLOBAL.sql_mode AS mode_reset, IS_USED_LOCK('tp_my_lock') IS NULL AS lock_free",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.values(),
        [Value::Int(1), Value::Int(1), Value::Int(1)],
        "{row:?}"
    );
    let err = conn
        .query_values("SELECT * FROM tp_my_tmp", &[])
        .await
        .unwrap_err();
    assert_eq!(
        err.server_code(),
        Some(1146),
        "the temporary table is gone: {err}"
    );
}

#[tokio::test]
async fn under_fast_without_session_tracking_session_state_is_kept_but_transactions_are_still_rolled_back(
) {
    let Some(url) = support::url("mysql_session_fast") else {
        return;
    };
    // With the dirty bits on (the default) Fast resets the variable: see
    // tests/session_dirty_bits.rs.
    let manager = tidepool_mysql::MysqlManager::from_url(&url)
        .unwrap()
        .with_session_tracking(false);
    let pool = tidepool::Pool::builder(manager)
        .max_size(1)
        .build()
        .await
        .unwrap();
    {
        let mut conn = pool.get().await.unwrap();
        conn.execute_values("SET @tp_kept = 7", &[]).await.unwrap();
        conn.begin().await.unwrap();
    }
    let mut conn = pool.get().await.unwrap();
    assert!(!support::server_in_transaction(&mut conn).await);
    let row = conn
        .query_one_values("SELECT @tp_kept AS v", &[])
        .await
        .unwrap();
    assert_eq!(
        row.get("v"),
        Some(&Value::Int(7)),
        "Fast without session tracking does not reset the session"
    );
}

#[tokio::test]
async fn verified_pings_on_every_return_and_keeps_the_connection() {
    let Some(url) = support::url("mysql_session_verified") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Verified).await;
    let id = {
        let mut conn = pool.get().await.unwrap();
        conn.begin().await.unwrap();
        Pooled::id(&conn)
    };
    let mut conn = pool.get().await.unwrap();
    assert_eq!(Pooled::id(&conn), id);
    assert!(!support::server_in_transaction(&mut conn).await);
}

#[tokio::test]
async fn under_clean_a_checkout_that_ran_nothing_needs_no_reset() {
    use tidepool::Manager;
    let Some(url) = support::url("mysql_session_untouched") else {
        return;
    };
    let manager = tidepool_mysql::MysqlManager::from_url(&url)
        .unwrap()
        .with_reset_policy(ResetPolicy::Clean);
    let mut conn = manager.connect().await.unwrap();
    manager.validate(&mut conn).await.unwrap();
    assert!(
        !manager.needs_reset(&conn),
        "a validation ping is not use of the session"
    );
    conn.execute_values("SET @tp_x = 1", &[]).await.unwrap();
    assert!(manager.needs_reset(&conn));
    manager.reset(&mut conn).await.unwrap();
    assert!(!manager.needs_reset(&conn));
}
