//! The local Debian PostgreSQL cluster, for the tests and figures that
//! restart the server under a pool (`pg_ctlcluster ... restart -m
//! immediate`: every session dies at once, as in a crash).

use std::process::{Command, ExitStatus};

/// A local cluster this process may restart.
///
/// ```no_run
/// let cluster = tidepool_testkit::pg_cluster::PgCluster::local().expect("root and a cluster");
/// assert!(cluster.restart_immediate().expect("pg_ctlcluster runs").success());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgCluster {
    version: String,
}

impl PgCluster {
    /// The newest cluster under `/etc/postgresql`, if this process runs as
    /// root (`pg_ctlcluster` needs it); otherwise why not.
    pub fn local() -> Result<PgCluster, String> {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if !is_root {
            return Err("restarting the server needs root".into());
        }
        let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
            .map(|dir| {
                dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        // Numerically: "9.6" < "15" < "16".
        versions.sort_by(|a, b| {
            let key =
                |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
            key(a).cmp(&key(b))
        });
        match versions.pop() {
            Some(version) => Ok(PgCluster { version }),
            None => Err("no Debian PostgreSQL cluster under /etc/postgresql".into()),
        }
    }

    /// The cluster's major version (its directory under `/etc/postgresql`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Restarts the `main` cluster in immediate mode and waits for
    /// `pg_ctlcluster` (which returns a while after the server accepts
    /// connections again). Blocking: call it from `spawn_blocking`.
    pub fn restart_immediate(&self) -> std::io::Result<ExitStatus> {
        Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                &self.version,
                "main",
                "restart",
                "-m",
                "immediate",
            ])
            .status()
    }
}
