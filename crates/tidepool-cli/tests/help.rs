//! `--help` documents every flag of every subcommand.

mod common;

use common::tidepool;

fn help(sub: &str) -> String {
    let out = tidepool().args([sub, "--help"]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bench_help_documents_every_flag_and_both_configurations() {
    let h = help("bench");
    for flag in [
        "--url",
        "--concurrency",
        "--duration",
        "--warmup",
        "--repeat",
        "--mix",
        "--baseline-size",
        "--seed-users",
        "--table-prefix",
        "--keep",
        "--json",
        "--report",
        "--acquire-timeout",
        "--config",
    ] {
        assert!(h.contains(flag), "bench --help lacks {flag}");
    }
    assert!(h.contains("Baseline:") && h.contains("Tuned"), "{h}");
    assert!(h.contains("TIDEPOOL_CONCURRENCY"));
}

#[test]
fn size_help_documents_every_flag() {
    let h = help("size");
    for flag in [
        "--url",
        "--rate",
        "--query-time",
        "--concurrent-requests",
        "--instances",
        "--cores",
        "--spindles",
        "--max-connections",
        "--reserved",
    ] {
        assert!(h.contains(flag), "size --help lacks {flag}");
    }
    assert!(h.contains("Little's law"));
}

#[test]
fn doctor_help_documents_every_flag() {
    let h = help("doctor");
    for flag in [
        "--url",
        "--max-size",
        "--instances",
        "--idle-timeout",
        "--max-lifetime",
        "--pings",
        "--timeout",
    ] {
        assert!(h.contains(flag), "doctor --help lacks {flag}");
    }
}

#[test]
fn every_flag_has_a_description() {
    // clap prints a flag's help on its line or the next; a flag with none
    // would be followed directly by another flag.
    for sub in ["bench", "size", "doctor"] {
        let h = help(sub);
        let lines: Vec<&str> = h.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if t.starts_with("--")
                || (t.starts_with('-') && t.chars().nth(1).is_some_and(char::is_alphabetic))
            {
                let next = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or("");
                let described = t.split("  ").filter(|s| !s.trim().is_empty()).count() > 1
                    || (!next.is_empty() && !next.starts_with('-'));
                assert!(described, "{sub}: `{t}` has no description");
            }
        }
    }
}
