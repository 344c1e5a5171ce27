//! Shared by the integration tests: the binary with a clean environment.

#![allow(dead_code)]

use assert_cmd::Command;

/// `tidepool` with no DATABASE_URL / TIDEPOOL_* variables inherited.
pub fn tidepool() -> Command {
    let mut cmd = Command::cargo_bin("tidepool").unwrap();
    for (key, _) in std::env::vars() {
        if key == "DATABASE_URL" || key.starts_with("TIDEPOOL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// The same, as a plain std command (for spawning and signalling).
pub fn tidepool_std() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("tidepool"));
    for (key, _) in std::env::vars() {
        if key == "DATABASE_URL" || key.starts_with("TIDEPOOL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Quick bench flags: two tiny levels, short windows.
pub const QUICK: [&str; 8] = [
    "--concurrency",
    "2,4",
    "--duration",
    "300ms",
    "--warmup",
    "100ms",
    "--seed-users",
    "200",
];

/// Quick bench flags at the given levels.
pub fn quick_at(levels: &str) -> Vec<String> {
    let mut v: Vec<String> = QUICK.iter().map(|s| s.to_string()).collect();
    v[1] = levels.to_string();
    v
}

/// A password that would show up if anything echoed it.
pub const CANARY: &str = "c4n@ry:p%ss";

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the process failed with one clean line on stderr: no panic, no
/// backtrace, no password.
pub fn assert_clean_failure(out: &std::process::Output, code: i32) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    assert!(!err.contains("c4n@ry"), "{err}");
    assert!(!err.contains("p%ss"), "{err}");
    assert!(!stdout(out).contains("c4n@ry"));
}
