//! The dashboard page, loaded from a running router in headless Chromium,
//! updates on its own, and the figures it shows are those of `/pools`.
//! With `TIDEPOOL_DASHBOARD_SCREENSHOT=FILE.png` it also saves a
//! screenshot (docs/dashboard.png was made so).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{get, serve, tool};
use tidepool::Pool;
use tidepool_http::Pools;

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
        .unwrap_or_else(|| panic!("no {field} for {pool} on the page"));
    let rest = &dom[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap() + start;
    rest[start..end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_updates_itself_and_shows_the_figures_of_pools() {
    let test = "the_dashboard_updates_itself_and_shows_the_figures_of_pools";
    let browser = match std::env::var("TIDEPOOL_CHROMIUM") {
        Ok(path) => Some(PathBuf::from(path)),
        Err(_) => tool(
            test,
            &["chromium", "chromium-browser", "google-chrome"],
            "chromium",
        ),
    };
    let Some(browser) = browser else { return };

    // A steady pool to compare figures on, and a busy one to draw.
    let steady = Pool::builder(common::Fake::default())
        .name("orders")
        .min_size(3)
        .max_size(6)
        .build()
        .await
        .unwrap();
    let held = steady.get().await.unwrap();
    while steady.status().size < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let busy = Pool::builder(common::Fake::default())
        .name("reports")
        .max_size(4)
        .build()
        .await
        .unwrap();
    let load = {
        let busy = busy.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                let waits: Vec<_> = (0..6)
                    .map(|i| {
                        let busy = busy.clone();
                        tokio::spawn(async move {
                            if let Ok(c) = busy.get().await {
                                tokio::time::sleep(Duration::from_millis(2 + (n + i) % 7)).await;
                                drop(c);
                            }
                        })
                    })
                    .collect();
                for w in waits {
                    let _ = w.await;
                }
                n += 1;
            }
        })
    };
    let queries_dir = tempfile::tempdir().unwrap();
    let queried = common::queried_pool("queried", queries_dir.path()).await;
    let pools = Pools::new()
        .add_pool(steady.clone())
        .unwrap()
        .add_pool(busy)
        .unwrap()
        .add_pool(queried)
        .unwrap()
        .add_cluster(common::LaggingCluster::new("cluster").await)
        .unwrap();
    let addr = serve(pools.router()).await;
    let url = format!("http://{addr}/dashboard");
    let dir = tempfile::tempdir().unwrap();

    // Virtual time runs the page's one-second timer; the fetches are real.
    let out = tokio::task::spawn_blocking({
        let (browser, profile, url) = (browser.clone(), dir.path().join("dom"), url.clone());
        move || {
            headless(
                &browser,
                &profile,
                &["--virtual-time-budget=6000", "--dump-dom"],
                &url,
            )
        }
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let updates: u32 = dom
        .split("data-updates=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the page never updated:\n{dom}"));
    assert!(updates >= 2, "the page updated {updates} times on its own");

    let pools = get(addr, "/pools").await.json();
    let orders = &pools[0];
    let status = &orders["status"];
    assert_eq!(
        field(&dom, "orders", "size"),
        format!("{} / {}", status["size"], status["max_size"])
    );
    assert_eq!(
        field(&dom, "orders", "in_use"),
        status["in_use"].to_string()
    );
    assert_eq!(field(&dom, "orders", "in_use"), "1");
    assert_eq!(field(&dom, "orders", "idle"), status["idle"].to_string());
    assert_eq!(
        field(&dom, "orders", "warm_target"),
        status["warm_target"].to_string()
    );
    assert_eq!(field(&dom, "orders", "warm_target"), "3", "min_size");
    assert_eq!(field(&dom, "orders", "limit"), status["limit"].to_string());
    assert_eq!(field(&dom, "orders", "limit"), "6", "max_size");
    assert_eq!(
        field(&dom, "orders", "load_factor"),
        format!("{:.2}", orders["load"]["load_factor"].as_f64().unwrap())
    );
    assert_eq!(field(&dom, "orders", "waiting"), "0");
    assert_eq!(
        field(&dom, "orders", "breaker"),
        orders["breaker"]["state"].as_str().unwrap()
    );
    assert_eq!(
        field(&dom, "orders", "health"),
        orders["health"]["status"].as_str().unwrap()
    );
    assert!(
        field(&dom, "reports", "rate").parse::<f64>().unwrap() > 0.0,
        "the busy pool shows traffic"
    );
    // Every pool drew its three charts.
    assert_eq!(
        dom.matches("<svg data-pool=").count(),
        15,
        "three charts per pool"
    );
    // The queried pool's heaviest statement shapes are in its table, in
    // the order /pools gives them; a pool without statistics shows none.
    let top = pools[2]["queries"]["top"].as_array().unwrap();
    assert!(top.len() >= 5, "{top:?}");
    let rows: Vec<&str> = dom
        .split("data-query=\"")
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .collect();
    let want: Vec<&str> = top.iter().map(|q| q["id"].as_str().unwrap()).collect();
    assert_eq!(rows, want);
    assert!(dom.contains(top[0]["text"].as_str().unwrap()));
    assert!(dom.contains("data-pool=\"orders\" data-field=\"queries\" hidden"));
    // The cluster's pools say which replica is banned, why, and that reads
    // go to the primary; a pool of no cluster shows no cluster line.
    assert_eq!(
        dom.matches("data-replica=\"db2:5432\" data-banned=\"true\"")
            .count(),
        2,
        "on the writer's card and the reader's"
    );
    assert!(dom.contains("replay lag 9000000 bytes over the limit"));
    assert!(dom.contains("reads go to the primary"));
    assert!(dom.contains("data-pool=\"orders\" data-field=\"cluster\" hidden"));
    assert!(dom.matches("<path").count() >= 6, "lines drawn");

    let shot = std::env::var("TIDEPOOL_DASHBOARD_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("dashboard.png"));
    let out = tokio::task::spawn_blocking({
        let (profile, shot) = (dir.path().join("shot"), shot.clone());
        move || {
            headless(
                &browser,
                &profile,
                &[
                    "--virtual-time-budget=20000",
                    "--window-size=1280,1000",
                    &format!("--screenshot={}", shot.display()),
                ],
                &url,
            )
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a screenshot with something on it"
    );
    load.abort();
    drop(held);
}
