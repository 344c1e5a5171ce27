//! A connection held past `leak_timeout` produces exactly one warning,
//! naming where it was checked out; one returned in time produces none.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::TestManager;
use parking_lot::Mutex;
use tidepool::Pool;

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

impl Captured {
    fn leak_lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock())
            .lines()
            .filter(|l| l.contains("possible leak"))
            .map(str::to_string)
            .collect()
    }
}

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_leak_is_reported_exactly_once_with_its_checkout_location() {
    let (captured, _guard) = capture();
    let pool = Pool::builder(TestManager::new())
        .leak_timeout(Some(Duration::from_secs(10)))
        .build()
        .await
        .unwrap();
    let line = line!() + 1;
    let leaked = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let lines = captured.leak_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(&format!("tests/leak.rs:{line}")),
        "{}",
        lines[0]
    );
    assert_eq!(pool.metrics().leaks_detected, 1);
    drop(leaked);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_connection_returned_before_the_threshold_is_not_reported() {
    let (captured, _guard) = capture();
    let pool = Pool::builder(TestManager::new())
        .leak_timeout(Some(Duration::from_secs(10)))
        .build()
        .await
        .unwrap();
    for _ in 0..5 {
        let conn = pool.get().await.unwrap();
        tokio::time::sleep(Duration::from_secs(8)).await;
        drop(conn);
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        captured.leak_lines().is_empty(),
        "{:?}",
        captured.leak_lines()
    );
    assert_eq!(pool.metrics().leaks_detected, 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn with_stack_traces_on_the_report_carries_the_backtrace() {
    let (captured, _guard) = capture();
    let pool = Pool::builder(TestManager::new())
        .leak_timeout(Some(Duration::from_secs(1)))
        .track_stack_trace(true)
        .build()
        .await
        .unwrap();
    let _leaked = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lines = captured.leak_lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("backtrace="), "{}", lines[0]);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_report_names_the_latest_checkout_not_an_earlier_one() {
    let (captured, _guard) = capture();
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .leak_timeout(Some(Duration::from_secs(10)))
        .build()
        .await
        .unwrap();
    let first = line!() + 1;
    drop(pool.get().await.unwrap());
    let second = line!() + 1;
    let leaked = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let lines = captured.leak_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(&format!("tests/leak.rs:{second}")),
        "{}",
        lines[0]
    );
    assert!(
        !lines[0].contains(&format!("tests/leak.rs:{first}:")),
        "{}",
        lines[0]
    );
    drop(leaked);
}
