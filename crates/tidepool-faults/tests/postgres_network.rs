//! Network faults between the pool and PostgreSQL, injected by the
//! testkit's proxy: a database that is not there at start, black holes,
//! resets, added latency and connects that stall. Each runs under load and
//! ends with the accounting check: idle + in use + being created == size
//! <= max, nobody left waiting, and the server holds exactly as many
//! sessions for the pool as the pool thinks it has.

mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use support::{load, rig, stop};
use tidepool::{Error, Pool};
use tidepool_testkit::proxy::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_down_at_start_fails_acquires_in_time_with_the_real_cause_and_recovers() {
    let Some(rig) = rig("down_at_start").await else {
        return;
    };
    rig.proxy.set(Fault::NotListening);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let pool = Pool::builder(rig.manager())
        .min_size(2)
        .max_size(8)
        .acquire_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_millis(500))
        .build_lazy()
        .expect("a lazy build succeeds while the database is down");
    let mut causes = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let err = pool.get().await.expect_err("the database is down");
        assert!(
            started.elapsed() < Duration::from_millis(1300),
            "took {:?}",
            started.elapsed()
        );
        causes.push(err.to_string());
    }
    assert!(causes.iter().all(|c| c.contains("refused")), "{causes:#?}");
    assert!(
        causes.iter().any(|c| c.contains("circuit open")),
        "the breaker should open on a dead database: {causes:#?}"
    );

    rig.proxy.set(Fault::PassThrough);
    // The breaker says when it will probe; the first acquire after that succeeds.
    let wait = match pool.get().await {
        Err(Error::CircuitOpen { retry_after, .. }) => retry_after,
        Ok(_) => Duration::ZERO,
        Err(e) => panic!("unexpected error once the database is back: {e}"),
    };
    tokio::time::sleep(wait).await;
    pool.get()
        .await
        .expect("the first acquire after the database is back succeeds");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        pool.status().size >= 2,
        "back to min_size: {:?}",
        pool.status()
    );
    rig.assert_accounting(&pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_never_holds_an_acquire_past_its_timeout_nor_a_slot_after_it_heals() {
    let Some(rig) = rig("black_hole").await else {
        return;
    };
    let pool = Pool::builder(rig.manager())
        .max_size(6)
        .initial_size(4)
        .acquire_timeout(Duration::from_millis(800))
        .connect_timeout(Duration::from_millis(300))
        .validation_timeout(Duration::from_millis(200))
        .validation_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    rig.proxy.set(Fault::BlackHole);
    let mut worst = Duration::ZERO;
    for _ in 0..6 {
        let started = Instant::now();
        let outcome = pool.get().await;
        worst = worst.max(started.elapsed());
        assert!(outcome.is_err(), "a connection came through a black hole");
    }
    assert!(
        worst < Duration::from_millis(1000),
        "an acquire took {worst:?} against an 800ms timeout"
    );
    assert!(pool.metrics().connections_closed_failed_validation >= 1);

    rig.proxy.set(Fault::PassThrough);
    tokio::time::sleep(Duration::from_secs(3)).await; // past the breaker's recovery
    let mut conn = pool.get().await.expect("healed");
    tidepool::Queryable::query_one_values(&mut *conn, "SELECT 1", &[])
        .await
        .unwrap();
    drop(conn);
    let s = pool.status();
    assert_eq!((s.in_use, s.waiting), (0, 0), "{s:?}");
    rig.assert_accounting(&pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_is_seen_at_once_and_the_pool_reconnects() {
    let Some(rig) = rig("rst").await else { return };
    let pool = Pool::builder(rig.manager())
        .max_size(4)
        .initial_size(4)
        .validation_interval(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    rig.proxy.set(Fault::Reset);
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig.proxy.set(Fault::PassThrough);
    // The resets closed every socket; the driver notices without a round trip.
    let started = Instant::now();
    let mut conn = pool
        .get()
        .await
        .expect("a fresh connection after the resets");
    tidepool::Queryable::query_one_values(&mut *conn, "SELECT 1", &[])
        .await
        .expect("query on the new connection");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        tidepool::Pooled::is_new(&conn),
        "a reset connection was handed out"
    );
    drop(conn);
    assert!(
        pool.metrics().connections_closed_broken >= 1
            || pool.metrics().connections_closed_failed_validation >= 1
    );
    rig.assert_accounting(&pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_latency_causes_no_false_evictions_and_no_extra_connections() {
    let Some(rig) = rig("latency").await else {
        return;
    };
    let pool = Pool::builder(rig.manager())
        .max_size(10)
        .validation_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    rig.proxy.set(Fault::Latency {
        to_server: Duration::from_millis(200),
        to_client: Duration::from_millis(200),
    });
    let (tally, handles) = load(&pool, 4);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop(&tally, handles).await;
    let m = pool.metrics();
    assert_eq!(tally.errors.load(SeqCst), 0);
    assert!(tally.ok.load(SeqCst) > 0);
    assert_eq!(
        m.connections_closed_failed_validation + m.connections_closed_broken,
        0,
        "false evictions"
    );
    assert!(
        pool.status().size <= 4,
        "more connections than demand: {:?}",
        pool.status()
    );
    rig.proxy.set(Fault::PassThrough);
    rig.assert_accounting(&pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connect_is_cut_at_connect_timeout_and_a_returned_connection_goes_to_a_waiter() {
    let Some(rig) = rig("stall").await else {
        return;
    };
    let pool = Pool::builder(rig.manager())
        .max_size(2)
        .acquire_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_millis(400))
        .max_retries(0)
        .build()
        .await
        .unwrap();
    let held = pool.get().await.unwrap();
    rig.proxy.set(Fault::AcceptThenStall);
    let stalled_at = Instant::now();
    // B takes the second slot: a connection starts opening for the queue
    // and stalls.
    let creator = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(|_| Instant::now()) })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // C waits for a slot.
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(|_| Instant::now()) })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let returned_at = Instant::now();
    drop(held);
    // The returned connection goes straight to the oldest waiter (B), not
    // after the stalled connect, and then on to C when B is done.
    let b_served = creator
        .await
        .unwrap()
        .expect("B gets the returned connection");
    let c_served = waiter.await.unwrap().expect("C gets it after B");
    for served_at in [b_served, c_served] {
        assert!(
            served_at - returned_at < Duration::from_millis(100),
            "waited {:?}",
            served_at - returned_at
        );
    }
    // Meanwhile the stalled attempt is cut at connect_timeout.
    while pool.metrics().connection_attempts_failed == 0 {
        assert!(stalled_at.elapsed() < Duration::from_secs(2), "never cut");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cut_after = stalled_at.elapsed();
    assert!(
        cut_after >= Duration::from_millis(400) && cut_after < Duration::from_millis(600),
        "the stalled connect was not cut at connect_timeout: {cut_after:?}"
    );
    rig.proxy.set(Fault::PassThrough);
    rig.assert_accounting(&pool).await;
}
