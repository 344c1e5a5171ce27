//! Bad input of every kind ends in one clear line and a non-zero exit: no
//! panic, no backtrace, no password.

mod common;

use common::{assert_clean_failure, stderr, stdout, tidepool, CANARY};

fn one_line(out: &std::process::Output) -> String {
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

#[test]
fn an_unknown_flag_is_a_usage_error_in_one_line_with_exit_code_2() {
    let out = tidepool()
        .args(["bench", "--concurency", "5"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 2);
    let line = one_line(&out);
    assert!(line.contains("--concurency"), "{line}");
    assert!(line.contains("--concurrency"), "the tip survives: {line}");
}

#[test]
fn a_malformed_flag_value_is_a_usage_error_with_exit_code_2() {
    for args in [
        ["bench", "-c", "10,abc"],
        ["bench", "--duration", "soon"],
        ["size", "--query-time", "fast"],
        ["doctor", "--pings", "0"],
    ] {
        let out = tidepool()
            .args(args)
            .args(["--url", "sqlite://never-opened.db"])
            .output()
            .unwrap();
        assert_clean_failure(&out, 2);
        let line = one_line(&out);
        assert!(line.contains(args[1]), "{args:?}: {line}");
    }
    assert!(!std::path::Path::new("never-opened.db").exists());
}

#[test]
fn a_bad_value_from_the_environment_is_refused_like_the_flag() {
    let out = tidepool()
        .arg("bench")
        .env("TIDEPOOL_CONCURRENCY", "10,abc")
        .output()
        .unwrap();
    assert_clean_failure(&out, 2);
    assert!(one_line(&out).contains("--concurrency"));
}

#[test]
fn a_bad_value_in_the_settings_file_names_the_file_and_key_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(&file, "[bench]\nconcurrency = [10]\nduration = \"soon\"\n").unwrap();
    let out = tidepool()
        .arg("bench")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_clean_failure(&out, 1);
    let line = one_line(&out);
    assert!(
        line.contains("t.toml") && line.contains("[bench] duration"),
        "{line}"
    );
}

#[test]
fn a_bad_mix_names_the_operation() {
    let out = tidepool()
        .args(["bench", "--mix", "read=5,delete=5"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 2);
    assert!(one_line(&out).contains("delete"));
}

#[test]
fn a_mix_that_leaves_an_operation_out_and_does_not_add_up_is_refused() {
    let out = tidepool()
        .args(["bench", "--mix", "read=70,write=20"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 2);
    let line = one_line(&out);
    assert!(line.contains("add up to 90, not 100"), "{line}");
    assert!(line.contains("txn is not given"), "{line}");
}

#[test]
fn every_subcommand_refuses_a_pool_with_min_size_above_max_size() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.toml");
    std::fs::write(&file, "min_size = 10\nmax_size = 5\n").unwrap();
    let db = dir.path().join("d.db");
    let url = format!("sqlite://{}", db.display());
    for sub in ["bench", "size", "doctor"] {
        let out = tidepool()
            .args([sub, "--url", &url, "--config"])
            .arg(&file)
            .output()
            .unwrap();
        assert_clean_failure(&out, 1);
        let line = one_line(&out);
        assert!(
            line.contains("pool.toml") && line.contains("[pool]"),
            "{sub}: {line}"
        );
        assert!(line.contains("min_size"), "{sub}: {line}");
        assert!(!stdout(&out).contains("all good"), "{sub}");
    }
    assert!(!db.exists());
}

#[test]
fn a_misspelled_table_in_the_settings_file_is_named_with_the_one_meant() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(&file, "[pools]\nmax_size = 5\n").unwrap();
    let out = tidepool()
        .args(["size", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_clean_failure(&out, 1);
    let line = one_line(&out);
    assert!(line.contains("unknown table [pools]"), "{line}");
    assert!(line.contains("did you mean [pool]?"), "{line}");
}

#[test]
fn an_unsupported_scheme_is_refused_without_echoing_the_password() {
    let url = format!("oracle://scott:{CANARY}@127.0.0.1/orcl");
    let out = tidepool().args(["bench", "--url", &url]).output().unwrap();
    assert_clean_failure(&out, 1);
    let line = one_line(&out);
    assert!(line.contains("oracle"), "{line}");
    assert!(line.contains("***"), "{line}");
}

#[test]
fn an_unreachable_server_is_one_line_without_the_password() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let url = format!("postgres://app:{CANARY}@127.0.0.1:1/app?connect_timeout=2");
    let out = tidepool()
        .args(["bench", "--url", &url, "--acquire-timeout", "2s"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 1);
    let line = one_line(&out);
    assert!(line.contains("127.0.0.1"), "{line}");
}

#[test]
fn a_password_in_database_url_never_shows_in_help() {
    let url = format!("postgres://app:{CANARY}@127.0.0.1:1/app");
    for sub in ["bench", "size", "doctor"] {
        let out = tidepool()
            .args([sub, "--help"])
            .env("DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(!help.contains("c4n@ry"), "{sub} --help shows the password");
        assert!(help.contains("DATABASE_URL"));
    }
}

#[test]
fn a_broken_settings_file_names_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[bench]\nconcurrency = [2]\nwarm_up = \"1s\"\n").unwrap();
    let out = tidepool()
        .arg("bench")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_clean_failure(&out, 1);
    let line = one_line(&out);
    assert!(line.contains("bad.toml"), "{line}");
    assert!(line.contains("warm_up"), "{line}");

    std::fs::write(&file, "max_size = 0\n").unwrap();
    let out = tidepool()
        .args([
            "bench",
            "-c",
            "2",
            "--duration",
            "100ms",
            "--seed-users",
            "10",
            "--config",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert_clean_failure(&out, 1);
    assert!(one_line(&out).contains("max_size"));
}

#[test]
fn a_missing_settings_file_is_named() {
    let out = tidepool()
        .args(["size", "--config", "/nonexistent/tidepool.toml"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 1);
    assert!(one_line(&out).contains("/nonexistent/tidepool.toml"));
}

#[test]
fn doctor_without_a_url_says_where_one_can_come_from() {
    let out = tidepool().arg("doctor").output().unwrap();
    assert_clean_failure(&out, 1);
    let line = one_line(&out);
    assert!(
        line.contains("--url") && line.contains("DATABASE_URL"),
        "{line}"
    );
}

#[test]
fn an_unwritable_report_path_is_one_line() {
    let out = tidepool()
        .args([
            "bench",
            "-c",
            "1",
            "--duration",
            "100ms",
            "--warmup",
            "0s",
            "--seed-users",
            "10",
        ])
        .args(["--json", "/nonexistent-dir/out.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: writing /nonexistent-dir/out.json"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn a_refused_login_is_one_line_without_the_password() {
    let Some(base) =
        tidepool_testkit::postgres_url("a_refused_login_is_one_line_without_the_password")
    else {
        return;
    };
    // The postgres crate's tests set up `tidepool_pw` with password
    // authentication; without that setup the role does not exist. Either
    // way the login is refused.
    let rest = base.split_once("://").unwrap().1;
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let url = format!("postgres://tidepool_pw:c4n%40ry%3Ap%25ss@{host}");
    let out = tidepool().args(["bench", "--url", &url]).output().unwrap();
    assert_clean_failure(&out, 1);
    let line = one_line(&out);
    assert!(line.contains("tidepool_pw"), "{line}");
    assert!(!line.contains("c4n%40ry"), "{line}");
}
