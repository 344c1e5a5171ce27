//! docs/MIGRATING.md's sqlx programs, run against the real server: sqlx's
//! pool and the tidepool port move the same balance.
#![cfg(feature = "postgres")]

#[allow(dead_code)]
#[path = "../examples/sqlx_pool.rs"]
mod sqlx_pool;
#[allow(dead_code)]
#[path = "../examples/sqlx_tidepool.rs"]
mod sqlx_tidepool;

#[tokio::test]
async fn the_sqlx_pool_program_runs() {
    let Some(url) = tidepool_testkit::postgres_url("migrating_sqlx_pool") else {
        return;
    };
    let (moved, status) = sqlx_pool::run(&url).await.unwrap();
    assert_eq!(moved, 10, "{status}");
}

#[tokio::test]
async fn the_tidepool_sqlx_port_runs() {
    let Some(url) = tidepool_testkit::postgres_url("migrating_sqlx_tidepool") else {
        return;
    };
    let (moved, status) = sqlx_tidepool::run(&url).await.unwrap();
    assert_eq!(moved, 10, "{status}");
    assert!(status.contains("breaker Healthy"), "{status}");
}
