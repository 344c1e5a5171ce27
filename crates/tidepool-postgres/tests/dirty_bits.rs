//! Session-state dirty bits under the default `Fast` policy: for each kind
//! of session state, a borrower changes it through the pool, returns the
//! connection, and the next borrower of the same connection (a pool of
//! one) finds none of it on the server — while a checkout that changed
//! nothing sends nothing on return, the statement cache survives, and
//! settings from the startup packet stay. What the bits cannot see (a
//! function that changes state from inside) is left to `Clean`, and that
//! is pinned too.

use tidepool::{Pool, Pooled, Queryable, Value};
use tidepool_postgres::tokio_postgres::types::ToSql;
use tidepool_postgres::{PgConfig, PgManager, PgPool, ResetPolicy};

mod support;

/// A pool of one with the default (`Fast`) policy.
async fn fast_pool(name: &str) -> Option<(PgPool, String)> {
    let url = support::plain(&support::url(name)?);
    Some((support::pool(&url, 1, ResetPolicy::Fast).await, url))
}

/// Runs `change` on a first checkout, then returns the second checkout
/// (asserting it is the same connection, reset rather than replaced) once
/// the returned connection is idle again.
async fn change_then_next(
    pool: &PgPool,
    change: impl AsyncFnOnce(&mut tidepool::Pooled<PgManager>),
) -> tidepool::Pooled<PgManager> {
    let first = {
        let mut conn = pool.get().await.unwrap();
        change(&mut conn).await;
        assert!(
            !conn.session_touched().is_empty(),
            "the dirty bits saw the change"
        );
        Pooled::id(&conn)
    };
    let conn = pool.get().await.unwrap();
    assert_eq!(
        Pooled::id(&conn),
        first,
        "the connection was replaced, not reset"
    );
    assert!(conn.session_touched().is_empty());
    conn
}

async fn text(conn: &tidepool::Pooled<PgManager>, sql: &str) -> String {
    conn.query_one(sql, &[]).await.unwrap().get(0)
}

async fn count(conn: &tidepool::Pooled<PgManager>, sql: &str) -> i64 {
    conn.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_borrowers_search_path_and_set_config_do_not_reach_the_next_borrower() {
    let Some((pool, _)) = fast_pool("dirty_settings").await else {
        return;
    };
    let default_path = text(&pool.get().await.unwrap(), "SHOW search_path").await;
    let conn = change_then_next(&pool, async |c| {
        c.batch_execute("SET search_path = pg_catalog")
            .await
            .unwrap();
        // The portable face, with the session-wide form of set_config.
        c.query_values(
            "SELECT set_config('application_name', $1, false)",
            &[Value::from("tp_leaky")],
        )
        .await
        .unwrap();
    })
    .await;
    assert_eq!(text(&conn, "SHOW search_path").await, default_path);
    assert_ne!(text(&conn, "SHOW application_name").await, "tp_leaky");
}

#[tokio::test]
async fn a_borrowers_role_does_not_reach_the_next_borrower() {
    let Some((pool, _)) = fast_pool("dirty_role").await else {
        return;
    };
    let conn = change_then_next(&pool, async |c| {
        c.execute("SET ROLE pg_monitor", &[]).await.unwrap();
        assert_eq!(text(c, "SELECT current_user::text").await, "pg_monitor");
    })
    .await;
    let same: bool = conn
        .query_one("SELECT current_user = session_user", &[])
        .await
        .unwrap()
        .get(0);
    assert!(same, "the role was reset");
}

#[tokio::test]
async fn a_borrowers_listen_does_not_reach_the_next_borrower() {
    let Some((pool, _)) = fast_pool("dirty_listen").await else {
        return;
    };
    let conn = change_then_next(&pool, async |c| {
        c.simple_query("LISTEN tp_dirty_channel").await.unwrap();
    })
    .await;
    assert_eq!(
        count(&conn, "SELECT count(*) FROM pg_listening_channels()").await,
        0
    );
}

#[tokio::test]
async fn a_borrowers_sql_prepare_is_deallocated_and_the_statement_cache_survives() {
    let Some((pool, _)) = fast_pool("dirty_prepare").await else {
        return;
    };
    let cached = "SELECT $1::int8 * 2 AS twice";
    let conn = change_then_next(&pool, async |c| {
        c.query_one_values(cached, &[Value::Int(1)]).await.unwrap();
        // Through the statement cache (extended protocol), and as a batch.
        c.execute("PREPARE tp_dirty_p AS SELECT 1", &[])
            .await
            .unwrap();
        c.batch_execute("PREPARE \"tp Odd\" (int) AS SELECT $1")
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM pg_prepared_statements WHERE from_sql"
        )
        .await,
        0
    );
    // The next borrower's own PREPARE of the same name works (42P05 if not).
    conn.batch_execute("PREPARE tp_dirty_p AS SELECT 2; DEALLOCATE tp_dirty_p")
        .await
        .unwrap();
    assert!(conn.is_statement_cached(cached));
    let before = conn.cached_statements();
    let row = conn.query_one(cached, &[&21i64]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 42);
    assert_eq!(conn.cached_statements(), before, "nothing prepared again");
}

#[tokio::test]
async fn a_borrowers_temporary_table_does_not_reach_the_next_borrower() {
    let Some((pool, _)) = fast_pool("dirty_temp").await else {
        return;
    };
    let mut conn = change_then_next(&pool, async |c| {
        // Inside a committed transaction: the table outlives it.
        let tx = c.transaction().await.unwrap();
        tx.execute("CREATE TEMP TABLE tp_dirty_tmp (x int)", &[])
            .await
            .unwrap();
        tx.commit().await.unwrap();
    })
    .await;
    let row = conn
        .query_one_values(
            "SELECT to_regclass('pg_temp.tp_dirty_tmp') IS NULL AS gone",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get("gone"), Some(&Value::Bool(true)));
}

#[tokio::test]
async fn a_borrowers_session_advisory_lock_is_released_for_the_next_borrower() {
    let Some((pool, url)) = fast_pool("dirty_advisory").await else {
        return;
    };
    let key = 710_000 + i64::from(std::process::id() % 100_000);
    let conn = change_then_next(&pool, async |c| {
        // A prepared statement run by handle: its text is not passed again.
        let stmt = c.prepare("SELECT pg_advisory_lock($1)").await.unwrap();
        c.query(&stmt, &[&key as &(dyn ToSql + Sync)])
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        .await,
        0
    );
    let other = PgManager::from_url(&url)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    let got: bool = other
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .unwrap()
        .get(0);
    assert!(got, "another session can take the lock");
}

#[tokio::test]
async fn a_borrowers_cursor_with_hold_does_not_reach_the_next_borrower() {
    let Some((pool, _)) = fast_pool("dirty_cursor").await else {
        return;
    };
    let conn = change_then_next(&pool, async |c| {
        c.batch_execute("DECLARE tp_dirty_cur CURSOR WITH HOLD FOR SELECT 1")
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        count(&conn, "SELECT count(*) FROM pg_cursors WHERE is_holdable").await,
        0
    );
}

#[tokio::test]
async fn a_do_block_is_undone_as_if_it_touched_everything() {
    let Some((pool, _)) = fast_pool("dirty_do").await else {
        return;
    };
    let conn = change_then_next(&pool, async |c| {
        c.batch_execute(
            "DO $$ BEGIN PERFORM set_config('work_mem', '11MB', false); \
             EXECUTE 'LISTEN tp_dirty_do'; END $$",
        )
        .await
        .unwrap();
    })
    .await;
    assert_ne!(text(&conn, "SHOW work_mem").await, "11MB");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM pg_listening_channels()").await,
        0
    );
}

#[tokio::test]
async fn a_checkout_that_changes_no_session_state_sends_nothing_on_return() {
    let Some((pool, _)) = fast_pool("dirty_nothing").await else {
        return;
    };
    let table = support::table("dirty_nothing");
    {
        let conn = pool.get().await.unwrap();
        conn.batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int PRIMARY KEY, v text); \
             INSERT INTO {table} VALUES (1, 'a')"
        ))
        .await
        .unwrap();
    }
    // The pool counts every return that asked the manager for a reset.
    let resets = pool.metrics().resets;
    for _ in 0..20 {
        let mut conn = pool.get().await.unwrap();
        conn.query_one_values(
            &format!("SELECT v FROM {table} WHERE id = $1"),
            &[Value::Int(1)],
        )
        .await
        .unwrap();
        conn.execute(&format!("UPDATE {table} SET v = $1 WHERE id = 1"), &[&"b"])
            .await
            .unwrap();
        assert!(conn.session_touched().is_empty());
        assert!(!conn.needs_reset(ResetPolicy::Fast));
    }
    assert_eq!(
        pool.metrics().resets,
        resets,
        "no reset ran: nothing was sent on return"
    );
    let conn = pool.get().await.unwrap();
    conn.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn settings_from_the_startup_packet_survive_the_reset() {
    let Some(url) = support::url("dirty_startup") else {
        return;
    };
    let config = PgConfig::from_url(&support::plain(&url))
        .unwrap()
        .options("-c work_mem=7MB");
    let manager = PgManager::builder(config).build().unwrap();
    let pool = Pool::builder(manager)
        .max_size(1)
        .test_on_borrow(false)
        .build()
        .await
        .unwrap();
    let conn = change_then_next(&pool, async |c| {
        c.batch_execute("SET work_mem = '9MB'").await.unwrap();
    })
    .await;
    assert_eq!(text(&conn, "SHOW work_mem").await, "7MB");
}

#[tokio::test]
async fn verified_undoes_the_same_state_as_fast() {
    let Some(url) = support::url("dirty_verified") else {
        return;
    };
    let pool = support::pool(&support::plain(&url), 1, ResetPolicy::Verified).await;
    let conn = change_then_next(&pool, async |c| {
        c.batch_execute("SET search_path = pg_catalog; LISTEN tp_dirty_verified")
            .await
            .unwrap();
    })
    .await;
    assert_ne!(text(&conn, "SHOW search_path").await, "pg_catalog");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM pg_listening_channels()").await,
        0
    );
}

/// A function that changes a setting from inside: its call does not look
/// like a `SET`.
async fn sneaky_function(url: &str, name: &str) {
    let conn = PgManager::from_url(url)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    conn.batch_execute(&format!(
        "CREATE OR REPLACE FUNCTION {name}() RETURNS text LANGUAGE sql AS \
         $$ SELECT set_config('work_mem', '13MB', false) $$"
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn state_changed_inside_a_function_is_unseen_by_fast_and_cleared_by_clean() {
    let Some(url) = support::url("dirty_unseen") else {
        return;
    };
    let url = support::plain(&url);
    let function = support::table("sneaky");
    sneaky_function(&url, &function).await;
    let call = format!("SELECT {function}()");
    for (policy, leaks) in [(ResetPolicy::Fast, true), (ResetPolicy::Clean, false)] {
        let pool = support::pool(&url, 1, policy).await;
        {
            let conn = pool.get().await.unwrap();
            conn.execute(&call, &[]).await.unwrap();
        }
        let conn = pool.get().await.unwrap();
        let work_mem = text(&conn, "SHOW work_mem").await;
        assert_eq!(work_mem == "13MB", leaks, "{policy:?}: work_mem {work_mem}");
    }
    let conn = PgManager::from_url(&url)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    conn.batch_execute(&format!("DROP FUNCTION {function}()"))
        .await
        .unwrap();
}

#[tokio::test]
async fn with_session_tracking_off_fast_hands_the_session_on_as_before() {
    let Some(url) = support::url("dirty_off") else {
        return;
    };
    let manager = PgManager::builder_from_url(&support::plain(&url))
        .unwrap()
        .track_session_state(false)
        .build()
        .unwrap();
    let pool = Pool::builder(manager)
        .max_size(1)
        .test_on_borrow(false)
        .build()
        .await
        .unwrap();
    {
        let conn = pool.get().await.unwrap();
        conn.batch_execute("SET application_name = 'tp_kept'")
            .await
            .unwrap();
        assert!(conn.session_touched().is_empty());
    }
    let conn = pool.get().await.unwrap();
    assert_eq!(text(&conn, "SHOW application_name").await, "tp_kept");
}

/// A pool of one whose `after_connect` hook sets `application_name`.
async fn hooked_pool(url: &str) -> PgPool {
    let manager = PgManager::builder_from_url(url).unwrap().build().unwrap();
    Pool::builder(manager)
        .max_size(1)
        .test_on_borrow(false)
        .after_connect(|conn| {
            Box::pin(async move {
                conn.batch_execute("SET application_name = 'tp_hook_kept'")
                    .await
                    .map_err(tidepool_postgres::PgError::from)
            })
        })
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_borrower_touching_what_the_hook_set_gets_the_connection_replaced_not_reset() {
    let Some(url) = support::url("dirty_hook") else {
        return;
    };
    let pool = hooked_pool(&support::plain(&url)).await;
    // Another kind than the hook's: undone on the same connection, the
    // hook's setting kept.
    let conn = change_then_next(&pool, async |c| {
        c.batch_execute("LISTEN tp_dirty_hook").await.unwrap();
    })
    .await;
    assert_eq!(text(&conn, "SHOW application_name").await, "tp_hook_kept");
    let first = Pooled::id(&conn);
    drop(conn);
    // The same kind: RESET ALL would lose the hook's setting too, so the
    // connection is replaced, and the new one is hooked again.
    {
        let conn = pool.get().await.unwrap();
        assert_eq!(Pooled::id(&conn), first);
        conn.batch_execute("SET work_mem = '9MB'").await.unwrap();
    }
    let conn = pool.get().await.unwrap();
    assert_ne!(Pooled::id(&conn), first, "replaced");
    assert_eq!(text(&conn, "SHOW application_name").await, "tp_hook_kept");
    assert_ne!(text(&conn, "SHOW work_mem").await, "9MB");
}
