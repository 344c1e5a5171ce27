//! Failover against real servers: the private primary/synchronous-standby
//! pair of `.ci/setup-failover.sh` (127.0.0.1:5434/:5435, never the shared
//! :5432/:5433). With writers inserting unique ids, the primary is stopped
//! and the standby promoted; writes must resume on the promoted server
//! within 2 s of the promotion, every acknowledged insert must be there
//! afterwards and none twice. The pair is then rebuilt (the old primary as
//! a standby of the new one) so the next run starts from a whole pair.
//!
//! Also: a read-only answer (`25006`) on a writer connection soft-evicts
//! the writer pool (against the shared servers, with a session setting
//! only).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidepool::{Error, QueryKind, Queryable, Value};
use tidepool_postgres::{BanReason, PgCluster, PgError};
use tidepool_testkit::failover::FailoverPair;

mod support;

/// A `std::sync::Mutex` that ignores poisoning (a panicking writer must
/// not hide the real failure behind a poison error).
struct Mutex<T>(std::sync::Mutex<T>);
impl<T> Mutex<T> {
    fn new(t: T) -> Self {
        Mutex(std::sync::Mutex::new(t))
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A password the servers never ask for (loopback is `trust`): it must
/// appear in no error, status or log line the test sees.
const SECRET: &str = "s3cret-failover-pw";

const WRITERS: usize = 8;

struct Ack {
    id: i64,
    port: i32,
    at: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_resume_on_the_promoted_standby_within_2s_and_every_acknowledged_insert_is_there_once(
) {
    let Some(mut pair) = tokio::task::spawn_blocking(|| FailoverPair::acquire("cluster_failover"))
        .await
        .unwrap()
    else {
        return;
    };
    let (old_port, new_port) = (pair.primary_port, pair.standby_port);
    let with_secret =
        |port: u16| format!("postgres://postgres:{SECRET}@127.0.0.1:{port}/test?sslmode=disable");
    let cluster = PgCluster::builder(&with_secret(old_port))
        .unwrap()
        .replica(&with_secret(new_port))
        .unwrap()
        .sample_interval(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let table = support::table("failover");
    cluster
        .execute_query(
            QueryKind::Maintenance,
            &format!("DROP TABLE IF EXISTS {table}"),
            &[],
        )
        .await
        .unwrap();
    cluster
        .execute_query(
            QueryKind::Maintenance,
            &format!("CREATE TABLE {table} (id int8 NOT NULL, port int4 NOT NULL)"),
            &[],
        )
        .await
        .unwrap();
    // No unique constraint on purpose: a write applied twice would show.
    let insert =
        format!("INSERT INTO {table} (id, port) VALUES ($1, inet_server_port()) RETURNING port");

    let acks = Arc::new(Mutex::new(Vec::<Ack>::new()));
    let errors = Arc::new(Mutex::new(Vec::<(Instant, String)>::new()));
    let next_id = Arc::new(AtomicI64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let (cluster, acks, errors, next_id, stop, insert) = (
            cluster.clone(),
            acks.clone(),
            errors.clone(),
            next_id.clone(),
            stop.clone(),
            insert.clone(),
        );
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                match cluster
                    .execute_query(QueryKind::Write, &insert, &[Value::Int(id)])
                    .await
                {
                    Ok(rows) => {
                        let port: i32 = rows[0].try_get(0).unwrap();
                        acks.lock().push(Ack {
                            id,
                            port,
                            at: Instant::now(),
                        });
                    }
                    Err(e) => {
                        // Typed: a query error carries the driver's error,
                        // an acquire error says why it gave up.
                        assert!(
                            matches!(
                                e,
                                Error::Query(_)
                                    | Error::Create(_)
                                    | Error::Timeout { .. }
                                    | Error::CircuitOpen { .. }
                            ),
                            "{e:?}"
                        );
                        errors.lock().push((Instant::now(), e.to_string()));
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = acks.lock().len();
    assert!(before > 0, "no write succeeded before the failover");
    let stop_at = Instant::now();
    let (pair_back, stopped) = tokio::task::spawn_blocking(move || {
        let r = pair.stop_primary();
        (pair, r)
    })
    .await
    .unwrap();
    pair = pair_back;
    stopped.unwrap();
    let promote_at = Instant::now();
    let (pair_back, promoted) = tokio::task::spawn_blocking(move || {
        let r = pair.promote_standby();
        (pair, r)
    })
    .await
    .unwrap();
    pair = pair_back;
    promoted.unwrap();
    let promoted_at = Instant::now();

    // Writes resume: wait up to 5 s to measure, assert 2 s below.
    let deadline = promote_at + Duration::from_secs(5);
    let first_new = loop {
        if let Some(at) = acks
            .lock()
            .iter()
            .filter(|a| a.port == i32::from(new_port))
            .map(|a| a.at)
            .min()
        {
            break Some(at);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    let acks = std::mem::take(&mut *acks.lock());
    let errors = std::mem::take(&mut *errors.lock());
    let first_error = errors
        .iter()
        .map(|(at, _)| *at)
        .filter(|at| *at >= stop_at)
        .min();
    eprintln!(
        "failover: stop took {:?}, promotion {:?}; first error {:?} after the stop; first write on the new primary {:?} after the promotion was issued ({:?} after it finished); {} acknowledged, {} errors, writer evictions {}",
        promote_at - stop_at,
        promoted_at - promote_at,
        first_error.map(|e| e - stop_at),
        first_new.map(|f| f.saturating_duration_since(promote_at)),
        first_new.map(|f| f.saturating_duration_since(promoted_at)),
        acks.len(),
        errors.len(),
        cluster.status().writer_evictions,
    );
    let first_new = first_new.expect("no write succeeded on the promoted standby within 5 s");
    assert!(
        first_new.saturating_duration_since(promote_at) <= Duration::from_secs(2),
        "writes resumed {:?} after the promotion was issued (goal: 2 s)",
        first_new.saturating_duration_since(promote_at)
    );
    // Every acknowledged write after the promotion is the new primary's;
    // none before the stop is.
    assert!(acks
        .iter()
        .filter(|a| a.at >= promote_at)
        .all(|a| a.port == i32::from(new_port)));
    assert!(acks
        .iter()
        .filter(|a| a.at < stop_at)
        .all(|a| a.port == i32::from(old_port)));
    // The primary going away was noticed and the writer pool evicted.
    let status = cluster.status();
    assert!(status.writer_evictions >= 1, "{status:?}");
    for (_, e) in &errors {
        assert!(!e.contains(SECRET), "password in an error: {e}");
    }
    assert!(!format!("{status:?}").contains(SECRET));

    // Every acknowledged insert is on the new primary, none twice.
    let rows = cluster
        .execute_query(
            QueryKind::Write,
            &format!("SELECT id, count(*) FROM {table} GROUP BY id"),
            &[],
        )
        .await
        .unwrap();
    let mut present = HashSet::new();
    for row in &rows {
        let id: i64 = row.try_get(0).unwrap();
        let n: i64 = row.try_get(1).unwrap();
        assert_eq!(n, 1, "id {id} is there {n} times");
        present.insert(id);
    }
    let lost: Vec<i64> = acks
        .iter()
        .map(|a| a.id)
        .filter(|id| !present.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged inserts lost: {lost:?}",
        lost.len()
    );
    let acked: HashSet<i64> = acks.iter().map(|a| a.id).collect();
    eprintln!(
        "failover: {} rows present, {} acknowledged, {} committed without an acknowledgement (the connection died between commit and reply)",
        present.len(),
        acked.len(),
        present.difference(&acked).count()
    );

    // Reads: the promoted standby is no replica any more; the sampler bans
    // it and reads go to the writer, which is that same server.
    cluster.sample_now().await;
    let status = cluster.status();
    assert_eq!(
        status.replicas[0].banned,
        Some(BanReason::NotAReplica),
        "{status:?}"
    );
    let row = cluster
        .execute_query(
            QueryKind::Read,
            "SELECT inet_server_port(), pg_is_in_recovery()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row[0].try_get::<i32, _>(0).unwrap(), i32::from(new_port));
    assert!(!row[0].try_get::<bool, _>(1).unwrap());

    cluster
        .execute_query(QueryKind::Maintenance, &format!("DROP TABLE {table}"), &[])
        .await
        .unwrap();
    drop(cluster);
    // Leave the pair whole: the old primary rebuilt as a standby of the
    // new one.
    tokio::task::spawn_blocking(move || {
        pair.rebuild().unwrap();
        assert_eq!((pair.primary_port, pair.standby_port), (new_port, old_port));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_answer_on_a_writer_connection_soft_evicts_the_writer_pool() {
    let Some(primary) = support::url("cluster_failover") else {
        return;
    };
    let Some(replica) = tidepool_testkit::replica_url("cluster_failover") else {
        return;
    };
    let (primary, replica) = (support::plain(&primary), support::plain(&replica));
    let cluster = PgCluster::builder(&primary)
        .unwrap()
        .replica(&replica)
        .unwrap()
        .build()
        .await
        .unwrap();
    let idle = cluster.writer().await.unwrap();
    let mut w = cluster.writer().await.unwrap();
    drop(idle);
    // This session answers writes as a standby would: 25006.
    w.batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .await
        .unwrap();
    let err = w
        .execute_values("CREATE TEMP TABLE tp_never (x int)", &[])
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("25006"), "{err}");
    assert!(PgCluster::is_primary_lost(&err));
    assert!(cluster.note_writer_error(&err), "evicted");
    assert!(
        !cluster.note_writer_error(&err),
        "a second signal at once is folded in"
    );
    let status = cluster.status();
    assert_eq!(status.writer_evictions, 1);
    assert!(
        status
            .last_writer_eviction
            .as_deref()
            .is_some_and(|r| r.contains("read-only")),
        "{status:?}"
    );
    assert_eq!(
        status.writer.idle, 0,
        "the idle writer connection closed at once"
    );
    let id = tidepool::Pooled::id(&w);
    drop(w);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let m = cluster.writer_pool().metrics();
    assert_eq!(
        m.connections_closed_evicted, 2,
        "the read-only one closed on return"
    );
    // The next writer connection is a fresh one that takes writes.
    let mut w = cluster.writer().await.unwrap();
    assert_ne!(tidepool::Pooled::id(&w), id);
    let ro: String = w
        .query_one("SHOW transaction_read_only", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ro, "off");
    // Errors that do not mean a lost primary evict nothing.
    assert!(!PgCluster::is_primary_lost(&PgError::RowCount {
        expected: "one",
        got: 0
    }));
    let syntax = w.execute_values("SELEC 1", &[]).await.unwrap_err();
    assert!(!cluster.note_writer_error(&syntax));
    assert_eq!(cluster.status().writer_evictions, 1);
}

/// The multi-host form (`postgres://...@a,b/test`): every host has a
/// reader pool. Through a failover the old primary's reader is banned as
/// failing, the promoted one as not a replica, reads go to the writer (the
/// new primary); once the old primary is rebuilt as a standby the sampler
/// takes it back into the read rotation, with no change to the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_multi_host_url_the_rebuilt_old_primary_comes_back_as_a_reader() {
    let Some(mut pair) =
        tokio::task::spawn_blocking(|| FailoverPair::acquire("cluster_failover_multi_host"))
            .await
            .unwrap()
    else {
        return;
    };
    let (old_port, new_port) = (pair.primary_port, pair.standby_port);
    let url = format!(
        "postgres://postgres@127.0.0.1:{old_port},127.0.0.1:{new_port}/test?sslmode=disable"
    );
    let cluster = PgCluster::builder(&url)
        .unwrap()
        .sample_interval(Duration::from_millis(100))
        .failure_backoff(Duration::from_millis(100), Duration::from_millis(400))
        .build()
        .await
        .unwrap();
    let port_of = |rows: Vec<tidepool::Row>| -> (i32, bool) {
        (
            rows[0].try_get::<i32, _>(0).unwrap(),
            rows[0].try_get::<bool, _>(1).unwrap(),
        )
    };
    let where_sql = "SELECT inet_server_port(), pg_is_in_recovery()";
    // Before: writes on the primary, reads on the standby (the primary's
    // own reader is banned as not a replica).
    assert_eq!(
        port_of(
            cluster
                .execute_query(QueryKind::Write, where_sql, &[])
                .await
                .unwrap()
        ),
        (i32::from(old_port), false)
    );
    assert_eq!(
        port_of(
            cluster
                .execute_query(QueryKind::Read, where_sql, &[])
                .await
                .unwrap()
        ),
        (i32::from(new_port), true)
    );

    pair = tokio::task::spawn_blocking(move || {
        pair.stop_primary().unwrap();
        pair.promote_standby().unwrap();
        pair
    })
    .await
    .unwrap();
    let promoted = Instant::now();
    let served = loop {
        match cluster
            .execute_query(QueryKind::Write, where_sql, &[])
            .await
        {
            Ok(rows) => break port_of(rows),
            Err(e) => {
                assert!(
                    promoted.elapsed() < Duration::from_secs(5),
                    "no write for 5 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    assert_eq!(served, (i32::from(new_port), false));
    cluster.sample_now().await;
    let status = cluster.status();
    assert!(
        matches!(status.replicas[0].banned, Some(BanReason::Failing { .. })),
        "the stopped old primary: {status:?}"
    );
    assert_eq!(
        status.replicas[1].banned,
        Some(BanReason::NotAReplica),
        "{status:?}"
    );
    assert!(status.reads_on_primary);
    assert_eq!(
        port_of(
            cluster
                .execute_query(QueryKind::Read, where_sql, &[])
                .await
                .unwrap()
        ),
        (i32::from(new_port), false),
        "reads on the writer, which is the promoted server"
    );

    pair = tokio::task::spawn_blocking(move || {
        pair.rebuild().unwrap();
        pair
    })
    .await
    .unwrap();
    assert_eq!((pair.primary_port, pair.standby_port), (new_port, old_port));
    // Within a few sampling rounds (the failure backoff is at most 400 ms)
    // the old primary, now a standby, is back in the rotation.
    let rebuilt = Instant::now();
    loop {
        cluster.sample_now().await;
        if cluster.status().replicas[0].banned.is_none() {
            break;
        }
        assert!(
            rebuilt.elapsed() < Duration::from_secs(5),
            "{:?}",
            cluster.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        port_of(
            cluster
                .execute_query(QueryKind::Read, where_sql, &[])
                .await
                .unwrap()
        ),
        (i32::from(old_port), true)
    );
    assert_eq!(
        port_of(
            cluster
                .execute_query(QueryKind::Write, where_sql, &[])
                .await
                .unwrap()
        ),
        (i32::from(new_port), false)
    );
    drop(cluster);
    drop(pair);
}
