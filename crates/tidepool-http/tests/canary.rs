//! No password reaches a metric label, a JSON field, the page or a log
//! line: two PostgreSQL pools whose URLs carry a canary password — one
//! working, one pointed at a closed port so its errors fill the breaker's
//! last error — named by their (redacted) targets, served, and every
//! endpoint read, with every log line of the run captured. And no
//! statement's literal or bound parameter reaches the query statistics'
//! labels, JSON or the slow-query log.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::{get, get_with, queried_pool, serve, QUERY_CANARIES};
use parking_lot::Mutex;
use tidepool_http::Pools;
use tidepool_postgres::PgManager;

const CANARY: &str = "Canary-Pw-7f3a9c";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_endpoint_and_no_log_line_shows_the_password() {
    let Some(url) =
        tidepool_testkit::postgres_url("no_endpoint_and_no_log_line_shows_the_password")
    else {
        return;
    };
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // postgres://postgres@127.0.0.1:5432/test → with the canary password
    // (trust authentication ignores it).
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, host) = rest.split_once('@').unwrap();
    let user = user.split(':').next().unwrap();
    let working_url = format!("{scheme}://{user}:{CANARY}@{host}");
    let dead_url = format!("postgres://{user}:{CANARY}@127.0.0.1:1/test");

    let working = tidepool::Pool::builder(PgManager::from_url(&working_url).unwrap())
        .min_size(1)
        .build()
        .await
        .unwrap();
    drop(working.get().await.unwrap());
    let dead = tidepool::Pool::builder(PgManager::from_url(&dead_url).unwrap())
        .min_size(0)
        .acquire_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    for _ in 0..10 {
        let err = dead.get().await.unwrap_err();
        assert!(!err.to_string().contains(CANARY));
    }
    assert!(
        dead.metrics().breaker.unwrap().last_error.is_some(),
        "the dead pool recorded an error"
    );

    let working_name = working.name();
    let pools = Pools::new()
        .add_pool(working)
        .unwrap()
        .add_pool(dead)
        .unwrap();
    let addr = serve(pools.router()).await;
    let encoded: String = working_name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut seen = 0;
    for path in [
        "/health".to_string(),
        "/health/ready".into(),
        "/metrics".into(),
        "/pools".into(),
        "/pools?window=5s".into(),
        format!("/pools/{working_name}"),
        format!("/pools/{encoded}"),
        "/pools/nope".into(),
        "/pools?window=bad".into(),
        "/dashboard".into(),
    ] {
        for accept in ["", "Accept: application/openmetrics-text;version=1.0.0\r\n"] {
            let r = get_with(addr, &path, accept).await;
            assert!(
                !r.body.contains(CANARY),
                "{path} shows the password:\n{}",
                r.body
            );
            assert!(
                !r.headers.iter().any(|(_, v)| v.contains(CANARY)),
                "{path}: in a header"
            );
            seen += r.body.len();
        }
    }
    // The pools are there, named by their targets without the password.
    let pools = get(addr, "/pools").await.json();
    assert_eq!(pools.as_array().unwrap().len(), 2);
    assert!(
        pools[0]["name"].as_str().unwrap().contains("127.0.0.1"),
        "{pools:#}"
    );
    assert!(pools[1]["breaker"]["last_error"].is_string(), "{pools:#}");
    assert!(seen > 10_000);
    let logs = String::from_utf8_lossy(&captured.0.lock()).into_owned();
    assert!(!logs.is_empty(), "the run logged something to check");
    assert!(
        !logs.contains(CANARY),
        "a log line shows the password:\n{logs}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn no_literal_or_parameter_value_reaches_a_metric_the_json_or_the_slow_query_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let dir = tempfile::tempdir().unwrap();
    let pool = queried_pool("queried", dir.path()).await;
    assert!(pool.queries().len() >= 5, "{:?}", pool.queries());
    let addr = serve(Pools::new().add_pool(pool).unwrap().router()).await;
    let mut shapes_seen = false;
    for path in ["/metrics", "/pools", "/pools/queried", "/dashboard"] {
        for accept in ["", "Accept: application/openmetrics-text;version=1.0.0\r\n"] {
            let r = get_with(addr, path, accept).await;
            assert_eq!(r.status, 200, "{path}");
            for canary in QUERY_CANARIES {
                assert!(
                    !r.body.contains(canary),
                    "{path} shows {canary}:\n{}",
                    r.body
                );
            }
            shapes_seen |= r.body.contains("insert into secrets");
        }
    }
    assert!(shapes_seen, "the shapes themselves are shown");
    let logs = String::from_utf8_lossy(&captured.0.lock()).into_owned();
    assert!(
        logs.contains("slow query: insert into secrets"),
        "the slow-query log wrote its lines:\n{logs}"
    );
    // The slow-query log's lines. (The driver's own error for the
    // unterminated string quotes the statement, as SQLite words it; the
    // pool logs that error at debug under `tidepool::pool`, which is the
    // driver's message, not the statistics'.)
    let slow: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("tidepool::slow_query"))
        .collect();
    assert!(slow.len() >= 6, "{slow:#?}");
    for canary in QUERY_CANARIES {
        for line in &slow {
            assert!(
                !line.contains(canary),
                "a slow-query line shows {canary}: {line}"
            );
        }
    }
}
