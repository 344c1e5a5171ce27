//! In the spirit of deadpool's cancellation suite: every combination of
//! {ok, error, slow, never} over create / validate / reset, with acquires
//! cancelled at pseudo-random points. In none of them may a slot or a
//! connection leak, and once the manager behaves again the next acquire
//! succeeds at once.

mod common;

use std::time::Duration;

use common::{assert_consistent, settle, Behavior, TestManager, ALL};
use tidepool::{Pool, Pooled};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

async fn run_combo(create: Behavior, validate: Behavior, reset: Behavior, seed: u64) {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    plan.dirty_on_return
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let pool = Pool::builder(manager)
        .max_size(2)
        .initial_size(1)
        .acquire_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(100))
        .validation_timeout(Duration::from_millis(100))
        .reset_timeout(Duration::from_millis(100))
        .max_retries(1)
        .retry_delay(Duration::from_millis(10))
        .validation_interval(Duration::ZERO)
        .health_check_interval(None)
        // This suite is about slots; the breaker has its own.
        .circuit_breaker(tidepool::BreakerConfig::disabled())
        .build()
        .await
        .unwrap();
    *plan.create.lock() = create;
    *plan.validate.lock() = validate;
    *plan.reset.lock() = reset;

    let mut tasks = Vec::new();
    for t in 0..6u64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Lcg(seed * 31 + t);
            for _ in 0..4 {
                let cancel_after = Duration::from_millis(rng.next(300));
                if let Ok(Ok(mut conn)) = tokio::time::timeout(cancel_after, pool.get()).await {
                    match rng.next(4) {
                        0 => Pooled::mark_broken(&mut conn),
                        1 => conn.dirty = true,
                        _ => {}
                    }
                    tokio::time::sleep(Duration::from_millis(rng.next(20))).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    plan.set_all(Behavior::Ok);
    // Long enough for any reset or create still in flight to hit its timeout.
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle().await;

    let s = pool.status();
    let label = format!("create={create:?} validate={validate:?} reset={reset:?}");
    assert_consistent(&pool);
    assert_eq!(
        (s.in_use, s.being_created, s.waiting),
        (0, 0, 0),
        "{label}: {s:?}"
    );
    assert_eq!(
        plan.alive() as usize,
        s.size,
        "{label}: connections alive vs counted"
    );

    let started = tokio::time::Instant::now();
    let conn = pool
        .get()
        .await
        .unwrap_or_else(|e| panic!("{label}: next acquire failed: {e}"));
    assert!(
        started.elapsed() < Duration::from_millis(1),
        "{label}: next acquire was not immediate"
    );
    drop(conn);
    drop(pool);
    settle().await;
    assert_eq!(plan.alive(), 0, "{label}: connections outlived the pool");
}

#[tokio::test(start_paused = true)]
async fn no_combination_of_hook_outcomes_and_cancellations_leaks_a_slot_or_connection() {
    let mut seed = 0;
    for create in ALL {
        for validate in ALL {
            for reset in ALL {
                seed += 1;
                run_combo(create, validate, reset, seed).await;
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_a_get_future_while_it_waits_for_a_permit_frees_nothing_it_does_not_hold() {
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .build()
        .await
        .unwrap();
    let held = pool.get().await.unwrap();
    for _ in 0..100 {
        let waiting = tokio::time::timeout(Duration::from_millis(1), pool.get()).await;
        assert!(waiting.is_err());
    }
    assert_eq!(pool.status().waiting, 0);
    drop(held);
    let again = pool.get().await.unwrap();
    assert_eq!(pool.status().in_use, 1);
    drop(again);
}
