//! Operation groups: a parallel group never has more than `k` operations
//! on connections at once and keeps results in order; a failing operation
//! is reported with its index, the rest cancelled or finished as asked; a
//! transaction group runs again as a whole after a serialization failure.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use tidepool::{
    operation, tx_operation, Classify, FailureKind, GroupFailure, Manager, OnError, OperationGroup,
    Outcome, Pool, Queryable, RetryPolicy, Row, Value,
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

/// A connection that records its transaction's statements and commits.
struct Conn {
    in_tx: bool,
    journal: Vec<i64>,
    committed: Arc<parking_lot::Mutex<Vec<i64>>>,
}

impl Queryable for Conn {
    type Error = Scripted;
    async fn execute_values(&mut self, _: &str, params: &[Value]) -> Result<u64, Scripted> {
        if let Some(v) = params.first().and_then(Value::as_i64) {
            self.journal.push(v);
        }
        Ok(1)
    }
    async fn query_values(&mut self, _: &str, _: &[Value]) -> Result<Vec<Row>, Scripted> {
        Ok(Vec::new())
    }
    async fn query_one_values(&mut self, _: &str, _: &[Value]) -> Result<Row, Scripted> {
        Err(Scripted(FailureKind::Client))
    }
    async fn begin(&mut self) -> Result<(), Scripted> {
        self.in_tx = true;
        self.journal.clear();
        Ok(())
    }
    async fn commit(&mut self) -> Result<(), Scripted> {
        self.in_tx = false;
        self.committed.lock().append(&mut self.journal);
        Ok(())
    }
    async fn rollback(&mut self) -> Result<(), Scripted> {
        self.in_tx = false;
        self.journal.clear();
        Ok(())
    }
    fn in_transaction(&self) -> bool {
        self.in_tx
    }
}

#[derive(Default)]
struct M {
    committed: Arc<parking_lot::Mutex<Vec<i64>>>,
}

impl Manager for M {
    type Connection = Conn;
    type Error = Scripted;
    async fn connect(&self) -> Result<Conn, Scripted> {
        Ok(Conn {
            in_tx: false,
            journal: Vec::new(),
            committed: self.committed.clone(),
        })
    }
    async fn validate(&self, _: &mut Conn) -> Result<(), Scripted> {
        Ok(())
    }
    fn needs_reset(&self, conn: &Conn) -> bool {
        conn.in_tx
    }
    async fn reset(&self, conn: &mut Conn) -> Result<(), Scripted> {
        conn.rollback().await
    }
}

async fn pool(max_size: u32) -> Pool<M> {
    Pool::builder(M::default())
        .max_size(max_size)
        .build()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_parallel_group_never_runs_more_than_k_at_once_and_keeps_results_in_order() {
    let pool = pool(10).await;
    let group = OperationGroup::new(&pool, "fan-out");
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let ops = (0..20u64)
        .map(|i| {
            let running = running.clone();
            let most = most.clone();
            operation(move |_conn: &mut Conn| {
                Box::pin(async move {
                    let now = running.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    // Uneven durations, so operations finish out of order.
                    tokio::time::sleep(Duration::from_millis(5 + (i * 7) % 13)).await;
                    running.fetch_sub(1, SeqCst);
                    Ok::<_, Scripted>(i * 2)
                })
            })
        })
        .collect();
    let results = group
        .run_parallel(3, OnError::CancelRest, ops)
        .await
        .unwrap();
    assert_eq!(results, (0..20).map(|i| i * 2).collect::<Vec<_>>());
    assert_eq!(most.load(SeqCst), 3, "the group used its k, and no more");
    let stats = group.stats();
    assert_eq!(stats.peak_parallel, 3);
    assert_eq!(stats.operations_started, 20);
    assert_eq!(stats.operations_succeeded, 20);
    assert_eq!(stats.runs, 1);
    assert_eq!(stats.operation_time.count, 20);
    assert!(
        pool.status().size <= 3,
        "no more than k connections were opened"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_operation_is_reported_with_its_index_and_the_rest_are_cancelled() {
    let pool = pool(4).await;
    let group = OperationGroup::new(&pool, "cancel");
    let finished = Arc::new(AtomicU32::new(0));
    let ops = (0..8u64)
        .map(|i| {
            let finished = finished.clone();
            operation(move |_conn: &mut Conn| {
                Box::pin(async move {
                    if i == 5 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        return Err(Scripted(FailureKind::Client));
                    }
                    tokio::time::sleep(Duration::from_millis(if i < 5 { 0 } else { 1_000 })).await;
                    finished.fetch_add(1, SeqCst);
                    Ok(i)
                })
            })
        })
        .collect();
    let err = group
        .run_parallel(4, OnError::CancelRest, ops)
        .await
        .unwrap_err();
    assert_eq!(err.index(), Some(5));
    assert!(matches!(
        err.failure(),
        GroupFailure::Operation(Scripted(FailureKind::Client))
    ));
    assert!(
        err.to_string()
            .starts_with("operation 5 of group `cancel` failed"),
        "{err}"
    );
    assert!(matches!(err.outcomes()[0], Outcome::Done(0)));
    assert!(matches!(err.outcomes()[6], Outcome::Cancelled));
    assert!(matches!(err.outcomes()[7], Outcome::Cancelled));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        finished.load(SeqCst),
        5,
        "operations 6 and 7 were cancelled"
    );
    let stats = group.stats();
    assert_eq!(stats.operations_failed, 1);
    assert_eq!(stats.operations_cancelled, 2);
    assert_eq!(stats.runs_failed, 1);
    // Every connection came back.
    assert_eq!(pool.status().in_use, 0);
}

#[tokio::test(start_paused = true)]
async fn with_finish_rest_every_other_operation_completes_before_the_failure_is_reported() {
    let pool = pool(4).await;
    let group = OperationGroup::new(&pool, "finish");
    let ops = (0..6u64)
        .map(|i| {
            operation(move |_conn: &mut Conn| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(10 * i)).await;
                    if i == 1 || i == 4 {
                        Err(Scripted(FailureKind::Query))
                    } else {
                        Ok(i)
                    }
                })
            })
        })
        .collect();
    let err = group
        .run_parallel(2, OnError::FinishRest, ops)
        .await
        .unwrap_err();
    assert_eq!(
        err.index(),
        Some(1),
        "the first to fail is the one reported"
    );
    let outcomes = err.into_outcomes();
    assert!(matches!(outcomes[5], Outcome::Done(5)));
    assert!(matches!(outcomes[4], Outcome::Failed(_)));
    assert_eq!(group.stats().operations_cancelled, 0);
}

#[tokio::test(start_paused = true)]
async fn a_transaction_group_runs_again_as_a_whole_after_a_serialization_failure() {
    let manager = M::default();
    let committed = manager.committed.clone();
    let pool = Pool::builder(manager).max_size(2).build().await.unwrap();
    let group = OperationGroup::new(&pool, "transfer");
    let calls = Arc::new(AtomicU32::new(0));
    let conflicts = Arc::new(AtomicU32::new(1));
    let ops = (1..=3i64)
        .map(|i| {
            let calls = calls.clone();
            let conflicts = conflicts.clone();
            tx_operation(move |conn: &mut Conn| {
                let calls = calls.clone();
                let conflicts = conflicts.clone();
                Box::pin(async move {
                    calls.fetch_add(1, SeqCst);
                    conn.execute_values("UPDATE", &[Value::Int(i)]).await?;
                    // The last operation hits a conflict once.
                    if i == 3 && conflicts.load(SeqCst) > 0 {
                        conflicts.fetch_sub(1, SeqCst);
                        return Err(Scripted(FailureKind::Transaction));
                    }
                    Ok(i * 100)
                })
            })
        })
        .collect();
    let results = group
        .run_in_transaction(RetryPolicy::default(), ops)
        .await
        .unwrap();
    assert_eq!(results, vec![100, 200, 300]);
    assert_eq!(
        calls.load(SeqCst),
        6,
        "every operation ran again, from the first"
    );
    assert_eq!(
        *committed.lock(),
        vec![1, 2, 3],
        "only the second attempt committed"
    );
    let stats = group.stats();
    assert_eq!(stats.transaction_attempts, 2);
    assert_eq!(stats.transaction_retries, 1);
}

#[tokio::test(start_paused = true)]
async fn a_transaction_group_reports_the_failing_operation_and_rolls_back() {
    let manager = M::default();
    let committed = manager.committed.clone();
    let pool = Pool::builder(manager).max_size(1).build().await.unwrap();
    let group = OperationGroup::new(&pool, "import");
    let ops = (0..4i64)
        .map(|i| {
            tx_operation(move |conn: &mut Conn| {
                Box::pin(async move {
                    conn.execute_values("INSERT", &[Value::Int(i)]).await?;
                    if i == 2 {
                        return Err(Scripted(FailureKind::Client));
                    }
                    Ok(())
                })
            })
        })
        .collect();
    let err = group
        .run_in_transaction(RetryPolicy::default(), ops)
        .await
        .unwrap_err();
    assert_eq!(err.index(), Some(2));
    assert!(matches!(err.outcomes()[0], Outcome::RolledBack));
    assert!(matches!(err.outcomes()[3], Outcome::Cancelled));
    assert!(committed.lock().is_empty());
    assert_eq!(
        group.stats().transaction_retries,
        0,
        "a caller's mistake is not retried"
    );
    let conn = pool.get().await.unwrap();
    assert!(!conn.in_transaction());
}

#[tokio::test(start_paused = true)]
async fn group_runs_can_be_spawned() {
    let pool = pool(2).await;
    let group = OperationGroup::new(&pool, "spawned");
    let parallel = group.clone();
    let ops = vec![operation(|_conn: &mut Conn| {
        Box::pin(async { Ok::<_, Scripted>(1) })
    })];
    let handle =
        tokio::spawn(async move { parallel.run_parallel(2, OnError::CancelRest, ops).await });
    assert_eq!(handle.await.unwrap().unwrap(), vec![1]);
    let ops = vec![tx_operation(|_conn: &mut Conn| Box::pin(async { Ok(2) }))];
    let handle =
        tokio::spawn(async move { group.run_in_transaction(RetryPolicy::none(), ops).await });
    assert_eq!(handle.await.unwrap().unwrap(), vec![2]);
}
