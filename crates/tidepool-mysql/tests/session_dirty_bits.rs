//! Session-state dirty bits under the default `Fast` policy: for each kind
//! of session state MySQL/MariaDB keep, a borrower changes it through the
//! pool, returns the connection, and the next borrower of the same
//! connection (a pool of one) finds none of it on the server — reset with
//! one `COM_RESET_CONNECTION` — while a checkout that changed nothing sends
//! nothing on return. State changed from inside a stored function is not
//! seen by `Fast`; `Clean` covers it.

use tidepool::{Pool, Pooled, Queryable, Value};
use tidepool_mysql::{MysqlManager, ResetPolicy};

mod support;

type MyPool = Pool<MysqlManager>;

/// Runs `change` on a first checkout, then returns the second checkout of
/// the same connection (the same server thread: reset, not replaced).
async fn change_then_next(
    pool: &MyPool,
    change: impl AsyncFnOnce(&mut tidepool::Pooled<MysqlManager>),
) -> tidepool::Pooled<MysqlManager> {
    let (id, thread) = {
        let mut conn = pool.get().await.unwrap();
        change(&mut conn).await;
        assert!(
            !conn.session_touched().is_empty(),
            "the dirty bits saw the change"
        );
        (Pooled::id(&conn), conn.connection_id())
    };
    let conn = pool.get().await.unwrap();
    assert_eq!(Pooled::id(&conn), id, "the connection was replaced");
    assert_eq!(conn.connection_id(), thread);
    assert!(conn.session_touched().is_empty());
    conn
}

async fn one(conn: &mut tidepool::Pooled<MysqlManager>, sql: &str) -> Value {
    let row = conn.query_one_values(sql, &[]).await.unwrap();
    row.values()[0].clone()
}

#[tokio::test]
async fn a_borrowers_user_variables_do_not_reach_the_next_borrower() {
    let Some(url) = support::url("mysql_dirty_vars") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    let mut conn = change_then_next(&pool, async |c| {
        c.execute_values("SET @tp_a = 1", &[]).await.unwrap();
        c.query_values("SELECT @tp_b := 2 AS b", &[]).await.unwrap();
        c.query_values("SELECT 3 INTO @tp_c", &[]).await.unwrap();
    })
    .await;
    assert_eq!(
        one(
            &mut conn,
            "SELECT @tp_a IS NULL AND @tp_b IS NULL AND @tp_c IS NULL AS gone"
        )
        .await,
        Value::Int(1)
    );
}

#[tokio::test]
async fn a_borrowers_session_settings_do_not_reach_the_next_borrower() {
    let Some(url) = support::url("mysql_dirty_settings") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    let mut conn = change_then_next(&pool, async |c| {
        c.execute_values("SET SESSION sql_mode = 'ANSI_QUOTES'", &[])
            .await
            .unwrap();
        c.execute_values("SET @@session.wait_timeout = 1234", &[])
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        one(
            &mut conn,
            "SELECT @@SESSION.sql_mode = @@GLOBAL.sql_mode \
             AND @@SESSION.wait_timeout = @@GLOBAL.wait_timeout AS reset"
        )
        .await,
        Value::Int(1)
    );
}

#[tokio::test]
async fn a_borrowers_named_lock_is_released_for_the_next_borrower() {
    let Some(url) = support::url("mysql_dirty_lock") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    let lock = format!("tp_dirty_lock_{}", std::process::id());
    let mut conn = change_then_next(&pool, async |c| {
        let got = c
            .query_one_values(
                "SELECT GET_LOCK($1, 0) AS got",
                &[Value::from(lock.as_str())],
            )
            .await
            .unwrap();
        assert_eq!(got.get("got"), Some(&Value::Int(1)));
    })
    .await;
    let free = conn
        .query_one_values(
            "SELECT IS_USED_LOCK($1) IS NULL AS free",
            &[Value::from(lock.as_str())],
        )
        .await
        .unwrap();
    assert_eq!(free.get("free"), Some(&Value::Int(1)));
}

#[tokio::test]
async fn a_borrowers_temporary_table_does_not_reach_the_next_borrower() {
    let Some(url) = support::url("mysql_dirty_temp") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    let mut conn = change_then_next(&pool, async |c| {
        c.execute_values("CREATE TEMPORARY TABLE tp_dirty_tmp (x INT)", &[])
            .await
            .unwrap();
    })
    .await;
    let err = conn
        .query_values("SELECT * FROM tp_dirty_tmp", &[])
        .await
        .unwrap_err();
    assert_eq!(err.server_code(), Some(1146), "{err}");
}

#[tokio::test]
async fn a_borrowers_sql_prepared_statement_does_not_reach_the_next_borrower() {
    let Some(url) = support::url("mysql_dirty_prepare") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    let mut conn = change_then_next(&pool, async |c| {
        c.execute_values("PREPARE tp_dirty_s FROM 'SELECT 1'", &[])
            .await
            .unwrap();
    })
    .await;
    let err = conn
        .execute_values("EXECUTE tp_dirty_s", &[])
        .await
        .unwrap_err();
    // ER_UNKNOWN_STMT_HANDLER
    assert_eq!(err.server_code(), Some(1243), "{err}");
}

#[tokio::test]
async fn a_checkout_that_changes_no_session_state_sends_nothing_on_return() {
    let Some(url) = support::url("mysql_dirty_nothing") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    let table = format!("tp_dirty_nothing_{}", std::process::id());
    {
        let mut conn = pool.get().await.unwrap();
        support::fresh_table(&mut conn, &table, "id INT PRIMARY KEY, v TEXT").await;
        conn.execute_values(&format!("INSERT INTO {table} VALUES (1, 'a')"), &[])
            .await
            .unwrap();
    }
    let resets = pool.metrics().resets;
    for _ in 0..20 {
        let mut conn = pool.get().await.unwrap();
        conn.query_one_values(
            &format!("SELECT v FROM {table} WHERE id = $1"),
            &[Value::Int(1)],
        )
        .await
        .unwrap();
        conn.execute_values(
            &format!("UPDATE {table} SET v = $1 WHERE id = 1"),
            &[Value::from("b")],
        )
        .await
        .unwrap();
        assert!(conn.session_touched().is_empty());
    }
    assert_eq!(pool.metrics().resets, resets, "nothing was sent on return");
    let mut conn = pool.get().await.unwrap();
    conn.execute_values(&format!("DROP TABLE {table}"), &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn state_changed_inside_a_stored_function_is_unseen_by_fast_and_cleared_by_clean() {
    let Some(url) = support::url("mysql_dirty_unseen") else {
        return;
    };
    let function = format!("tp_sneaky_{}", std::process::id());
    {
        let mut admin = support::connect(&url).await;
        admin
            .execute_values(&format!("DROP FUNCTION IF EXISTS {function}"), &[])
            .await
            .unwrap();
        admin
            .execute_values(
                &format!(
                    "CREATE FUNCTION {function}() RETURNS INT NOT DETERMINISTIC NO SQL \
                     BEGIN SET @tp_sneaky = 5; RETURN 1; END"
                ),
                &[],
            )
            .await
            .unwrap();
    }
    for (policy, leaks) in [(ResetPolicy::Fast, true), (ResetPolicy::Clean, false)] {
        let pool = support::pool(&url, 1, policy).await;
        {
            let mut conn = pool.get().await.unwrap();
            conn.query_values(&format!("SELECT {function}() AS f"), &[])
                .await
                .unwrap();
        }
        let mut conn = pool.get().await.unwrap();
        let v = one(&mut conn, "SELECT @tp_sneaky AS v").await;
        assert_eq!(v == Value::Int(5), leaks, "{policy:?}: {v:?}");
    }
    let mut admin = support::connect(&url).await;
    admin
        .execute_values(&format!("DROP FUNCTION {function}"), &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn what_the_after_connect_hook_sets_is_not_reset_as_a_borrowers_change() {
    let Some(url) = support::url("mysql_dirty_hook") else {
        return;
    };
    let manager = MysqlManager::from_url(&url).unwrap();
    let pool = Pool::builder(manager)
        .max_size(1)
        .after_connect(|conn| {
            Box::pin(async move {
                conn.execute_values("SET @tp_hooked = 9", &[])
                    .await
                    .map(drop)
            })
        })
        .build()
        .await
        .unwrap();
    let resets = pool.metrics().resets;
    for _ in 0..3 {
        let mut conn = pool.get().await.unwrap();
        assert!(
            conn.session_touched().is_empty(),
            "the hook's SET is the baseline"
        );
        assert_eq!(
            one(&mut conn, "SELECT @tp_hooked AS v").await,
            Value::Int(9)
        );
    }
    assert_eq!(pool.metrics().resets, resets);
}

#[tokio::test]
async fn a_borrower_changing_session_state_after_a_hook_that_set_some_gets_a_new_connection() {
    let Some(url) = support::url("mysql_dirty_hook_replaced") else {
        return;
    };
    let manager = MysqlManager::from_url(&url).unwrap();
    let pool = Pool::builder(manager)
        .max_size(1)
        .after_connect(|conn| {
            Box::pin(async move {
                conn.execute_values("SET @tp_hooked = 9", &[])
                    .await
                    .map(drop)
            })
        })
        .build()
        .await
        .unwrap();
    let thread = {
        let mut conn = pool.get().await.unwrap();
        conn.execute_values("SET @tp_borrowed = 1", &[])
            .await
            .unwrap();
        conn.connection_id()
    };
    // COM_RESET_CONNECTION would clear the hook's variable too: replaced.
    let mut conn = pool.get().await.unwrap();
    assert_ne!(conn.connection_id(), thread);
    assert_eq!(
        one(&mut conn, "SELECT @tp_hooked AS v").await,
        Value::Int(9)
    );
    assert_eq!(
        one(&mut conn, "SELECT @tp_borrowed IS NULL AS gone").await,
        Value::Int(1)
    );
}
