//! A connection killed on the server: while idle it is replaced with no
//! visible error when test-on-borrow is on; while in use its holder gets a
//! typed error and it never goes back to idle.

use std::time::Duration;

use tidepool::{Classify, FailureKind, Pool, Pooled, Queryable, Value};
use tidepool_mysql::{MysqlConnection, MysqlManager};

mod support;

async fn kill(admin: &mut MysqlConnection, id: u32) {
    admin
        .execute_values(&format!("KILL {id}"), &[])
        .await
        .unwrap();
    // Wait until the server has let go of it, so the test does not race.
    for _ in 0..200 {
        let row = admin
            .query_one_values(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID = $1",
                &[i64::from(id).into()],
            )
            .await
            .unwrap();
        if row.get(0) == Some(&Value::Int(0)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("connection {id} did not go away");
}

async fn pool(url: &str) -> Pool<MysqlManager> {
    Pool::builder(MysqlManager::from_url(url).unwrap())
        .max_size(1)
        .test_on_borrow(true)
        .validation_interval(Duration::ZERO)
        .acquire_timeout(Duration::from_secs(10))
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_idle_connection_killed_on_the_server_is_replaced_without_a_visible_error() {
    let Some(url) = support::url("mysql_killed_idle") else {
        return;
    };
    let pool = pool(&url).await;
    let mut admin = support::connect(&url).await;
    let (pool_id, server_id) = {
        let mut conn = pool.get().await.unwrap();
        conn.query_one_values("SELECT 1", &[]).await.unwrap();
        (Pooled::id(&conn), conn.connection_id())
    };
    kill(&mut admin, server_id).await;
    let mut conn = pool
        .get()
        .await
        .expect("a killed idle connection is replaced, not reported");
    assert_ne!(Pooled::id(&conn), pool_id);
    assert_ne!(conn.connection_id(), server_id);
    assert_eq!(
        conn.query_one_values("SELECT 1", &[]).await.unwrap().get(0),
        Some(&Value::Int(1))
    );
}

#[tokio::test]
async fn a_connection_killed_while_in_use_gives_a_typed_error_and_is_never_returned_to_idle() {
    let Some(url) = support::url("mysql_killed_in_use") else {
        return;
    };
    let pool = pool(&url).await;
    let mut admin = support::connect(&url).await;
    let mut conn = pool.get().await.unwrap();
    let (pool_id, server_id) = (Pooled::id(&conn), conn.connection_id());
    kill(&mut admin, server_id).await;
    let err = conn.query_values("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(err.failure_kind(), FailureKind::Connect, "{err} ({err:?})");
    assert!(err.is_fatal(), "{err:?}");
    assert!(conn.is_broken());
    drop(conn);
    // The return path runs on a task; wait until it settled.
    for _ in 0..200 {
        let s = pool.status();
        if s.in_use == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        pool.status().idle,
        0,
        "the killed connection never went back to idle"
    );
    let mut fresh = pool.get().await.unwrap();
    assert_ne!(Pooled::id(&fresh), pool_id);
    assert!(Pooled::is_new(&fresh));
    assert_eq!(
        fresh
            .query_one_values("SELECT 1", &[])
            .await
            .unwrap()
            .get(0),
        Some(&Value::Int(1))
    );
}
