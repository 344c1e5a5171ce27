//! Statement-cache affinity: a checkout for a statement prefers an idle
//! connection that prepared it, falls back at once, and never reorders
//! the queue.

mod common;

use std::time::Duration;

use common::TestManager;
use tidepool::{statement_key, Pool, Pooled};

async fn pool_of_three(affinity: bool) -> (Pool<TestManager>, u64) {
    let pool = Pool::builder(TestManager::new())
        .max_size(3)
        .statement_affinity(affinity)
        .build()
        .await
        .unwrap();
    let key = statement_key("SELECT * FROM t WHERE id = $1");
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.get().await.unwrap());
    }
    // The first connection prepared the statement; it goes back first, so
    // LIFO alone would hand out one of the others.
    held[0].prepared.insert(key);
    let prepared_id = Pooled::id(&held[0]);
    for conn in held {
        drop(conn);
    }
    (pool, prepared_id)
}

#[tokio::test]
async fn a_checkout_for_a_statement_takes_the_idle_connection_that_prepared_it() {
    let (pool, prepared) = pool_of_three(true).await;
    let key = statement_key("SELECT * FROM t WHERE id = $1");
    let conn = pool.get_for(key).await.unwrap();
    assert_eq!(Pooled::id(&conn), prepared);
    let m = pool.metrics();
    assert_eq!((m.affinity_hits, m.affinity_misses), (1, 0));
}

#[tokio::test]
async fn with_no_connection_prepared_it_falls_back_at_once_to_the_usual_one() {
    let (pool, prepared) = pool_of_three(true).await;
    let conn = pool.get_for(statement_key("SELECT 1")).await.unwrap();
    assert_ne!(Pooled::id(&conn), prepared, "LIFO: the last one returned");
    assert_eq!(pool.metrics().affinity_misses, 1);
}

#[tokio::test]
async fn with_affinity_off_the_hint_is_ignored() {
    let (pool, prepared) = pool_of_three(false).await;
    let key = statement_key("SELECT * FROM t WHERE id = $1");
    let conn = pool.get_for(key).await.unwrap();
    assert_ne!(Pooled::id(&conn), prepared);
    assert_eq!(pool.metrics().affinity_hits, 0);
}

#[tokio::test(start_paused = true)]
async fn affinity_never_reorders_waiters() {
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let key = statement_key("SELECT * FROM t WHERE id = $1");
    let mut only = pool.get().await.unwrap();
    only.prepared.insert(key);
    let order = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let first = {
        let (pool, order) = (pool.clone(), order.clone());
        tokio::spawn(async move {
            let c = pool.get().await.unwrap();
            order.lock().push("plain, queued first");
            drop(c);
        })
    };
    tokio::time::sleep(Duration::from_millis(1)).await;
    let second = {
        let (pool, order) = (pool.clone(), order.clone());
        tokio::spawn(async move {
            let c = pool.get_for(key).await.unwrap();
            order.lock().push("for the statement, queued second");
            drop(c);
        })
    };
    tokio::time::sleep(Duration::from_millis(1)).await;
    drop(only);
    first.await.unwrap();
    second.await.unwrap();
    assert_eq!(
        *order.lock(),
        ["plain, queued first", "for the statement, queued second"]
    );
}

/// A pool of three whose connections are all ones it keeps (min = max), so
/// there is no surplus to let idle out.
async fn kept_pool_of_three() -> Pool<TestManager> {
    Pool::builder(TestManager::new())
        .min_size(3)
        .max_size(3)
        .initial_size(3)
        .build()
        .await
        .unwrap()
}

/// Checks out all three and returns them in `order` (indexes into the
/// checkout order), so the idle list's order changes.
async fn reshuffle(pool: &Pool<TestManager>, order: [usize; 3]) {
    let mut held: Vec<Option<_>> = Vec::new();
    for _ in 0..3 {
        held.push(Some(pool.get().await.unwrap()));
    }
    for i in order {
        drop(held[i].take());
    }
}

#[tokio::test]
async fn a_statement_nobody_prepared_goes_to_the_same_home_connection_whatever_the_idle_order() {
    let pool = kept_pool_of_three().await;
    let key = statement_key("SELECT name FROM users WHERE id = $1");
    let mut homes = std::collections::BTreeSet::new();
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [0, 2, 1]] {
        reshuffle(&pool, order).await;
        // Nothing is marked prepared, so every checkout is a miss and the
        // rendezvous rank alone chooses.
        let conn = pool.get_for(key).await.unwrap();
        homes.insert(Pooled::id(&conn));
    }
    assert_eq!(homes.len(), 1, "one home whatever the order: {homes:?}");
    assert_eq!(pool.metrics().affinity_misses, 4);
}

#[tokio::test]
async fn different_statements_find_different_homes() {
    let pool = kept_pool_of_three().await;
    let mut homes = std::collections::BTreeSet::new();
    for i in 0..60 {
        let key = statement_key(&format!("SELECT c{i} FROM t WHERE id = $1"));
        let conn = pool.get_for(key).await.unwrap();
        homes.insert(Pooled::id(&conn));
    }
    assert_eq!(
        homes.len(),
        3,
        "60 statements spread over all three: {homes:?}"
    );
}

#[tokio::test]
async fn with_surplus_connections_a_miss_takes_the_last_returned_so_the_rest_can_idle_out() {
    // min 0, max 3: all three are surplus (above the warm target of 0).
    let (pool, _) = pool_of_three(true).await;
    let last_returned = {
        let held: Vec<_> = vec![pool.get().await.unwrap(), pool.get().await.unwrap()];
        let id = Pooled::id(&held[1]);
        drop(held);
        id
    };
    for i in 0..10 {
        let key = statement_key(&format!("SELECT c{i} FROM t"));
        let conn = pool.get_for(key).await.unwrap();
        assert_eq!(Pooled::id(&conn), last_returned, "statement {i}");
    }
}
