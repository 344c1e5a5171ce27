//! A connection killed by the server: while idle it is replaced with no
//! user-visible error when test-on-borrow is on; while in use its holder
//! gets a typed Connect error and it never goes back to idle.

use std::time::Duration;

use tidepool::{Classify, FailureKind, Pool, Pooled, Queryable, Value};
use tidepool_postgres::PgManager;

mod support;

async fn pid_of(conn: &mut Pooled<PgManager>) -> i64 {
    conn.query_one_values("SELECT pg_backend_pid()::int8 AS pid", &[])
        .await
        .unwrap()
        .get("pid")
        .and_then(Value::as_i64)
        .unwrap()
}

async fn terminate(url: &str, pid: i64) {
    let manager = PgManager::from_url(url).unwrap();
    let mut admin = manager.connect_one().await.unwrap();
    let row = admin
        .query_one_values(
            "SELECT pg_terminate_backend($1::int4) AS ok",
            &[Value::Int(pid)],
        )
        .await
        .unwrap();
    assert_eq!(row.get("ok"), Some(&Value::Bool(true)));
    // Wait until the backend is gone, so the test does not race its exit.
    for _ in 0..200 {
        let row = admin
            .query_one_values(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1",
                &[Value::Int(pid)],
            )
            .await
            .unwrap();
        if row.get("n") == Some(&Value::Int(0)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("backend {pid} did not exit");
}

#[tokio::test]
async fn an_idle_connection_killed_by_the_server_is_replaced_without_a_visible_error() {
    let Some(url) = support::url("terminated_idle") else {
        return;
    };
    let url = support::plain(&url);
    let manager = PgManager::from_url(&url).unwrap();
    let pool = Pool::builder(manager)
        .max_size(1)
        .test_on_borrow(true)
        .validation_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    let (old_id, old_pid) = (Pooled::id(&conn), pid_of(&mut conn).await);
    drop(conn);
    terminate(&url, old_pid).await;

    let mut conn = pool
        .get()
        .await
        .expect("the dead idle connection is replaced, not handed out");
    assert_ne!(Pooled::id(&conn), old_id);
    let new_pid = pid_of(&mut conn).await;
    assert_ne!(new_pid, old_pid);
}

#[tokio::test]
async fn a_connection_killed_while_in_use_gives_its_holder_a_typed_error_and_never_returns_to_idle()
{
    let Some(url) = support::url("terminated_in_use") else {
        return;
    };
    let url = support::plain(&url);
    let pool = support::pool(&url, 1, tidepool_postgres::ResetPolicy::Fast).await;
    let mut conn = pool.get().await.unwrap();
    let (old_id, pid) = (Pooled::id(&conn), pid_of(&mut conn).await);
    terminate(&url, pid).await;

    let err = conn
        .query_values("SELECT 1", &[])
        .await
        .expect_err("the backend is gone");
    assert_eq!(err.failure_kind(), FailureKind::Connect, "{err:?}");
    assert!(conn.is_broken());
    drop(conn);

    let status = pool.status();
    assert_eq!(
        status.idle, 0,
        "a dead connection went back to idle: {status:?}"
    );
    let mut conn = pool.get().await.unwrap();
    assert_ne!(Pooled::id(&conn), old_id);
    assert_ne!(pid_of(&mut conn).await, pid);
}
