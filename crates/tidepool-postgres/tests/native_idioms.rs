//! The deadpool-postgres way of writing queries works on a pooled
//! connection and costs nothing on return: `prepare_cached` + `query_one`,
//! `query`, `execute`, `transaction()` with savepoints, all tracked — no
//! `ROLLBACK` on a clean return, so the server never answers one with
//! `WARNING: there is no transaction in progress`. The warnings are
//! counted as the server sends them (tokio-postgres logs each notice it
//! receives through `log`), per test thread: each `#[tokio::test]` runs its
//! pool's connection tasks on its own thread.

use std::cell::Cell;

use tidepool::{Pooled, Queryable, Value};
use tidepool_postgres::tokio_postgres::{self, IsolationLevel};
use tidepool_postgres::{PgManager, ResetPolicy, TxState};

mod support;

const NO_TRANSACTION: &str = "there is no transaction in progress";

thread_local! {
    static WARNINGS: Cell<usize> = const { Cell::new(0) };
}

struct NoticeCounter;

impl log::Log for NoticeCounter {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.args().to_string().contains(NO_TRANSACTION) {
            WARNINGS.with(|w| w.set(w.get() + 1));
        }
    }
    fn flush(&self) {}
}

/// How many "no transaction in progress" warnings this thread's
/// connections have received so far.
fn warnings() -> usize {
    static LOGGER: NoticeCounter = NoticeCounter;
    // Another test of this binary may have installed it already.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    WARNINGS.with(Cell::get)
}

/// Whether the server runs `conn`'s statements inside a transaction. The
/// simple protocol, so the statement and its implicit transaction start
/// together (the extended protocol's Bind and Execute differ).
async fn inside_transaction(conn: &tidepool_postgres::PgConnection) -> bool {
    let messages = conn
        .simple_query("SELECT now() <> statement_timestamp()")
        .await
        .unwrap();
    messages.iter().any(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0) == Some("t"),
        _ => false,
    })
}

/// The notices of the last round trips arrive on the connection task: one
/// more round trip on the same connection flushes them through.
async fn settle(pool: &tidepool::Pool<PgManager>) {
    let conn = pool.get().await.unwrap();
    conn.query_one("SELECT 1", &[]).await.unwrap();
}

#[tokio::test]
async fn the_deadpool_way_returns_clean_with_no_rollback_and_no_server_warning() {
    let Some(url) = support::url("native_deadpool_way") else {
        return;
    };
    let pool = support::pool(&support::plain(&url), 1, ResetPolicy::Fast).await;
    let before = warnings();

    // The counter works: a connection touched through the raw client is
    // rolled back on return, and the server warns once each time.
    for _ in 0..3 {
        let conn = pool.get().await.unwrap();
        conn.client().query_one("SELECT 1", &[]).await.unwrap();
    }
    settle(&pool).await;
    assert_eq!(
        warnings() - before,
        3,
        "the control: each raw use is rolled back"
    );

    let before = warnings();
    let resets = pool.metrics().resets;
    for id in 0..50i32 {
        let mut conn = pool.get().await.unwrap();
        let stmt = conn
            .prepare_cached("SELECT $1::int4 + 1 AS next")
            .await
            .unwrap();
        let row = conn.query_one(&stmt, &[&id]).await.unwrap();
        assert_eq!(row.get::<_, i32>("next"), id + 1);
        let rows = conn
            .query("SELECT generate_series(1, $1::int4)", &[&3i32])
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert!(conn
            .query_opt("SELECT 1 WHERE false", &[])
            .await
            .unwrap()
            .is_none());
        assert_eq!(conn.execute("SELECT 1", &[]).await.unwrap(), 1);
        conn.batch_execute("SELECT 1; SELECT 2").await.unwrap();

        let tx = conn.transaction().await.unwrap();
        tx.query_one(&stmt, &[&id]).await.unwrap();
        tx.commit().await.unwrap();
        let tx = conn.transaction().await.unwrap();
        tx.execute("SELECT 1", &[]).await.unwrap();
        tx.rollback().await.unwrap();

        assert_eq!(conn.tx_state(), TxState::Idle);
        assert!(!conn.needs_reset(ResetPolicy::Fast), "trial {id}");
    }
    settle(&pool).await;
    assert_eq!(pool.metrics().resets, resets, "a clean return was reset");
    assert_eq!(warnings() - before, 0, "the server warned");
}

#[tokio::test]
async fn importing_queryable_does_not_change_what_query_one_means() {
    let Some(url) = support::url("native_import_queryable") else {
        return;
    };
    let pool = support::pool(&support::plain(&url), 1, ResetPolicy::Fast).await;
    let mut conn = pool.get().await.unwrap();
    // `Queryable` is imported in this file: `query_one` is still
    // tokio-postgres' (a native row), the portable face is `*_values`.
    let native: tokio_postgres::Row = conn.query_one("SELECT 7::int8 AS n", &[]).await.unwrap();
    assert_eq!(native.get::<_, i64>("n"), 7);
    let portable: tidepool::Row = conn
        .query_one_values("SELECT $1::int8 AS n", &[Value::Int(7)])
        .await
        .unwrap();
    assert_eq!(portable.get("n"), Some(&Value::Int(7)));
    assert!(!conn.needs_reset(ResetPolicy::Fast));
}

#[tokio::test]
async fn a_native_transaction_commits_rolls_back_and_nests_with_savepoints() {
    let Some(url) = support::url("native_transaction") else {
        return;
    };
    let pool = support::pool(&support::plain(&url), 1, ResetPolicy::Fast).await;
    let table = support::table("native_tx");
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int4 PRIMARY KEY)"
    ))
    .await
    .unwrap();
    let insert = format!("INSERT INTO {table} VALUES ($1)");

    let mut tx = conn.transaction().await.unwrap();
    tx.execute(&insert, &[&1i32]).await.unwrap();
    {
        // Dropped: rolled back to the savepoint, the outer insert stays.
        let sp = tx.transaction().await.unwrap();
        sp.execute(&insert, &[&2i32]).await.unwrap();
    }
    {
        // An error inside a savepoint, rolled back explicitly: the outer
        // transaction goes on.
        let sp = tx.savepoint("named").await.unwrap();
        let err = sp.execute(&insert, &[&1i32]).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        );
        sp.rollback().await.unwrap();
    }
    {
        let sp = tx.transaction().await.unwrap();
        sp.execute(&insert, &[&3i32]).await.unwrap();
        sp.commit().await.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(conn.tx_state(), TxState::Idle);

    let tx = conn.transaction().await.unwrap();
    tx.execute(&insert, &[&4i32]).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(conn.tx_state(), TxState::Idle);

    let tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::Serializable)
        .read_only(true)
        .start()
        .await
        .unwrap();
    let level = tx
        .query_one("SELECT current_setting('transaction_isolation')", &[])
        .await
        .unwrap();
    assert_eq!(level.get::<_, String>(0), "serializable");
    tx.commit().await.unwrap();

    let ids: Vec<i32> = conn
        .query(&format!("SELECT id FROM {table} ORDER BY id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, [1, 3]);
    assert!(!conn.needs_reset(ResetPolicy::Fast));
    conn.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_native_transaction_dropped_open_is_rolled_back_and_the_next_borrower_is_clean() {
    let Some(url) = support::url("native_transaction_dropped") else {
        return;
    };
    let pool = support::pool(&support::plain(&url), 1, ResetPolicy::Fast).await;
    let first;
    {
        let mut conn = pool.get().await.unwrap();
        first = Pooled::id(&conn);
        let tx = conn.transaction().await.unwrap();
        tx.execute("SELECT 1", &[]).await.unwrap();
        drop(tx);
        assert!(
            conn.tx_state().is_dirty(),
            "dropped open: not trusted clean"
        );
        // tokio-postgres sent the ROLLBACK at the drop: what runs next on
        // this checkout is outside the transaction.
        assert!(!inside_transaction(&conn).await);
        assert!(conn.needs_reset(ResetPolicy::Fast));
    }
    let conn = pool.get().await.unwrap();
    assert_eq!(Pooled::id(&conn), first, "reset, not replaced");
    assert_eq!(conn.tx_state(), TxState::Idle);
}

#[tokio::test]
async fn pipelined_queries_are_tracked_and_transaction_control_among_them_is_not_trusted() {
    let Some(url) = support::url("native_pipelined") else {
        return;
    };
    let pool = support::pool(&support::plain(&url), 1, ResetPolicy::Fast).await;
    let conn = pool.get().await.unwrap();
    let (a, b) = tokio::try_join!(
        conn.query_one("SELECT 1::int4", &[]),
        conn.query_one("SELECT 2::int4", &[])
    )
    .unwrap();
    assert_eq!((a.get::<_, i32>(0), b.get::<_, i32>(0)), (1, 2));
    assert!(!conn.needs_reset(ResetPolicy::Fast));
    assert!(!conn.has_query_in_flight());

    // Which of two pipelined statements ran first is not the tracker's to
    // know: a BEGIN among them leaves the state unknown (dirty).
    tokio::try_join!(conn.execute("BEGIN", &[]), conn.query("SELECT 1", &[])).unwrap();
    assert_eq!(conn.tx_state(), TxState::Unknown);
    drop(conn);
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.tx_state(), TxState::Idle);
    assert!(
        !inside_transaction(&conn).await,
        "the next borrower is inside a transaction"
    );
}

#[tokio::test]
async fn a_prepared_begin_makes_every_prepared_statement_untrusted() {
    let Some(url) = support::url("native_prepared_begin") else {
        return;
    };
    let url = support::plain(&url);
    let manager = PgManager::from_url(&url).unwrap();
    let mut conn = manager.connect_one().await.unwrap();
    // A prepared statement does not say what its SQL was; once one that
    // opens a transaction exists, running any prepared statement leaves the
    // state unknown.
    let begin = conn.prepare("BEGIN").await.unwrap();
    let select = conn.prepare_cached("SELECT 1").await.unwrap();
    conn.query(&select, &[]).await.unwrap();
    assert_eq!(conn.tx_state(), TxState::Unknown);
    conn.reset(ResetPolicy::Fast).await.unwrap();
    conn.execute(&begin, &[]).await.unwrap();
    assert!(conn.needs_reset(ResetPolicy::Fast));
    conn.reset(ResetPolicy::Fast).await.unwrap();
    assert!(!inside_transaction(&conn).await);
}

#[tokio::test]
async fn a_native_query_future_dropped_mid_flight_is_cancelled_on_return() {
    let Some(url) = support::url("native_dropped_query") else {
        return;
    };
    let pool = support::pool(&support::plain(&url), 1, ResetPolicy::Fast).await;
    let first;
    {
        let conn = pool.get().await.unwrap();
        first = Pooled::id(&conn);
        conn.prepare_cached("SELECT pg_sleep($1)").await.unwrap();
        let sleeping = conn.execute("SELECT pg_sleep($1)", &[&30.0f64]);
        tokio::select! {
            biased;
            _ = sleeping => panic!("a 30 s sleep finished"),
            _ = std::future::ready(()) => {}
        }
        assert!(conn.has_query_in_flight());
    }
    let started = std::time::Instant::now();
    let conn = pool.get().await.unwrap();
    assert_eq!(Pooled::id(&conn), first, "cancelled, not replaced");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(conn.execute("SELECT 1", &[]).await.unwrap(), 1);
}
