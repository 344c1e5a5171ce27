//! `Pool::soft_evict` (HikariCP's `softEvictConnections`), on tokio's
//! paused clock: idle connections close at the call, checked-out ones when
//! they come back (never under their holder), one being opened at the call
//! when first checked out, and what the pool opens afterwards is kept.

mod common;

use std::time::Duration;

use common::{Behavior, TestManager};
use tidepool::{CloseReason, Event, Pool};

#[tokio::test(start_paused = true)]
async fn idle_close_now_checked_out_close_on_return_and_new_ones_are_kept() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let closed = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen = closed.clone();
    let pool = Pool::builder(manager)
        .max_size(6)
        .initial_size(5)
        .min_size(0)
        .on_event(move |e| {
            if let Event::Closed { id, reason } = e {
                seen.lock().push((*id, *reason));
            }
        })
        .build()
        .await
        .unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    let old_ids = [tidepool::Pooled::id(&a), tidepool::Pooled::id(&b)];
    assert_eq!(pool.status().idle, 3);

    assert_eq!(pool.soft_evict(), 3, "the three idle ones close now");
    let s = pool.status();
    assert_eq!((s.size, s.idle, s.in_use), (2, 0, 2), "{s:?}");
    assert_eq!(plan.alive(), 2, "idle connections really closed");
    // The holders are not disturbed: their connections still work.
    assert!(!a.broken.load(std::sync::atomic::Ordering::SeqCst));

    // A checkout now opens a fresh connection rather than waiting for the
    // evicted ones.
    let c = pool.get().await.unwrap();
    assert!(!old_ids.contains(&tidepool::Pooled::id(&c)));
    drop(a);
    drop(b);
    common::settle().await;
    assert_eq!(plan.alive(), 1, "returned evicted connections closed");
    drop(c);
    common::settle().await;
    assert_eq!(
        pool.status().idle,
        1,
        "the post-eviction connection is kept"
    );
    assert_eq!(plan.alive(), 1);

    let m = pool.metrics();
    assert_eq!(m.connections_closed_evicted, 5);
    let evicted: Vec<u64> = closed
        .lock()
        .iter()
        .filter(|(_, r)| *r == CloseReason::Evicted)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(evicted.len(), 5);
    assert!(old_ids.iter().all(|id| evicted.contains(id)));
    common::assert_consistent(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_connection_being_opened_at_the_eviction_is_evicted_on_first_checkout() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    *plan.create.lock() = Behavior::Slow(Duration::from_millis(100));
    let pool = Pool::builder(manager)
        .max_size(2)
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    // A caller waits on a connection being opened (chosen, say, against the
    // old primary) when the eviction comes.
    let first = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(|c| tidepool::Pooled::id(&c)) })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(pool.status().being_created, 1);
    pool.soft_evict();
    let served = first.await.unwrap().unwrap();
    common::settle().await;
    // The waiter was served by a connection opened after the eviction.
    let m = pool.metrics();
    assert_eq!(m.connections_closed_evicted, 1, "the in-flight one closed");
    assert_eq!(m.connections_created, 2);
    assert_eq!(served, 2, "served by the second connection, not the first");
    assert_eq!(plan.alive(), 1);
    common::assert_consistent(&pool);
}

#[tokio::test(start_paused = true)]
async fn evicting_twice_and_evicting_an_empty_pool_are_harmless() {
    let pool = Pool::builder(TestManager::new())
        .max_size(2)
        .build()
        .await
        .unwrap();
    assert_eq!(pool.soft_evict(), 0);
    let c = pool.get().await.unwrap();
    assert_eq!(pool.soft_evict(), 0);
    assert_eq!(pool.soft_evict(), 0);
    drop(c);
    common::settle().await;
    assert_eq!(pool.status().size, 0);
    assert_eq!(pool.metrics().connections_closed_evicted, 1);
    // The pool still serves.
    let c = pool.get().await.unwrap();
    drop(c);
    common::settle().await;
    assert_eq!(pool.status().idle, 1);
    common::assert_consistent(&pool);
}
