//! `tidepool bench` on SQLite, end to end through the binary.

mod common;

use common::{assert_clean_failure, quick_at, stderr, stdout, tidepool, tidepool_std, QUICK};

#[test]
fn bench_with_no_url_runs_both_configurations_per_level_and_removes_its_database() {
    let out = tidepool().arg("bench").args(QUICK).output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    assert!(text.contains("temporary database"), "{text}");
    for level in [
        "    2  baseline",
        "    2  tuned",
        "    4  baseline",
        "    4  tuned",
    ] {
        assert!(text.contains(level), "missing row {level:?} in\n{text}");
    }
    assert_eq!(
        text.matches("tuned/baseline: throughput").count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.matches("(higher is better), latency p50").count(),
        2,
        "each ratio line says which way is better: {text}"
    );
    let target = text
        .lines()
        .find_map(|l| l.strip_prefix("target:   sqlite://"))
        .expect("the report names its database");
    assert!(
        !std::path::Path::new(target.trim()).exists(),
        "the temporary database {target} was left behind"
    );
}

#[test]
fn the_report_ends_with_who_won_at_each_level_by_how_much_and_why() {
    let out = tidepool().arg("bench").args(QUICK).output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    let conclusion = text
        .split_once("\nConclusion\n")
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("no conclusion in\n{text}"));
    assert!(conclusion.contains("Throughput: "), "{conclusion}");
    for level in ["    2 clients: ", "    4 clients: "] {
        let line = conclusion
            .lines()
            .find(|l| l.starts_with(level))
            .unwrap_or_else(|| panic!("no verdict for {level:?} in\n{conclusion}"));
        assert!(
            line.contains("tuned won: ")
                || line.contains("baseline won: ")
                || line.contains("a draw on throughput"),
            "{line}"
        );
    }
    assert!(conclusion.contains("Where the time went"), "{conclusion}");
    assert!(conclusion.contains("Why: "), "{conclusion}");
    assert!(conclusion.contains("\nWhat to try next\n"), "{conclusion}");
    assert!(
        conclusion.contains("--repeat 3") || conclusion.contains("--url"),
        "{conclusion}"
    );
}

#[test]
fn json_carries_the_same_conclusion() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = tidepool()
        .arg("bench")
        .args(QUICK)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let levels = v["conclusion"]["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2);
    // The text wraps long lines; compare word for word.
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = words(&stdout(&out));
    for l in levels {
        assert!(
            ["tuned", "baseline", "neither"].contains(&l["throughput"].as_str().unwrap()),
            "{l}"
        );
        assert!(
            text.contains(&words(l["headline"].as_str().unwrap())),
            "{l}"
        );
    }
}

#[test]
fn progress_goes_to_stderr_as_plain_lines_when_not_a_terminal() {
    let out = tidepool().arg("bench").args(QUICK).output().unwrap();
    let err = stderr(&out);
    assert!(err.contains("c=2    baseline  running"), "{err}");
    assert!(err.contains("ops/s"), "{err}");
    // No terminal control sequences from a progress bar.
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(!stdout(&out).contains("running ("));
}

#[test]
fn json_output_holds_every_run_and_level_summary() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = tidepool()
        .arg("bench")
        .args(QUICK)
        .args([
            "--repeat",
            "2",
            "--mix",
            "read=50,write=30,txn=20",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        v["runs"].as_array().unwrap().len(),
        8,
        "2 levels x 2 configurations x 2 repeats"
    );
    let levels = v["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2);
    for level in levels {
        for side in ["baseline", "tuned"] {
            let a = &level[side];
            assert_eq!(a["runs"], 2);
            assert!(a["ops"].as_u64().unwrap() > 0, "{a}");
            assert!(a["throughput_ops_s"].as_f64().unwrap() > 0.0);
            let lat = &a["latency"];
            assert!(lat["p50_ms"].as_f64().unwrap() <= lat["p99_ms"].as_f64().unwrap());
            assert!(lat["p99_ms"].as_f64().unwrap() <= lat["max_ms"].as_f64().unwrap());
        }
        assert!(level["tuned_over_baseline"]["throughput"].as_f64().unwrap() > 0.0);
    }
    let run = &v["runs"][0];
    assert!(!run["timeline"].as_array().unwrap().is_empty());
    assert!(
        run["ops_by_kind"]["transaction"].as_u64().unwrap() > 0,
        "{run}"
    );
    assert_eq!(v["mix"]["txn"], 20);
    assert_eq!(v["configurations"][0]["by_level"]["2"]["max_size"], 10);
    // The tuned side stops at what SQLite runs well at once: this host's
    // cores for readers plus its one writer.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    assert_eq!(
        v["configurations"][1]["by_level"]["4"]["max_size"],
        4.min(cores + 1)
    );
}

#[test]
fn a_sqlite_url_keeps_its_tables_only_with_keep() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let url = format!("sqlite://{}", db.display());
    let tables = |db: &std::path::Path| -> i64 {
        let c = tidepool_sqlite::rusqlite::Connection::open(db).unwrap();
        c.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'tidepool_bench_%'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let out = tidepool()
        .arg("bench")
        .args(QUICK)
        .args(["--url", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tables(&db), 0, "tables are dropped by default");
    let out = tidepool()
        .arg("bench")
        .args(QUICK)
        .args([
            "--url",
            &url,
            "--keep",
            "--table-prefix",
            "tidepool_bench_kept_",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tables(&db), 3, "--keep leaves users, orders and events");
}

#[test]
fn the_tuned_side_comes_from_the_settings_file_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tidepool.toml");
    let json = dir.path().join("out.json");
    std::fs::write(
        &file,
        "[bench]\nconcurrency = [3]\nduration = \"300ms\"\nwarmup = \"100ms\"\nseed_users = 100\n\n[pool]\nmax_size = 7\nmin_size = 7\ninitial_size = 7\n",
    )
    .unwrap();
    let out = tidepool()
        .args(["bench", "--config"])
        .arg(&file)
        .args(["--duration", "200ms", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("from the settings file's [pool] table"),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["concurrency"], serde_json::json!([3]));
    assert_eq!(v["duration_s"], 0.2, "the flag beats the file");
    assert_eq!(v["configurations"][1]["by_level"]["3"]["max_size"], 7);
}

#[test]
fn environment_variables_fill_in_and_flags_take_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let out = tidepool()
        .args(["bench", "--duration", "200ms", "--json"])
        .arg(&json)
        .env("TIDEPOOL_CONCURRENCY", "3")
        .env("TIDEPOOL_WARMUP", "50ms")
        .env("TIDEPOOL_DURATION", "10m")
        .env("TIDEPOOL_SEED_USERS", "100")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["concurrency"], serde_json::json!([3]));
    assert_eq!(v["warmup_s"], 0.05);
    assert_eq!(v["duration_s"], 0.2);
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_run_and_still_prints_what_was_measured() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let mut child = tidepool_std()
        .args([
            "bench",
            "-c",
            "2,4",
            "--duration",
            "60s",
            "--warmup",
            "200ms",
            "--seed-users",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first run has started, then give it a second of
    // measurement before interrupting.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 && !line.contains("running") {
        line.clear();
    }
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{rest}\n{text}");
    assert!(text.contains("    2  baseline"), "{text}");
    assert!(text.contains("(interrupted)"), "{text}");
    assert!(
        !text.contains("    4  "),
        "no level after the interruption ran: {text}"
    );
    assert!(!rest.contains("panicked"), "{rest}");
}

#[test]
fn failed_operations_are_counted_by_failure_kind() {
    // Sixteen clients on a one-connection baseline that may wait only 50µs:
    // most acquires time out. The tuned side has sixteen connections.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let out = tidepool()
        .args([
            "bench",
            "-c",
            "16",
            "--duration",
            "300ms",
            "--warmup",
            "100ms",
            "--seed-users",
            "100",
        ])
        .args([
            "--baseline-size",
            "1",
            "--acquire-timeout",
            "50us",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let baseline = &v["levels"][0]["baseline"];
    assert!(
        baseline["errors"]["timeout"].as_u64().unwrap_or(0) > 0,
        "{baseline}"
    );
    let rate = baseline["error_rate"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 1.0, "{rate}");
    assert!(
        stdout(&out).contains("timeout "),
        "the table names the kind"
    );
}

#[test]
fn an_in_memory_sqlite_url_is_refused_with_the_reason() {
    let out = tidepool()
        .args(["bench", "--url", "sqlite::memory:"])
        .output()
        .unwrap();
    // A flag value refused before anything runs: a usage error.
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: invalid value `sqlite::memory:` for --url"),
        "{err}"
    );
}

#[test]
fn the_tuned_side_runs_the_named_strategy_and_balanced_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let out = tidepool()
        .arg("bench")
        .args(quick_at("4"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    assert!(text.contains("tuned:    strategy balanced"), "{text}");
    assert!(text.contains("tuned over time: warm target min "), "{text}");
    assert!(
        text.contains("baseline over time: warm target min 10 / avg 10.0 / max 10, limit 10"),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let tuned = &v["configurations"][1]["by_level"]["4"];
    assert_eq!(tuned["scaling"]["strategy"], "balanced");
    let sample = &v["runs"][1]["timeline"][0];
    assert!(
        sample["warm_target"].is_u64() && sample["limit"].is_u64(),
        "{sample}"
    );

    let out = tidepool()
        .arg("bench")
        .args(quick_at("4"))
        .args(["--strategy", "dynamic", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    assert!(text.contains("tuned:    strategy dynamic"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let tuned = &v["configurations"][1]["by_level"]["4"];
    assert_eq!(tuned["scaling"]["strategy"], "dynamic");
    assert_eq!(
        tuned["max_size"], 4,
        "under dynamic the limit, not a cap, bounds it"
    );
}

#[test]
fn an_unknown_strategy_exits_2_naming_the_known_ones() {
    let out = tidepool()
        .args(["bench", "--strategy", "fastest"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 2);
    let err = stderr(&out);
    for known in [
        "fixed",
        "balanced",
        "high-throughput",
        "low-latency",
        "dynamic",
    ] {
        assert!(err.contains(known), "{err}");
    }
}

#[test]
fn a_ramp_moves_the_client_count_up_to_the_level_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let out = tidepool()
        .args([
            "bench",
            "--concurrency",
            "10",
            "--duration",
            "1s",
            "--warmup",
            "0s",
        ])
        .args(["--seed-users", "200", "--shape", "ramp", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    assert!(text.contains("shape:    ramp"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["shape"], "ramp");
    let clients: Vec<u64> = v["runs"][0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["clients"].as_u64().unwrap())
        .collect();
    let peak = clients
        .iter()
        .position(|&c| c == 10)
        .expect("reaches the level");
    assert!(clients[0] <= 3, "{clients:?}");
    assert!(*clients.last().unwrap() <= 3, "{clients:?}");
    assert!(
        clients[..peak].windows(2).all(|w| w[0] <= w[1]),
        "{clients:?}"
    );
}

#[test]
fn a_burst_alternates_between_a_tenth_of_the_level_and_the_level() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let out = tidepool()
        .args([
            "bench",
            "--concurrency",
            "20",
            "--duration",
            "1200ms",
            "--warmup",
            "0s",
        ])
        .args(["--seed-users", "200", "--shape", "burst", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let clients: Vec<u64> = v["runs"][0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["clients"].as_u64().unwrap())
        .collect();
    assert!(clients.iter().all(|&c| c == 2 || c == 20), "{clients:?}");
    let switches = clients.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches >= 4, "three periods: {clients:?}");
}

#[test]
fn an_unknown_shape_exits_2() {
    let out = tidepool()
        .args(["bench", "--shape", "sawtooth"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 2);
    assert!(stderr(&out).contains("steady, ramp, burst"));
}
