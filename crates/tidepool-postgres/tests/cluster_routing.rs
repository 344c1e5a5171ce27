//! A cluster over the real primary (:5432) and its streaming replica
//! (:5433, `.ci/setup-topology.sh`): where reads and writes go, and
//! read-your-writes.

use std::time::Duration;

use tidepool::{QueryKind, Queryable, Value};
use tidepool_postgres::{BanReason, PgCluster};

mod support;

fn urls(test: &str) -> Option<(String, String)> {
    let primary = support::url(test)?;
    let replica = tidepool_testkit::replica_url(test)?;
    Some((support::plain(&primary), support::plain(&replica)))
}

async fn in_recovery(conn: &tidepool_postgres::PgConnection) -> bool {
    conn.query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn reads_are_served_by_the_replica_and_writes_never_are() {
    let Some((primary, replica)) = urls("cluster_reads_on_replica") else {
        return;
    };
    let cluster = PgCluster::builder(&primary)
        .unwrap()
        .replica(&replica)
        .unwrap()
        .build()
        .await
        .unwrap();
    assert!(
        cluster.status().replicas[0].banned.is_none(),
        "{:?}",
        cluster.status()
    );
    for _ in 0..50 {
        assert!(
            in_recovery(&cluster.reader().await.unwrap()).await,
            "a read was served by the primary"
        );
        assert!(
            !in_recovery(&cluster.writer().await.unwrap()).await,
            "a write went to a replica"
        );
    }
    let sql = "SELECT pg_is_in_recovery() AS r";
    for (kind, on_replica) in [
        (QueryKind::Read, true),
        (QueryKind::Analytics, true),
        (QueryKind::Write, false),
        (QueryKind::Transaction, false),
        (QueryKind::Maintenance, false),
    ] {
        for _ in 0..10 {
            let rows = cluster.execute_query(kind, sql, &[]).await.unwrap();
            assert_eq!(rows[0].get("r"), Some(&Value::Bool(on_replica)), "{kind}");
        }
    }
    assert_eq!(cluster.status().fallback_reads, 0);
}

#[tokio::test]
async fn a_multi_host_url_finds_the_primary_for_writes_and_leaves_it_out_of_reads() {
    let Some((primary, replica)) = urls("cluster_multi_host") else {
        return;
    };
    let (ph, pp) = tidepool_testkit::host_port(&primary, 5432).unwrap();
    let (rh, rp) = tidepool_testkit::host_port(&replica, 5433).unwrap();
    // The replica first: the writer must skip it.
    let url = format!("postgres://postgres@{rh}:{rp},{ph}:{pp}/test?sslmode=disable");
    let cluster = PgCluster::builder(&url).unwrap().build().await.unwrap();
    let status = cluster.status();
    assert_eq!(status.replicas.len(), 2);
    assert_eq!(
        status.replicas[1].banned,
        Some(BanReason::NotAReplica),
        "{status:?}"
    );
    assert!(status.replicas[0].banned.is_none(), "{status:?}");
    for _ in 0..20 {
        assert!(!in_recovery(&cluster.writer().await.unwrap()).await);
        assert!(in_recovery(&cluster.reader().await.unwrap()).await);
    }
}

#[tokio::test]
async fn every_replica_out_sends_reads_to_the_primary_and_says_so() {
    let Some((primary, _)) = urls("cluster_all_out") else {
        return;
    };
    // Nothing listens on port 1.
    let cluster = PgCluster::builder(&primary)
        .unwrap()
        .replica("postgres://postgres@127.0.0.1:1/test?sslmode=disable")
        .unwrap()
        .build()
        .await
        .unwrap();
    let status = cluster.status();
    assert!(
        matches!(status.replicas[0].banned, Some(BanReason::Failing { .. })),
        "{status:?}"
    );
    assert!(status.reads_on_primary);
    for _ in 0..5 {
        assert!(!in_recovery(&cluster.reader().await.unwrap()).await);
    }
    assert_eq!(cluster.status().fallback_reads, 5);
    let shown = format!("{:?}", cluster.status().replicas[0].banned);
    assert!(
        shown.contains("127.0.0.1:1") || shown.contains("refused") || shown.contains("connect"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_the_callers_write_never_returns_an_older_row_over_1000_trials() {
    let Some((primary, replica)) = urls("cluster_read_your_writes") else {
        return;
    };
    let cluster = PgCluster::builder(&primary)
        .unwrap()
        .replica(&replica)
        .unwrap()
        .sample_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let table = support::table("ryw");
    {
        let w = cluster.writer().await.unwrap();
        w.batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int4 PRIMARY KEY, n int8 NOT NULL); INSERT INTO {table} VALUES (1, 0)"
        ))
        .await
        .unwrap();
    }
    let (mut on_replica, mut on_primary) = (0, 0);
    let update = format!("UPDATE {table} SET n = $1 WHERE id = 1");
    let select = format!("SELECT n, pg_is_in_recovery() AS replica FROM {table} WHERE id = 1");
    for i in 1..=1000i64 {
        let token = {
            let mut w = cluster.writer().await.unwrap();
            w.execute_values(&update, &[Value::Int(i)]).await.unwrap();
            cluster.token(&w).await.unwrap()
        };
        let mut r = cluster.reader_after(token).await.unwrap();
        let row = r.query_one_values(&select, &[]).await.unwrap();
        assert_eq!(
            row.get("n"),
            Some(&Value::Int(i)),
            "trial {i} read an older row"
        );
        if row.get("replica") == Some(&Value::Bool(true)) {
            on_replica += 1;
        } else {
            on_primary += 1;
        }
    }
    eprintln!("read-your-writes: 1000 trials, {on_replica} served by the replica, {on_primary} by the primary");
    assert!(
        on_replica > 0,
        "no read-your-writes read ever reached the replica"
    );
    cluster
        .writer()
        .await
        .unwrap()
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn with_primary_reads_the_primary_takes_its_share_of_reads() {
    let Some((primary, replica)) = urls("cluster_primary_reads") else {
        return;
    };
    let cluster = PgCluster::builder(&primary)
        .unwrap()
        .replica(&replica)
        .unwrap()
        .primary_reads(true)
        .build()
        .await
        .unwrap();
    let mut on_replica = 0;
    for _ in 0..20 {
        if in_recovery(&cluster.reader().await.unwrap()).await {
            on_replica += 1;
        }
    }
    assert_eq!(on_replica, 10, "one primary + one replica: half each");
}
