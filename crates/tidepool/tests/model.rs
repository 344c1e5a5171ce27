//! A property test: random sequences of get / drop / cancel / break /
//! dirty returns / failing hooks / time passing, checked after every step
//! against the pool's invariants and a model of what the test holds.

mod common;

use std::time::Duration;

use common::{Behavior, TestManager};
use proptest::prelude::*;
use tidepool::{Pool, Pooled};

#[derive(Debug, Clone)]
enum Op {
    /// Acquire, giving up (cancelling) after this many ms.
    Get(u16),
    Drop(usize),
    Break(usize),
    Dirty(usize),
    Create(Behavior),
    Validate(Behavior),
    Reset(Behavior),
    Advance(u16),
    /// `Pool::resize(min, max)`, each taken modulo the test's own bounds.
    Resize(u8, u8),
}

fn behavior() -> impl Strategy<Value = Behavior> {
    prop_oneof![
        4 => Just(Behavior::Ok),
        2 => Just(Behavior::Err),
        1 => (1u64..200).prop_map(|ms| Behavior::Slow(Duration::from_millis(ms))),
        1 => Just(Behavior::Never),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..400).prop_map(Op::Get),
        4 => any::<usize>().prop_map(Op::Drop),
        1 => any::<usize>().prop_map(Op::Break),
        1 => any::<usize>().prop_map(Op::Dirty),
        1 => behavior().prop_map(Op::Create),
        1 => behavior().prop_map(Op::Validate),
        1 => behavior().prop_map(Op::Reset),
        2 => (0u16..3000).prop_map(Op::Advance),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Resize(a, b)),
    ]
}

fn check(pool: &Pool<TestManager>, held: usize, max: usize) {
    let s = pool.status();
    assert_eq!(s.size, s.idle + s.in_use + s.being_created, "{s:?}");
    assert!(s.size <= max, "{s:?}");
    // After a resize below what is out, only connections already out or
    // already being opened may exceed the new cap (they close as they come
    // back); no idle connection stays above it.
    assert!(
        s.size <= s.max_size || s.idle == 0,
        "above the resized cap with idle connections: {s:?}"
    );
    assert!(
        s.min_size <= s.warm_target && s.warm_target <= s.max_size,
        "{s:?}"
    );
    assert!(s.limit >= 1 && s.limit <= s.max_size, "{s:?}");
    assert!(
        s.in_use >= held,
        "held {held} but only {} counted in use: {s:?}",
        s.in_use
    );
    let alive = pool.manager().plan.alive() as usize;
    assert_eq!(
        alive,
        s.idle + s.in_use,
        "connections alive vs counted: {s:?}"
    );
}

fn run(ops: Vec<Op>, max: u32, min: u32) {
    run_with(ops, max, min, tidepool::Strategy::Fixed)
}

fn run_with(ops: Vec<Op>, max: u32, min: u32, strategy: tidepool::Strategy) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut scaling = tidepool::ScalingConfig::preset(strategy);
        scaling.scale_interval = Duration::from_millis(100);
        scaling.cooldown = Duration::from_millis(500);
        let pool = Pool::builder(TestManager::new())
            .scaling(scaling)
            .max_size(max)
            .min_size(min)
            .acquire_timeout(Duration::from_millis(500))
            .connect_timeout(Duration::from_millis(200))
            .validation_timeout(Duration::from_millis(100))
            .reset_timeout(Duration::from_millis(100))
            .validation_interval(Duration::from_millis(50))
            .idle_timeout(Some(Duration::from_secs(2)))
            .max_lifetime(Some(Duration::from_secs(5)))
            .health_check_interval(Some(Duration::from_secs(1)))
            .maintenance_interval(Duration::from_millis(500))
            .retry_delay(Duration::from_millis(20))
            // The model is about slots and connections; an open circuit
            // would make the final capacity check wait for a probe.
            .circuit_breaker(tidepool::BreakerConfig::disabled())
            .build_lazy()
            .unwrap();
        let plan = pool.manager().plan.clone();
        let mut held: Vec<Pooled<TestManager>> = Vec::new();
        let mut resized: Option<u32> = None;
        for op in ops {
            match op {
                Op::Get(ms) => {
                    if let Ok(Ok(conn)) =
                        tokio::time::timeout(Duration::from_millis(ms.into()), pool.get()).await
                    {
                        assert!(!conn.dirty, "handed out a dirty connection");
                        assert!(!conn.broken.load(std::sync::atomic::Ordering::SeqCst));
                        held.push(conn);
                    }
                }
                Op::Drop(i) if !held.is_empty() => drop(held.remove(i % held.len())),
                Op::Break(i) if !held.is_empty() => {
                    let mut c = held.remove(i % held.len());
                    Pooled::mark_broken(&mut c);
                }
                Op::Dirty(i) if !held.is_empty() => {
                    let n = held.len();
                    held[i % n].dirty = true;
                    drop(held.remove(i % n));
                }
                Op::Create(b) => *plan.create.lock() = b,
                Op::Validate(b) => *plan.validate.lock() = b,
                Op::Reset(b) => *plan.reset.lock() = b,
                Op::Advance(ms) => tokio::time::sleep(Duration::from_millis(ms.into())).await,
                Op::Resize(a, b) => {
                    let new_max = 1 + u32::from(b) % max;
                    let new_min = u32::from(a) % (new_max + 1);
                    pool.resize(new_min, new_max).expect("valid bounds");
                    resized = Some(new_max);
                }
                _ => {}
            }
            check(&pool, held.len(), max as usize);
        }
        held.clear();
        plan.set_all(Behavior::Ok);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s = pool.status();
        assert_eq!((s.in_use, s.being_created, s.waiting), (0, 0, 0), "{s:?}");
        check(&pool, 0, max as usize);
        // No permit was lost: the full capacity can be checked out at once.
        // With the adaptive concurrency limit, the limit is the capacity.
        let capacity = (resized.unwrap_or(max) as usize).min(pool.status().limit) as u32;
        let mut all = Vec::new();
        for _ in 0..capacity {
            all.push(pool.get().await.expect("capacity was lost"));
        }
        drop(all);
        drop(pool);
        assert_eq!(plan.alive(), 0, "connections outlived the pool");
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences_keep_every_invariant(
        ops in proptest::collection::vec(op(), 1..60),
        max in 1u32..5,
        min in 0u32..3,
    ) {
        run(ops, max, min.min(max));
    }

    #[test]
    fn random_sequences_keep_every_invariant_while_the_pool_scales_itself(
        ops in proptest::collection::vec(op(), 1..60),
        max in 1u32..6,
        min in 0u32..3,
    ) {
        run_with(ops, max, min.min(max), tidepool::Strategy::Dynamic);
    }
}
