//! Lag-aware replica bans against the real replica: replay paused with
//! `pg_wal_replay_pause()` while the primary keeps writing. (Its own test
//! binary: pausing replay would disturb the routing tests.)

use std::time::{Duration, Instant};

use tidepool_postgres::{BanReason, PgCluster, PgManager};

mod support;

const INTERVAL: Duration = Duration::from_millis(200);
const MAX_LAG: u64 = 64 * 1024;

/// Resumes replay however the test ends, so the shared replica is never
/// left paused.
struct Resume;

impl Drop for Resume {
    fn drop(&mut self) {
        let url = tidepool_testkit::replica_url_unchecked();
        let (host, port) = tidepool_testkit::host_port(&url, 5433).unwrap();
        let _ = std::process::Command::new("psql")
            .args([
                "-X",
                "-q",
                "-h",
                &host,
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                "test",
            ])
            .args(["-c", "SELECT pg_wal_replay_resume()"])
            .status();
    }
}

async fn in_recovery(conn: &tidepool_postgres::PgConnection) -> bool {
    conn.query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_replay_is_paused_is_banned_within_one_interval_and_readmitted_after_catching_up(
) {
    let Some(primary) = support::url("cluster_lag") else {
        return;
    };
    let Some(replica) = tidepool_testkit::replica_url("cluster_lag") else {
        return;
    };
    let (primary, replica) = (support::plain(&primary), support::plain(&replica));
    let cluster = PgCluster::builder(&primary)
        .unwrap()
        .replica(&replica)
        .unwrap()
        .sample_interval(INTERVAL)
        .max_replica_lag_bytes(MAX_LAG)
        .build()
        .await
        .unwrap();
    assert!(
        cluster.status().replicas[0].banned.is_none(),
        "{:?}",
        cluster.status()
    );
    let table = support::table("lag");
    let writer = cluster.writer().await.unwrap();
    writer
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int4, pad text)"
        ))
        .await
        .unwrap();

    let direct = PgManager::from_url(&replica)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    let _resume = Resume;
    direct
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let paused = Instant::now();
    loop {
        let state: String = direct
            .query_one("SELECT pg_get_wal_replay_pause_state()", &[])
            .await
            .unwrap()
            .get(0);
        if state == "paused" {
            break;
        }
        assert!(
            paused.elapsed() < Duration::from_secs(5),
            "replay did not pause"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // ~1 MB of WAL: far past the 64 KiB threshold once committed.
    writer
        .batch_execute(&format!(
            "INSERT INTO {table} SELECT g, repeat('x', 400) FROM generate_series(1, 2000) g"
        ))
        .await
        .unwrap();
    let over = Instant::now();
    let banned_after = loop {
        if let Some(BanReason::Lag { bytes }) = &cluster.status().replicas[0].banned {
            assert!(*bytes > MAX_LAG);
            break over.elapsed();
        }
        // One interval, plus the sample's own round trips on a shared machine.
        assert!(
            over.elapsed() < INTERVAL + Duration::from_millis(300),
            "not banned within one interval: {:?}",
            cluster.status()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    for _ in 0..10 {
        assert!(
            !in_recovery(&cluster.reader().await.unwrap()).await,
            "a read went to the banned replica"
        );
    }
    assert!(cluster.status().reads_on_primary);

    direct
        .batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    let resumed = Instant::now();
    let readmitted_after = loop {
        if cluster.status().replicas[0].banned.is_none() {
            break resumed.elapsed();
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(10),
            "not readmitted: {:?}",
            cluster.status()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(cluster.status().replicas[0]
        .lag_bytes
        .is_some_and(|b| b <= MAX_LAG));
    assert!(
        in_recovery(&cluster.reader().await.unwrap()).await,
        "reads did not return to the replica"
    );
    eprintln!("lag ban: banned {banned_after:?} after the write, readmitted {readmitted_after:?} after resume (interval {INTERVAL:?})");
    writer
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
