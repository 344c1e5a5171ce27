//! `/health` follows a real outage: PostgreSQL behind the fault proxy
//! stops answering, the circuit opens and `/health` is 503 within a
//! second of it; the proxy heals and `/health` is 200 again.

mod common;

use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use common::{get, serve};
use tidepool::BreakerState;
use tidepool_postgres::PgManager;
use tidepool_testkit::proxy::{Fault, FaultProxy};

#[tokio::test]
async fn health_is_503_within_a_second_of_the_circuit_opening_and_200_after_recovery() {
    let test = "health_is_503_within_a_second_of_the_circuit_opening_and_200_after_recovery";
    let Some(url) = tidepool_testkit::postgres_url(test) else {
        return;
    };
    let (host, port) = tidepool_testkit::host_port(&url, 5432).unwrap();
    let upstream = (host.as_str(), port)
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let proxied = url.replacen(
        &format!("{host}:{port}"),
        &format!("127.0.0.1:{}", proxy.port()),
        1,
    );
    let pool = tidepool::Pool::builder(PgManager::from_url(&proxied).unwrap())
        .name("orders")
        .min_size(0)
        .max_size(4)
        .acquire_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    drop(pool.get().await.unwrap());
    let addr = serve(tidepool_http::router(pool.clone())).await;
    assert_eq!(get(addr, "/health").await.status, 200);

    // The server goes away: existing connections are reset, new ones
    // refused.
    proxy.set(Fault::Reset);
    let deadline = Instant::now() + Duration::from_secs(20);
    let opened_at = loop {
        if let Ok(mut conn) = pool.get().await {
            // A reset connection fails its query and is marked broken.
            if conn.query("SELECT 1", &[]).await.is_err() {
                tidepool::Pooled::mark_broken(&mut conn);
            }
        }
        if pool.breaker_state() == BreakerState::Failed {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "the circuit never opened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let r = get(addr, "/health").await;
    assert!(opened_at.elapsed() < Duration::from_secs(1));
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(
        r.json()["pools"][0]["recommendations"][0]["kind"],
        "database_down"
    );

    proxy.set(Fault::PassThrough);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let _ = pool.get().await;
        if get(addr, "/health").await.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "/health never came back to 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
