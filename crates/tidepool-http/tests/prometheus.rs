//! A real Prometheus scrapes the router: it loads the alert rules, sees
//! the target up, and its stored `db_client_connection_count` adds up to
//! the pool's size — asked through Prometheus' HTTP API, as an operator
//! would. Prometheus runs on a free loopback port with a temporary data
//! directory, and is stopped when the test ends.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{get, repo_root, serve, tool, try_get};
use tidepool::Pool;

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of the one sample a query returns, if it returns one.
async fn query(prometheus: std::net::SocketAddr, promql: &str) -> Option<f64> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = try_get(prometheus, &format!("/api/v1/query?query={encoded}")).await?;
    if r.status != 200 {
        return None;
    }
    let j = r.json();
    let result = j["data"]["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_router_and_sees_the_pools_size() {
    let Some(prometheus) = tool(
        "prometheus_scrapes_the_router_and_sees_the_pools_size",
        &["prometheus"],
        "prometheus",
    ) else {
        return;
    };
    let pool = Pool::builder(common::Fake::default())
        .name("orders")
        .min_size(3)
        .max_size(5)
        .build()
        .await
        .unwrap();
    let held = pool.get().await.unwrap();
    // The pool tops itself up to min_size in the background.
    while pool.status().size < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let target = serve(tidepool_http::router(pool.clone())).await;

    let dir = tempfile::tempdir().unwrap();
    let rules = repo_root().join("deploy/prometheus/tidepool-alerts.yml");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: tidepool\n    static_configs:\n      - targets: ['{target}']\n",
        rules.display()
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let listen: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prometheus = Stop(
        Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let size = pool.status().size as f64;
        let up = query(listen, "up{job=\"tidepool\"}").await;
        let count = query(
            listen,
            "sum(db_client_connection_count{pool_name=\"orders\"})",
        )
        .await;
        if up == Some(1.0) && count == Some(size) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after a minute Prometheus says up={up:?}, count={count:?} (pool size {size}); its log:\n{}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(pool.status().size, 3);
    assert_eq!(
        query(
            listen,
            "db_client_connection_count{pool_name=\"orders\",state=\"used\"}"
        )
        .await,
        Some(1.0)
    );
    assert_eq!(
        query(listen, "db_client_connection_max{pool_name=\"orders\"}").await,
        Some(5.0)
    );
    // Prometheus read the OpenMetrics histograms as histograms.
    assert!(query(
        listen,
        "db_client_connection_wait_time_seconds_count{pool_name=\"orders\"}"
    )
    .await
    .is_some());
    // And loaded every alert rule.
    let rules = get(listen, "/api/v1/rules").await.json();
    let loaded: usize = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum();
    let written =
        std::fs::read_to_string(common::repo_root().join("deploy/prometheus/tidepool-alerts.yml"))
            .unwrap()
            .matches("- alert: ")
            .count();
    assert_eq!((loaded, written), (9, 9), "{rules:#}");
    drop(held);
}
