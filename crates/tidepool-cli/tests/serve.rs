//! `tidepool serve`: an address it cannot listen on is one line and exit
//! 2; otherwise it serves the router over a pool under load, and Ctrl-C
//! stops it cleanly (exit 0, the pool closed, the temporary database
//! removed).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{assert_clean_failure, stderr, tidepool, tidepool_std};

#[test]
fn an_address_in_use_is_one_line_and_exit_2() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = tidepool()
        .args(["serve", "--listen", &addr])
        .output()
        .unwrap();
    assert_clean_failure(&out, 2);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: invalid value `{addr}` for --listen: the address is in use"
        )),
        "{err}"
    );
}

#[test]
fn a_listen_value_that_is_no_address_is_one_line_and_exit_2() {
    for bad in ["localhost", "127.0.0.1", "127.0.0.1:99999", "[::1"] {
        let out = tidepool()
            .args(["serve", "--listen", bad])
            .output()
            .unwrap();
        assert_clean_failure(&out, 2);
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("for --listen: not an address; write it as IP:PORT"),
            "{bad}: {err}"
        );
    }
    // An address of no interface here.
    let out = tidepool()
        .args(["serve", "--listen", "192.0.2.1:9187"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 2);
    assert!(
        stderr(&out).contains("no interface of this machine has that address"),
        "{}",
        stderr(&out)
    );
}

fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, raw.split_once("\r\n\r\n")?.1.to_string()))
}

#[test]
fn serve_runs_a_loaded_pool_behind_the_router_and_stops_cleanly_on_ctrl_c() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = tidepool_std()
        .args(["serve", "--load", "3", "--think", "2ms", "--listen", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Up, and under load.
    let checkouts = loop {
        if let Some((200, body)) = http_get(&addr, "/pools/embedded-sqlite") {
            let j: serde_json::Value = serde_json::from_str(&body).unwrap();
            let n = j["counters"]["checkouts"].as_u64().unwrap();
            if n > 50 {
                break n;
            }
        }
        assert!(
            Instant::now() < deadline,
            "tidepool serve did not come up under load"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(checkouts > 50);
    let (status, health) = http_get(&addr, "/health").unwrap();
    assert_eq!(status, 200, "{health}");
    let (status, metrics) = http_get(&addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics
        .contains("db_client_connection_count{pool_name=\"embedded-sqlite\",state=\"idle\"}"));
    assert_eq!(http_get(&addr, "/dashboard").unwrap().0, 200);

    // Ctrl-C.
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "tidepool serve did not stop within 15 s of Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("serving pool `embedded-sqlite` (sqlite://"),
        "{err}"
    );
    assert!(err.contains("stopped: pool closed"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        http_get(&addr, "/health").is_none(),
        "nothing listens after Ctrl-C"
    );
    // The temporary database went with it.
    let path = err
        .split("(sqlite://")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap();
    assert!(!std::path::Path::new(path).exists(), "{path} left behind");
}

/// `tidepool serve` on a free loopback port with `extra` flags, up (its
/// `/health/ready` answering) within 30 s.
fn serve_up(extra: &[&str]) -> (std::process::Child, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = tidepool_std()
        .args(["serve", "--listen", &addr])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(http_get(&addr, "/health/ready"), Some((200, _))) {
        assert!(Instant::now() < deadline, "tidepool serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, addr)
}

/// Ctrl-C, and what the process said.
fn interrupt(mut child: std::process::Child) -> std::process::Output {
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "tidepool serve did not stop within 15 s of Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The value of the sample `series` (name and labels, as written) in an
/// exposition.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn serve_exports_its_resident_memory_and_the_trend_once_a_window_is_full() {
    let (child, addr) = serve_up(&[
        "--load",
        "2",
        "--memory-window",
        "1s",
        "--memory-interval",
        "100ms",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (status, metrics) = http_get(&addr, "/metrics").unwrap();
        assert_eq!(status, 200);
        if sample(&metrics, "tidepool_memory_slope_bytes_per_minute").is_some() {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "no memory trend after 30 s:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    if cfg!(target_os = "linux") {
        let rss = sample(&metrics, "process_resident_memory_bytes").unwrap();
        assert!(rss > 1024.0 * 1024.0, "{rss}");
        let growth = sample(&metrics, "tidepool_memory_growth_bytes").unwrap();
        assert!(growth.abs() < rss, "{growth} against {rss}");
    }
    assert!(metrics.contains("# TYPE process_resident_memory_bytes gauge\n"));
    // Beside the pool's families, which keep their label.
    assert!(metrics.contains("tidepool_warm_target{pool_name=\"embedded-sqlite\"}"));
    let out = interrupt(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("memory watch off"), "{err}");
}

#[test]
fn the_exposition_of_serve_passes_promtool_check_metrics() {
    let promtool = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("promtool"))
            .find(|p| p.is_file())
    });
    let Some(promtool) = promtool else {
        assert!(
            !tidepool_testkit::database_required(),
            "promtool not found and TIDEPOOL_REQUIRE_DB is set (apt-get install prometheus)"
        );
        println!("SKIPPED: promtool not found (apt-get install prometheus)");
        return;
    };
    let (child, addr) = serve_up(&["--memory-window", "400ms", "--memory-interval", "100ms"]);
    std::thread::sleep(Duration::from_millis(800));
    let (_, metrics) = http_get(&addr, "/metrics").unwrap();
    interrupt(child);
    let mut check = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The one lint inherent to the OpenTelemetry names (see tidepool-http's
    // tests/scrape.rs); nothing else.
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("db_client_connection_count "))
        .collect();
    assert!(problems.is_empty(), "{report}\n---\n{metrics}");
}

#[test]
fn a_memory_window_too_short_for_its_interval_is_one_line_and_exit_2() {
    let out = tidepool()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--memory-window",
            "1s",
            "--memory-interval",
            "500ms",
        ])
        .output()
        .unwrap();
    assert_clean_failure(&out, 2);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: invalid value `1s` for --memory-window: must hold at least 4 samples of --memory-interval (500ms)"),
        "{err}"
    );
    let out = tidepool()
        .args(["serve", "--listen", "127.0.0.1:0", "--memory-slope", "0"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 2);
    assert!(
        stderr(&out).contains("for --memory-slope: must be a positive number of MiB per minute"),
        "{}",
        stderr(&out)
    );
}
