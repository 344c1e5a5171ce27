//! The dashboard as an operator sees it: the built `tidepool serve` binary
//! on a free loopback port, its `/dashboard` loaded in headless Chromium,
//! the page updating on its own, and the figures on it those of `/pools`
//! from the same process. (tidepool-http's own tests/dashboard.rs does the
//! same against the router served in-process.)

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::tidepool_std;

/// Chromium, or `None` after saying why the test skips; with
/// `TIDEPOOL_REQUIRE_DB=1` (as in CI) a missing browser fails instead.
fn chromium(test: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TIDEPOOL_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        assert!(
            !tidepool_testkit::database_required(),
            "{test}: chromium not found and TIDEPOOL_REQUIRE_DB is set (apt-get install chromium)"
        );
        println!("SKIPPED {test}: chromium not found (apt-get install chromium)");
    }
    found
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

/// A `tidepool serve` this test started; interrupted (Ctrl-C) when
/// dropped, so a failing assertion leaves no process behind.
struct Served {
    child: Option<Child>,
    addr: String,
}

impl Served {
    fn start(extra: &[&str]) -> Served {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = tidepool_std()
            .args(["serve", "--listen", &addr])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let served = Served {
            child: Some(child),
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(http_get(&served.addr, "/health/ready"), Some((200, _))) {
            assert!(Instant::now() < deadline, "tidepool serve did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        served
    }

    /// Ctrl-C; the exit status and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        let child = self.child.take().unwrap();
        interrupt(child)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = interrupt(child);
        }
    }
}

fn interrupt(mut child: Child) -> (Option<i32>, String) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs headless Chromium on `url` with `args`, within a minute.
fn headless(browser: &Path, profile: &Path, args: &[&str], url: &str) -> std::process::Output {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("headless chromium did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The text of the element marked `data-pool="pool" data-field="field"`.
fn field(dom: &str, pool: &str, field: &str) -> String {
    let marker = format!("data-pool=\"{pool}\" data-field=\"{field}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no {field} for {pool} on the page:\n{dom}"));
    let rest = &dom[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap() + start;
    rest[start..end].to_string()
}

/// How many times the page updated itself.
fn updates(dom: &str) -> u32 {
    dom.split("data-updates=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the page never updated:\n{dom}"))
}

#[test]
fn the_dashboard_of_a_running_serve_updates_itself_and_shows_the_figures_of_pools() {
    let test = "the_dashboard_of_a_running_serve_updates_itself_and_shows_the_figures_of_pools";
    let Some(browser) = chromium(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = |s: &Served| format!("http://{}/dashboard", s.addr);

    // At rest, so the page and a later /pools read the same figures.
    let quiet = Served::start(&["--name", "orders", "--min-size", "3", "--max-size", "7"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !http_get(&quiet.addr, "/pools/orders").is_some_and(|(_, b)| b.contains("\"size\":3,")) {
        assert!(Instant::now() < deadline, "the pool never warmed to 3");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = headless(
        &browser,
        &dir.path().join("quiet"),
        &["--virtual-time-budget=5000", "--dump-dom"],
        &url(&quiet),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(updates(&dom) >= 2, "the page updated on its own");
    let (_, body) = http_get(&quiet.addr, "/pools").unwrap();
    let pools: serde_json::Value = serde_json::from_str(&body).unwrap();
    let orders = &pools[0];
    let status = &orders["status"];
    let shown = |f: &str| field(&dom, "orders", f);
    assert_eq!(
        shown("size"),
        format!("{} / {}", status["size"], status["max_size"])
    );
    assert_eq!(shown("size"), "3 / 7");
    for f in ["in_use", "idle", "waiting", "warm_target", "limit"] {
        assert_eq!(shown(f), status[f].to_string(), "{f}");
    }
    assert_eq!(
        (shown("warm_target"), shown("limit")),
        ("3".into(), "7".into()),
        "min_size and max_size with no scaling strategy"
    );
    assert_eq!(
        shown("load_factor"),
        format!("{:.2}", orders["load"]["load_factor"].as_f64().unwrap())
    );
    assert_eq!(
        shown("breaker"),
        orders["breaker"]["state"].as_str().unwrap()
    );
    assert_eq!(
        shown("health"),
        orders["health"]["status"].as_str().unwrap()
    );
    assert_eq!(shown("errors"), "0");
    let (code, err) = quiet.stop();
    assert_eq!(code, Some(0), "{err}");

    // Under load, the page shows the traffic and draws it.
    let busy = Served::start(&["--name", "orders", "--load", "3", "--think", "2ms"]);
    let out = headless(
        &browser,
        &dir.path().join("busy"),
        &["--virtual-time-budget=8000", "--dump-dom"],
        &url(&busy),
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(updates(&dom) >= 3);
    let rate: f64 = field(&dom, "orders", "rate").parse().unwrap();
    assert!(rate > 0.0, "the page shows checkouts per second: {rate}");
    assert!(field(&dom, "orders", "size").ends_with(" / 10"));
    assert_eq!(dom.matches("<svg data-pool=").count(), 3, "three charts");
    assert!(dom.matches("<path").count() >= 5, "lines drawn");
    let (code, err) = busy.stop();
    assert_eq!(code, Some(0), "{err}");
}
