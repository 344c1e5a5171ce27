//! docs/MIGRATING.md's programs for tokio-postgres users, run against the
//! real server: each pool's version moves the same balance.

#[allow(dead_code)]
#[path = "../examples/bb8_postgres.rs"]
mod bb8_postgres;
#[allow(dead_code)]
#[path = "../examples/deadpool_postgres.rs"]
mod deadpool_postgres;
#[allow(dead_code)]
#[path = "../examples/tidepool_postgres.rs"]
mod tidepool_postgres;

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
async fn the_deadpool_postgres_program_runs() {
    let Some(url) = url("migrating_deadpool") else {
        return;
    };
    let (moved, status) = deadpool_postgres::run(&url).await.unwrap();
    assert_eq!(moved, 10, "{status}");
}

#[tokio::test]
async fn the_bb8_postgres_program_runs() {
    let Some(url) = url("migrating_bb8") else {
        return;
    };
    let (moved, status) = bb8_postgres::run(&url).await.unwrap();
    assert_eq!(moved, 10, "{status}");
}

#[tokio::test]
async fn the_tidepool_postgres_port_runs() {
    let Some(url) = url("migrating_tidepool") else {
        return;
    };
    let (moved, status) = tidepool_postgres::run(&url).await.unwrap();
    assert_eq!(moved, 10, "{status}");
    assert!(status.contains("breaker Healthy"), "{status}");
}
