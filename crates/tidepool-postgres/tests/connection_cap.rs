//! A role's `CONNECTION LIMIT` (SQLSTATE 53300) is capacity, not an
//! outage: a pool of 10 over a role capped at 3 serves its load on 3
//! connections, never opens the circuit, and reports the ceiling.

mod support;

use std::time::Duration;

use tidepool::{BreakerState, Pool};
use tidepool_postgres::PgManager;

const ROLE: &str = "tp_capped_role";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_capped_at_three_connections_is_served_by_three_without_opening_the_circuit() {
    let Some(url) = support::url("connection_cap") else {
        return;
    };
    let admin = support::pool(
        &support::plain(&url),
        1,
        tidepool_postgres::ResetPolicy::Fast,
    )
    .await;
    {
        let conn = admin.get().await.unwrap();
        conn.batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
                 CREATE ROLE {ROLE} LOGIN;
               END IF;
             END $$;
             ALTER ROLE {ROLE} CONNECTION LIMIT 3;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{ROLE}';"
        ))
        .await
        .unwrap();
    }
    let capped = support::url_with(&url, ROLE, None, "test");
    let manager = PgManager::builder_from_url(&capped)
        .unwrap()
        .build()
        .unwrap();
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
                    let conn = pool.get().await.expect("served within the deadline");
                    conn.batch_execute("SELECT pg_sleep(0.002)").await.unwrap();
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
    assert_eq!(status.size, 3);
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
