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
    /// The file it was read from, for errors that refuse one of its values.
    #[serde(skip)]
    pub path: Option<String>,
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
    pub strategy: Option<String>,
    pub shape: Option<String>,
    pub multiplex_reads: Option<bool>,
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

/// Reads the settings file; `None` gives empty settings. The `[pool]`
/// table is validated here, once, so that every subcommand refuses the
/// same bad configuration with the same message.
pub fn load(path: Option<&Path>) -> Result<FileSettings, CliError> {
    let Some(path) = path else {
        return Ok(FileSettings::default());
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CliError::ConfigFile {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let mut settings = parse(&text).map_err(|reason| CliError::ConfigFile {
        path: shown.clone(),
        reason,
    })?;
    if let Some(pool) = &settings.pool {
        validate_pool(pool, &format!("settings file {shown}: the [pool] table"))?;
    }
    settings.path = Some(shown);
    Ok(settings)
}

/// The one check every pool configuration passes, whichever subcommand
/// reads it: the core's own validation (min <= max, non-zero timeouts).
pub fn validate_pool(pool: &tidepool::Config, context: &str) -> Result<(), CliError> {
    pool.validate().map_err(|e| CliError::Pool {
        context: context.to_string(),
        source: e,
    })
}

/// Parses settings text: a full settings file, or a bare pool table.
pub fn parse(text: &str) -> Result<FileSettings, String> {
    let table: toml::Table = toml::from_str(text).map_err(one_line)?;
    misspelled_section(&table)?;
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

/// Refuses a top-level key that is one slip away from a section name
/// (`[pools]`, `[Pool]`, `[bnech]`): read as a bare pool table it would be
/// reported as an unknown pool field, with no hint of what was meant.
fn misspelled_section(table: &toml::Table) -> Result<(), String> {
    for (key, value) in table {
        if SECTIONS.contains(&key.as_str()) {
            continue;
        }
        let lower = key.to_ascii_lowercase();
        let Some(meant) = SECTIONS
            .iter()
            .copied()
            .filter(|s| *s != "url")
            .find(|s| *s == lower || edit_distance(s, &lower) <= 2)
        else {
            continue;
        };
        let shown = if value.is_table() {
            format!("[{key}]")
        } else {
            format!("`{key}`")
        };
        return Err(format!(
            "unknown table {shown}: did you mean [{meant}]? (a settings file has `url` and the tables [bench], [pool], [size] and [doctor]; a file with none of them is read as a bare [pool] table)"
        ));
    }
    Ok(())
}

/// Levenshtein distance, for "did you mean" hints on short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where a setting's value came from: the command line (a flag or its
/// environment variable, which clap reads alike) or the settings file.
/// A value refused from the command line is a usage error (exit 2); one
/// refused from the file names the file, table and key (exit 1).
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    Flag(&'static str),
    File {
        table: &'static str,
        key: &'static str,
    },
}

impl Origin {
    /// The error that refuses `value` from this origin.
    pub fn refuse(self, file: Option<&str>, value: &str, reason: String) -> CliError {
        match self {
            Origin::Flag(flag) => CliError::InvalidValue {
                flag,
                value: value.to_string(),
                reason,
            },
            Origin::File { table, key } => CliError::ConfigFile {
                path: file.unwrap_or("(settings file)").to_string(),
                reason: if table.is_empty() {
                    format!("{key} = {value:?}: {reason}")
                } else {
                    format!("[{table}] {key} = {value:?}: {reason}")
                },
            },
        }
    }
}

/// The flag's value if given, else the file's, with where it came from.
fn pick<T>(
    flag: &'static str,
    arg: Option<T>,
    table: &'static str,
    key: &'static str,
    file: Option<T>,
) -> Option<(T, Origin)> {
    match (arg, file) {
        (Some(v), _) => Some((v, Origin::Flag(flag))),
        (None, Some(v)) => Some((v, Origin::File { table, key })),
        (None, None) => None,
    }
}

/// Parses a duration like `5s`, `300ms` or `1m 30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e} (write durations like 300ms, 5s or 1m)"))
}

fn at_least_one(n: u32) -> Result<u32, String> {
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// Resolves one setting: the flag, else the file, else `default`; parsed
/// by `check`, whose refusal names where the value came from.
struct Resolver<'a> {
    file: Option<&'a str>,
}

impl Resolver<'_> {
    fn get<T: ToString, U>(
        &self,
        picked: Option<(T, Origin)>,
        default: U,
        check: impl Fn(&T) -> Result<U, String>,
    ) -> Result<U, CliError> {
        match picked {
            None => Ok(default),
            Some((value, origin)) => {
                check(&value).map_err(|reason| origin.refuse(self.file, &value.to_string(), reason))
            }
        }
    }
}

/// Operation weights of the workload, in percent.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Mix {
    pub read: u32,
    pub write: u32,
    pub txn: u32,
}

impl Mix {
    /// Parses `read=N,write=N,txn=N`: percentages that add up to 100. An
    /// operation left out is 0, and a mix that does not add up is refused
    /// with the sum, so a left-out operation is never dropped unnoticed.
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut weights = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not key=percent"))?;
            let weight: u32 = value
                .trim()
                .parse()
                .map_err(|_| format!("weight `{}` is not a whole number", value.trim()))?;
            let key = key.trim().to_ascii_lowercase();
            if !["read", "write", "txn"].contains(&key.as_str()) {
                return Err(format!(
                    "unknown operation `{key}`; use read, write and txn"
                ));
            }
            if weights.insert(key.clone(), weight).is_some() {
                return Err(format!("`{key}` is given twice"));
            }
        }
        let get = |k: &str| weights.get(k).copied().unwrap_or(0);
        let mix = Mix {
            read: get("read"),
            write: get("write"),
            txn: get("txn"),
        };
        if mix.total() != 100 {
            let missing: Vec<&str> = ["read", "write", "txn"]
                .into_iter()
                .filter(|k| !weights.contains_key(*k))
                .collect();
            let note = match missing.as_slice() {
                [] => String::new(),
                [one] => format!("; {one} is not given, so it counts as 0"),
                many => format!("; {} are not given, so they count as 0", many.join(" and ")),
            };
            return Err(format!(
                "the percentages add up to {}, not 100{note}",
                mix.total()
            ));
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

/// How the number of active clients moves over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// Every client, the whole run.
    #[default]
    Steady,
    /// From 2 clients up to the level at mid-run, then back down to 2.
    Ramp,
    /// A square wave between a tenth of the level and the level, three
    /// periods per run.
    Burst,
}

impl Shape {
    pub const ALL: [Shape; 3] = [Shape::Steady, Shape::Ramp, Shape::Burst];

    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Steady => "steady",
            Shape::Ramp => "ramp",
            Shape::Burst => "burst",
        }
    }

    pub fn parse(text: &str) -> Result<Shape, String> {
        let wanted = text.trim().to_ascii_lowercase();
        Shape::ALL
            .into_iter()
            .find(|s| s.as_str() == wanted)
            .ok_or_else(|| format!("unknown shape `{text}`; known: steady, ramp, burst"))
    }

    /// Clients active `elapsed` into a run of `total` at `level` clients.
    pub fn active(self, level: u32, elapsed: Duration, total: Duration) -> u32 {
        let x = if total.is_zero() {
            1.0
        } else {
            (elapsed.as_secs_f64() / total.as_secs_f64()).clamp(0.0, 1.0)
        };
        match self {
            Shape::Steady => level,
            Shape::Ramp => {
                let low = level.min(2);
                let up = 1.0 - (2.0 * x - 1.0).abs();
                low + (f64::from(level - low) * up).round() as u32
            }
            Shape::Burst => {
                let low = (level / 10).max(1);
                // Three periods, each low first then high.
                if (x * 6.0).floor() as u32 % 2 == 1 {
                    level
                } else {
                    low
                }
            }
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    /// The tuned side's scaling preset; `None` when neither the flag nor
    /// the `[bench]` table named one (balanced for the default tuned side,
    /// the `[pool]` table's own `[pool.scaling]` otherwise).
    pub strategy: Option<tidepool::Strategy>,
    pub shape: Shape,
    /// The tuned side's reads through tidepool-postgres' multiplexer (on
    /// PostgreSQL only).
    pub multiplex_reads: bool,
}

impl BenchSettings {
    /// The strategy the default tuned side uses: the one named, else
    /// `balanced` on SQLite and `dynamic` on a server. SQLite's useful
    /// concurrency is known (one writer, readers on this host's cores), so
    /// a warm target under that cap is enough; a server's knee depends on
    /// the workload (round trips and WAL flushes, not only its cores —
    /// `cores × 2 + 1` measured below it, docs/BENCHMARKS.md), so the
    /// adaptive limit has to find it.
    pub fn tuned_strategy(&self) -> tidepool::Strategy {
        self.strategy.unwrap_or_else(|| {
            let on_sqlite = self.url.as_deref().is_none_or(|u| u.starts_with("sqlite:"));
            if on_sqlite {
                tidepool::Strategy::Balanced
            } else {
                tidepool::Strategy::Dynamic
            }
        })
    }
}

/// `on`/`off` (and the usual spellings of true and false).
fn on_off(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("expected on or off, got {text:?}")),
    }
}

fn parse_levels(text: &str) -> Result<Vec<u32>, String> {
    let mut levels = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n: u32 = part
            .parse()
            .map_err(|_| format!("`{part}` is not a whole number"))?;
        if n == 0 || n > 10_000 {
            return Err(format!("{n} is outside 1..=10000"));
        }
        if !levels.contains(&n) {
            levels.push(n);
        }
    }
    if levels.is_empty() {
        return Err("name at least one level".into());
    }
    Ok(levels)
}

fn table_prefix(prefix: &str) -> Result<String, String> {
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        || prefix.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err("use letters, digits and underscores, not starting with a digit".into());
    }
    Ok(prefix.to_string())
}

fn bench_url(url: &str) -> Result<String, String> {
    let memory = url.starts_with("sqlite:")
        && tidepool_sqlite::SqliteConfig::from_url(url)
            .is_ok_and(|c| matches!(c.target(), tidepool_sqlite::Target::Memory));
    if memory {
        return Err("an in-memory SQLite database lives only as long as one pool, and bench builds a pool per run; leave --url out for a temporary database file".into());
    }
    Ok(url.to_string())
}

impl BenchSettings {
    pub fn resolve(args: BenchArgs, file: FileSettings) -> Result<Self, CliError> {
        let r = Resolver {
            file: file.path.as_deref(),
        };
        let f = file.bench;
        let file_levels = f.concurrency.map(|levels| {
            levels
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        });
        let concurrency = r.get(
            pick(
                "--concurrency",
                args.concurrency,
                "bench",
                "concurrency",
                file_levels,
            ),
            vec![10, 25, 50],
            |t| parse_levels(t),
        )?;
        let duration_ = r.get(
            pick("--duration", args.duration, "bench", "duration", f.duration),
            Duration::from_secs(5),
            |t| {
                let d = parse_duration(t)?;
                if d < Duration::from_millis(100) {
                    return Err("must be at least 100ms".into());
                }
                Ok(d)
            },
        )?;
        let acquire_timeout = r.get(
            pick(
                "--acquire-timeout",
                args.acquire_timeout,
                "bench",
                "acquire_timeout",
                f.acquire_timeout,
            ),
            Duration::from_secs(5),
            |t| {
                let d = parse_duration(t)?;
                if d.is_zero() {
                    return Err("must be greater than zero".into());
                }
                Ok(d)
            },
        )?;
        let url = match (args.url, file.url) {
            (Some(u), _) => Some((u, Origin::Flag("--url"))),
            (None, Some(u)) => Some((
                u,
                Origin::File {
                    table: "",
                    key: "url",
                },
            )),
            (None, None) => None,
        };
        Ok(BenchSettings {
            url: r.get(url, None, |u: &String| bench_url(u).map(Some))?,
            concurrency,
            duration: duration_,
            warmup: r.get(
                pick("--warmup", args.warmup, "bench", "warmup", f.warmup),
                Duration::from_secs(1),
                |t| parse_duration(t),
            )?,
            repeat: r.get(
                pick("--repeat", args.repeat, "bench", "repeat", f.repeat),
                1,
                |n| at_least_one(*n),
            )?,
            mix: r.get(
                pick("--mix", args.mix, "bench", "mix", f.mix),
                Mix {
                    read: 70,
                    write: 20,
                    txn: 10,
                },
                |t| Mix::parse(t),
            )?,
            baseline_size: r.get(
                pick(
                    "--baseline-size",
                    args.baseline_size,
                    "bench",
                    "baseline_size",
                    f.baseline_size,
                ),
                10,
                |n| at_least_one(*n),
            )?,
            seed_users: r.get(
                pick(
                    "--seed-users",
                    args.seed_users,
                    "bench",
                    "seed_users",
                    f.seed_users,
                ),
                2000,
                |n| at_least_one(*n),
            )?,
            table_prefix: r.get(
                pick(
                    "--table-prefix",
                    args.table_prefix,
                    "bench",
                    "table_prefix",
                    f.table_prefix,
                ),
                "tidepool_bench_".to_string(),
                |p: &String| table_prefix(p),
            )?,
            keep: args.keep || f.keep.unwrap_or(false),
            json: args.json.or(f.json),
            report: args.report.or(f.report),
            acquire_timeout,
            tuned: file.pool,
            strategy: r.get(
                pick("--strategy", args.strategy, "bench", "strategy", f.strategy),
                None,
                |t: &String| t.parse::<tidepool::Strategy>().map(Some),
            )?,
            shape: r.get(
                pick("--shape", args.shape, "bench", "shape", f.shape),
                Shape::Steady,
                |t: &String| Shape::parse(t),
            )?,
            multiplex_reads: r.get(
                pick(
                    "--multiplex-reads",
                    args.multiplex_reads,
                    "bench",
                    "multiplex_reads",
                    f.multiplex_reads
                        .map(|on| if on { "on" } else { "off" }.to_string()),
                ),
                true,
                |t: &String| on_off(t),
            )?,
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
    /// `None` when neither the command line nor the file gives it: the
    /// arithmetic then assumes [`ASSUMED_CORES`] and says so.
    pub cores: Option<u32>,
    pub spindles: u32,
    pub max_connections: Option<u32>,
    pub reserved: Option<u32>,
}

/// The database server's cores assumed when none are given.
pub const ASSUMED_CORES: u32 = 4;

impl SizeSettings {
    pub fn resolve(args: SizeArgs, file: FileSettings) -> Result<Self, CliError> {
        let r = Resolver {
            file: file.path.as_deref(),
        };
        let f = file.size;
        let rate = r.get(
            pick("--rate", args.rate, "size", "rate", f.rate),
            1000.0,
            |&rate| {
                if !rate.is_finite() || rate <= 0.0 {
                    return Err("must be a positive number of queries per second".into());
                }
                Ok(rate)
            },
        )?;
        let query_time = r.get(
            pick(
                "--query-time",
                args.query_time,
                "size",
                "query_time",
                f.query_time,
            ),
            Duration::from_millis(5),
            |t| {
                let d = parse_duration(t)?;
                if d.is_zero() {
                    return Err("must be greater than zero".into());
                }
                Ok(d)
            },
        )?;
        let optional = |p: Option<(u32, Origin)>| r.get(p, None, |n| at_least_one(*n).map(Some));
        Ok(SizeSettings {
            url: args.url.or(file.url),
            rate,
            query_time,
            concurrent_requests: optional(pick(
                "--concurrent-requests",
                args.concurrent_requests,
                "size",
                "concurrent_requests",
                f.concurrent_requests,
            ))?,
            instances: r.get(
                pick(
                    "--instances",
                    args.instances,
                    "size",
                    "instances",
                    f.instances,
                ),
                1,
                |n| at_least_one(*n),
            )?,
            cores: optional(pick("--cores", args.cores, "size", "cores", f.cores))?,
            spindles: args.spindles.or(f.spindles).unwrap_or(1),
            max_connections: optional(pick(
                "--max-connections",
                args.max_connections,
                "size",
                "max_connections",
                f.max_connections,
            ))?,
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
        let r = Resolver {
            file: file.path.as_deref(),
        };
        let f = file.doctor;
        let mut pool = file.pool.unwrap_or_default();
        let url = args.url.or(file.url).ok_or(CliError::Missing {
            what: "a database URL: pass --url, set DATABASE_URL, or put url in the settings file",
        })?;
        let optional_duration = |t: &String| match t.trim() {
            "off" | "none" | "never" => Ok(None),
            text => parse_duration(text).map(Some),
        };
        pool.max_size = r.get(
            pick(
                "--max-size",
                args.max_size,
                "doctor",
                "max_size",
                f.max_size,
            ),
            pool.max_size,
            |n| at_least_one(*n),
        )?;
        pool.idle_timeout = r.get(
            pick(
                "--idle-timeout",
                args.idle_timeout,
                "doctor",
                "idle_timeout",
                f.idle_timeout,
            ),
            pool.idle_timeout,
            optional_duration,
        )?;
        pool.max_lifetime = r.get(
            pick(
                "--max-lifetime",
                args.max_lifetime,
                "doctor",
                "max_lifetime",
                f.max_lifetime,
            ),
            pool.max_lifetime,
            optional_duration,
        )?;
        // The planned pool passes the same validation as bench's tuned
        // pool, after the doctor's own overrides.
        validate_pool(&pool, "the planned pool")?;
        Ok(DoctorSettings {
            url,
            max_size: pool.max_size,
            instances: r.get(
                pick(
                    "--instances",
                    args.instances,
                    "doctor",
                    "instances",
                    f.instances,
                ),
                1,
                |n| at_least_one(*n),
            )?,
            idle_timeout: pool.idle_timeout,
            max_lifetime: pool.max_lifetime,
            health_check_interval: pool.health_check_interval,
            pings: r.get(
                pick("--pings", args.pings, "doctor", "pings", f.pings),
                100,
                |n| at_least_one(*n),
            )?,
            timeout: r.get(
                pick("--timeout", args.timeout, "doctor", "timeout", f.timeout),
                Duration::from_secs(5),
                |t| {
                    let d = parse_duration(t)?;
                    if d.is_zero() {
                        return Err("must be greater than zero".into());
                    }
                    Ok(d)
                },
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
            "url = \"sqlite://app.db\"\n[bench]\nconcurrency = [2, 4]\nduration = \"1s\"\n[pool]\nmax_size = 3\n",
        )
        .unwrap();
        let b = BenchSettings::resolve(BenchArgs::default(), s).unwrap();
        assert_eq!(b.concurrency, vec![2, 4]);
        assert_eq!(b.duration, Duration::from_secs(1));
        assert_eq!(b.url.as_deref(), Some("sqlite://app.db"));
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
            .contains("delete"));
        assert!(Mix::parse("read=0").is_err());
        assert_eq!(
            Mix::parse("read=90,write=10").unwrap(),
            Mix {
                read: 90,
                write: 10,
                txn: 0
            }
        );
    }

    #[test]
    fn a_mix_that_does_not_add_up_to_100_is_refused_with_the_sum_and_what_was_left_out() {
        let err = Mix::parse("read=70,write=20").unwrap_err();
        assert!(err.contains("add up to 90, not 100"), "{err}");
        assert!(err.contains("txn is not given, so it counts as 0"), "{err}");
        let err = Mix::parse("read=70,write=20,txn=20").unwrap_err();
        assert!(err.contains("add up to 110"), "{err}");
        assert!(Mix::parse("read=50,read=50").unwrap_err().contains("twice"));
    }

    #[test]
    fn a_misspelled_table_is_named_with_the_one_meant() {
        for (text, shown, meant) in [
            ("[pools]\nmax_size = 5\n", "[pools]", "[pool]"),
            ("[Pool]\nmax_size = 5\n", "[Pool]", "[pool]"),
            (
                "[bench]\nrepeat = 2\n[doctr]\npings = 3\n",
                "[doctr]",
                "[doctor]",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(&format!("unknown table {shown}")), "{err}");
            assert!(err.contains(&format!("did you mean {meant}?")), "{err}");
        }
        // A bare pool table with its own nested table is still a pool.
        let s = parse("max_size = 4\n[breaker]\n").unwrap();
        assert_eq!(s.pool.map(|p| p.max_size), Some(4));
    }

    #[test]
    fn a_bad_value_in_the_file_names_the_file_table_and_key_not_a_flag() {
        let mut file = parse("[bench]\nduration = \"soon\"\n").unwrap();
        file.path = Some("t.toml".into());
        let err = BenchSettings::resolve(BenchArgs::default(), file).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let text = err.to_string();
        assert!(
            text.contains("t.toml") && text.contains("[bench] duration"),
            "{text}"
        );
        assert!(!text.contains("--duration"), "{text}");
    }

    #[test]
    fn a_bad_flag_value_is_a_usage_error() {
        let args = BenchArgs {
            concurrency: Some("10,abc".into()),
            ..BenchArgs::default()
        };
        let err = BenchSettings::resolve(args, FileSettings::default()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--concurrency"), "{err}");
    }

    #[test]
    fn the_doctors_planned_pool_is_validated_after_its_overrides() {
        let file = parse("[pool]\nmin_size = 8\nmax_size = 20\n").unwrap();
        let args = DoctorArgs {
            url: Some("sqlite://x.db".into()),
            max_size: Some(5),
            ..DoctorArgs::default()
        };
        let err = DoctorSettings::resolve(args, file).unwrap_err().to_string();
        assert!(
            err.contains("planned pool") && err.contains("min_size"),
            "{err}"
        );
    }

    #[test]
    fn multiplexed_reads_default_on_and_come_from_the_flag_or_the_file() {
        let s = BenchSettings::resolve(BenchArgs::default(), FileSettings::default()).unwrap();
        assert!(s.multiplex_reads);
        let file = parse("[bench]\nmultiplex_reads = false\n").unwrap();
        let s = BenchSettings::resolve(BenchArgs::default(), file).unwrap();
        assert!(!s.multiplex_reads);
        let file = parse("[bench]\nmultiplex_reads = false\n").unwrap();
        let args = BenchArgs {
            multiplex_reads: Some("on".into()),
            ..BenchArgs::default()
        };
        assert!(BenchSettings::resolve(args, file).unwrap().multiplex_reads);
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

    #[test]
    fn the_strategy_defaults_to_balanced_on_sqlite_and_dynamic_on_a_server_and_comes_from_the_flag_or_the_file(
    ) {
        let s = BenchSettings::resolve(BenchArgs::default(), FileSettings::default()).unwrap();
        assert_eq!(s.strategy, None);
        assert_eq!(s.tuned_strategy(), tidepool::Strategy::Balanced);
        for (url, strategy) in [
            ("sqlite://bench.db", tidepool::Strategy::Balanced),
            ("postgres://app@db/app", tidepool::Strategy::Dynamic),
            ("mysql://app@db/app", tidepool::Strategy::Dynamic),
        ] {
            let args = BenchArgs {
                url: Some(url.into()),
                ..BenchArgs::default()
            };
            let s = BenchSettings::resolve(args, FileSettings::default()).unwrap();
            assert_eq!(s.tuned_strategy(), strategy, "{url}");
        }
        let file = parse("[bench]\nstrategy = \"low-latency\"\n").unwrap();
        let s = BenchSettings::resolve(BenchArgs::default(), file).unwrap();
        assert_eq!(s.tuned_strategy(), tidepool::Strategy::LowLatency);
        let file = parse("[bench]\nstrategy = \"low-latency\"\n").unwrap();
        let args = BenchArgs {
            strategy: Some("dynamic".into()),
            ..BenchArgs::default()
        };
        let s = BenchSettings::resolve(args, file).unwrap();
        assert_eq!(s.tuned_strategy(), tidepool::Strategy::Dynamic);
    }

    #[test]
    fn an_unknown_strategy_is_a_usage_error_listing_the_known_ones() {
        let args = BenchArgs {
            strategy: Some("fastest".into()),
            ..BenchArgs::default()
        };
        let err = BenchSettings::resolve(args, FileSettings::default()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("--strategy") && text.contains("fastest"),
            "{text}"
        );
        for known in [
            "fixed",
            "balanced",
            "high-throughput",
            "low-latency",
            "dynamic",
        ] {
            assert!(text.contains(known), "{text}");
        }
        let mut file = parse("[bench]\nstrategy = \"fastest\"\n").unwrap();
        file.path = Some("t.toml".into());
        let err = BenchSettings::resolve(BenchArgs::default(), file).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("[bench] strategy"), "{err}");
    }

    #[test]
    fn shapes_drive_the_client_count_over_the_run() {
        let total = Duration::from_secs(6);
        let at = |shape: Shape, s: f64| shape.active(50, Duration::from_secs_f64(s), total);
        assert!((0..=60).all(|i| at(Shape::Steady, f64::from(i) / 10.0) == 50));
        // Ramp: 2 at the ends, the level at mid-run, rising then falling.
        assert_eq!(
            (
                at(Shape::Ramp, 0.0),
                at(Shape::Ramp, 3.0),
                at(Shape::Ramp, 6.0)
            ),
            (2, 50, 2)
        );
        assert!(at(Shape::Ramp, 1.0) < at(Shape::Ramp, 2.0));
        assert!(at(Shape::Ramp, 4.0) > at(Shape::Ramp, 5.0));
        // Burst: a tenth of the level, then the level, three times.
        let burst: Vec<u32> = (0..6)
            .map(|i| at(Shape::Burst, f64::from(i) + 0.5))
            .collect();
        assert_eq!(burst, [5, 50, 5, 50, 5, 50]);
        assert_eq!(Shape::Burst.active(4, Duration::ZERO, total), 1);
        assert_eq!(Shape::Ramp.active(1, Duration::ZERO, total), 1);
    }

    #[test]
    fn an_unknown_shape_is_refused_with_the_known_ones() {
        let args = BenchArgs {
            shape: Some("sawtooth".into()),
            ..BenchArgs::default()
        };
        let err = BenchSettings::resolve(args, FileSettings::default()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("--shape") && text.contains("steady, ramp, burst"),
            "{text}"
        );
    }
}
