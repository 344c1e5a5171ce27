//! A PostgreSQL restart (`pg_ctlcluster ... restart -m immediate`) under
//! load: only operations in flight fail, and the pool is back to
//! `min_size` within seconds of the server accepting connections. Its own
//! test binary, because restarting the server would disturb any test
//! running beside it.

mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use support::{load, rig, stop};
use tidepool::Pool;
use tidepool_testkit::pg_cluster::PgCluster;

fn may_restart() -> Option<PgCluster> {
    match PgCluster::local() {
        Ok(cluster) => Some(cluster),
        Err(why) if tidepool_testkit::database_required() => {
            panic!("the restart scenario needs root and a Debian PostgreSQL cluster under TIDEPOOL_REQUIRE_DB=1: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED postgres_restart: {why}");
            None
        }
    }
}

async fn accepting(url: &str) -> bool {
    tidepool_postgres::PgManager::from_url(url)
        .unwrap()
        .connect_one()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_under_load_fails_only_what_was_in_flight_and_the_pool_refills_within_seconds() {
    let Some(rig) = rig("restart").await else {
        return;
    };
    let Some(cluster) = may_restart() else { return };
    let pool = Pool::builder(rig.manager())
        .min_size(4)
        .max_size(10)
        .initial_size(4)
        .acquire_timeout(Duration::from_secs(2))
        .maintenance_interval(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let (tally, handles) = load(&pool, 10);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restart = tokio::task::spawn_blocking(move || cluster.restart_immediate());
    let status = restart.await.unwrap().expect("pg_ctlcluster runs");
    assert!(status.success(), "restart failed: {status}");
    let back_deadline = Instant::now() + Duration::from_secs(30);
    while !accepting(&rig.direct_url).await {
        assert!(
            Instant::now() < back_deadline,
            "the server did not come back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let back_at = Instant::now();
    let errors_at_back = tally.errors.load(SeqCst);
    // Refilled to min_size and serving within a few seconds.
    loop {
        let s = pool.status();
        let ok_before = tally.ok.load(SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        if s.size >= 4 && tally.ok.load(SeqCst) > ok_before {
            break;
        }
        assert!(
            back_at.elapsed() < Duration::from_secs(6),
            "not recovered after {:?}: {s:?}",
            back_at.elapsed()
        );
    }
    let recovered_after = back_at.elapsed();
    // Once recovered, nothing fails.
    let errors_recovered = tally.errors.load(SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop(&tally, handles).await;
    assert_eq!(
        tally.errors.load(SeqCst),
        errors_recovered,
        "errors after recovery"
    );
    eprintln!(
        "restart: {} errors before the server was back, {} while recovering; recovered {:?} after the server accepted connections",
        errors_at_back,
        errors_recovered - errors_at_back,
        recovered_after
    );
    rig.assert_accounting(&pool).await;
}
