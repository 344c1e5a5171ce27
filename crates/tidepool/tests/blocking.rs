//! The blocking face: plain threads share connections with async tasks,
//! and a blocking call inside a runtime is refused, not a deadlock.

mod common;

use std::time::Duration;

use common::TestManager;
use tidepool::{Error, Pool};

#[test]
fn plain_threads_check_out_connections_from_a_blocking_pool() {
    let pool = Pool::builder(TestManager::new())
        .max_size(2)
        .build_blocking()
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let conn = pool.get_blocking().unwrap();
                    std::thread::sleep(Duration::from_micros(50));
                    drop(conn);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(pool.metrics().checkouts, 400);
    assert!(pool.status().size <= 2);
}

#[test]
fn async_tasks_and_plain_threads_share_one_pool() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let pool = runtime
        .block_on(Pool::builder(TestManager::new()).max_size(1).build())
        .unwrap();
    let held = runtime.block_on(pool.get()).unwrap();
    let id = tidepool::Pooled::id(&held);
    let thread = {
        let pool = pool.clone();
        std::thread::spawn(move || tidepool::Pooled::id(&pool.get_blocking().unwrap()))
    };
    std::thread::sleep(Duration::from_millis(50));
    drop(held);
    assert_eq!(
        thread.join().unwrap(),
        id,
        "the thread got the connection the task returned"
    );
}

#[tokio::test]
async fn a_blocking_call_on_a_current_thread_runtimes_own_thread_is_a_clear_error() {
    let pool = Pool::builder(TestManager::new()).build().await.unwrap();
    match pool.get_blocking() {
        Err(e @ Error::BlockingInAsync) => {
            let text = e.to_string();
            assert!(text.contains("current-thread"), "{text}");
            assert!(text.contains("spawn_blocking"), "{text}");
        }
        other => panic!("expected BlockingInAsync, got {other:?}"),
    }
}

#[tokio::test]
async fn building_a_blocking_pool_inside_a_runtime_is_refused() {
    assert!(Pool::builder(TestManager::new()).build_blocking().is_err());
}

#[test]
fn dropping_a_blocking_pool_inside_a_runtime_does_not_panic() {
    let pool = Pool::builder(TestManager::new()).build_blocking().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async move { drop(pool) });
}

#[tokio::test]
async fn get_blocking_works_inside_spawn_blocking_on_a_current_thread_runtime() {
    let pool = Pool::builder(TestManager::new()).build().await.unwrap();
    let id = {
        let pool = pool.clone();
        tokio::task::spawn_blocking(move || tidepool::Pooled::id(&pool.get_blocking().unwrap()))
            .await
            .unwrap()
    };
    assert!(id > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_blocking_works_inside_spawn_blocking_on_a_multi_thread_runtime() {
    let pool = Pool::builder(TestManager::new()).build().await.unwrap();
    let conn = {
        let pool = pool.clone();
        tokio::task::spawn_blocking(move || pool.get_blocking().map(|c| tidepool::Pooled::id(&c)))
            .await
            .unwrap()
    };
    assert!(conn.is_ok(), "{conn:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_blocking_works_inside_block_in_place_and_on_a_worker() {
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .build()
        .await
        .unwrap();
    let in_place = tokio::task::block_in_place(|| pool.get_blocking().map(drop));
    assert!(in_place.is_ok(), "{in_place:?}");
    // Straight on a worker: it steps out with block_in_place, so another
    // task can still return the connection it waits for.
    let held = pool.get().await.unwrap();
    let returner = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
    });
    let on_worker = pool.get_blocking().map(drop);
    assert!(on_worker.is_ok(), "{on_worker:?}");
    returner.await.unwrap();
}
