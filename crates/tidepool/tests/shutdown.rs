//! `close()` refuses new acquires at once, wakes waiters with `Closed`,
//! waits for checked-out connections up to a deadline and reports what it
//! dropped; dropping the last handle stops everything.

mod common;

use std::time::Duration;

use common::{settle, TestManager};
use tidepool::{Error, Pool};

#[tokio::test(start_paused = true)]
async fn close_wakes_waiters_refuses_new_acquires_and_waits_for_returns() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager).max_size(2).build().await.unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    drop(b); // one idle
    let _c = pool.get().await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(drop) })
    };
    settle().await;
    assert_eq!(pool.status().waiting, 1);

    let returner = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(a);
    });
    let report = pool.close(Duration::from_secs(1)).await;
    returner.await.unwrap();
    assert!(matches!(waiter.await.unwrap(), Err(Error::Closed)));
    assert!(matches!(pool.get().await, Err(Error::Closed)));
    assert_eq!(report.returned_in_time, 1);
    assert_eq!(report.still_checked_out, 1, "{report:?}");
    assert_eq!(
        plan.alive(),
        1,
        "only the connection still checked out is alive"
    );
    drop(_c);
    assert_eq!(plan.alive(), 0);
    assert_eq!(pool.status().size, 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_closes_idle_connections_and_stops_maintenance() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .min_size(2)
        .max_size(4)
        .initial_size(2)
        .build()
        .await
        .unwrap();
    let clone = pool.clone();
    let held = pool.get().await.unwrap();
    drop(pool);
    assert_eq!(plan.alive(), 2, "a handle remains");
    drop(clone);
    assert_eq!(
        plan.alive(),
        1,
        "idle connections close with the last handle"
    );
    drop(held);
    assert_eq!(
        plan.alive(),
        0,
        "a connection returned to a closed pool closes"
    );
    // The maintenance task must not top anything back up.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(plan.alive(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_connection_returned_during_a_panic_is_discarded() {
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .build()
        .await
        .unwrap();
    let conn = pool.get().await.unwrap();
    let id = tidepool::Pooled::id(&conn);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _conn = conn;
        panic!("user code panicked while holding a connection");
    }));
    assert!(outcome.is_err());
    let next = pool.get().await.unwrap();
    assert_ne!(tidepool::Pooled::id(&next), id);
    assert_eq!(pool.metrics().connections_closed_broken, 1);
}

#[tokio::test(start_paused = true)]
async fn a_connection_marked_broken_is_never_handed_out_again() {
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .build()
        .await
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    let id = tidepool::Pooled::id(&conn);
    tidepool::Pooled::mark_broken(&mut conn);
    drop(conn);
    assert_ne!(tidepool::Pooled::id(&pool.get().await.unwrap()), id);
}

#[tokio::test(start_paused = true)]
async fn detaching_frees_the_slot_and_keeps_the_connection_alive() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager).max_size(1).build().await.unwrap();
    let conn = pool.get().await.unwrap();
    let raw = tidepool::Pooled::detach(conn);
    assert_eq!(pool.status().size, 0);
    let other = pool.get().await.unwrap();
    assert_ne!(other.serial, raw.serial);
    assert_eq!(plan.alive(), 2);
    assert_eq!(pool.metrics().connections_detached, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_works_on_the_multi_thread_runtime_too() {
    let pool = Pool::builder(TestManager::new())
        .max_size(3)
        .build()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                drop(pool.get().await.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(pool.metrics().checkouts, 1000);
    let report = pool.close(Duration::from_secs(1)).await;
    assert_eq!(report.still_checked_out, 0);
}
