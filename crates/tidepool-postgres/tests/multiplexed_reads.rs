//! Multiplexed reads: what may share a connection (never a transaction or
//! a session change), that a shared read's cancellation or failure touches
//! no other read, that a killed backend fails exactly the reads on it and
//! is discarded, that every read gets its own rows under concurrency, and
//! that idle connections go back to the pool.

use std::collections::HashMap;
use std::time::Duration;

use tidepool::{Pool, Pooled, QueryKind};
use tidepool_postgres::{
    sharing, tokio_postgres, MultiplexConfig, MultiplexError, Multiplexer, PgManager, ReadOnly,
    ResetPolicy, Sharing,
};

mod support;

async fn setup(
    test: &str,
    max_size: u32,
    config: MultiplexConfig,
) -> Option<(String, Pool<PgManager>, Multiplexer)> {
    let url = support::plain(&support::url(test)?);
    let pool = support::pool(&url, max_size, ResetPolicy::Fast).await;
    let mux = Multiplexer::new(pool.clone(), config).unwrap();
    Some((url, pool, mux))
}

/// Waits until `check` holds, or fails the test after 10 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Statements that open, end or depend on a transaction, or change session
/// state: never shared, even when the caller marks them as reads.
const NEVER_SHARED: &[&str] = &[
    "BEGIN",
    "begin isolation level serializable",
    "START TRANSACTION READ ONLY",
    "COMMIT",
    "END",
    "ROLLBACK",
    "ABORT",
    "SAVEPOINT s1",
    "RELEASE SAVEPOINT s1",
    "ROLLBACK TO SAVEPOINT s1",
    "PREPARE TRANSACTION 'x'",
    "COMMIT PREPARED 'x'",
    "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "SET search_path = tenant_7",
    "set statement_timeout to 0",
    "SET SESSION work_mem = '64MB'",
    "RESET ALL",
    "RESET search_path",
    "SET ROLE nobody",
    "SET SESSION AUTHORIZATION DEFAULT",
    "LISTEN jobs",
    "UNLISTEN *",
    "PREPARE p AS SELECT 1",
    "DEALLOCATE p",
    "DEALLOCATE ALL",
    "CREATE TEMP TABLE scratch (id int)",
    "CREATE TEMPORARY TABLE scratch AS SELECT 1",
    "SELECT 1 AS x INTO TEMP scratch",
    "SELECT pg_advisory_lock(1)",
    "SELECT pg_try_advisory_lock(1)",
    "SELECT pg_advisory_lock_shared(1)",
    "SELECT set_config('search_path', 'tenant_7', false)",
    "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
    "DO $$ BEGIN PERFORM 1; END $$",
    "CALL refresh_everything()",
    "SELECT 1; BEGIN",
    "/* a comment */ BEGIN",
    "DISCARD ALL",
];

/// Writes and maintenance: refused unless the caller marks them as reads.
const NOT_READS: &[&str] = &[
    "INSERT INTO t VALUES (1)",
    "UPDATE t SET x = 1",
    "DELETE FROM t",
    "SELECT * FROM t WHERE id = $1 FOR UPDATE",
    "SELECT * FROM t FOR SHARE",
    "WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x",
    "SELECT nextval('ids')",
    "COPY t FROM STDIN",
    "VACUUM t",
    "CREATE TABLE t (id int)",
    "SELECT pg_advisory_xact_lock(1)",
    "SELECT pg_notify('jobs', 'x')",
];

/// Reads with no session effect: shared.
const SHARED: &[&str] = &[
    "SELECT 1",
    "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
    "select name from users where id in ($1, $2, $3)",
    "WITH recent AS (SELECT * FROM orders WHERE at > now() - interval '1 day') SELECT count(*) FROM recent",
    "SELECT status, count(*) FROM orders GROUP BY status",
    "VALUES (1), (2)",
    "TABLE users",
    "SHOW search_path",
    "EXPLAIN SELECT 1",
    "SELECT current_setting('search_path')",
];

#[test]
fn a_statement_that_opens_a_transaction_or_changes_session_state_is_never_multiplexed() {
    for sql in NEVER_SHARED {
        assert!(
            matches!(sharing(*sql), Sharing::Refused { .. }),
            "{sql:?} must not share a connection"
        );
        assert!(
            matches!(sharing(&ReadOnly(sql)), Sharing::Refused { .. }),
            "{sql:?} must not share a connection even when marked read-only"
        );
    }
    for sql in NOT_READS {
        assert!(
            matches!(sharing(*sql), Sharing::Refused { .. }),
            "{sql:?} is not a read"
        );
    }
    for sql in SHARED {
        assert_eq!(sharing(*sql), Sharing::Shareable, "{sql:?} is a read");
        assert_eq!(sharing(&ReadOnly(sql)), Sharing::Shareable, "{sql:?}");
    }
    assert!(matches!(
        sharing("BEGIN"),
        Sharing::Refused {
            kind: QueryKind::Transaction,
            ..
        }
    ));
    assert!(matches!(
        sharing("SET search_path = x"),
        Sharing::Refused { session, .. } if session == tidepool_sql::SessionState::SETTINGS
    ));
}

#[tokio::test]
async fn a_refused_statement_is_never_sent_and_takes_no_connection() {
    let Some((_, pool, mux)) = setup("mux_refused", 2, MultiplexConfig::default()).await else {
        return;
    };
    for sql in NEVER_SHARED.iter().chain(NOT_READS) {
        let err = mux.query(*sql, &[]).await.unwrap_err();
        assert!(
            matches!(err, MultiplexError::NotShareable { .. }),
            "{sql:?}: {err}"
        );
        assert_eq!(err.failure_kind(), tidepool::FailureKind::Client);
    }
    for sql in NEVER_SHARED {
        let err = mux.query(&ReadOnly(sql), &[]).await.unwrap_err();
        assert!(
            matches!(err, MultiplexError::NotShareable { .. }),
            "{sql:?}: {err}"
        );
    }
    let status = mux.status();
    assert_eq!(status.connections_taken, 0, "nothing was checked out");
    assert_eq!(
        status.refused as usize,
        2 * NEVER_SHARED.len() + NOT_READS.len()
    );
    assert_eq!(pool.metrics().checkouts, 0);

    // A write the caller vouches for as a read runs shared.
    let row = mux
        .query_one(&ReadOnly("SELECT $1::int4 + 1 AS n"), &[&41i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>("n"), 42);
}

#[tokio::test]
async fn results_are_correct_under_concurrency() {
    let config = MultiplexConfig::default().connections(3).depth(8);
    let Some((_, pool, mux)) = setup("mux_concurrency", 5, config).await else {
        return;
    };
    let mut tasks = Vec::new();
    for task in 0..200i32 {
        let shared = mux.clone();
        tasks.push(tokio::spawn(async move {
            let mux = shared;
            for i in 0..25i32 {
                let n = task * 1000 + i;
                let text = format!("task {task} read {i}");
                let row = mux
                    .query_one("SELECT $1::int4 AS n, $2::text AS s", &[&n, &text])
                    .await
                    .unwrap();
                assert_eq!(row.get::<_, i32>("n"), n);
                assert_eq!(row.get::<_, &str>("s"), text);
                let rows = mux
                    .query(
                        "SELECT g FROM generate_series(1, $1::int4) AS g",
                        &[&(i % 5)],
                    )
                    .await
                    .unwrap();
                let got: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
                assert_eq!(got, (1..=i % 5).collect::<Vec<_>>());
                let none = mux
                    .query_opt("SELECT 1 WHERE $1::int4 < 0", &[&n])
                    .await
                    .unwrap();
                assert!(none.is_none());
            }
        }));
        let status = mux.status();
        assert!(status.connections.len() <= 3);
        assert!(
            status.connections.iter().all(|&(_, n)| n <= 8),
            "{status:?}"
        );
    }
    for t in tasks {
        t.await.unwrap();
    }
    let status = mux.status();
    assert!(status.connections_taken >= 1);
    assert!(pool.status().in_use <= 3);
    assert_eq!(status.connections_lost, 0);
}

#[tokio::test]
async fn cancelling_one_shared_read_leaves_the_others_and_the_connection_intact() {
    let config = MultiplexConfig::default()
        .connections(1)
        .depth(8)
        .idle_return(Duration::from_secs(30));
    let Some((_, pool, mux)) = setup("mux_cancel", 2, config).await else {
        return;
    };
    let pid: i32 = mux
        .query_one("SELECT pg_backend_pid() AS pid", &[])
        .await
        .unwrap()
        .get("pid");
    let lane = mux.status().connections[0].0;

    let slow = {
        let mux = mux.clone();
        tokio::spawn(async move { mux.query("SELECT pg_sleep(1.5)", &[]).await })
    };
    eventually("the slow read is in flight", || {
        mux.status().connections == vec![(lane, 1)]
    })
    .await;
    let others: Vec<_> = (0..5i32)
        .map(|i| {
            let mux = mux.clone();
            tokio::spawn(async move {
                mux.query_one("SELECT $1::int4 AS n, pg_backend_pid() AS pid", &[&i])
                    .await
            })
        })
        .collect();
    eventually("all six reads are in flight", || {
        mux.status().connections == vec![(lane, 6)]
    })
    .await;
    slow.abort();
    assert!(slow.await.unwrap_err().is_cancelled());

    for (i, t) in others.into_iter().enumerate() {
        let row = t.await.unwrap().unwrap();
        assert_eq!(
            row.get::<_, i32>("n"),
            i as i32,
            "each read gets its own row"
        );
        assert_eq!(row.get::<_, i32>("pid"), pid);
    }
    let again: i32 = mux
        .query_one("SELECT pg_backend_pid() AS pid", &[])
        .await
        .unwrap()
        .get("pid");
    assert_eq!(again, pid, "the connection stayed");
    let status = mux.status();
    assert_eq!(status.connections, vec![(lane, 0)]);
    assert_eq!(status.connections_lost, 0);

    // Given back, it is cleaned (a read was abandoned on it) and reused,
    // not discarded, and the next borrower finds it idle.
    mux.release();
    eventually("the connection is back in the pool", || {
        pool.status().in_use == 0
    })
    .await;
    let conn = pool.get().await.unwrap();
    assert_eq!(Pooled::id(&conn), lane);
    let messages = conn
        .simple_query("SELECT now() = statement_timestamp(), pg_backend_pid()")
        .await
        .unwrap();
    let row = messages.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => {
            Some((r.get(0).map(str::to_string), r.get(1).map(str::to_string)))
        }
        _ => None,
    });
    assert_eq!(
        row,
        Some((Some("t".to_string()), Some(pid.to_string()))),
        "outside any transaction, on the same backend"
    );
    assert_eq!(pool.metrics().connections_closed_broken, 0);
}

#[tokio::test]
async fn a_failed_statement_fails_only_itself_and_the_connection_stays_shared() {
    let config = MultiplexConfig::default()
        .connections(1)
        .idle_return(Duration::from_secs(30));
    let Some((_, _pool, mux)) = setup("mux_query_error", 2, config).await else {
        return;
    };
    let reads: Vec<_> = (0..8i32)
        .map(|i| {
            let mux = mux.clone();
            tokio::spawn(async move {
                mux.query_one("SELECT 10 / $1::int4 AS q", &[&(i % 2)])
                    .await
            })
        })
        .collect();
    for (i, t) in reads.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(row) => {
                assert_eq!(i % 2, 1);
                assert_eq!(row.get::<_, i32>("q"), 10);
            }
            Err(MultiplexError::Query(e)) => {
                assert_eq!(i % 2, 0);
                assert_eq!(e.sqlstate(), Some("22012"), "division by zero");
            }
            Err(e) => panic!("read {i}: {e}"),
        }
    }
    let status = mux.status();
    assert_eq!(status.connections_taken, 1);
    assert_eq!(status.connections_lost, 0);
    assert_eq!(status.connections.len(), 1);
}

async fn admin(url: &str) -> tidepool_postgres::PgConnection {
    PgManager::from_url(url)
        .unwrap()
        .connect_one()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_killed_backend_fails_exactly_the_reads_on_it() {
    let config = MultiplexConfig::default()
        .connections(2)
        .depth(8)
        .idle_return(Duration::from_secs(30));
    let Some((url, pool, mux)) = setup("mux_killed", 4, config).await else {
        return;
    };
    // Two connections held: each burst of two reads opens the second once
    // the first is busy.
    for _ in 0..100 {
        if mux.status().connections.len() == 2 {
            break;
        }
        let (a, b) = tokio::join!(
            mux.query("SELECT pg_sleep(0.02)", &[]),
            mux.query("SELECT pg_sleep(0.02)", &[])
        );
        a.unwrap();
        b.unwrap();
    }
    assert_eq!(mux.status().connections.len(), 2);

    let marker = "SELECT pg_backend_pid() AS pid, $1::int4 AS n, pg_sleep(1) /* mux_killed */";
    let reads: Vec<_> = (0..6i32)
        .map(|i| {
            let mux = mux.clone();
            tokio::spawn(async move { mux.query_one(marker, &[&i]).await })
        })
        .collect();
    eventually("the six reads are in flight", || {
        mux.status()
            .connections
            .iter()
            .map(|&(_, n)| n)
            .sum::<usize>()
            == 6
    })
    .await;
    let placed: HashMap<u64, usize> = mux.status().connections.into_iter().collect();
    assert!(
        placed.values().all(|&n| n > 0),
        "both connections carry reads: {placed:?}"
    );

    let admin = admin(&url).await;
    let mut active: Vec<i32> = Vec::new();
    for _ in 0..100 {
        active = admin
            .query(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE '%mux_killed */' AND state = 'active' AND pid <> pg_backend_pid() ORDER BY pid",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        if active.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(active.len(), 2, "one read runs on each backend");
    let victim = active[0];
    let survivor = active[1];
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&victim])
        .await
        .unwrap()
        .get(0);
    assert!(killed);

    let mut lost_on = Vec::new();
    let mut ok = 0;
    for (i, t) in reads.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(row) => {
                ok += 1;
                assert_eq!(row.get::<_, i32>("n"), i as i32);
                assert_eq!(row.get::<_, i32>("pid"), survivor);
            }
            Err(e @ MultiplexError::ConnectionLost { connection, .. }) => {
                assert_eq!(e.failure_kind(), tidepool::FailureKind::Connect);
                lost_on.push(connection);
            }
            Err(e) => panic!("read {i}: an untyped failure: {e}"),
        }
    }
    let dead = lost_on[0];
    assert!(lost_on.iter().all(|&c| c == dead), "{lost_on:?}");
    assert_eq!(
        lost_on.len(),
        placed[&dead],
        "exactly the reads on it failed"
    );
    assert_eq!(ok, 6 - placed[&dead]);

    let status = mux.status();
    assert_eq!(status.connections_lost, 1);
    assert!(status.connections.iter().all(|&(id, _)| id != dead));
    // Discarded by the pool, never returned as idle; the breaker heard.
    eventually("the dead connection is closed", || {
        pool.metrics().connections_closed_broken == 1
    })
    .await;
    let metrics = pool.metrics();
    assert!(metrics.connections.iter().all(|c| c.id != dead));
    let connect_failures = metrics
        .failures_by_kind
        .iter()
        .find(|(k, _)| *k == tidepool::FailureKind::Connect)
        .map_or(0, |(_, n)| *n);
    assert_eq!(connect_failures, lost_on.len() as u64);

    // Reads go on, on the survivor or a fresh connection.
    let row = mux
        .query_one("SELECT $1::int4 AS n", &[&7i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>("n"), 7);
}

#[tokio::test]
async fn connections_go_back_to_the_pool_when_idle() {
    let config = MultiplexConfig::default()
        .connections(3)
        .depth(4)
        .idle_return(Duration::from_millis(50));
    let Some((_, pool, mux)) = setup("mux_idle_return", 4, config).await else {
        return;
    };
    let reads: Vec<_> = (0..12)
        .map(|_| {
            let mux = mux.clone();
            tokio::spawn(async move { mux.query("SELECT pg_sleep(0.05)", &[]).await })
        })
        .collect();
    for r in reads {
        r.await.unwrap().unwrap();
    }
    let taken = mux.status().connections_taken;
    assert!((1..=3).contains(&taken), "taken {taken}");
    eventually("every connection is back in the pool", || {
        pool.status().in_use == 0 && mux.status().connections.is_empty()
    })
    .await;
    let status = mux.status();
    assert_eq!(status.connections_returned, taken);
    assert_eq!(pool.metrics().connections_closed_broken, 0);
    assert!(
        pool.status().idle as u64 >= taken,
        "returned healthy, not closed"
    );

    // The next read takes one again.
    mux.query("SELECT 1", &[]).await.unwrap();
    assert_eq!(mux.status().connections_taken, taken + 1);
}

#[tokio::test]
async fn a_read_waits_for_the_pool_like_a_checkout_and_times_out_typed() {
    let Some(url) = support::url("mux_pool_timeout") else {
        return;
    };
    let manager = PgManager::from_url(&support::plain(&url)).unwrap();
    let pool = Pool::builder(manager)
        .max_size(1)
        .acquire_timeout(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let mux = Multiplexer::new(pool.clone(), MultiplexConfig::default()).unwrap();
    let held = pool.get().await.unwrap();
    let err = mux.query("SELECT 1", &[]).await.unwrap_err();
    assert!(
        matches!(err, MultiplexError::Pool(tidepool::Error::Timeout { .. })),
        "{err}"
    );
    drop(held);
    mux.query("SELECT 1", &[]).await.unwrap();
}

#[tokio::test]
async fn reads_cancelled_anywhere_give_their_place_and_connection_back() {
    let config = MultiplexConfig::default()
        .connections(2)
        .depth(2)
        .idle_return(Duration::from_secs(30));
    let Some((_, pool, mux)) = setup("mux_cancel_anywhere", 3, config).await else {
        return;
    };
    // Cancelled while admitted or waiting, while a connection is checked
    // out for them, and in flight: 300 reads with deadlines from 0 to 3 ms.
    let reads: Vec<_> = (0..300u64)
        .map(|i| {
            let mux = mux.clone();
            tokio::spawn(async move {
                let deadline = Duration::from_micros(i % 30 * 100);
                tokio::time::timeout(deadline, mux.query("SELECT pg_sleep(0.001)", &[])).await
            })
        })
        .collect();
    for r in reads {
        if let Ok(result) = r.await.unwrap() {
            result.unwrap();
        }
    }
    eventually("every place is free again", || {
        let s = mux.status();
        s.read_places_free == 4 && s.reads_waiting == 0 && s.connections_pending == 0
    })
    .await;
    let status = mux.status();
    assert!(
        status.connections.iter().all(|&(_, n)| n == 0),
        "{status:?}"
    );
    assert_eq!(status.connections_lost, 0);
    // Four reads at once still find their places.
    let (a, b, c, d) = tokio::join!(
        mux.query_one("SELECT 1::int4", &[]),
        mux.query_one("SELECT 2::int4", &[]),
        mux.query_one("SELECT 3::int4", &[]),
        mux.query_one("SELECT 4::int4", &[]),
    );
    let got: Vec<i32> = [a, b, c, d]
        .into_iter()
        .map(|r| r.unwrap().get(0))
        .collect();
    assert_eq!(got, vec![1, 2, 3, 4]);
    // And the connections go back clean: reset where a read was abandoned.
    mux.release();
    eventually("the connections are back", || pool.status().in_use == 0).await;
    assert_eq!(pool.metrics().connections_closed_broken, 0);
    assert_eq!(pool.metrics().connections_closed_failed_reset, 0);
}

#[tokio::test]
async fn a_connection_killed_while_held_idle_is_dropped_before_any_read_meets_it() {
    let config = MultiplexConfig::default()
        .connections(2)
        .depth(4)
        .idle_return(Duration::from_secs(30));
    let Some((url, pool, mux)) = setup("mux_killed_idle", 3, config).await else {
        return;
    };
    for _ in 0..100 {
        if mux.status().connections.len() == 2 {
            break;
        }
        let (a, b) = tokio::join!(
            mux.query("SELECT pg_sleep(0.02)", &[]),
            mux.query("SELECT pg_sleep(0.02)", &[])
        );
        a.unwrap();
        b.unwrap();
    }
    let held: Vec<u64> = mux.status().connections.iter().map(|&(id, _)| id).collect();
    assert_eq!(held.len(), 2);
    // With both idle, a read goes to the first connection held.
    let pid: i32 = mux
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let admin = admin(&url).await;
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    for _ in 0..200 {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The driver reads the server's goodbye and closes the client.
    tokio::time::sleep(Duration::from_millis(300)).await;

    for i in 0..6i32 {
        let row = mux
            .query_one("SELECT $1::int4, pg_backend_pid()", &[&i])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), i);
        assert_ne!(row.get::<_, i32>(1), pid);
    }
    let status = mux.status();
    assert_eq!(status.connections_lost, 1);
    assert!(status.connections.iter().all(|&(id, _)| id != held[0]));
    eventually("the dead connection is closed", || {
        pool.metrics().connections_closed_broken == 1
    })
    .await;
}
