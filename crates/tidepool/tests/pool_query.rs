//! Queries run through the pool report to the breaker by kind: a caller's
//! bad SQL never counts, a failing database does, and a connection that
//! failed at the connection level is closed instead of returned.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;

use tidepool::{
    BoxFuture, BreakerState, Classify, Error, FailureKind, Manager, Pool, QueryKind, Queryable,
    RetryPolicy, Row, Value,
};

#[derive(Debug, thiserror::Error)]
#[error("scripted failure: {0:?}")]
struct Scripted(FailureKind);

impl Classify for Scripted {
    fn failure_kind(&self) -> FailureKind {
        self.0
    }
    fn is_retryable_transaction(&self) -> bool {
        self.0 == FailureKind::Transaction
    }
}

/// A connection whose queries fail as their SQL says.
struct ScriptConn {
    in_tx: bool,
    commits: Arc<AtomicU32>,
    /// BEGINs to refuse as busy before accepting one.
    busy_begins: Arc<AtomicU32>,
}

fn outcome(sql: &str) -> Result<(), Scripted> {
    match sql {
        "syntax error" => Err(Scripted(FailureKind::Client)),
        "server error" => Err(Scripted(FailureKind::Query)),
        "connection lost" => Err(Scripted(FailureKind::Connect)),
        "serialization failure" => Err(Scripted(FailureKind::Transaction)),
        _ => Ok(()),
    }
}

impl Queryable for ScriptConn {
    type Error = Scripted;
    async fn execute_values(&mut self, sql: &str, _: &[Value]) -> Result<u64, Scripted> {
        outcome(sql).map(|()| 1)
    }
    async fn query_values(&mut self, sql: &str, _: &[Value]) -> Result<Vec<Row>, Scripted> {
        outcome(sql).map(|()| {
            vec![Row::new(
                Arc::from(vec!["v".to_string()]),
                vec![Value::Int(1)],
            )]
        })
    }
    async fn query_one_values(&mut self, sql: &str, p: &[Value]) -> Result<Row, Scripted> {
        self.query_values(sql, p).await.map(|mut r| r.remove(0))
    }
    async fn begin(&mut self) -> Result<(), Scripted> {
        if self.busy_begins.load(SeqCst) > 0 {
            self.busy_begins.fetch_sub(1, SeqCst);
            return Err(Scripted(FailureKind::Transaction));
        }
        self.in_tx = true;
        Ok(())
    }
    async fn commit(&mut self) -> Result<(), Scripted> {
        self.in_tx = false;
        self.commits.fetch_add(1, SeqCst);
        Ok(())
    }
    async fn rollback(&mut self) -> Result<(), Scripted> {
        self.in_tx = false;
        Ok(())
    }
    fn in_transaction(&self) -> bool {
        self.in_tx
    }
}

#[derive(Default)]
struct ScriptManager {
    commits: Arc<AtomicU32>,
    busy_begins: Arc<AtomicU32>,
}

impl Manager for ScriptManager {
    type Connection = ScriptConn;
    type Error = Scripted;
    async fn connect(&self) -> Result<ScriptConn, Scripted> {
        Ok(ScriptConn {
            in_tx: false,
            commits: self.commits.clone(),
            busy_begins: self.busy_begins.clone(),
        })
    }
    async fn validate(&self, _: &mut ScriptConn) -> Result<(), Scripted> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_callers_bad_sql_comes_back_typed_and_never_opens_the_circuit() {
    let pool = Pool::builder(ScriptManager::default())
        .build()
        .await
        .unwrap();
    for _ in 0..100 {
        match pool
            .execute_query(QueryKind::Read, "syntax error", &[])
            .await
        {
            Err(Error::Query(Scripted(FailureKind::Client))) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pool.breaker_state(), BreakerState::Healthy);
    assert_eq!(
        pool.execute_query(QueryKind::Read, "SELECT 1", &[])
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_database_failing_queries_opens_the_circuit() {
    let pool = Pool::builder(ScriptManager::default())
        .build()
        .await
        .unwrap();
    for _ in 0..25 {
        let _ = pool
            .execute_query(QueryKind::Write, "server error", &[])
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(pool.breaker_state(), BreakerState::Failed);
    assert!(matches!(
        pool.execute_query(QueryKind::Read, "SELECT 1", &[]).await,
        Err(Error::CircuitOpen { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_connection_level_failure_closes_the_connection() {
    let pool = Pool::builder(ScriptManager::default())
        .build()
        .await
        .unwrap();
    let _ = pool
        .execute_query(QueryKind::Read, "connection lost", &[])
        .await;
    assert_eq!(pool.metrics().connections_closed_broken, 1);
    assert_eq!(pool.status().size, 0);
}

#[tokio::test(start_paused = true)]
async fn a_pool_transaction_retries_serialization_failures_then_commits() {
    let manager = ScriptManager::default();
    let commits = manager.commits.clone();
    let pool = Pool::builder(manager).build().await.unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = attempts.clone();
    let value = pool
        .transaction(
            RetryPolicy::default(),
            move |tx: &mut ScriptConn| -> BoxFuture<'_, Result<i64, Scripted>> {
                let n = seen.fetch_add(1, SeqCst);
                Box::pin(async move {
                    let sql = if n < 2 {
                        "serialization failure"
                    } else {
                        "UPDATE t SET v = v + 1"
                    };
                    tx.execute_values(sql, &[]).await?;
                    Ok(42)
                })
            },
        )
        .await
        .unwrap();
    assert_eq!(value, 42);
    assert_eq!(attempts.load(SeqCst), 3);
    assert_eq!(commits.load(SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_begin_refused_by_a_busy_database_is_retried_like_the_body() {
    let manager = ScriptManager::default();
    manager.busy_begins.store(2, SeqCst);
    let commits = manager.commits.clone();
    let pool = Pool::builder(manager).build().await.unwrap();
    let value = pool
        .transaction(
            RetryPolicy::default(),
            |tx: &mut ScriptConn| -> BoxFuture<'_, Result<i64, Scripted>> {
                Box::pin(async move {
                    tx.execute_values("UPDATE t SET v = 1", &[])
                        .await
                        .map(|_| 7)
                })
            },
        )
        .await
        .unwrap();
    assert_eq!(value, 7);
    assert_eq!(commits.load(SeqCst), 1);
}
