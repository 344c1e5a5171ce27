//! Network faults between the pool and MariaDB, through the testkit's
//! proxy: a server that is not there at start, a reset of every
//! connection, and a black hole. Each ends with the accounting check: the
//! pool's counts add up and the server holds exactly as many sessions for
//! the pool (found by its own database name) as the pool thinks it has.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use tidepool::{Error, Pool, Queryable, Value};
use tidepool_mysql::MysqlManager;
use tidepool_testkit::proxy::{Fault, FaultProxy};

struct Rig {
    proxy: FaultProxy,
    direct_url: String,
    db: String,
    url: String,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

async fn rig(test: &str) -> Option<Rig> {
    let direct_url = tidepool_testkit::mysql_url(test)?;
    let (host, port) = tidepool_testkit::host_port(&direct_url, 3306)?;
    let upstream: SocketAddr = (host.as_str(), port).to_socket_addrs().ok()?.next()?;
    let proxy = FaultProxy::start(upstream).await.expect("proxy starts");
    let db = format!(
        "tp_fault_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, SeqCst)
    );
    let mut admin = admin(&direct_url).await;
    admin
        .execute_values(&format!("CREATE DATABASE IF NOT EXISTS {db}"), &[])
        .await
        .expect("create database");
    let url = format!("mysql://root@127.0.0.1:{}/{db}", proxy.port());
    Some(Rig {
        proxy,
        direct_url,
        db,
        url,
    })
}

async fn admin(url: &str) -> tidepool_mysql::MysqlConnection {
    use tidepool::Manager;
    MysqlManager::from_url(url)
        .expect("admin manager")
        .connect()
        .await
        .expect("admin connection")
}

impl Rig {
    fn manager(&self) -> MysqlManager {
        MysqlManager::from_url(&self.url).expect("manager")
    }

    async fn server_sessions(&self) -> i64 {
        let mut a = admin(&self.direct_url).await;
        let row = a
            .query_one_values(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ?",
                &[Value::Text(self.db.clone())],
            )
            .await
            .expect("count sessions");
        row.get(0).and_then(Value::as_i64).unwrap_or(-1)
    }

    async fn assert_accounting(&self, pool: &Pool<MysqlManager>) {
        let mut last = (0, 0);
        for _ in 0..100 {
            let s = pool.status();
            assert_eq!(s.size, s.idle + s.in_use + s.being_created, "{s:?}");
            assert!(s.size <= s.max_size, "{s:?}");
            let sessions = self.server_sessions().await;
            last = (s.size as i64, sessions);
            if s.waiting == 0 && s.being_created == 0 && sessions == s.size as i64 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "pool size {} but the server holds {} sessions for it",
            last.0, last.1
        );
    }

    async fn drop_database(&self) {
        let mut a = admin(&self.direct_url).await;
        let _ = a
            .execute_values(&format!("DROP DATABASE IF EXISTS {}", self.db), &[])
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_down_at_start_fails_in_time_with_the_cause_and_recovers() {
    let Some(rig) = rig("mariadb_down_at_start").await else {
        return;
    };
    rig.proxy.set(Fault::NotListening);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let pool = Pool::builder(rig.manager())
        .min_size(2)
        .max_size(6)
        .acquire_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_millis(500))
        .build_lazy()
        .expect("a lazy build succeeds while the server is down");
    for _ in 0..5 {
        let started = Instant::now();
        let err = pool.get().await.expect_err("the server is down");
        assert!(
            started.elapsed() < Duration::from_millis(1300),
            "took {:?}",
            started.elapsed()
        );
        let text = err.to_string().to_lowercase();
        assert!(
            text.contains("refused") || text.contains("connect"),
            "{err}"
        );
    }
    rig.proxy.set(Fault::PassThrough);
    let wait = match pool.get().await {
        Err(Error::CircuitOpen { retry_after, .. }) => retry_after,
        _ => Duration::ZERO,
    };
    tokio::time::sleep(wait + Duration::from_millis(10)).await;
    let mut conn = pool
        .get()
        .await
        .expect("the first acquire after the server is back succeeds");
    conn.query_one_values("SELECT 1", &[]).await.expect("query");
    drop(conn);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        pool.status().size >= 2,
        "back to min_size: {:?}",
        pool.status()
    );
    rig.assert_accounting(&pool).await;
    rig.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_of_every_mariadb_connection_is_seen_and_the_pool_reconnects() {
    let Some(rig) = rig("mariadb_rst").await else {
        return;
    };
    let pool = Pool::builder(rig.manager())
        .max_size(4)
        .initial_size(4)
        .validation_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    rig.proxy.set(Fault::Reset);
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig.proxy.set(Fault::PassThrough);
    for _ in 0..10 {
        let mut conn = pool
            .get()
            .await
            .expect("a live connection after the resets");
        conn.query_one_values("SELECT 1", &[])
            .await
            .expect("query on a live connection");
    }
    let m = pool.metrics();
    assert!(
        m.connections_closed_failed_validation + m.connections_closed_broken >= 4,
        "{m:?}"
    );
    rig.assert_accounting(&pool).await;
    rig.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_in_front_of_mariadb_bounds_every_acquire_and_holds_no_slot_after_it_heals() {
    let Some(rig) = rig("mariadb_black_hole").await else {
        return;
    };
    let pool = Pool::builder(rig.manager())
        .max_size(4)
        .initial_size(2)
        .acquire_timeout(Duration::from_millis(800))
        .connect_timeout(Duration::from_millis(300))
        .validation_timeout(Duration::from_millis(200))
        .validation_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    rig.proxy.set(Fault::BlackHole);
    for _ in 0..4 {
        let started = Instant::now();
        assert!(
            pool.get().await.is_err(),
            "a connection came through a black hole"
        );
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "took {:?}",
            started.elapsed()
        );
    }
    rig.proxy.set(Fault::PassThrough);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut conn = pool.get().await.expect("healed");
    conn.query_one_values("SELECT 1", &[])
        .await
        .expect("query after the heal");
    drop(conn);
    let s = pool.status();
    assert_eq!((s.in_use, s.waiting), (0, 0), "{s:?}");
    rig.assert_accounting(&pool).await;
    rig.drop_database().await;
}
