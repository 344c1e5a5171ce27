//! A pool outlives the runtime it was built in: kept in a `static` and
//! shared by several `#[tokio::test]`s, each with its own runtime, it still
//! opens connections, serves waiters and ends every acquire within
//! `acquire_timeout` after the first runtime has shut down.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::TestManager;
use tidepool::{Error, Pool};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn pool_built_in_a_runtime_that_has_ended(max_size: u32) -> Pool<TestManager> {
    let first = runtime();
    let pool = first
        .block_on(
            Pool::builder(TestManager::new())
                .max_size(max_size)
                .acquire_timeout(Duration::from_millis(300))
                .build(),
        )
        .unwrap();
    drop(first);
    pool
}

#[test]
fn a_pool_whose_runtime_ended_opens_connections_on_the_callers_runtime() {
    let pool = pool_built_in_a_runtime_that_has_ended(2);
    let second = runtime();
    let started = Instant::now();
    let conn = second.block_on(pool.get()).expect("a new connection");
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(conn);
    common::assert_consistent(&pool);
}

#[test]
fn a_waiter_on_a_pool_whose_runtime_ended_times_out_at_its_deadline() {
    let pool = pool_built_in_a_runtime_that_has_ended(1);
    let second = runtime();
    let held = second.block_on(pool.get()).unwrap();
    let started = Instant::now();
    let outcome = second.block_on(pool.get());
    let waited = started.elapsed();
    assert!(matches!(outcome, Err(Error::Timeout { .. })), "{outcome:?}");
    assert!(
        waited < Duration::from_millis(1300),
        "acquire_timeout is 300 ms, the acquire took {waited:?}"
    );
    drop(held);
    assert!(second.block_on(pool.get()).is_ok());
}

#[test]
fn a_static_pool_serves_one_test_runtime_after_another() {
    static POOL: OnceLock<Pool<TestManager>> = OnceLock::new();
    for round in 0..3 {
        let rt = runtime();
        rt.block_on(async {
            let pool = match POOL.get() {
                Some(pool) => pool.clone(),
                None => {
                    let pool = Pool::builder(TestManager::new())
                        .max_size(2)
                        .acquire_timeout(Duration::from_millis(300))
                        .build()
                        .await
                        .unwrap();
                    POOL.get_or_init(|| pool).clone()
                }
            };
            let a = pool.get().await.unwrap();
            let b = pool.get().await.unwrap();
            let started = Instant::now();
            let third = pool.get().await;
            assert!(
                matches!(third, Err(Error::Timeout { .. })),
                "round {round}: {third:?}"
            );
            assert!(
                started.elapsed() < Duration::from_millis(1300),
                "round {round}"
            );
            drop((a, b));
        });
    }
}
