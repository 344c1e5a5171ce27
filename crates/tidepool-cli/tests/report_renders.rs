//! `--report FILE.html` writes a self-contained page that a browser
//! renders: checked statically (nothing fetched from anywhere) and in
//! headless Chromium when one is installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{stderr, tidepool, QUICK};

fn write_report(dir: &Path) -> PathBuf {
    let page = dir.join("report.html");
    let out = tidepool()
        .arg("bench")
        .args(QUICK)
        .arg("--report")
        .arg(&page)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    page
}

#[test]
fn the_report_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let html = std::fs::read_to_string(write_report(dir.path())).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for needle in ["<script", "src=", "href=", "@import", "url(", "https://"] {
        assert!(
            !html.contains(needle),
            "the page references something outside itself: {needle}"
        );
    }
    // The only URL is the SVG namespace, which browsers never fetch.
    assert_eq!(
        html.matches("http://").count(),
        html.matches("http://www.w3.org/2000/svg").count()
    );
    // Four charts by level, then four panels over time for each of the
    // two levels.
    assert_eq!(html.matches("<svg").count(), 4 + 2 * 4);
    for title in [
        "Throughput by concurrency (higher is better)",
        "Where the time went",
        "Latency by concurrency",
        "Acquire wait in get() by concurrency",
        "Baseline pool, 2 clients",
        "Tuned pool, 2 clients",
        "Acquire wait, baseline, 4 clients",
        "Acquire wait, tuned, 4 clients",
    ] {
        assert!(html.contains(title), "missing chart {title}");
    }
    assert!(!html.contains("NaN") && !html.contains("inf\""));
}

/// The `<svg>...</svg>` whose title starts with `title`.
fn chart<'a>(html: &'a str, title: &str) -> &'a str {
    let at = html
        .find(&format!("aria-label=\"{title}"))
        .unwrap_or_else(|| panic!("no chart {title}"));
    let start = html[..at].rfind("<svg").unwrap();
    let end = at + html[at..].find("</svg>").unwrap();
    &html[start..end]
}

#[test]
fn the_page_opens_with_who_won_and_what_to_try_next() {
    let dir = tempfile::tempdir().unwrap();
    let html = std::fs::read_to_string(write_report(dir.path())).unwrap();
    let conclusion = html.find("<h2>Conclusion</h2>").expect("a conclusion");
    assert!(conclusion < html.find("<h2>Figures</h2>").unwrap());
    for level in ["<strong>2 clients: ", "<strong>4 clients: "] {
        assert!(html.contains(level), "no verdict for {level}");
    }
    assert!(html.contains("What to try next"));
    assert!(html.contains("higher is better") && html.contains("lower is better"));
}

#[test]
fn no_chart_hides_what_it_draws() {
    let dir = tempfile::tempdir().unwrap();
    let html = std::fs::read_to_string(write_report(dir.path())).unwrap();
    // Bars are named by square swatches, not by lines.
    let bars = chart(&html, "Throughput by concurrency");
    assert!(
        !bars.contains("stroke=\"#e07b00\" stroke-width=\"3\""),
        "line swatch on a bar chart"
    );
    // Each side's pool has its own panel: the open connections are an area
    // under the in-use line, never a line drawn over the other side's.
    for side in ["Baseline", "Tuned"] {
        let pool = chart(&html, &format!("{side} pool, 4 clients"));
        assert!(
            pool.contains("<polygon"),
            "{side}: open connections are not an area"
        );
        assert!(pool.find("<polygon").unwrap() < pool.find("stroke-width=\"2\"").unwrap());
    }
    assert!(!chart(&html, "Tuned pool, 4 clients").contains("#6b7b8c"));
    // Acquire wait over time is drawn against at least a millisecond.
    for side in ["baseline", "tuned"] {
        let wait = chart(&html, &format!("Acquire wait, {side}, 2 clients"));
        assert!(wait.contains(">1</text>"), "{side}: no 1 ms tick");
    }
    // Every chart grid is full: two columns, an even number of charts.
    for grid in html.split("<div class=grid>").skip(1) {
        let cells = grid.split("</div>").next().unwrap().matches("<svg").count();
        assert!(
            cells > 0 && cells.is_multiple_of(2),
            "a grid of {cells} charts leaves a cell empty"
        );
    }
}

fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("TIDEPOOL_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Runs headless Chromium with `args` on `page`, within a minute.
fn headless(browser: &Path, profile: &Path, args: &[&str], page: &Path) -> std::process::Output {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        // Files, not pipes: nobody reads a pipe until the browser exits, so
        // a DOM past the pipe's 64 KiB would block it forever.
        .stdout(std::fs::File::create(profile.with_extension("out")).unwrap())
        .stderr(std::fs::File::create(profile.with_extension("err")).unwrap())
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
    std::process::Output {
        status: child.wait().unwrap(),
        stdout: std::fs::read(profile.with_extension("out")).unwrap(),
        stderr: std::fs::read(profile.with_extension("err")).unwrap(),
    }
}

#[test]
fn the_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED the_report_renders_in_headless_chromium: no chromium found (apt-get install -y chromium, or set TIDEPOOL_CHROMIUM)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = write_report(dir.path());

    let dom = headless(
        &browser,
        &dir.path().join("profile-dom"),
        &["--dump-dom"],
        &page,
    );
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("<h1>tidepool bench"), "{dom}");
    assert_eq!(dom.matches("<svg").count(), 12);
    assert!(dom.contains("<polyline"));
    assert!(dom.contains("tuned / baseline"));

    // A screenshot kept where a person can look at it.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tidepool-report.png");
    let _ = std::fs::remove_file(&shot);
    let out = headless(
        &browser,
        &dir.path().join("profile-shot"),
        &[
            "--window-size=1280,2200",
            &format!("--screenshot={}", shot.display()),
        ],
        &page,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // A blank page compresses to a few KB; charts and tables do not.
    assert!(
        png.len() > 50_000,
        "screenshot is {} bytes: the page looks empty",
        png.len()
    );
    eprintln!("screenshot of the report: {}", shot.display());
}
