//! When the server is the problem: a killed backend is a typed connection
//! error and its connection is closed, not pooled; a wrong password or an
//! unknown database fails the acquire at once with the server's reason;
//! and a database that stops answering opens the pool's circuit breaker.

mod support;

use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use tidepool::{BreakerState, Error, FailureKind, Pool, Pooled};
use tidepool_testkit::proxy::{Fault, FaultProxy};

const CANARY: &str = "wrong-canary-7f3a";

fn select_one() -> diesel::dsl::select<diesel::expression::SqlLiteral<diesel::sql_types::Integer>> {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_terminated_postgres_backend_is_a_connect_error_and_its_connection_is_closed() {
    let Some(url) = support::pg_url("diesel_killed_pg") else {
        return;
    };
    let monitor = support::pg_monitor(&url).await;
    let pool = support::pool(tidepool_diesel::PgManager::new(&url).unwrap(), 1).await;
    let mut conn = pool.get().await.unwrap();
    let victim = Pooled::id(&conn);
    let pid: i32 = diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
        "pg_backend_pid()",
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    tokio_postgres::Client::execute(&monitor, "SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let err = select_one()
        .get_result::<i32>(&mut conn)
        .await
        .expect_err("the backend is gone");
    assert_eq!(
        tidepool_diesel::classify(&err),
        FailureKind::Connect,
        "{err}"
    );
    assert!(tidepool_diesel::TrackedConnection::is_lost(&conn));
    drop(conn);

    let mut next = pool.get().await.unwrap();
    assert_ne!(
        Pooled::id(&next),
        victim,
        "the dead connection was handed out again"
    );
    assert_eq!(select_one().get_result::<i32>(&mut next).await.unwrap(), 1);
    assert_eq!(pool.metrics().connections_closed_broken, 1);
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn a_killed_mysql_connection_is_a_connect_error_and_its_connection_is_closed() {
    let Some(url) = support::mysql_url("diesel_killed_mysql") else {
        return;
    };
    let pool = support::pool(tidepool_diesel::MysqlManager::new(&url).unwrap(), 2).await;
    let mut conn = pool.get().await.unwrap();
    let victim = Pooled::id(&conn);
    let id: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "CAST(CONNECTION_ID() AS SIGNED)",
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    {
        let mut killer = pool.get().await.unwrap();
        diesel::sql_query(format!("KILL {id}"))
            .execute(&mut killer)
            .await
            .unwrap();
    }
    let err = select_one()
        .get_result::<i32>(&mut conn)
        .await
        .expect_err("the connection was killed");
    assert_eq!(
        tidepool_diesel::classify(&err),
        FailureKind::Connect,
        "{err}"
    );
    drop(conn);

    for _ in 0..2 {
        let mut next = pool.get().await.unwrap();
        assert_ne!(
            Pooled::id(&next),
            victim,
            "the dead connection was handed out again"
        );
        assert_eq!(select_one().get_result::<i32>(&mut next).await.unwrap(), 1);
    }
    // Closed on return: as broken when diesel reported the lost
    // connection, after a failed round trip when the error came before
    // diesel's report (a statement being prepared).
    let m = pool.metrics();
    assert_eq!(
        m.connections_closed_broken + m.connections_closed_failed_reset,
        1
    );
}

/// The acquire fails well inside its 10 s timeout, with the server's
/// reason and never the password.
async fn fails_at_once<M>(manager: M, reason: &str)
where
    M: tidepool::Manager,
{
    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    let started = Instant::now();
    let err = match pool.get().await {
        Ok(_) => panic!("connected with bad credentials"),
        Err(e) => e,
    };
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Create(_)), "{err}");
    let text = format!("{err} / {err:?}");
    assert!(text.contains(reason), "{text}");
    assert!(!text.contains(CANARY), "the password leaked: {text}");
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_wrong_postgres_password_or_database_fails_at_once_with_the_cause() {
    let Some(url) = support::pg_url("diesel_wrong_password_pg") else {
        return;
    };
    let wrong = support::url_as(&url, "postgres", 5432, "tidepool_pw", CANARY, "test");
    fails_at_once(
        tidepool_diesel::PgManager::new(&wrong).unwrap(),
        "password authentication failed",
    )
    .await;
    let nowhere = support::url_as(&url, "postgres", 5432, "postgres", CANARY, "tp_no_such_db");
    fails_at_once(
        tidepool_diesel::PgManager::new(&nowhere).unwrap(),
        "does not exist",
    )
    .await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn a_wrong_mysql_password_or_database_fails_at_once_with_the_cause() {
    let Some(url) = support::mysql_url("diesel_wrong_password_mysql") else {
        return;
    };
    let wrong = support::url_as(&url, "mysql", 3306, "tidepool_pw", CANARY, "test");
    fails_at_once(
        tidepool_diesel::MysqlManager::new(&wrong).unwrap(),
        "Access denied",
    )
    .await;
    let nowhere = support::url_as(&url, "mysql", 3306, "root", "", "tp_no_such_db");
    fails_at_once(
        tidepool_diesel::MysqlManager::new(&nowhere).unwrap(),
        "Unknown database",
    )
    .await;
}

/// Puts the fault proxy between the pool and `url`'s server.
async fn proxied(url: &str, default_port: u16) -> (FaultProxy, String) {
    let (host, port) = tidepool_testkit::host_port(url, default_port).unwrap();
    let upstream = (host.as_str(), port)
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let through = url.replacen(
        &format!("{host}:{port}"),
        &format!("127.0.0.1:{}", proxy.port()),
        1,
    );
    (proxy, through)
}

/// The database goes away behind the proxy: queries through diesel fail,
/// connection attempts fail, and the breaker opens; acquires then fail
/// fast with `CircuitOpen`.
async fn breaker_opens<M>(manager: M, proxy: &FaultProxy)
where
    M: tidepool::Manager,
    M::Connection: diesel_async::AsyncConnection,
    for<'a> diesel::dsl::select<diesel::expression::SqlLiteral<diesel::sql_types::Integer>>:
        diesel_async::methods::LoadQuery<'a, Pooled<M>, i32>,
{
    let pool = Pool::builder(manager)
        .max_size(4)
        .acquire_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    {
        let mut conn = pool.get().await.unwrap();
        assert_eq!(select_one().get_result::<i32>(&mut conn).await.unwrap(), 1);
    }
    proxy.set(Fault::Reset);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut conn) = pool.get().await {
            // The proxy's connections see the fault a moment after it is
            // set, so one more query may still go through.
            let _ = select_one().get_result::<i32>(&mut conn).await;
        }
        if pool.breaker_state() == BreakerState::Failed {
            break;
        }
        assert!(Instant::now() < deadline, "the circuit never opened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let err = pool.get().await.expect_err("the circuit is open");
    assert!(matches!(err, Error::CircuitOpen { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn the_breaker_opens_when_postgres_stops_answering_through_diesel() {
    let Some(url) = support::pg_url("diesel_breaker_pg") else {
        return;
    };
    let (proxy, through) = proxied(&url, 5432).await;
    breaker_opens(tidepool_diesel::PgManager::new(&through).unwrap(), &proxy).await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn the_breaker_opens_when_mysql_stops_answering_through_diesel() {
    let Some(url) = support::mysql_url("diesel_breaker_mysql") else {
        return;
    };
    // The manager never switches TCP to the server's Unix socket (it reads
    // URLs as tidepool-mysql does), so the proxy sees every connection.
    let (proxy, through) = proxied(&url, 3306).await;
    breaker_opens(
        tidepool_diesel::MysqlManager::new(&through).unwrap(),
        &proxy,
    )
    .await;
}
