//! Settings resolution: command-line flags (clap already applied the
//! environment to them) over the TOML file over built-in defaults, parsed
//! into typed values once, with errors that name the flag or file key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{BenchArgs, DoctorArgs, SizeArgs};
use crate::error::CliError;

/// The TOML settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub url: Option<String>,
    #[serde(default)]
    pub bench: BenchFile,
    pub pool: Option<tidepool::Config>,
    #[serde(default)]
    pub size: SizeFile,
    #[serde(default)]
    pub doctor: DoctorFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchFile {
    pub concurrency: Option<Vec<u32>>,
    pub duration: Option<String>,
    pub warmup: Option<String>,
    pub repeat: Option<u32>,
    pub mix: Option<String>,
    pub baseline_size: Option<u32>,
    pub seed_users: Option<u32>,
    pub table_prefix: Option<String>,
    pub keep: Option<bool>,
    pub json: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub acquire_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeFile {
    pub rate: Option<f64>,
    pub query_time: Option<String>,
    pub concurrent_requests: Option<u32>,
    pub instances: Option<u32>,
    pub cores: Option<u32>,
    pub spindles: Option<u32>,
    pub max_connections: Option<u32>,
    pub reserved: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoctorFile {
    pub max_size: Option<u32>,
    pub instances: Option<u32>,
    pub idle_timeout: Option<String>,
    pub max_lifetime: Option<String>,
    pub pings: Option<u32>,
    pub timeout: Option<String>,
}

const SECTIONS: [&str; 5] = ["url", "bench", "pool", "size", "doctor"];

/// Reads the settings file; `None` gives empty settings.
pub fn load(path: Option<&Path>) -> Result<FileSettings, CliError> {
    let Some(path) = path else {
        return Ok(FileSettings::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| CliError::ConfigFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    parse(&text).map_err(|reason| CliError::ConfigFile {
        path: path.display().to_string(),
        reason,
    })
}

/// Parses settings text: a full settings file, or a bare pool table.
pub fn parse(text: &str) -> Result<FileSettings, String> {
    let table: toml::Table = toml::from_str(text).map_err(one_line)?;
    let sectioned = table.keys().any(|k| SECTIONS.contains(&k.as_str()));
    if sectioned || table.is_empty() {
        FileSettings::deserialize(toml::Value::Table(table)).map_err(one_line)
    } else {
        let pool = tidepool::Config::deserialize(toml::Value::Table(table)).map_err(one_line)?;
        Ok(FileSettings {
            pool: Some(pool),
            ..FileSettings::default()
        })
    }
}

fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Parses a duration like `5s`, `300ms` or `1m 30s`.
pub fn duration(flag: &'static str, text: &str) -> Result<Duration, CliError> {
    humantime::parse_duration(text.trim()).map_err(|e| CliError::InvalidValue {
        flag,
        value: text.to_string(),
        reason: format!("{e} (write durations like 300ms, 5s or 1m)"),
    })
}

fn positive(flag: &'static str, n: u32) -> Result<u32, CliError> {
    if n == 0 {
        return Err(CliError::InvalidValue {
            flag,
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(n)
}

/// Operation weights of the workload.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Mix {
    pub read: u32,
    pub write: u32,
    pub txn: u32,
}

impl Mix {
    pub fn parse(text: &str) -> Result<Mix, CliError> {
        let bad = |reason: String| CliError::InvalidValue {
            flag: "--mix",
            value: text.to_string(),
            reason,
        };
        let mut weights = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("`{part}` is not key=weight")))?;
            let weight: u32 = value
                .trim()
                .parse()
                .map_err(|_| bad(format!("weight `{}` is not a whole number", value.trim())))?;
            let key = key.trim().to_ascii_lowercase();
            if !["read", "write", "txn"].contains(&key.as_str()) {
                return Err(bad(format!(
                    "unknown operation `{key}`; use read, write and txn"
                )));
            }
            weights.insert(key, weight);
        }
        let get = |k: &str| weights.get(k).copied().unwrap_or(0);
        let mix = Mix {
            read: get("read"),
            write: get("write"),
            txn: get("txn"),
        };
        if mix.total() == 0 {
            return Err(bad("the weights add up to zero".into()));
        }
        Ok(mix)
    }

    pub fn total(&self) -> u32 {
        self.read + self.write + self.txn
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "read={},write={},txn={}",
            self.read, self.write, self.txn
        )
    }
}

/// Everything `bench` needs, resolved.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    pub url: Option<String>,
    pub concurrency: Vec<u32>,
    pub duration: Duration,
    pub warmup: Duration,
    pub repeat: u32,
    pub mix: Mix,
    pub baseline_size: u32,
    pub seed_users: u32,
    pub table_prefix: String,
    pub keep: bool,
    pub json: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub acquire_timeout: Duration,
    pub tuned: Option<tidepool::Config>,
}

fn parse_levels(text: &str) -> Result<Vec<u32>, CliError> {
    let bad = |reason: String| CliError::InvalidValue {
        flag: "--concurrency",
        value: text.to_string(),
        reason,
    };
    let mut levels = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n: u32 = part
            .parse()
            .map_err(|_| bad(format!("`{part}` is not a whole number")))?;
        if n == 0 || n > 10_000 {
            return Err(bad(format!("{n} is outside 1..=10000")));
        }
        if !levels.contains(&n) {
            levels.push(n);
        }
    }
    if levels.is_empty() {
        return Err(bad("name at least one level".into()));
    }
    Ok(levels)
}

impl BenchSettings {
    pub fn resolve(args: BenchArgs, file: FileSettings) -> Result<Self, CliError> {
        if let Some(pool) = &file.pool {
            pool.validate().map_err(|e| CliError::Pool {
                context: "the settings file's [pool] table".into(),
                source: e,
            })?;
        }
        let f = file.bench;
        let concurrency = match (args.concurrency, f.concurrency) {
            (Some(text), _) => parse_levels(&text)?,
            (None, Some(levels)) => parse_levels(
                &levels
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )?,
            (None, None) => vec![10, 25, 50],
        };
        let dur = |flag, a: Option<String>, f: Option<String>, default: &str| {
            duration(flag, a.or(f).as_deref().unwrap_or(default))
        };
        let duration_ = dur("--duration", args.duration, f.duration, "5s")?;
        if duration_ < Duration::from_millis(100) {
            return Err(CliError::InvalidValue {
                flag: "--duration",
                value: humantime::format_duration(duration_).to_string(),
                reason: "must be at least 100ms".into(),
            });
        }
        let acquire_timeout = dur(
            "--acquire-timeout",
            args.acquire_timeout,
            f.acquire_timeout,
            "5s",
        )?;
        if acquire_timeout.is_zero() {
            return Err(CliError::InvalidValue {
                flag: "--acquire-timeout",
                value: "0s".into(),
                reason: "must be greater than zero".into(),
            });
        }
        let prefix = args
            .table_prefix
            .or(f.table_prefix)
            .unwrap_or_else(|| "tidepool_bench_".into());
        if prefix.is_empty()
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || prefix.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(CliError::InvalidValue {
                flag: "--table-prefix",
                value: prefix,
                reason: "use letters, digits and underscores, not starting with a digit".into(),
            });
        }
        Ok(BenchSettings {
            url: args.url.or(file.url),
            concurrency,
            duration: duration_,
            warmup: dur("--warmup", args.warmup, f.warmup, "1s")?,
            repeat: positive("--repeat", args.repeat.or(f.repeat).unwrap_or(1))?,
            mix: Mix::parse(
                args.mix
                    .or(f.mix)
                    .as_deref()
                    .unwrap_or("read=70,write=20,txn=10"),
            )?,
            baseline_size: positive(
                "--baseline-size",
                args.baseline_size.or(f.baseline_size).unwrap_or(10),
            )?,
            seed_users: positive(
                "--seed-users",
                args.seed_users.or(f.seed_users).unwrap_or(2000),
            )?,
            table_prefix: prefix,
            keep: args.keep || f.keep.unwrap_or(false),
            json: args.json.or(f.json),
            report: args.report.or(f.report),
            acquire_timeout,
            tuned: file.pool,
        })
    }
}

/// Everything `size` needs, resolved.
#[derive(Debug, Clone)]
pub struct SizeSettings {
    pub url: Option<String>,
    pub rate: f64,
    pub query_time: Duration,
    pub concurrent_requests: Option<u32>,
    pub instances: u32,
    pub cores: u32,
    pub spindles: u32,
    pub max_connections: Option<u32>,
    pub reserved: Option<u32>,
}

impl SizeSettings {
    pub fn resolve(args: SizeArgs, file: FileSettings) -> Result<Self, CliError> {
        let f = file.size;
        let rate = args.rate.or(f.rate).unwrap_or(1000.0);
        if !rate.is_finite() || rate <= 0.0 {
            return Err(CliError::InvalidValue {
                flag: "--rate",
                value: rate.to_string(),
                reason: "must be a positive number of queries per second".into(),
            });
        }
        let query_time = duration(
            "--query-time",
            args.query_time.or(f.query_time).as_deref().unwrap_or("5ms"),
        )?;
        if query_time.is_zero() {
            return Err(CliError::InvalidValue {
                flag: "--query-time",
                value: "0s".into(),
                reason: "must be greater than zero".into(),
            });
        }
        Ok(SizeSettings {
            url: args.url.or(file.url),
            rate,
            query_time,
            concurrent_requests: args
                .concurrent_requests
                .or(f.concurrent_requests)
                .map(|n| positive("--concurrent-requests", n))
                .transpose()?,
            instances: positive("--instances", args.instances.or(f.instances).unwrap_or(1))?,
            cores: positive("--cores", args.cores.or(f.cores).unwrap_or(4))?,
            spindles: args.spindles.or(f.spindles).unwrap_or(1),
            max_connections: args
                .max_connections
                .or(f.max_connections)
                .map(|n| positive("--max-connections", n))
                .transpose()?,
            reserved: args.reserved.or(f.reserved),
        })
    }
}

/// Everything `doctor` needs, resolved.
#[derive(Debug, Clone)]
pub struct DoctorSettings {
    pub url: String,
    pub max_size: u32,
    pub instances: u32,
    pub idle_timeout: Option<Duration>,
    pub max_lifetime: Option<Duration>,
    /// From the `[pool]` table (or the default): idle connections pinged
    /// this often stay alive on the server.
    pub health_check_interval: Option<Duration>,
    pub pings: u32,
    pub timeout: Duration,
}

impl DoctorSettings {
    pub fn resolve(args: DoctorArgs, file: FileSettings) -> Result<Self, CliError> {
        let f = file.doctor;
        let pool = file.pool.unwrap_or_default();
        let url = args.url.or(file.url).ok_or(CliError::Missing {
            what: "a database URL: pass --url, set DATABASE_URL, or put url in the settings file",
        })?;
        let opt_duration = |flag, a: Option<String>, f: Option<String>, default| match a.or(f) {
            Some(text) if matches!(text.trim(), "off" | "none" | "never") => Ok(None),
            Some(text) => duration(flag, &text).map(Some),
            None => Ok(default),
        };
        Ok(DoctorSettings {
            url,
            max_size: positive(
                "--max-size",
                args.max_size.or(f.max_size).unwrap_or(pool.max_size),
            )?,
            instances: positive("--instances", args.instances.or(f.instances).unwrap_or(1))?,
            idle_timeout: opt_duration(
                "--idle-timeout",
                args.idle_timeout,
                f.idle_timeout,
                pool.idle_timeout,
            )?,
            max_lifetime: opt_duration(
                "--max-lifetime",
                args.max_lifetime,
                f.max_lifetime,
                pool.max_lifetime,
            )?,
            health_check_interval: pool.health_check_interval,
            pings: positive("--pings", args.pings.or(f.pings).unwrap_or(100))?,
            timeout: duration(
                "--timeout",
                args.timeout.or(f.timeout).as_deref().unwrap_or("5s"),
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_pool_table_is_read_as_the_pool_section() {
        let s = parse("max_size = 7\nacquire_timeout = \"2s\"").unwrap();
        assert_eq!(s.pool.map(|p| p.max_size), Some(7));
    }

    #[test]
    fn a_sectioned_file_fills_each_subcommand() {
        let s = parse(
            "url = \"sqlite::memory:\"\n[bench]\nconcurrency = [2, 4]\nduration = \"1s\"\n[pool]\nmax_size = 3\n",
        )
        .unwrap();
        let b = BenchSettings::resolve(BenchArgs::default(), s).unwrap();
        assert_eq!(b.concurrency, vec![2, 4]);
        assert_eq!(b.duration, Duration::from_secs(1));
        assert_eq!(b.url.as_deref(), Some("sqlite::memory:"));
        assert_eq!(b.tuned.map(|p| p.max_size), Some(3));
    }

    #[test]
    fn flags_take_precedence_over_the_file() {
        let s = parse("[bench]\nconcurrency = [2]\nduration = \"1s\"\n").unwrap();
        let args = BenchArgs {
            concurrency: Some("8,9".into()),
            ..BenchArgs::default()
        };
        let b = BenchSettings::resolve(args, s).unwrap();
        assert_eq!(b.concurrency, vec![8, 9]);
        assert_eq!(b.duration, Duration::from_secs(1));
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let err = parse("[bench]\nconcurency = [2]\n").unwrap_err();
        assert!(err.contains("concurency"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn the_mix_parses_weights_and_refuses_unknown_operations() {
        assert_eq!(
            Mix::parse("read=70, write=20,txn=10").unwrap(),
            Mix {
                read: 70,
                write: 20,
                txn: 10
            }
        );
        assert!(Mix::parse("read=1,delete=2")
            .unwrap_err()
            .to_string()
            .contains("delete"));
        assert!(Mix::parse("read=0").is_err());
    }

    #[test]
    fn a_bad_duration_names_its_flag() {
        let args = BenchArgs {
            duration: Some("ten seconds".into()),
            ..BenchArgs::default()
        };
        let err = BenchSettings::resolve(args, FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("--duration"), "{err}");
    }
}
