//! Waiters are served first come, first served, nobody starves, and the
//! pool never opens more than `max_size` connections however many tasks
//! ask at once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_consistent, TestManager};
use parking_lot::Mutex;
use tidepool::{Pool, Pooled};

#[tokio::test(flavor = "current_thread")]
async fn a_thousand_waiters_on_one_connection_are_served_in_arrival_order() {
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .build()
        .await
        .unwrap();
    let held = pool.get().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..1000usize {
        let (p, order) = (pool.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let conn = p.get().await.unwrap();
            order.lock().push((i, 1));
            // Give the connection back and ask again at once: a greedy
            // task must not overtake the queue.
            drop(conn);
            let _again = p.get().await.unwrap();
            order.lock().push((i, 2));
        }));
        while pool.status().waiting < i + 1 {
            tokio::task::yield_now().await;
        }
    }
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    let order = order.lock();
    let expected: Vec<_> = (0..1000)
        .map(|i| (i, 1))
        .chain((0..1000).map(|i| (i, 2)))
        .collect();
    assert_eq!(*order, expected, "served out of arrival order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_waiters_on_ten_connections_are_all_served_without_exceeding_max_size() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(10)
        .acquire_timeout(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    let out = Arc::new(AtomicUsize::new(0));
    let most_out = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let (pool, out, most_out, served, plan) = (
            pool.clone(),
            out.clone(),
            most_out.clone(),
            served.clone(),
            plan.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let conn = pool.get().await.unwrap();
            let now = out.fetch_add(1, SeqCst) + 1;
            most_out.fetch_max(now, SeqCst);
            assert!(plan.alive() <= 10, "more than max_size connections exist");
            tokio::task::yield_now().await;
            out.fetch_sub(1, SeqCst);
            drop(conn);
            served.fetch_add(1, SeqCst);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(served.load(SeqCst), 10_000);
    assert!(most_out.load(SeqCst) <= 10);
    assert!(plan.alive() <= 10);
    assert_consistent(&pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_joining_while_a_connection_is_being_returned_never_times_out() {
    // bb8#122: the return and the new waiter race; the waiter must get the
    // connection, not wait out its timeout.
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .acquire_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    for _ in 0..2000 {
        let held = pool.get().await.unwrap();
        let returner = tokio::spawn(async move { drop(held) });
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(drop) })
        };
        returner.await.unwrap();
        waiter.await.unwrap().expect("waiter timed out spuriously");
    }
    assert_consistent(&pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_connections_never_starve_waiters() {
    // bb8#167: every connection comes back broken; each discard must free
    // its slot so the next waiter gets a fresh connection.
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(2)
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.get().await.expect("starved behind broken connections");
            tokio::task::yield_now().await;
            Pooled::mark_broken(&mut conn);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(pool.metrics().connections_closed_broken, 200);
    // Let an opening still in flight land.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A connection opened for the queue after the last waiter was served
    // stays idle in the pool; nothing else survives.
    let s = pool.status();
    assert_eq!((s.in_use, s.being_created, s.waiting), (0, 0, 0), "{s:?}");
    assert!(s.size <= 2, "{s:?}");
    assert_eq!(
        plan.alive() as usize,
        s.size,
        "connections alive vs counted"
    );
    assert_consistent(&pool);
}
