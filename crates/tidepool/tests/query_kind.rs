//! `execute_query` infers the `QueryKind` from the SQL when the caller
//! gives none, through the manager's `query_shape` (the core parses no
//! SQL), with one look-up per query whether statistics are on or not.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use tidepool::{
    Classify, FailureKind, Manager, Pool, QueryKind, QueryShape, Queryable, Row, Value,
};

#[derive(Debug, thiserror::Error)]
#[error("the statement failed")]
struct Failed;

impl Classify for Failed {
    fn failure_kind(&self) -> FailureKind {
        FailureKind::Client
    }
}

struct Conn;

impl Queryable for Conn {
    type Error = Failed;
    async fn execute_values(&mut self, _: &str, _: &[Value]) -> Result<u64, Failed> {
        Ok(0)
    }
    async fn query_values(&mut self, sql: &str, _: &[Value]) -> Result<Vec<Row>, Failed> {
        if sql.contains("fails") {
            Err(Failed)
        } else {
            Ok(Vec::new())
        }
    }
    async fn query_one_values(&mut self, _: &str, _: &[Value]) -> Result<Row, Failed> {
        Err(Failed)
    }
    async fn begin(&mut self) -> Result<(), Failed> {
        Ok(())
    }
    async fn commit(&mut self) -> Result<(), Failed> {
        Ok(())
    }
    async fn rollback(&mut self) -> Result<(), Failed> {
        Ok(())
    }
    fn in_transaction(&self) -> bool {
        false
    }
}

/// Classifies by the first word, as a driver would with tidepool-sql, and
/// counts its look-ups.
#[derive(Default)]
struct Classifying {
    lookups: Arc<AtomicU32>,
    classify: bool,
}

impl Manager for Classifying {
    type Connection = Conn;
    type Error = Failed;
    async fn connect(&self) -> Result<Conn, Failed> {
        Ok(Conn)
    }
    async fn validate(&self, _: &mut Conn) -> Result<(), Failed> {
        Ok(())
    }
    fn query_shape(&self, sql: &str) -> Option<QueryShape> {
        if !self.classify {
            return None;
        }
        self.lookups.fetch_add(1, SeqCst);
        let kind = match sql.split_whitespace().next() {
            Some("select") => QueryKind::Read,
            Some("vacuum") => QueryKind::Maintenance,
            _ => QueryKind::Write,
        };
        Some(QueryShape::new(sql.len() as u64, sql, kind))
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_query_without_a_kind_takes_the_kind_the_manager_classifies() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let pool = Pool::builder(Classifying {
        classify: true,
        ..Classifying::default()
    })
    .build()
    .await
    .unwrap();
    assert_eq!(pool.query_kind("select 1"), QueryKind::Read);
    assert_eq!(pool.query_kind("vacuum t"), QueryKind::Maintenance);
    assert_eq!(pool.query_kind("update t set x = 1"), QueryKind::Write);

    pool.execute_query(None, "select 1", &[]).await.unwrap();
    assert!(pool.execute_query(None, "select fails", &[]).await.is_err());
    assert!(pool.execute_query(None, "vacuum fails", &[]).await.is_err());
    // A kind given is used as given.
    assert!(pool
        .execute_query(QueryKind::Analytics, "select fails too", &[])
        .await
        .is_err());
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let kinds: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("query failed"))
        .filter_map(|l| l.split("kind=").nth(1)?.split_whitespace().next())
        .collect();
    assert_eq!(kinds, ["read", "maintenance", "analytics"], "{logs}");
    // The statistics carry the same kinds.
    let select = pool
        .queries()
        .into_iter()
        .find(|q| &*q.text == "select 1")
        .unwrap();
    assert_eq!(select.kind, QueryKind::Read);
}

#[tokio::test]
async fn a_manager_that_does_not_classify_makes_every_unkinded_query_a_write() {
    let pool = Pool::builder(Classifying::default()).build().await.unwrap();
    assert_eq!(pool.query_kind("select 1"), QueryKind::Write);
    pool.execute_query(None, "select 1", &[]).await.unwrap();
    assert!(pool.queries().is_empty());
}

#[tokio::test]
async fn the_shape_is_looked_up_once_per_query_for_both_statistics_and_kind() {
    for (stats, kind, lookups) in [
        (true, None, 1),
        (true, Some(QueryKind::Read), 1),
        (false, None, 1),
        (false, Some(QueryKind::Read), 0),
    ] {
        let manager = Classifying {
            classify: true,
            ..Classifying::default()
        };
        let counted = manager.lookups.clone();
        let pool = Pool::builder(manager)
            .query_stats(stats)
            .build()
            .await
            .unwrap();
        pool.execute_query(kind, "select 1", &[]).await.unwrap();
        assert_eq!(
            counted.load(SeqCst),
            lookups,
            "statistics {stats}, kind {kind:?}"
        );
        assert_eq!(pool.queries().len(), usize::from(stats));
    }
}
