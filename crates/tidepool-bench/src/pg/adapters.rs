//! The rival pools behind one face: each implements [`PgCycle`] (get, one
//! query on a cached prepared statement, drop), and [`build`] makes a pool of
//! any [`PgKind`]. Nothing here measures; that is [`super::measure`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::NoTls;

use super::{PgKind, Workload, POINT_SELECT, SELECT_ONE};

/// A pool that can run one cycle of a workload.
pub trait PgCycle: Send + Sync + 'static {
    /// Checks out a connection, runs the workload's query (with `aid` for
    /// the point select), returns the connection.
    fn run(&self, w: Workload, aid: i32) -> impl Future<Output = Result<(), String>> + Send;
}

impl PgCycle for tidepool::Pool<tidepool_postgres::PgManager> {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let mut conn = self.get().await.map_err(|e| e.to_string())?;
        let row = match w {
            Workload::Select1 => conn.query_one_native(SELECT_ONE, &[]).await,
            Workload::PointSelect => conn.query_one_native(POINT_SELECT, &[&aid]).await,
        };
        row.map(drop).map_err(|e| e.to_string())
    }
}

/// tidepool-postgres driven the deadpool-postgres way: the code of the
/// deadpool adapter below, on tidepool's guard.
pub struct DeadpoolWay(pub tidepool::Pool<tidepool_postgres::PgManager>);

impl PgCycle for DeadpoolWay {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let client = self.0.get().await.map_err(|e| e.to_string())?;
        let (sql, params): (&str, &[&(dyn tokio_postgres::types::ToSql + Sync)]) = match w {
            Workload::Select1 => (SELECT_ONE, &[]),
            Workload::PointSelect => (POINT_SELECT, &[&aid]),
        };
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| e.to_string())?;
        client
            .query_one(&stmt, params)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

impl PgCycle for deadpool_postgres::Pool {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let client = self.get().await.map_err(|e| e.to_string())?;
        let (sql, params): (&str, &[&(dyn tokio_postgres::types::ToSql + Sync)]) = match w {
            Workload::Select1 => (SELECT_ONE, &[]),
            Workload::PointSelect => (POINT_SELECT, &[&aid]),
        };
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| e.to_string())?;
        client
            .query_one(&stmt, params)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// bb8-postgres's manager plus a per-connection statement cache (bb8-postgres
/// has none; without one every cycle would prepare again, which no real
/// application does).
#[derive(Debug)]
pub struct Bb8Cached(bb8_postgres::PostgresConnectionManager<NoTls>);

/// A bb8-postgres client with its prepared statements.
pub struct CachedClient {
    client: tokio_postgres::Client,
    statements: HashMap<&'static str, tokio_postgres::Statement>,
}

impl bb8::ManageConnection for Bb8Cached {
    type Connection = CachedClient;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<CachedClient, tokio_postgres::Error> {
        Ok(CachedClient {
            client: self.0.connect().await?,
            statements: HashMap::new(),
        })
    }

    async fn is_valid(&self, conn: &mut CachedClient) -> Result<(), tokio_postgres::Error> {
        self.0.is_valid(&mut conn.client).await
    }

    fn has_broken(&self, conn: &mut CachedClient) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

impl PgCycle for bb8::Pool<Bb8Cached> {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let mut conn = self.get().await.map_err(|e| format!("{e:?}"))?;
        let (sql, params): (&'static str, &[&(dyn tokio_postgres::types::ToSql + Sync)]) = match w {
            Workload::Select1 => (SELECT_ONE, &[]),
            Workload::PointSelect => (POINT_SELECT, &[&aid]),
        };
        let stmt = match conn.statements.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = conn.client.prepare(sql).await.map_err(|e| e.to_string())?;
                conn.statements.insert(sql, s.clone());
                s
            }
        };
        conn.client
            .query_one(&stmt, params)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

impl PgCycle for sqlx::PgPool {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let mut conn = self.acquire().await.map_err(|e| e.to_string())?;
        let row = match w {
            Workload::Select1 => sqlx::query(SELECT_ONE).fetch_one(&mut *conn).await,
            Workload::PointSelect => {
                sqlx::query(POINT_SELECT)
                    .bind(aid)
                    .fetch_one(&mut *conn)
                    .await
            }
        };
        row.map(drop).map_err(|e| e.to_string())
    }
}

/// One tokio-postgres client with both statements prepared, owned by one
/// task: no pool at all.
pub struct DirectClient {
    client: tokio_postgres::Client,
    select1: tokio_postgres::Statement,
    point: tokio_postgres::Statement,
}

impl DirectClient {
    /// Connects and prepares both statements.
    pub async fn connect(url: &str) -> Result<Self, String> {
        let (client, conn) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let select1 = client
            .prepare(SELECT_ONE)
            .await
            .map_err(|e| e.to_string())?;
        let point = client
            .prepare(POINT_SELECT)
            .await
            .map_err(|e| e.to_string())?;
        Ok(DirectClient {
            client,
            select1,
            point,
        })
    }
}

impl PgCycle for DirectClient {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let row = match w {
            Workload::Select1 => self.client.query_one(&self.select1, &[]).await,
            Workload::PointSelect => self.client.query_one(&self.point, &[&aid]).await,
        };
        row.map(drop).map_err(|e| e.to_string())
    }
}

impl PgCycle for tidepool_postgres::Multiplexer {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let row = match w {
            Workload::Select1 => self.query_one(SELECT_ONE, &[]).await,
            Workload::PointSelect => self.query_one(POINT_SELECT, &[&aid]).await,
        };
        row.map(drop).map_err(|e| e.to_string())
    }
}

/// tokio-postgres clients with no pool, shared by every task: each query
/// goes to the next client round-robin, and concurrent queries on one
/// client pipeline.
pub struct SharedClients {
    clients: Vec<DirectClient>,
    next: AtomicUsize,
}

impl SharedClients {
    /// Connects `n` clients and prepares both statements on each.
    pub async fn connect(url: &str, n: usize) -> Result<Self, String> {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            clients.push(DirectClient::connect(url).await?);
        }
        Ok(SharedClients {
            clients,
            next: AtomicUsize::new(0),
        })
    }
}

impl PgCycle for SharedClients {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        self.clients[i].run(w, aid).await
    }
}

/// One built pool.
pub enum BuiltPg {
    /// tidepool-postgres.
    Tidepool(Arc<tidepool::Pool<tidepool_postgres::PgManager>>),
    /// tidepool-postgres, driven the deadpool-postgres way.
    TidepoolDeadpoolWay(Arc<DeadpoolWay>),
    /// deadpool-postgres.
    Deadpool(Arc<deadpool_postgres::Pool>),
    /// bb8-postgres.
    Bb8(Arc<bb8::Pool<Bb8Cached>>),
    /// sqlx.
    Sqlx(Arc<sqlx::PgPool>),
    /// tidepool-postgres behind a multiplexer.
    Multiplexed(Arc<tidepool_postgres::Multiplexer>),
    /// Shared tokio-postgres clients, no pool.
    SharedClients(Arc<SharedClients>),
}

/// Builds a pool of `kind` with `size` connections against `url` (inside a
/// runtime). The acquire timeout is 30 s everywhere it can be set.
pub async fn build(kind: PgKind, size: usize, url: &str) -> Result<BuiltPg, String> {
    let size32 = u32::try_from(size).map_err(|_| format!("pool size {size} is too large"))?;
    let timeout = Duration::from_secs(30);
    let deadpool = |method: deadpool_postgres::RecyclingMethod| -> Result<BuiltPg, String> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
        let manager = deadpool_postgres::Manager::from_config(
            config,
            NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: method,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(size)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(BuiltPg::Deadpool(Arc::new(pool)))
    };
    Ok(match kind {
        PgKind::Tidepool
        | PgKind::TidepoolNotest
        | PgKind::TidepoolBalanced
        | PgKind::TidepoolDeadpoolWay
        | PgKind::TidepoolVerified
        | PgKind::TidepoolClean
        | PgKind::TidepoolMultiplexed => {
            let policy = match kind {
                PgKind::TidepoolVerified => tidepool_postgres::ResetPolicy::Verified,
                PgKind::TidepoolClean => tidepool_postgres::ResetPolicy::Clean,
                _ => tidepool_postgres::ResetPolicy::default(),
            };
            let manager = tidepool_postgres::PgManager::builder_from_url(url)
                .map_err(|e| e.to_string())?
                .reset_policy(policy)
                .build()
                .map_err(|e| e.to_string())?;
            let pool = tidepool::Pool::builder(manager)
                .max_size(size32)
                .acquire_timeout(timeout)
                .test_on_borrow(kind != PgKind::TidepoolNotest)
                .strategy(if kind == PgKind::TidepoolBalanced {
                    tidepool::Strategy::Balanced
                } else {
                    tidepool::Strategy::Fixed
                })
                .build()
                .await
                .map_err(|e| e.to_string())?;
            if kind == PgKind::TidepoolDeadpoolWay {
                BuiltPg::TidepoolDeadpoolWay(Arc::new(DeadpoolWay(pool)))
            } else if kind == PgKind::TidepoolMultiplexed {
                let config = tidepool_postgres::MultiplexConfig::default().connections(size);
                let mux =
                    tidepool_postgres::Multiplexer::new(pool, config).map_err(|e| e.to_string())?;
                BuiltPg::Multiplexed(Arc::new(mux))
            } else {
                BuiltPg::Tidepool(Arc::new(pool))
            }
        }
        PgKind::Deadpool => deadpool(deadpool_postgres::RecyclingMethod::Fast)?,
        PgKind::DeadpoolVerified => deadpool(deadpool_postgres::RecyclingMethod::Verified)?,
        PgKind::Bb8 | PgKind::Bb8Notest => {
            let manager = bb8_postgres::PostgresConnectionManager::new_from_stringlike(url, NoTls)
                .map_err(|e| e.to_string())?;
            let pool = bb8::Pool::builder()
                .max_size(size32)
                .connection_timeout(timeout)
                .test_on_check_out(kind == PgKind::Bb8)
                .build(Bb8Cached(manager))
                .await
                .map_err(|e| e.to_string())?;
            BuiltPg::Bb8(Arc::new(pool))
        }
        PgKind::Sqlx | PgKind::SqlxNotest => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(size32)
                .acquire_timeout(timeout)
                .test_before_acquire(kind == PgKind::Sqlx)
                .connect(url)
                .await
                .map_err(|e| e.to_string())?;
            BuiltPg::Sqlx(Arc::new(pool))
        }
        PgKind::SharedClients => {
            BuiltPg::SharedClients(Arc::new(SharedClients::connect(url, size).await?))
        }
        PgKind::Pgbench => return Err("pgbench is not a pool; run it with run_pgbench".into()),
        PgKind::Direct => return Err("tokio-postgres is not a pool; run it with run_direct".into()),
    })
}
