//! What the router tests share: a pool to serve, a server on a loopback
//! port, a plain HTTP/1.1 client (no client library: the tests read
//! exactly what a scraper reads), and where the external tools are.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A manager whose connections are unit values and whose connect can be
/// made to fail, for pools that need no server.
#[derive(Clone, Default)]
pub struct Fake {
    pub failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Whether every connection says it has prepared every statement.
    pub prepared: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("fake: connection refused")]
pub struct Refused;

impl tidepool::Manager for Fake {
    type Connection = ();
    type Error = Refused;
    async fn connect(&self) -> Result<(), Refused> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            Err(Refused)
        } else {
            Ok(())
        }
    }
    async fn validate(&self, _: &mut ()) -> Result<(), Refused> {
        Ok(())
    }
    fn describe(&self) -> String {
        "fake://db".into()
    }
    fn has_prepared(&self, _: &(), _: u64) -> bool {
        self.prepared
    }
}

/// A manager whose server has room for `room` connections and refuses
/// the next ones as "too many connections" (counted, never closed: the
/// tests hold what they open).
#[derive(Clone)]
pub struct Capped {
    pub room: usize,
    pub open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Debug, thiserror::Error)]
#[error("capped: too many connections")]
pub struct TooMany;

impl tidepool::Manager for Capped {
    type Connection = ();
    type Error = TooMany;
    async fn connect(&self) -> Result<(), TooMany> {
        use std::sync::atomic::Ordering::SeqCst;
        self.open
            .fetch_update(SeqCst, SeqCst, |n| (n < self.room).then_some(n + 1))
            .map(|_| ())
            .map_err(|_| TooMany)
    }
    async fn validate(&self, _: &mut ()) -> Result<(), TooMany> {
        Ok(())
    }
    fn is_at_capacity(&self, _: &TooMany) -> bool {
        true
    }
    fn describe(&self) -> String {
        "capped://db".into()
    }
}

/// A pool named `name` whose server refused it past two connections: it
/// holds both (returned by the function) and knows the ceiling.
pub async fn capped_pool(name: &str) -> (tidepool::Pool<Capped>, Vec<tidepool::Pooled<Capped>>) {
    let pool = tidepool::Pool::builder(Capped {
        room: 2,
        open: Default::default(),
    })
    .name(name)
    .min_size(0)
    .max_size(4)
    .acquire_timeout(Duration::from_millis(300))
    .build()
    .await
    .unwrap();
    let held = vec![pool.get().await.unwrap(), pool.get().await.unwrap()];
    assert!(pool.get().await.is_err(), "no room for a third");
    assert_eq!(pool.status().server_ceiling, Some(2));
    (pool, held)
}

/// An SQLite pool in a temporary directory, named `name`, with some
/// traffic through it.
pub async fn sqlite_pool(
    name: &str,
    dir: &std::path::Path,
) -> tidepool::Pool<tidepool_sqlite::SqliteManager> {
    let manager = tidepool_sqlite::SqliteManager::new(tidepool_sqlite::SqliteConfig::file(
        dir.join(format!("{name}.db")),
    ));
    let pool = tidepool::Pool::builder(manager)
        .name(name)
        .min_size(1)
        .max_size(4)
        .build()
        .await
        .unwrap();
    for _ in 0..5 {
        let conn = pool.get().await.unwrap();
        let one: i64 = conn
            .call(|c| c.query_row("SELECT 1", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(one, 1);
    }
    pool
}

/// Literal values the queried pool's statements carry inline, and a
/// parameter value it binds: none may appear in a metric, a JSON field or
/// the page.
pub const QUERY_CANARIES: [&str; 4] = [
    "Canary-Literal-9d2e",
    "hunter2-Canary-Pw",
    "Canary-Param-41b7",
    "Canary-Unterminated",
];

/// An SQLite pool named `name` whose statements went through
/// `execute_query` (so its query statistics have shapes): three inserts
/// with literals inline (one shape), a select with a literal (run twice)
/// and one with a bound parameter, a statement that fails on a missing
/// table and an unterminated string. Every statement counts as slow (the
/// threshold is 1 ns), so the slow-query log writes its lines too.
pub async fn queried_pool(
    name: &str,
    dir: &std::path::Path,
) -> tidepool::Pool<tidepool_sqlite::SqliteManager> {
    use tidepool::{QueryKind, Value};
    let manager = tidepool_sqlite::SqliteManager::new(tidepool_sqlite::SqliteConfig::file(
        dir.join(format!("{name}.db")),
    ));
    let pool = tidepool::Pool::builder(manager)
        .name(name)
        .min_size(1)
        .max_size(2)
        .slow_query_threshold(Some(Duration::from_nanos(1)))
        .build()
        .await
        .unwrap();
    let [literal, password, param, unterminated] = QUERY_CANARIES;
    pool.execute_query(
        QueryKind::Maintenance,
        "CREATE TABLE IF NOT EXISTS secrets (k TEXT, v TEXT)",
        &[],
    )
    .await
    .unwrap();
    for n in 0..3 {
        let sql = format!("INSERT INTO secrets VALUES ('{literal}-{n}', '{password}')");
        pool.execute_query(QueryKind::Write, &sql, &[])
            .await
            .unwrap();
    }
    for _ in 0..2 {
        let sql = format!("SELECT v FROM secrets WHERE k = '{literal}-1' AND v = '{password}'");
        pool.execute_query(QueryKind::Read, &sql, &[])
            .await
            .unwrap();
    }
    pool.execute_query(
        QueryKind::Read,
        "SELECT v FROM secrets WHERE k = ?1",
        &[Value::Text(param.into())],
    )
    .await
    .unwrap();
    let missing = format!("SELECT v FROM no_such_table WHERE k = '{literal}'");
    assert!(pool
        .execute_query(QueryKind::Read, &missing, &[])
        .await
        .is_err());
    let bad = format!("SELECT v FROM secrets WHERE k = '{unterminated}");
    assert!(pool
        .execute_query(QueryKind::Read, &bad, &[])
        .await
        .is_err());
    pool
}

/// Serves `router` on a free loopback port until the test ends.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// `GET path`, or `None` when nothing listens there (yet) or the answer
/// does not come within 10 s.
pub async fn try_get(addr: SocketAddr, path: &str) -> Option<Reply> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.ok()?;
        Some(parse(&raw))
    })
    .await
    .ok()
    .flatten()
}

/// One response: status, headers (lowercased names), body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `GET path` over HTTP/1.1 with `Connection: close`, within 10 s.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    get_with(addr, path, "").await
}

/// `GET path` with extra header lines (each ending in `\r\n`).
pub async fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Reply {
    request(addr, "GET", path, headers).await
}

/// `POST path` with an empty body, within 10 s.
pub async fn post(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "POST", path, "Content-Length: 0\r\n").await
}

/// `METHOD path` with extra header lines, within 10 s.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &str) -> Reply {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        parse(&raw)
    })
    .await
    .unwrap_or_else(|_| panic!("{method} {path} took over 10 s"))
}

fn parse(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// An external tool (promtool, prometheus, chromium): its path, or `None`
/// after printing why the test skips. With `TIDEPOOL_REQUIRE_DB=1` (as in
/// CI) a missing tool fails the test instead.
pub fn tool(test: &str, names: &[&str], package: &str) -> Option<PathBuf> {
    let found = names.iter().find_map(|n| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(n))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        if tidepool_testkit::database_required() {
            panic!(
                "{test}: {} not found and TIDEPOOL_REQUIRE_DB is set (apt-get install {package})",
                names[0]
            );
        }
        println!(
            "SKIPPED {test}: {} not found (apt-get install {package})",
            names[0]
        );
    }
    found
}

/// The names of every sample in an exposition (`foo_bucket`, `foo_total`,
/// ...), without labels.
pub fn sample_names(exposition: &str) -> std::collections::BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A cluster of `Fake` pools (`{name} writer`, `{name} reader`) whose one
/// replica is banned for lag, for scrapes that need every family.
pub struct LaggingCluster {
    pub writer: tidepool::Pool<Fake>,
    pub reader: tidepool::Pool<Fake>,
}

impl LaggingCluster {
    pub async fn new(name: &str) -> Self {
        let pool = |n: String| async move {
            tidepool::Pool::builder(Fake::default())
                .name(n)
                .build()
                .await
                .unwrap()
        };
        LaggingCluster {
            writer: pool(format!("{name} writer")).await,
            reader: pool(format!("{name} reader")).await,
        }
    }
}

impl tidepool_http::ClusterView for LaggingCluster {
    fn writer(&self) -> std::sync::Arc<dyn tidepool_http::PoolView> {
        std::sync::Arc::new(self.writer.clone())
    }
    fn replicas(&self) -> Vec<(String, std::sync::Arc<dyn tidepool_http::PoolView>)> {
        vec![("db2:5432".into(), std::sync::Arc::new(self.reader.clone()))]
    }
    fn state(&self) -> tidepool_http::ClusterState {
        tidepool_http::ClusterState::new(vec![tidepool_http::ReplicaState::new("db2:5432")
            .lag_bytes(9_000_000)
            .banned(tidepool_http::ReplicaBan::new(
                "lag",
                "replay lag 9000000 bytes over the limit",
            ))])
        .fallback_reads(3)
    }
}
