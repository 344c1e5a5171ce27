//! Shared set-up for the fault suites: a proxy in front of the real
//! PostgreSQL, a pool through it under a unique `application_name`, a load
//! of tasks querying, and the accounting check every scenario ends with.

#![allow(dead_code)]

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use tidepool::{Pool, Queryable};
use tidepool_postgres::PgManager;
use tidepool_testkit::proxy::FaultProxy;

pub type PgPool = Pool<PgManager>;

pub struct Rig {
    pub proxy: FaultProxy,
    pub app: String,
    pub direct_url: String,
    pub url: String,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

pub async fn rig(test: &str) -> Option<Rig> {
    let direct_url = tidepool_testkit::postgres_url(test)?;
    let (host, port) = tidepool_testkit::host_port(&direct_url, 5432)?;
    let upstream: SocketAddr = (host.as_str(), port).to_socket_addrs().ok()?.next()?;
    let proxy = FaultProxy::start(upstream).await.expect("proxy starts");
    let app = format!(
        "tp_fault_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, SeqCst),
        test
    );
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/test?application_name={app}",
        proxy.port()
    );
    Some(Rig {
        proxy,
        app,
        direct_url,
        url,
    })
}

impl Rig {
    pub fn manager(&self) -> PgManager {
        PgManager::from_url(&self.url).expect("manager from url")
    }

    /// Sessions the server holds for this rig's pool.
    pub async fn server_sessions(&self) -> i64 {
        let mut admin = admin(&self.direct_url).await;
        let row = admin
            .query_one_values(
                "SELECT count(*)::bigint FROM pg_stat_activity WHERE application_name = $1",
                &[self.app.clone().into()],
            )
            .await
            .expect("count sessions");
        row.get(0).and_then(|v| v.as_i64()).unwrap_or(-1)
    }

    /// Terminates this pool's server sessions; returns how many.
    pub async fn terminate_sessions(&self, state: Option<&str>) -> i64 {
        let mut admin = admin(&self.direct_url).await;
        let sql = match state {
            Some(_) => "SELECT count(pg_terminate_backend(pid))::bigint FROM pg_stat_activity WHERE application_name = $1 AND state = $2",
            None => "SELECT count(pg_terminate_backend(pid))::bigint FROM pg_stat_activity WHERE application_name = $1",
        };
        let mut params = vec![self.app.clone().into()];
        if let Some(s) = state {
            params.push(s.into());
        }
        let row = admin
            .query_one_values(sql, &params)
            .await
            .expect("terminate");
        row.get(0).and_then(|v| v.as_i64()).unwrap_or(-1)
    }

    /// Waits (up to 5 s) until the server's session count for the pool
    /// equals the pool's size, and checks the pool's own accounting.
    pub async fn assert_accounting(&self, pool: &PgPool) {
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
            "pool size {} but the server holds {} sessions for it ({:?})",
            last.0,
            last.1,
            pool.status()
        );
    }
}

pub async fn admin(url: &str) -> tidepool_postgres::PgConnection {
    PgManager::from_url(url)
        .expect("admin manager")
        .connect_one()
        .await
        .expect("admin connection")
}

/// What a load saw.
#[derive(Default)]
pub struct Tally {
    pub ok: AtomicU64,
    pub errors: AtomicU64,
    pub stop: AtomicBool,
}

/// `tasks` tasks running `SELECT 1` through the pool until stopped. Each
/// query is bounded so a black-holed connection cannot hang a task.
pub fn load(pool: &PgPool, tasks: usize) -> (Arc<Tally>, Vec<tokio::task::JoinHandle<()>>) {
    let tally = Arc::new(Tally::default());
    let handles = (0..tasks)
        .map(|_| {
            let (pool, tally) = (pool.clone(), tally.clone());
            tokio::spawn(async move {
                while !tally.stop.load(SeqCst) {
                    let outcome = async {
                        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                        match tokio::time::timeout(
                            Duration::from_secs(2),
                            conn.query_one_values("SELECT 1", &[]),
                        )
                        .await
                        {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err(e)) => Err(e.to_string()),
                            Err(_) => {
                                tidepool::Pooled::mark_broken(&mut conn);
                                Err("query timed out".to_string())
                            }
                        }
                    }
                    .await;
                    match outcome {
                        Ok(()) => tally.ok.fetch_add(1, SeqCst),
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            tally.errors.fetch_add(1, SeqCst)
                        }
                    };
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    (tally, handles)
}

pub async fn stop(tally: &Tally, handles: Vec<tokio::task::JoinHandle<()>>) {
    tally.stop.store(true, SeqCst);
    for h in handles {
        tokio::time::timeout(Duration::from_secs(10), h)
            .await
            .expect("a load task hung")
            .expect("a load task panicked");
    }
}
