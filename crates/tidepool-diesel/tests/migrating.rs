//! docs/MIGRATING.md's diesel programs, run against the real server:
//! diesel-async with deadpool and the tidepool port move the same balance.
#![cfg(feature = "postgres")]

#[allow(dead_code)]
#[path = "../examples/diesel_deadpool.rs"]
mod diesel_deadpool;
#[allow(dead_code)]
#[path = "../examples/diesel_tidepool.rs"]
mod diesel_tidepool;

fn url(test: &str) -> Option<String> {
    tidepool_testkit::postgres_url(test).map(|u| {
        if u.contains('?') {
            u
        } else {
            format!("{u}?sslmode=disable")
        }
    })
}

#[tokio::test]
async fn the_diesel_async_deadpool_program_runs() {
    let Some(url) = url("migrating_diesel_deadpool") else {
        return;
    };
    let (moved, status) = diesel_deadpool::run(&url).await.unwrap();
    assert_eq!(moved, 10, "{status}");
}

#[tokio::test]
async fn the_tidepool_diesel_port_runs() {
    let Some(url) = url("migrating_diesel_tidepool") else {
        return;
    };
    let (moved, status) = diesel_tidepool::run(&url).await.unwrap();
    assert_eq!(moved, 10, "{status}");
    assert!(status.contains("breaker Healthy"), "{status}");
}
