//! The private primary/standby pair of `.ci/setup-failover.sh`
//! (127.0.0.1:5434 and :5435, Debian clusters `failover_a` and
//! `failover_b`), for the failover test and the failover timeline: stop
//! the primary, promote the standby, and rebuild the old primary as a
//! standby of the new one, so the pair is whole again for the next run.
//! Never the shared :5432/:5433.
//!
//! A [`FailoverPair`] holds an `flock` on `/run/lock/tidepool-failover.lock`
//! for its life, so two test processes (two helpers' `cargo test`, or the
//! test and the timeline example) never fail the pair over at once.
//! Dropping it rebuilds the pair if it was failed over and not rebuilt.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const LOCK: &str = "/run/lock/tidepool-failover.lock";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/setup-failover.sh");

/// The pair, locked for this process, with which port is the primary now.
///
/// ```no_run
/// let Some(mut pair) = tidepool_testkit::failover::FailoverPair::acquire("my_test") else { return };
/// let url = pair.url(pair.primary_port);
/// pair.stop_primary().expect("stopped");
/// pair.promote_standby().expect("promoted");
/// pair.rebuild().expect("the old primary streams from the new one");
/// ```
#[derive(Debug)]
pub struct FailoverPair {
    /// The primary's port now.
    pub primary_port: u16,
    /// The synchronous standby's port now.
    pub standby_port: u16,
    version: String,
    lock: Child,
    dirty: bool,
}

fn cluster_name(port: u16) -> &'static str {
    if port == 5434 {
        "failover_a"
    } else {
        "failover_b"
    }
}

impl FailoverPair {
    /// Takes the lock and makes sure the pair is up (running
    /// `.ci/setup-failover.sh`, which needs root). `None` after a skip
    /// notice when that is not possible; panics instead when
    /// `TIDEPOOL_REQUIRE_DB=1`.
    pub fn acquire(test: &str) -> Option<FailoverPair> {
        match Self::try_acquire() {
            Ok(pair) => Some(pair),
            Err(why) => {
                if crate::database_required() {
                    panic!(
                        "{test}: the failover pair is required (TIDEPOOL_REQUIRE_DB=1) but: {why}"
                    );
                }
                eprintln!("SKIPPED {test}: the failover pair is not available: {why} (set TIDEPOOL_REQUIRE_DB=1 to make this a failure)");
                None
            }
        }
    }

    fn try_acquire() -> Result<FailoverPair, String> {
        let version = crate::pg_cluster::PgCluster::local()?.version().to_string();
        let _ = std::fs::create_dir_all("/run/lock");
        // `flock` holds the lock in `cat`, which lives until its stdin (our
        // end of the pipe) closes: when this is dropped or the process
        // dies, however it dies.
        let mut lock = Command::new("flock")
            .args([LOCK, "sh", "-c", "echo locked; exec cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("flock: {e}"))?;
        let mut line = String::new();
        if let Some(out) = lock.stdout.take() {
            BufReader::new(out)
                .read_line(&mut line)
                .map_err(|e| format!("flock: {e}"))?;
        }
        if line.trim() != "locked" {
            let _ = lock.kill();
            return Err("could not take the failover lock".into());
        }
        let mut pair = FailoverPair {
            primary_port: 0,
            standby_port: 0,
            version,
            lock,
            dirty: false,
        };
        pair.setup()?;
        Ok(pair)
    }

    /// Runs the setup script (under our lock) and reads the roles.
    fn setup(&mut self) -> Result<(), String> {
        let out = Command::new("bash")
            .arg(SCRIPT)
            .env("TIDEPOOL_FAILOVER_LOCKED", "1")
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("{SCRIPT}: {e}"))?;
        if !out.status.success() {
            return Err(format!("{SCRIPT} failed ({})", out.status));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let port = |key: &str| -> Option<u16> {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|p| p.parse().ok())
        };
        match (port("primary="), port("standby=")) {
            (Some(p), Some(s)) => {
                self.primary_port = p;
                self.standby_port = s;
                self.dirty = false;
                Ok(())
            }
            _ => Err(format!("{SCRIPT} printed no roles: {text}")),
        }
    }

    /// `postgres://postgres@127.0.0.1:<port>/test?sslmode=disable`.
    pub fn url(&self, port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/test?sslmode=disable")
    }

    fn ctl(&self, args: &[&str]) -> Result<(), String> {
        let status = Command::new("pg_ctlcluster")
            .arg("--skip-systemctl-redirect")
            .arg(&self.version)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("pg_ctlcluster: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("pg_ctlcluster {args:?}: {status}"))
        }
    }

    /// Stops the primary in fast mode (sessions get `57P01`
    /// admin_shutdown). Blocking.
    pub fn stop_primary(&mut self) -> Result<(), String> {
        self.dirty = true;
        self.ctl(&[cluster_name(self.primary_port), "stop", "-m", "fast"])
    }

    /// Promotes the standby and waits until it takes writes
    /// (`pg_ctlcluster promote`, which waits for the end of recovery).
    /// Blocking.
    pub fn promote_standby(&mut self) -> Result<(), String> {
        self.dirty = true;
        self.ctl(&[cluster_name(self.standby_port), "promote"])
    }

    /// Makes the pair whole again: the old primary rebuilt as a
    /// synchronous standby of the new one. Blocking.
    pub fn rebuild(&mut self) -> Result<(), String> {
        self.setup()
    }
}

impl Drop for FailoverPair {
    fn drop(&mut self) {
        if self.dirty {
            if let Err(e) = self.setup() {
                eprintln!("failover pair: could not rebuild it: {e}");
            }
        }
        drop(self.lock.stdin.take());
        let _ = self.lock.wait();
    }
}
