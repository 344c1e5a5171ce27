//! Each endpoint answers what it promises, and bad input gets a clear 4xx
//! with a JSON body, never a panic.

mod common;

use std::time::Duration;

use common::{get, post, serve, sqlite_pool, Fake};
use tidepool::Pool;
use tidepool_http::{HttpError, Pools};

#[tokio::test]
async fn health_is_200_with_a_report_for_a_working_pool() {
    let dir = tempfile::tempdir().unwrap();
    let pool = sqlite_pool("orders", dir.path()).await;
    let addr = serve(tidepool_http::router(pool)).await;
    let r = get(addr, "/health").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let j = r.json();
    assert_eq!(j["status"], "healthy", "{j:#}");
    assert_eq!(j["pools"][0]["name"], "orders");
    assert!(j["pools"][0]["score"].as_u64().unwrap() >= 80);
    assert_eq!(j["pools"][0]["components"].as_array().unwrap().len(), 6);
    assert!(j["pools"][0]["recommendations"].is_array());
    let ready = get(addr, "/health/ready").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["ready"], true);
}

#[tokio::test]
async fn pools_shows_status_metrics_breaker_health_and_each_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pool = sqlite_pool("orders", dir.path()).await;
    let addr = serve(tidepool_http::router(pool.clone())).await;
    let j = get(addr, "/pools").await.json();
    let p = &j[0];
    assert_eq!(p["name"], "orders");
    assert_eq!(p["status"]["max_size"], 4);
    assert_eq!(p["status"]["size"], pool.status().size);
    assert_eq!(p["counters"]["checkouts"], 5);
    assert_eq!(p["breaker"]["state"], "healthy");
    assert!(p["breaker"]["failures_in_window"]["connect"].is_number());
    assert!(p["latency"]["acquire_wait"]["p99_ms"].is_number());
    assert!(p["window"]["hold_time"]["count"].is_number());
    assert!(p["health"]["status"].is_string());
    let conns = p["connections"].as_array().unwrap();
    assert_eq!(conns.len(), pool.status().size);
    assert!(conns[0]["times_used"].as_u64().unwrap() >= 1);
    assert!(conns[0]["held_for_ms"].is_null(), "idle: held by nobody");
    // What the core counts beyond checkouts and timeouts.
    let c = &p["counters"];
    assert_eq!(c["checkins"], 5);
    assert_eq!(
        (c["affinity_hits"].clone(), c["affinity_misses"].clone()),
        (0.into(), 0.into())
    );
    assert_eq!(c["acquires_refused_circuit_open"], 0);
    assert_eq!(c["acquires_failed_at_once"], 0);
    assert_eq!(c["validations_failed"], 0);
    assert_eq!(c["failures_by_kind"]["connect"], 0);
    assert_eq!(c["failures_by_kind"]["client"], 0);
    assert_eq!(c["closed"]["overflow"], 0);
    assert_eq!(c["closed"]["resized"], 0);
    assert_eq!(c["scale_ups"], 0);
    assert_eq!(p["breaker"]["thresholds"]["connect"]["open"], 6);
    assert!(p["breaker"]["since_last_failure_ms"].is_null());
    assert_eq!(p["window"]["acquires_refused"], 0);
    // Warm target and limit, in the status and the effective configuration.
    assert_eq!(p["status"]["warm_target"], 1);
    assert_eq!(p["status"]["limit"], 4);
    assert_eq!(p["status"]["overflow"], 0);
    let e = &p["effective_config"];
    assert_eq!(e["strategy"], "fixed");
    assert_eq!(
        (e["warm_target"].clone(), e["limit"].clone()),
        (1.into(), 4.into())
    );
    assert_eq!(e["predictor"], "off");
    assert!(e["connect_timeout_ms"]["configured"].as_f64().unwrap() > 0.0);
    assert!(e["validation_interval_ms"]["now"].is_number());
    assert!(e["leak_timeout_suggested_ms"].is_number());
    assert_eq!(p["load"]["load_factor"], 0.0);
    assert!(p["load"]["arrival_rate_per_sec"].is_number());

    let one = get(addr, "/pools/orders?window=30s&connections=false").await;
    assert_eq!(one.status, 200, "{}", one.body);
    let one = one.json();
    assert_eq!(one["name"], "orders");
    assert!(one.get("connections").is_none());
}

#[tokio::test]
async fn an_unknown_pool_is_a_404_naming_the_known_pools() {
    let dir = tempfile::tempdir().unwrap();
    let pools = Pools::new()
        .add_pool(sqlite_pool("orders", dir.path()).await)
        .unwrap()
        .add_pool(sqlite_pool("reports", dir.path()).await)
        .unwrap();
    let addr = serve(pools.router()).await;
    let r = get(addr, "/pools/billing").await;
    assert_eq!(r.status, 404);
    let j = r.json();
    assert_eq!(j["error"], "no pool named `billing`");
    assert_eq!(j["known_pools"], serde_json::json!(["orders", "reports"]));
    assert_eq!(
        get(addr, "/pools").await.json().as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn malformed_query_parameters_are_a_400_saying_what_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(tidepool_http::router(
        sqlite_pool("orders", dir.path()).await,
    ))
    .await;
    for (query, says) in [
        ("/pools?window=soon", "window `soon` is not a duration"),
        ("/pools?window=0s", "between 1s and 10m"),
        ("/pools?window=2h", "between 1s and 10m"),
        (
            "/pools/orders?connections=maybe",
            "connections `maybe` is not true or false",
        ),
        ("/pools?colour=blue", "unknown field `colour`"),
        ("/health?window=-1s", "window `-1s` is not a duration"),
        ("/pools?window=%FF%FE", "window"),
        ("/pools?window=30s&window=40s", "duplicate field"),
    ] {
        let r = get(addr, query).await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        let j = r.json();
        let error = j["error"].as_str().unwrap();
        assert!(error.contains(says), "{query}: {error}");
    }
}

#[tokio::test]
async fn the_dashboard_is_a_self_contained_page_that_polls_pools() {
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(tidepool_http::router(
        sqlite_pool("orders", dir.path()).await,
    ))
    .await;
    let r = get(addr, "/dashboard").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let html = r.body;
    assert!(html.starts_with("<!DOCTYPE html>"));
    for needle in [
        "src=",
        "href=",
        "@import",
        "url(",
        "https://",
        "<link",
        "@font-face",
    ] {
        assert!(
            !html.contains(needle),
            "the page reaches outside itself: {needle}"
        );
    }
    assert_eq!(
        html.matches("http://").count(),
        html.matches("http://www.w3.org/2000/svg").count(),
        "the only URL is the SVG namespace"
    );
    // Relative, so the router can be mounted under a prefix.
    assert!(html.contains("\"pools?window=5s&connections=false\""));
    for field in [
        "size",
        "warm_target",
        "limit",
        "load_factor",
        "in_use",
        "waiting",
        "wait_p99",
        "hold_p99",
        "errors",
        "breaker",
    ] {
        assert!(
            html.contains(&format!("\"{field}\"")),
            "no {field} on the page"
        );
    }
}

#[tokio::test]
async fn the_router_mounts_under_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let app = axum::Router::new().nest(
        "/ops",
        tidepool_http::router(sqlite_pool("orders", dir.path()).await),
    );
    let addr = serve(app).await;
    assert_eq!(get(addr, "/ops/health").await.status, 200);
    assert_eq!(get(addr, "/ops/pools/orders").await.status, 200);
    assert_eq!(get(addr, "/health").await.status, 404);
}

#[tokio::test]
async fn two_pools_with_one_name_are_refused_by_name() {
    let a = Pool::builder(Fake::default())
        .name("orders")
        .build()
        .await
        .unwrap();
    let b = Pool::builder(Fake::default())
        .name("orders")
        .build()
        .await
        .unwrap();
    let err = Pools::new().add_pool(a).unwrap().add_pool(b).unwrap_err();
    assert!(matches!(err, HttpError::DuplicateName { ref name } if name == "orders"));
    assert!(err.to_string().contains("two pools are named `orders`"));
    let c = Pool::builder(Fake::default()).build().await.unwrap();
    let err = Pools::new().add_named("a\nb", c).unwrap_err();
    assert!(
        err.to_string()
            .contains("is not usable: it holds a control character"),
        "{err}"
    );
}

#[tokio::test]
async fn a_pool_named_by_its_target_url_is_served_raw_or_percent_encoded() {
    let pool = Pool::builder(Fake::default())
        .name("postgres://app@db:5432/orders")
        .build()
        .await
        .unwrap();
    let addr = serve(tidepool_http::router(pool)).await;
    for path in [
        "/pools/postgres://app@db:5432/orders",
        "/pools/postgres%3A%2F%2Fapp%40db%3A5432%2Forders",
    ] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.json()["name"], "postgres://app@db:5432/orders");
    }
}

#[tokio::test]
async fn health_turns_503_when_the_circuit_opens_and_200_after_recovery() {
    let manager = Fake::default();
    let failing = manager.failing.clone();
    let pool = Pool::builder(manager)
        .name("orders")
        .min_size(0)
        .acquire_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let addr = serve(tidepool_http::router(pool.clone())).await;
    assert_eq!(get(addr, "/health").await.status, 200);
    failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    while pool.breaker_state() != tidepool::BreakerState::Failed {
        let _ = pool.get().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the circuit never opened"
        );
    }
    let r = get(addr, "/health").await;
    assert_eq!(r.status, 503, "{}", r.body);
    let j = r.json();
    assert_eq!(j["status"], "unhealthy");
    assert_eq!(j["pools"][0]["recommendations"][0]["kind"], "database_down");
    let ready = get(addr, "/health/ready").await;
    assert_eq!(ready.status, 503);
    assert!(ready.json()["not_ready"][0]
        .as_str()
        .unwrap()
        .contains("the circuit is open"));

    failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    loop {
        let _ = pool.get().await;
        if get(addr, "/health").await.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "health never recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get(addr, "/health/ready").await.status, 200);
    // The refusals and failures were counted, cumulatively.
    let p = &get(addr, "/pools/orders").await.json();
    assert!(
        p["counters"]["acquires_refused_circuit_open"]
            .as_u64()
            .unwrap()
            > 0,
        "{p:#}"
    );
    assert!(
        p["counters"]["failures_by_kind"]["connect"]
            .as_u64()
            .unwrap()
            >= 6
    );
    let metrics = get(addr, "/metrics").await.body;
    assert!(
        !metrics.contains(
            "tidepool_acquires_refused_total{pool_name=\"orders\",reason=\"circuit_open\"} 0\n"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn posting_to_check_pings_the_idle_connections_now_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let pool = sqlite_pool("orders", dir.path()).await;
    let idle = pool.status().idle;
    assert!(idle >= 1);
    let validations = pool.metrics().validations;
    let addr = serve(tidepool_http::router(pool.clone())).await;
    let r = post(addr, "/pools/orders/check").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["name"], "orders");
    assert_eq!(j["checked"], idle);
    assert_eq!(j["failed"], 0);
    assert!(j["took_ms"].is_number());
    assert_eq!(j["health"]["status"], "healthy");
    assert_eq!(pool.metrics().validations, validations + idle as u64);

    // Wrong method, wrong pool, no action: a clear 4xx each.
    let r = get(addr, "/pools/orders/check").await;
    assert_eq!(r.status, 405, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("use POST"));
    let r = post(addr, "/pools/billing/check").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["known_pools"], serde_json::json!(["orders"]));
    let r = post(addr, "/pools/orders").await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("POST /pools/{name}/check"));
}
