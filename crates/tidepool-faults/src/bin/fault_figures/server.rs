//! Faults made on the server itself rather than on the network: a restart
//! of the PostgreSQL cluster (`pg_ctlcluster ... restart -m immediate`) and
//! `pg_terminate_backend` of every pool's sessions. Either hits all five
//! pools at the same instant, like a proxy fault, because they share the
//! server.

use std::net::SocketAddr;
use std::time::Duration;

use tidepool_testkit::pg_cluster::PgCluster;
use tokio::time::Instant;

use crate::FigureError;

/// How long a restarted server may take to accept connections again.
const BACK_WITHIN: Duration = Duration::from_secs(30);

/// The server under the proxies, and how to reach it as an administrator.
#[derive(Debug, Clone)]
pub struct Server {
    pub upstream: SocketAddr,
    pub user: String,
    pub dbname: String,
}

impl Server {
    fn config(&self, connect_timeout: Duration) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(self.upstream.ip().to_string())
            .port(self.upstream.port())
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("tidepool_fault_figures_admin")
            .connect_timeout(connect_timeout);
        c
    }

    /// Connects afresh and runs `SELECT 1`: whether the server answers a
    /// query, or why not.
    pub async fn answer(&self, connect_timeout: Duration) -> Result<(), tokio_postgres::Error> {
        let (client, connection) = self
            .config(connect_timeout)
            .connect(tokio_postgres::NoTls)
            .await?;
        let driver = tokio::spawn(connection);
        let answered = client.simple_query("SELECT 1").await.map(drop);
        drop(client);
        let _ = driver.await;
        answered
    }

    async fn accepting(&self) -> bool {
        self.answer(Duration::from_secs(1)).await.is_ok()
    }

    /// Terminates every session whose `application_name` is one of `apps`
    /// with one statement, and returns how many there were.
    pub async fn terminate(&self, apps: &[String]) -> Result<u64, FigureError> {
        let failed = |e: tokio_postgres::Error| FigureError::Server(format!("terminating: {e}"));
        let (client, connection) = self
            .config(Duration::from_secs(1))
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(failed)?;
        let driver = tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = ANY($1)",
                &[&apps],
            )
            .await
            .map_err(failed)?;
        let terminated: i64 = row.try_get(0).map_err(failed)?;
        drop(client);
        let _ = driver.await;
        Ok(u64::try_from(terminated).unwrap_or(0))
    }

    /// Restarts the cluster in immediate mode and returns once the server
    /// has gone down and answers a query again, which is when the outage
    /// ends for a client: `pg_ctlcluster` itself may return a while later.
    /// The command's own outcome comes from [`Restarting::finish`].
    pub async fn restart(&self, cluster: &Cluster) -> Result<Restarting, FigureError> {
        let pg = cluster.0.clone();
        let command = tokio::task::spawn_blocking(move || pg.restart_immediate());
        let restarting = Restarting {
            command,
            version: cluster.0.version().to_string(),
        };
        let give_up = Instant::now() + BACK_WITHIN;
        let mut seen_down = false;
        loop {
            if self.accepting().await {
                // Up before it was ever seen down: the restart has not
                // begun, or was over between two looks; the command's end
                // settles which.
                if seen_down || restarting.command.is_finished() {
                    return Ok(restarting);
                }
            } else {
                seen_down = true;
            }
            if Instant::now() >= give_up {
                return Err(FigureError::Server(format!(
                    "the server did not answer again within {BACK_WITHIN:?} of the restart"
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A restart whose server is back, with its command perhaps still running.
pub struct Restarting {
    command: tokio::task::JoinHandle<std::io::Result<std::process::ExitStatus>>,
    version: String,
}

impl Restarting {
    /// Waits for `pg_ctlcluster` and reports whether it succeeded.
    pub async fn finish(self) -> Result<(), FigureError> {
        let status = self
            .command
            .await
            .map_err(|e| FigureError::Task(e.to_string()))?
            .map_err(|e| FigureError::Server(format!("running pg_ctlcluster: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(FigureError::Server(format!(
                "pg_ctlcluster {} main restart: {status}",
                self.version
            )))
        }
    }
}

/// A local cluster this process may restart (scenario f).
#[derive(Debug, Clone)]
pub struct Cluster(PgCluster);

impl Cluster {
    /// The local cluster, if this process may restart it and the server
    /// is on this machine.
    pub fn local(upstream: SocketAddr) -> Result<Cluster, FigureError> {
        let refuse = |why: String| {
            FigureError::Server(format!(
                "scenario f restarts the server: {why}; leave f out of --scenarios"
            ))
        };
        if !upstream.ip().is_loopback() {
            return Err(refuse("the server must be on this machine".into()));
        }
        PgCluster::local().map(Cluster).map_err(refuse)
    }
}
