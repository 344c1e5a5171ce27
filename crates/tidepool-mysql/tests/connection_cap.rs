//! An account's connection limit (MariaDB `MAX_USER_CONNECTIONS`, error
//! 1226; server-wide 1040 and 1203) is capacity, not an outage: the pool
//! serves its load on what it has and never opens the circuit.

mod support;

use std::time::Duration;

use tidepool::{BreakerState, Pool, Queryable};
use tidepool_mysql::{MysqlManager, ResetPolicy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_capped_at_three_connections_is_served_by_three_without_opening_the_circuit() {
    let Some(url) = support::url("connection_cap") else {
        return;
    };
    let admin = support::pool(&url, 1, ResetPolicy::Fast).await;
    {
        let mut conn = admin.get().await.unwrap();
        for sql in [
            "CREATE USER IF NOT EXISTS 'tp_capped'@'%' IDENTIFIED BY 'capped-pw'",
            "ALTER USER 'tp_capped'@'%' WITH MAX_USER_CONNECTIONS 3",
            "GRANT SELECT ON test.* TO 'tp_capped'@'%'",
        ] {
            conn.execute_values(sql, &[]).await.unwrap();
        }
    }
    let capped = support::url_as(&url, "tp_capped", "capped-pw", "test");
    let manager = MysqlManager::from_url(&capped).unwrap();
    let pool = Pool::builder(manager)
        .max_size(10)
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let mut served = 0u32;
                while started.elapsed() < Duration::from_secs(2) {
                    let mut conn = pool.get().await.expect("served within the deadline");
                    conn.query_values("SELECT SLEEP(0.002)", &[]).await.unwrap();
                    drop(conn);
                    served += 1;
                }
                served
            })
        })
        .collect();
    let mut served = 0;
    for t in tasks {
        served += t.await.unwrap();
    }
    let status = pool.status();
    let m = pool.metrics();
    assert!(served > 100, "served {served}");
    assert_eq!(pool.breaker_state(), BreakerState::Healthy);
    assert_eq!(
        m.breaker.as_ref().and_then(|b| b.last_transition),
        None,
        "{:?}",
        m.breaker
    );
    assert_eq!(status.server_ceiling, Some(3), "{status:?}");
    assert_eq!(m.connection_attempts_failed, 0);
    // The first burst (up to 10 - 3 attempts in flight before the first
    // refusal) is refused; after that the ceiling is retried with backoff
    // (100 ms, 200 ms, 400 ms, 800 ms): a dozen refusals in 2 s at most,
    // not the 24 a second of a pool that takes the cap for an outage.
    assert!(
        (1..=12).contains(&m.connection_attempts_refused_at_capacity),
        "refusals: {}",
        m.connection_attempts_refused_at_capacity
    );
    pool.close(Duration::from_secs(1)).await;
}
