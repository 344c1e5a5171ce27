//! A MariaDB restart under load: a clean `mariadb-admin shutdown`, then the
//! server started again the way it runs here (`systemctl restart` where
//! systemd supervises it, else `start-stop-daemon` as .ci/run starts it).
//! Only operations in flight at the restart, or begun while the server was
//! down, fail — each with a typed error that names the cause, none hanging,
//! and a lost connection failing at most the one operation it served; the
//! pool is back to `min_size` and serving within seconds of the server
//! accepting connections, and nothing fails after; its accounting holds
//! and the server holds exactly as many sessions for the pool (found by its
//! own database) as the pool thinks it has. Its own test binary, because
//! restarting the server would disturb any test running beside it.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tidepool::{Classify, Error, FailureKind, Manager, Pool, Queryable, Value};
use tidepool_mysql::{MysqlConfig, MysqlError, MysqlManager};

const MARIADBD: &str = "/usr/sbin/mariadbd";
/// Tasks querying through the pool: well above `max_size`, so some are
/// always waiting.
const TASKS: usize = 32;
const MIN_SIZE: usize = 4;
const MAX_SIZE: usize = 10;

/// What keeps the server running, so it is restarted the same way.
#[derive(Debug, Clone, Copy)]
enum Supervisor {
    Systemd(&'static str),
    StartStopDaemon,
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn supervisor() -> Option<Supervisor> {
    if std::path::Path::new("/run/systemd/system").is_dir() {
        for unit in ["mariadb", "mysql"] {
            if succeeds("systemctl", &["is-active", "--quiet", unit]) {
                return Some(Supervisor::Systemd(unit));
            }
        }
    }
    succeeds("start-stop-daemon", &["--version"]).then_some(Supervisor::StartStopDaemon)
}

/// How to restart the server, or None (with a notice) when this machine
/// does not let the test: not root, no local mariadbd, a remote server.
fn may_restart(direct_url: &str) -> Option<Supervisor> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let local = tidepool_testkit::host_port(direct_url, 3306)
        .is_some_and(|(h, _)| h == "127.0.0.1" || h == "localhost");
    let supervisor = supervisor();
    match supervisor {
        Some(s) if is_root && local && std::path::Path::new(MARIADBD).exists() => Some(s),
        _ if tidepool_testkit::database_required() => panic!(
            "the restart scenario needs root, a local {MARIADBD} and systemd or start-stop-daemon under TIDEPOOL_REQUIRE_DB=1 (root: {is_root}, local: {local}, supervisor: {supervisor:?})"
        ),
        _ => {
            eprintln!("SKIPPED mariadb_restart: needs root, a local {MARIADBD} and systemd or start-stop-daemon");
            None
        }
    }
}

fn start(supervisor: Supervisor) -> Result<(), String> {
    match supervisor {
        Supervisor::Systemd(unit) => run("systemctl", &["start", unit]),
        Supervisor::StartStopDaemon => {
            let _ = std::fs::create_dir_all("/run/mysqld");
            let _ = run("chown", &["mysql:mysql", "/run/mysqld"]);
            run(
                "start-stop-daemon",
                &["--start", "--oknodo", "--background", "--exec", MARIADBD],
            )
        }
    }
}

/// A real restart: the server shuts down cleanly (closing every session)
/// and a new server process starts.
fn restart(supervisor: Supervisor, port: u16) -> Result<(), String> {
    match supervisor {
        Supervisor::Systemd(unit) => run("systemctl", &["restart", unit]),
        Supervisor::StartStopDaemon => {
            if !succeeds("mariadb-admin", &["-uroot", "shutdown"]) {
                let port = port.to_string();
                run(
                    "mariadb-admin",
                    &["-h", "127.0.0.1", "-P", &port, "-uroot", "shutdown"],
                )?;
            }
            // `--start --oknodo` would take a server still shutting down
            // for a running one.
            let deadline = Instant::now() + Duration::from_secs(60);
            while succeeds("start-stop-daemon", &["--status", "--exec", MARIADBD]) {
                if Instant::now() > deadline {
                    return Err("the old server did not exit within 60 s".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            start(supervisor)
        }
    }
}

/// Starts the server again if it is down when the test ends, however it
/// ends: the machine is shared.
struct LeaveRunning {
    supervisor: Supervisor,
    port: u16,
}

impl Drop for LeaveRunning {
    fn drop(&mut self) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let up = || std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok();
        if up() {
            return;
        }
        if let Err(e) = start(self.supervisor) {
            eprintln!("mariadb_restart: could not start MariaDB again: {e}");
        }
        for _ in 0..300 {
            if up() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("mariadb_restart: MariaDB is still down");
    }
}

async fn connect(url: &str) -> Result<tidepool_mysql::MysqlConnection, MysqlError> {
    MysqlManager::from_url(url)?.connect().await
}

/// One failed operation.
#[derive(Debug)]
struct Failure {
    started: Instant,
    ended: Instant,
    /// Where it failed and how, if the error was one the restart may cause.
    what: Result<&'static str, String>,
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    stop: AtomicBool,
    failures: Mutex<Vec<Failure>>,
}

/// An acquire failure the restart may cause: it carries the cause.
fn acquire_failure(err: &Error<MysqlError>) -> Result<&'static str, String> {
    match err {
        Error::CircuitOpen {
            last_error: Some(_),
            ..
        } => Ok("acquire: circuit open"),
        Error::Create(e) if e.failure_kind() == FailureKind::Connect => Ok("acquire: connect"),
        Error::Timeout {
            last_error: Some(_),
            ..
        } => Ok("acquire: timed out"),
        other => Err(format!("acquire: {other:?}")),
    }
}

/// A query failure the restart may cause: the connection was lost, and
/// the error says so.
fn query_failure(err: &MysqlError) -> Result<&'static str, String> {
    if err.failure_kind() == FailureKind::Connect && err.is_fatal() {
        Ok("query: connection lost")
    } else {
        Err(format!("query: {err:?}"))
    }
}

fn load(pool: &Pool<MysqlManager>) -> (Arc<Tally>, Vec<tokio::task::JoinHandle<()>>) {
    let tally = Arc::new(Tally::default());
    let handles = (0..TASKS)
        .map(|_| {
            let (pool, tally) = (pool.clone(), tally.clone());
            tokio::spawn(async move {
                while !tally.stop.load(SeqCst) {
                    let started = Instant::now();
                    let outcome = async {
                        let mut conn = pool.get().await.map_err(|e| acquire_failure(&e))?;
                        match tokio::time::timeout(
                            Duration::from_secs(2),
                            conn.query_one_values("SELECT 1", &[]),
                        )
                        .await
                        {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err(e)) => Err(query_failure(&e)),
                            Err(_) => {
                                tidepool::Pooled::mark_broken(&mut conn);
                                Err(Err("query: hung for 2 s".to_string()))
                            }
                        }
                    }
                    .await;
                    match outcome {
                        Ok(()) => {
                            tally.ok.fetch_add(1, SeqCst);
                        }
                        Err(what) => {
                            tally.failures.lock().push(Failure {
                                started,
                                ended: Instant::now(),
                                what,
                            });
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    (tally, handles)
}

async fn stop(tally: &Tally, handles: Vec<tokio::task::JoinHandle<()>>) {
    tally.stop.store(true, SeqCst);
    for h in handles {
        tokio::time::timeout(Duration::from_secs(10), h)
            .await
            .expect("a load task hung")
            .expect("a load task panicked");
    }
}

/// Seconds since the server started.
async fn server_uptime(direct_url: &str) -> u64 {
    let mut admin = connect(direct_url).await.expect("admin connection");
    let row = admin
        .query_one_values("SHOW GLOBAL STATUS LIKE 'Uptime'", &[])
        .await
        .expect("uptime");
    match row.get(1) {
        Some(Value::Text(s)) => s.parse().expect("uptime is a number"),
        other => other
            .and_then(Value::as_i64)
            .and_then(|n| u64::try_from(n).ok())
            .expect("uptime is a number"),
    }
}

/// Sessions the server holds in `db`.
async fn server_sessions(direct_url: &str, db: &str) -> i64 {
    let mut admin = connect(direct_url).await.expect("admin connection");
    let row = admin
        .query_one_values(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ?",
            &[Value::Text(db.to_string())],
        )
        .await
        .expect("count sessions");
    row.get(0).and_then(Value::as_i64).unwrap_or(-1)
}

/// Waits (up to 5 s) until the pool is settled and the server's session
/// count for it equals its size; checks the pool's own accounting.
async fn assert_accounting(pool: &Pool<MysqlManager>, direct_url: &str, db: &str) {
    let mut last = (0, 0);
    for _ in 0..100 {
        let s = pool.status();
        assert_eq!(s.size, s.idle + s.in_use + s.being_created, "{s:?}");
        assert!(s.size <= s.max_size, "{s:?}");
        let sessions = server_sessions(direct_url, db).await;
        last = (s.size as i64, sessions);
        if s.waiting == 0 && s.being_created == 0 && sessions == s.size as i64 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "pool size {} but the server holds {} sessions for it ({:?})",
        last.0,
        last.1,
        pool.status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_restart_under_load_fails_only_what_was_in_flight_and_the_pool_refills_within_seconds(
) {
    let Some(direct_url) = tidepool_testkit::mysql_url("mariadb_restart") else {
        return;
    };
    let Some(supervisor) = may_restart(&direct_url) else {
        return;
    };
    let (_, port) = tidepool_testkit::host_port(&direct_url, 3306).unwrap();
    let _leave_running = LeaveRunning { supervisor, port };

    // The pool's sessions are the ones in its own database.
    let db = format!("tp_restart_{}", std::process::id());
    let mut admin = connect(&direct_url).await.expect("admin connection");
    admin
        .execute_values(&format!("CREATE DATABASE IF NOT EXISTS {db}"), &[])
        .await
        .expect("create database");
    drop(admin);
    let config = MysqlConfig::from_url(&direct_url)
        .unwrap()
        .with_database(&db);
    let pool = Pool::builder(MysqlManager::new(config))
        .min_size(MIN_SIZE as u32)
        .max_size(MAX_SIZE as u32)
        .initial_size(MIN_SIZE as u32)
        .acquire_timeout(Duration::from_secs(2))
        .maintenance_interval(Duration::from_millis(200))
        .build()
        .await
        .unwrap();

    let (tally, handles) = load(&pool);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(tally.ok.load(SeqCst) > 0, "the load runs");
    let early = tally.failures.lock().len();
    assert_eq!(early, 0, "failures before the restart");
    let size_at_restart = pool.status().size;

    let restart_began = Instant::now();
    tokio::task::spawn_blocking(move || restart(supervisor, port))
        .await
        .unwrap()
        .expect("MariaDB restarts");
    let back_deadline = Instant::now() + Duration::from_secs(30);
    while connect(&direct_url).await.is_err() {
        assert!(
            Instant::now() < back_deadline,
            "the server did not come back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let back_at = Instant::now();
    let uptime = server_uptime(&direct_url).await;
    assert!(
        uptime <= restart_began.elapsed().as_secs() + 1,
        "the server was not restarted: up {uptime} s"
    );

    // Back to min_size and serving within a few seconds.
    loop {
        let s = pool.status();
        let ok_before = tally.ok.load(SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.size >= MIN_SIZE && tally.ok.load(SeqCst) > ok_before {
            break;
        }
        assert!(
            back_at.elapsed() < Duration::from_secs(5),
            "not recovered {:?} after the server accepted connections: {s:?}",
            back_at.elapsed()
        );
    }
    let recovered_at = Instant::now();

    // Once recovered, nothing fails.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop(&tally, handles).await;
    let failures = std::mem::take(&mut *tally.failures.lock());
    let untyped: Vec<&Failure> = failures.iter().filter(|f| f.what.is_err()).collect();
    assert!(untyped.is_empty(), "untyped failures: {untyped:#?}");
    let late: Vec<&Failure> = failures
        .iter()
        .filter(|f| f.ended < restart_began || f.started >= recovered_at)
        .collect();
    assert!(
        late.is_empty(),
        "failures outside the restart (it began, and the pool recovered {:?} later): {late:#?}",
        recovered_at - restart_began
    );
    // A lost connection fails at most the one operation it was serving.
    let lost = failures
        .iter()
        .filter(|f| f.what == Ok("query: connection lost"))
        .count();
    assert!(
        lost <= size_at_restart,
        "{lost} operations lost their connection, but the pool held {size_at_restart}"
    );
    // Every acquire failed in time, with the cause.
    let slowest = failures
        .iter()
        .map(|f| f.ended - f.started)
        .max()
        .unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(3),
        "a failure took {slowest:?}"
    );

    let by_kind = |what: &str| failures.iter().filter(|f| f.what == Ok(what)).count();
    eprintln!(
        "mariadb restart: down {:?}, recovered {:?} after the server accepted connections; {} ok; failures: {lost} connections lost (pool held {size_at_restart}), {} circuit open, {} connect, {} timed out",
        back_at - restart_began,
        recovered_at - back_at,
        tally.ok.load(SeqCst),
        by_kind("acquire: circuit open"),
        by_kind("acquire: connect"),
        by_kind("acquire: timed out"),
    );
    assert_accounting(&pool, &direct_url, &db).await;
    assert!(
        pool.status().size >= MIN_SIZE,
        "below min_size: {:?}",
        pool.status()
    );

    drop(pool);
    let mut admin = connect(&direct_url).await.expect("admin connection");
    let _ = admin
        .execute_values(&format!("DROP DATABASE IF EXISTS {db}"), &[])
        .await;
}
