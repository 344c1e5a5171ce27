//! Transactions through `tidepool::transaction` and
//! `tidepool::run_in_transaction`: commit on Ok, rollback on Err, a retry
//! after a real serialization failure (40001), and bodies that borrow and
//! move ordinary data.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tidepool::{
    run_in_transaction, transaction, Classify, FailureKind, Queryable, RetryPolicy, Value,
};
use tidepool_postgres::{PgError, ResetPolicy};

mod support;

#[tokio::test]
async fn a_transaction_commits_on_ok_and_rolls_back_on_err() {
    let Some(url) = support::url("tx_commit_rollback") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    let table = support::table("tx");
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int8 PRIMARY KEY)"
    ))
    .await
    .unwrap();

    let insert = format!("INSERT INTO {table} VALUES ($1)");
    let ins = insert.clone();
    transaction(&mut *conn, RetryPolicy::none(), move |tx| {
        let ins = ins.clone();
        Box::pin(async move { tx.execute_values(&ins, &[Value::Int(1)]).await })
    })
    .await
    .unwrap();
    assert!(!conn.in_transaction());

    let ins = insert.clone();
    let err = transaction(&mut *conn, RetryPolicy::none(), move |tx| {
        let ins = ins.clone();
        Box::pin(async move {
            tx.execute_values(&ins, &[Value::Int(2)]).await?;
            tx.execute_values(&ins, &[Value::Int(1)]).await // duplicate key
        })
    })
    .await
    .unwrap_err();
    assert_eq!(err.sqlstate(), Some("23505"));
    assert!(!conn.in_transaction());

    let rows = conn
        .query_values(&format!("SELECT id FROM {table} ORDER BY id"), &[])
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r.get(0).cloned().unwrap())
            .collect::<Vec<_>>(),
        vec![Value::Int(1)]
    );
    conn.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_serialization_failure_is_retried_until_the_transaction_commits() {
    let Some(url) = support::url("tx_serialization_retry") else {
        return;
    };
    let pool = support::pool(&url, 2, ResetPolicy::Fast).await;
    let table = support::table("serial");
    let setup = pool.get().await.unwrap();
    setup
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int4 PRIMARY KEY, v int4); INSERT INTO {table} VALUES (1, 0)"))
        .await
        .unwrap();
    drop(setup);

    // The first attempt reads, then a concurrent serializable transaction
    // commits a write to the same row, so the first attempt's write fails
    // with 40001; the retry then succeeds.
    let attempts = Arc::new(AtomicU32::new(0));
    let mut conn = pool.get().await.unwrap();
    let other = Arc::new(tokio::sync::Mutex::new(pool.get().await.unwrap()));
    let (t, a, o) = (table.clone(), attempts.clone(), other.clone());
    let result = transaction(&mut *conn, RetryPolicy::default(), |tx| {
        let t = t.clone();
        let a = a.clone();
        let other_cell = o.clone();
        Box::pin(async move {
            tx.execute_values("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", &[]).await?;
            let n = a.fetch_add(1, Ordering::SeqCst);
            let v = tx.query_one_values(&format!("SELECT v FROM {t} WHERE id = 1"), &[]).await?;
            if n == 0 {
                let other = other_cell.lock().await;
                other.batch_execute(&format!(
                    "BEGIN ISOLATION LEVEL SERIALIZABLE; UPDATE {t} SET v = v + 100 WHERE id = 1; COMMIT"
                ))
                .await?;
            }
            let v = v.get("v").and_then(Value::as_i64).unwrap_or_default();
            tx.execute_values(&format!("UPDATE {t} SET v = $1 WHERE id = 1"), &[Value::Int(v + 1)]).await
        })
    })
    .await;
    assert_eq!(result.unwrap(), 1);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    let row = conn
        .query_one_values(&format!("SELECT v FROM {table} WHERE id = 1"), &[])
        .await
        .unwrap();
    assert_eq!(row.get("v"), Some(&Value::Int(101)));
    other
        .lock()
        .await
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn two_conflicting_serializable_transactions_give_a_retryable_40001() {
    let Some(url) = support::url("tx_40001") else {
        return;
    };
    let manager = tidepool_postgres::PgManager::from_url(&url).unwrap();
    let mut a = manager.connect_one().await.unwrap();
    let mut b = manager.connect_one().await.unwrap();
    let table = support::table("conflict");
    a.batch_execute(&format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int4 PRIMARY KEY, v int4); INSERT INTO {table} VALUES (1, 0)"))
        .await
        .unwrap();
    for c in [&mut a, &mut b] {
        c.execute_values("BEGIN ISOLATION LEVEL SERIALIZABLE", &[])
            .await
            .unwrap();
        c.query_values(&format!("SELECT v FROM {table}"), &[])
            .await
            .unwrap();
    }
    a.execute_values(&format!("UPDATE {table} SET v = 1 WHERE id = 1"), &[])
        .await
        .unwrap();
    a.commit().await.unwrap();
    let err: PgError = b
        .execute_values(&format!("UPDATE {table} SET v = 2 WHERE id = 1"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("40001"));
    assert_eq!(err.failure_kind(), FailureKind::Transaction);
    assert!(err.is_retryable_transaction());
    assert_eq!(b.tx_state(), tidepool_postgres::TxState::Failed);
    b.rollback().await.unwrap();
    a.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn run_in_transaction_takes_a_body_that_moves_a_string_and_borrows_a_local() {
    let Some(url) = support::url("tx_async_closure") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    let table = support::table("txclosure");
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int8 PRIMARY KEY, name text)"
    ))
    .await
    .unwrap();

    // With `transaction`, moving `name` into the body fails (E0507: it is
    // moved out of an FnMut closure) and borrowing `insert` fails (it must
    // outlive 'static). An async closure takes both as they are.
    let insert = format!("INSERT INTO {table} (id, name) VALUES ($1, $2)");
    let name = String::from("ada");
    let borrowed = &insert;
    let inserted = run_in_transaction(&mut *conn, RetryPolicy::none(), async move |tx| {
        tx.execute_values(borrowed, &[Value::Int(1), name.as_str().into()])
            .await
    })
    .await
    .unwrap();
    assert_eq!(inserted, 1);
    assert!(!conn.in_transaction());
    assert!(insert.starts_with("INSERT"), "the local is still ours");

    // An Err rolls back, and the body can keep state across calls.
    let mut calls = 0;
    let err = run_in_transaction(&mut *conn, RetryPolicy::none(), async |tx| {
        calls += 1;
        tx.execute_values(&insert, &[Value::Int(2), "bob".into()])
            .await?;
        tx.execute_values(&insert, &[Value::Int(1), "dup".into()])
            .await
    })
    .await
    .unwrap_err();
    assert_eq!(err.sqlstate(), Some("23505"));
    assert_eq!(calls, 1);
    assert!(!conn.in_transaction());
    let row = conn
        .query_one_values(&format!("SELECT count(*) AS n FROM {table}"), &[])
        .await
        .unwrap();
    assert_eq!(row.get("n"), Some(&Value::Int(1)));

    // It runs on a spawned task too, with a body that owns what it uses
    // (see `run_in_transaction`'s docs for why not a borrowing one there).
    let drop_it = format!("DROP TABLE {table}");
    let spawned = tokio::spawn(async move {
        run_in_transaction(&mut *conn, RetryPolicy::none(), async move |tx| {
            tx.execute_values(&drop_it, &[]).await
        })
        .await
    });
    spawned.await.unwrap().unwrap();
}

#[tokio::test]
async fn run_in_transaction_retries_a_serialization_failure_with_borrowed_state() {
    let Some(url) = support::url("tx_async_closure_retry") else {
        return;
    };
    let pool = support::pool(&url, 2, ResetPolicy::Fast).await;
    let table = support::table("serial_closure");
    let setup = pool.get().await.unwrap();
    setup
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int4 PRIMARY KEY, v int4); INSERT INTO {table} VALUES (1, 0)"))
        .await
        .unwrap();

    // As in the test above with `transaction`, but the attempt counter is a
    // plain local and the other connection is borrowed: no Arc, no Mutex.
    let mut attempts = 0u32;
    let mut conn = pool.get().await.unwrap();
    let other = &setup;
    let select = format!("SELECT v FROM {table} WHERE id = 1");
    let result = run_in_transaction(&mut *conn, RetryPolicy::default(), async |tx| {
        tx.execute_values("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", &[])
            .await?;
        attempts += 1;
        let v = tx.query_one_values(&select, &[]).await?;
        if attempts == 1 {
            other
                .batch_execute(&format!(
                    "BEGIN ISOLATION LEVEL SERIALIZABLE; UPDATE {table} SET v = v + 100 WHERE id = 1; COMMIT"
                ))
                .await?;
        }
        let v = v.get("v").and_then(Value::as_i64).unwrap_or_default();
        tx.execute_values(
            &format!("UPDATE {table} SET v = $1 WHERE id = 1"),
            &[Value::Int(v + 1)],
        )
        .await
    })
    .await;
    assert_eq!(result.unwrap(), 1);
    assert_eq!(attempts, 2);
    let row = conn.query_one_values(&select, &[]).await.unwrap();
    assert_eq!(row.get("v"), Some(&Value::Int(101)));
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
