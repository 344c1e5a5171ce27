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
async fn a_blocking_call_inside_a_runtime_is_a_clear_error() {
    let pool = Pool::builder(TestManager::new()).build().await.unwrap();
    match pool.get_blocking() {
        Err(e @ Error::BlockingInAsync) => assert!(e.to_string().contains("async runtime")),
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
