//! Queries through the pool's query face are counted per statement shape
//! (the manager names the shape), per connection, and the slow ones are
//! logged once per shape per interval — with the normalized text and the
//! time, never a parameter's value unless asked for.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tidepool::{
    Classify, Error, FailureKind, Manager, Pool, QueryKind, QueryShape, Queryable, Row, Value,
};

#[derive(Debug, thiserror::Error)]
#[error("query failed")]
struct Failed;

impl Classify for Failed {
    fn failure_kind(&self) -> FailureKind {
        FailureKind::Client
    }
}

/// A connection whose statements take as long as they say:
/// `sleep <ms> rows <n>`, or `fail`.
struct Conn;

impl Queryable for Conn {
    type Error = Failed;
    async fn execute_values(&mut self, sql: &str, p: &[Value]) -> Result<u64, Failed> {
        self.query_values(sql, p).await.map(|r| r.len() as u64)
    }
    async fn query_values(&mut self, sql: &str, _: &[Value]) -> Result<Vec<Row>, Failed> {
        let words: Vec<&str> = sql.split_whitespace().collect();
        if words.first() == Some(&"fail") {
            return Err(Failed);
        }
        let ms: u64 = words.get(1).and_then(|w| w.parse().ok()).unwrap_or(0);
        let rows: usize = words.get(3).and_then(|w| w.parse().ok()).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let columns: Arc<[String]> = Arc::from(vec!["v".to_string()]);
        Ok((0..rows)
            .map(|_| Row::new(columns.clone(), vec![Value::Int(1)]))
            .collect())
    }
    async fn query_one_values(&mut self, sql: &str, p: &[Value]) -> Result<Row, Failed> {
        let mut rows = self.query_values(sql, p).await?;
        rows.pop().ok_or(Failed)
    }
    async fn begin(&mut self) -> Result<(), Failed> {
        Ok(())
    }
    async fn commit(&mut self) -> Result<(), Failed> {
        Ok(())
    }
    async fn rollback(&mut self) -> Result<(), Failed> {
        Ok(())
    }
    fn in_transaction(&self) -> bool {
        false
    }
}

/// Fingerprints by replacing digits with `?` (the drivers use tidepool-sql).
struct Fingerprinting(bool);

impl Manager for Fingerprinting {
    type Connection = Conn;
    type Error = Failed;
    async fn connect(&self) -> Result<Conn, Failed> {
        Ok(Conn)
    }
    async fn validate(&self, _: &mut Conn) -> Result<(), Failed> {
        Ok(())
    }
    fn query_shape(&self, sql: &str) -> Option<QueryShape> {
        if !self.0 {
            return None;
        }
        let text: String = sql
            .chars()
            .map(|c| if c.is_ascii_digit() { '?' } else { c })
            .collect();
        let id = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Some(QueryShape::new(id, text, QueryKind::Read))
    }
}

async fn pool(
    fingerprints: bool,
    build: impl FnOnce(tidepool::Builder<Fingerprinting>) -> tidepool::Builder<Fingerprinting>,
) -> Pool<Fingerprinting> {
    build(Pool::builder(Fingerprinting(fingerprints)).max_size(1))
        .build()
        .await
        .expect("pool")
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn queries_are_counted_per_shape_with_rows_errors_and_time_largest_first() {
    let pool = pool(true, |b| b).await;
    for _ in 0..3 {
        pool.execute_query(QueryKind::Read, "sleep 2 rows 5", &[])
            .await
            .unwrap();
    }
    // Same shape, other literals.
    pool.execute_query(QueryKind::Read, "sleep 4 rows 1", &[])
        .await
        .unwrap();
    pool.execute_query(QueryKind::Read, "sleep 50 rows 1 (other)", &[])
        .await
        .unwrap();
    assert!(matches!(
        pool.execute_query(QueryKind::Read, "fail", &[]).await,
        Err(Error::Query(_))
    ));

    let stats = pool.queries();
    let texts: Vec<&str> = stats.iter().map(|s| &*s.text).collect();
    assert_eq!(texts, ["sleep ?? rows ? (other)", "sleep ? rows ?", "fail"]);
    let sleep = &stats[1];
    assert_eq!((sleep.count, sleep.errors, sleep.rows), (4, 0, 16));
    assert_eq!(sleep.total_time, Duration::from_millis(10));
    assert_eq!(sleep.mean, Duration::from_micros(2500));
    assert_eq!(sleep.max, Duration::from_millis(4));
    assert!(sleep.p99 >= Duration::from_millis(4) && sleep.p99 <= Duration::from_millis(5));
    assert_eq!((stats[2].count, stats[2].errors), (1, 1));

    let conn = &pool.metrics().connections[0];
    assert_eq!(conn.query_count, 6);
    assert_eq!(conn.avg_query_time, Duration::from_millis(60) / 6);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_query_abandoned_by_its_deadline_is_recorded_as_a_failure() {
    let pool = pool(true, |b| b).await;
    let outcome = pool
        .execute_query_within(
            Duration::from_millis(100),
            QueryKind::Read,
            "sleep 1000",
            &[],
        )
        .await;
    assert!(
        matches!(outcome, Err(Error::QueryTimeout { .. })),
        "{outcome:?}"
    );
    let stats = pool.queries();
    assert_eq!((stats[0].count, stats[0].errors), (1, 1));
    assert_eq!(stats[0].total_time, Duration::from_millis(100));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn nothing_is_kept_when_statistics_are_off_or_the_manager_does_not_fingerprint() {
    let off = pool(true, |b| b.query_stats(false)).await;
    off.execute_query(QueryKind::Read, "sleep 1", &[])
        .await
        .unwrap();
    assert!(off.queries().is_empty());
    let blind = pool(false, |b| b).await;
    blind
        .execute_query(QueryKind::Read, "sleep 1", &[])
        .await
        .unwrap();
    assert!(blind.queries().is_empty());
    // The connection still counts its queries.
    assert_eq!(blind.metrics().connections[0].query_count, 1);
}

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
    fn slow_lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock())
            .lines()
            .filter(|l| l.contains("tidepool::slow_query"))
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
async fn a_slow_query_is_logged_once_per_shape_per_minute_without_its_parameters() {
    let (captured, _guard) = capture();
    let pool = pool(true, |b| b).await;
    let secret = [Value::Text("secret-canary".into())];
    // The default threshold is 150 ms.
    pool.execute_query(QueryKind::Read, "sleep 149", &secret)
        .await
        .unwrap();
    assert!(captured.slow_lines().is_empty());
    for _ in 0..3 {
        pool.execute_query(QueryKind::Read, "sleep 200", &secret)
            .await
            .unwrap();
    }
    let lines = captured.slow_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    assert!(lines[0].contains("slow query: sleep ???"), "{}", lines[0]);
    assert!(lines[0].contains("elapsed_ms=200"), "{}", lines[0]);
    assert!(!lines[0].contains("secret-canary"), "{}", lines[0]);
    // Named by the manager's description when the pool has no name.
    assert!(
        lines[0].contains("pool=query_stats::Fingerprinting"),
        "{}",
        lines[0]
    );

    tokio::time::sleep(Duration::from_secs(61)).await;
    pool.execute_query(QueryKind::Read, "sleep 300", &secret)
        .await
        .unwrap();
    let lines = captured.slow_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    // The two slow ones in between are counted in the next line.
    assert!(lines[1].contains("occurrences=3"), "{}", lines[1]);
    assert_eq!(pool.queries()[0].slow, 4);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn parameters_are_logged_only_when_asked_for_and_the_threshold_is_a_knob() {
    let (captured, _guard) = capture();
    let pool = pool(true, |b| {
        b.log_query_parameters(true)
            .slow_query_threshold(Some(Duration::from_millis(10)))
    })
    .await;
    pool.execute_query(
        QueryKind::Read,
        "sleep 20",
        &[Value::Text("visible-value".into())],
    )
    .await
    .unwrap();
    let lines = captured.slow_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("visible-value"), "{}", lines[0]);

    let quiet = Pool::builder(Fingerprinting(true))
        .slow_query_threshold(None)
        .build()
        .await
        .unwrap();
    quiet
        .execute_query(QueryKind::Read, "sleep 5000", &[])
        .await
        .unwrap();
    assert_eq!(captured.slow_lines().len(), 1);
    assert_eq!(quiet.queries()[0].slow, 0);
}

#[test]
fn a_zero_slow_query_threshold_is_refused_naming_the_field() {
    let mut config = tidepool::Config::default();
    assert_eq!(
        config.slow_query_threshold,
        Some(Duration::from_millis(150))
    );
    assert!(config.query_stats && !config.log_query_parameters);
    config.slow_query_threshold = Some(Duration::ZERO);
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains("slow_query_threshold"), "{err}");
}
