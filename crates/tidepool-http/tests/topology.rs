//! A registry and a cluster served by the router: a registry's pools
//! appear in `/pools`, `/metrics` and `/health` as they are built; a
//! cluster's pools carry each replica's ban (reason, detail, lag) in
//! `/pools`, the replicas' states are metrics, and a cluster whose every
//! replica is banned says reads go to the primary. The cluster is a
//! stand-in with a state the test sets (for every ban reason) and a real
//! `PgCluster` against the real replica on :5433 (bans it can cause
//! without disturbing the shared replica: a "replica" that is the primary,
//! one on a closed port).

mod common;

use std::sync::Arc;

use common::{get, serve, Fake};
use parking_lot::Mutex;
use tidepool::{Pool, Registry};
use tidepool_http::{ClusterState, ClusterView, PoolView, Pools, ReplicaBan, ReplicaState};

#[tokio::test]
async fn a_registrys_pools_appear_in_pools_metrics_and_health_as_they_are_built() {
    let registry = Registry::builder(|_key| Ok(Fake::default()))
        .any_role(true)
        .any_database(true)
        .build()
        .unwrap();
    let fixed = Pool::builder(Fake::default())
        .name("app/reports")
        .build()
        .await
        .unwrap();
    let addr = serve(
        Pools::new()
            .add_pool(fixed)
            .unwrap()
            .add_registry(registry.clone())
            .router(),
    )
    .await;
    let names = |json: serde_json::Value| -> Vec<String> {
        json.as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(get(addr, "/pools").await.json()), ["app/reports"]);

    registry.pool("app", "orders").await.unwrap();
    let orders = registry.pool("app", "orders").await.unwrap();
    drop(orders.get().await.unwrap());
    assert_eq!(
        names(get(addr, "/pools").await.json()),
        ["app/reports", "app/orders"]
    );
    let one = get(addr, "/pools/app/orders").await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json()["counters"]["checkins"], 1);
    let metrics = get(addr, "/metrics").await.body;
    assert!(
        metrics.contains("tidepool_checkins_total{pool_name=\"app/orders\"} 1"),
        "{metrics}"
    );
    let health = get(addr, "/health").await.json();
    let in_health: Vec<&str> = health["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(in_health, ["app/reports", "app/orders"]);

    // A registry pool whose name a pool added otherwise has is not served
    // twice; the one added by name wins.
    registry.pool("app", "reports").await.unwrap();
    registry.pool("batch", "orders").await.unwrap();
    assert_eq!(
        names(get(addr, "/pools").await.json()),
        ["app/reports", "app/orders", "batch/orders"]
    );
    let unknown = get(addr, "/pools/nobody/nothing").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.json()["known_pools"],
        serde_json::json!(["app/reports", "app/orders", "batch/orders"])
    );
}

/// A cluster of `Fake` pools whose state the test sets.
#[derive(Clone)]
struct Stand {
    writer: Pool<Fake>,
    readers: Vec<(String, Pool<Fake>)>,
    state: Arc<Mutex<ClusterState>>,
}

impl ClusterView for Stand {
    fn name(&self) -> String {
        "orders-cluster".into()
    }
    fn writer(&self) -> Arc<dyn PoolView> {
        Arc::new(self.writer.clone())
    }
    fn replicas(&self) -> Vec<(String, Arc<dyn PoolView>)> {
        self.readers
            .iter()
            .map(|(n, p)| (n.clone(), Arc::new(p.clone()) as Arc<dyn PoolView>))
            .collect()
    }
    fn state(&self) -> ClusterState {
        self.state.lock().clone()
    }
}

async fn stand() -> Stand {
    let pool = |name: &str| {
        let name = name.to_string();
        async move {
            Pool::builder(Fake::default())
                .name(name)
                .build()
                .await
                .unwrap()
        }
    };
    Stand {
        writer: pool("writer db1").await,
        readers: vec![
            ("db2:5432".into(), pool("reader db2").await),
            ("db3:5432".into(), pool("reader db3").await),
        ],
        state: Arc::new(Mutex::new(ClusterState::new(vec![
            ReplicaState::new("db2:5432")
                .lag_bytes(120)
                .replay_position("0/3000060"),
            ReplicaState::new("db3:5432")
                .lag_bytes(9_000_000)
                .banned(ReplicaBan::new(
                    "lag",
                    "replay lag 9000000 bytes over the limit",
                )),
        ]))),
    }
}

fn find<'a>(pools: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {pools:#}"))
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_clusters_replicas_show_their_bans_and_lag_in_pools_and_metrics() {
    let stand = stand().await;
    let addr = serve(Pools::new().add_cluster(stand.clone()).unwrap().router()).await;
    let pools = get(addr, "/pools").await.json();
    assert_eq!(pools.as_array().unwrap().len(), 3, "writer and two readers");

    let writer = &find(&pools, "writer db1")["cluster"];
    assert_eq!(writer["name"], "orders-cluster");
    assert_eq!(writer["role"], "writer");
    assert_eq!(writer["reads_on_primary"], false);
    assert!(writer.get("notice").is_none());
    assert_eq!(writer["replicas"][0]["name"], "db2:5432");
    assert_eq!(writer["replicas"][0]["banned"], false);
    assert_eq!(writer["replicas"][0]["lag_bytes"], 120);
    assert_eq!(writer["replicas"][0]["replay_position"], "0/3000060");
    assert_eq!(writer["replicas"][1]["banned"], true);
    assert_eq!(writer["replicas"][1]["reason"], "lag");

    let db3 = &find(&pools, "reader db3")["cluster"];
    assert_eq!(db3["role"], "replica");
    assert_eq!(db3["replica"]["name"], "db3:5432");
    assert_eq!(db3["replica"]["banned"], true);
    assert_eq!(db3["replica"]["reason"], "lag");
    assert_eq!(
        db3["replica"]["detail"],
        "replay lag 9000000 bytes over the limit"
    );
    assert_eq!(db3["replica"]["lag_bytes"], 9_000_000);

    let m = get(addr, "/metrics").await.body;
    let banned = |pool: &str, replica: &str, reason: &str| {
        value(
            &m,
            &format!("tidepool_replica_banned{{pool_name=\"{pool}\",cluster=\"orders-cluster\",replica=\"{replica}\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(banned("reader db3", "db3:5432", "lag"), Some(1.0), "{m}");
    assert_eq!(banned("reader db3", "db3:5432", "failing"), Some(0.0));
    for reason in tidepool_http::BAN_REASONS {
        assert_eq!(banned("reader db2", "db2:5432", reason), Some(0.0));
    }
    assert_eq!(
        value(
            &m,
            "tidepool_replica_lag_bytes{pool_name=\"reader db3\",cluster=\"orders-cluster\",replica=\"db3:5432\"}"
        ),
        Some(9_000_000.0)
    );
    let writer_series = |family: &str| {
        value(
            &m,
            &format!("{family}{{pool_name=\"writer db1\",cluster=\"orders-cluster\"}}"),
        )
    };
    assert_eq!(
        writer_series("tidepool_cluster_reads_on_primary"),
        Some(0.0)
    );
    assert_eq!(
        writer_series("tidepool_cluster_fallback_reads_total"),
        Some(0.0)
    );

    // Every replica out: reads go to the primary, and /pools says so.
    *stand.state.lock() = ClusterState::new(vec![
        ReplicaState::new("db2:5432").banned(ReplicaBan::new(
            "failing",
            "3 consecutive failure(s), last: connection refused",
        )),
        ReplicaState::new("db3:5432").banned(ReplicaBan::new("something-new", "why not")),
    ])
    .fallback_reads(7);
    let pools = get(addr, "/pools").await.json();
    for name in ["writer db1", "reader db2", "reader db3"] {
        let c = &find(&pools, name)["cluster"];
        assert_eq!(c["reads_on_primary"], true, "{name}");
        let notice = c["notice"].as_str().unwrap();
        assert!(
            notice.starts_with("every replica is banned")
                && notice.contains("reads go to the primary")
                && notice.contains("db2:5432: 3 consecutive failure(s)"),
            "{notice}"
        );
    }
    assert_eq!(
        find(&pools, "reader db3")["cluster"]["replica"]["reason"],
        "other",
        "a reason the router does not know is exported as other"
    );
    let m = get(addr, "/metrics").await.body;
    let writer_series = |family: &str| {
        value(
            &m,
            &format!("{family}{{pool_name=\"writer db1\",cluster=\"orders-cluster\"}}"),
        )
    };
    assert_eq!(
        writer_series("tidepool_cluster_reads_on_primary"),
        Some(1.0)
    );
    assert_eq!(
        writer_series("tidepool_cluster_fallback_reads_total"),
        Some(7.0)
    );
    assert!(
        !m.contains("tidepool_replica_lag_bytes{"),
        "lag unknown: no series"
    );
}

#[tokio::test]
async fn a_cluster_whose_pool_name_is_taken_is_refused_naming_it() {
    let stand = stand().await;
    let taken = Pool::builder(Fake::default())
        .name("reader db3")
        .build()
        .await
        .unwrap();
    let err = Pools::new()
        .add_pool(taken)
        .unwrap()
        .add_cluster(stand)
        .unwrap_err();
    assert!(err.to_string().contains("reader db3"), "{err}");
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_pg_cluster_shows_its_replicas_state_and_says_when_reads_go_to_the_primary() {
    // A hang (seen once, not reproduced) fails with a message instead.
    tokio::time::timeout(std::time::Duration::from_secs(120), real_pg_cluster())
        .await
        .expect("the real-cluster test did not finish within 2 minutes");
}

#[cfg(feature = "postgres")]
async fn real_pg_cluster() {
    use tidepool_postgres::PgCluster;
    let test = "a_real_pg_cluster_shows_its_replicas_state_and_says_when_reads_go_to_the_primary";
    let Some(primary) = tidepool_testkit::postgres_url(test) else {
        return;
    };
    let Some(replica) = tidepool_testkit::replica_url(test) else {
        return;
    };
    let plain = |u: &str| {
        if u.contains("sslmode=") {
            u.to_string()
        } else if u.contains('?') {
            format!("{u}&sslmode=disable")
        } else {
            format!("{u}?sslmode=disable")
        }
    };
    // The real replica, the primary given as a replica (banned: not in
    // recovery), and a closed port (banned: failing).
    let cluster = PgCluster::builder(&plain(&primary))
        .unwrap()
        .replica(&plain(&replica))
        .unwrap()
        .replica(&plain(&primary))
        .unwrap()
        .replica("postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1")
        .unwrap()
        .build()
        .await
        .unwrap();
    cluster.sample_now().await;
    let status = cluster.status();
    let writer_name = cluster.writer_pool().name();
    let readers: Vec<String> = cluster.reader_pools().iter().map(|p| p.name()).collect();
    let addr = serve(Pools::new().add_cluster(cluster.clone()).unwrap().router()).await;

    let pools = get(addr, "/pools").await.json();
    assert_eq!(pools.as_array().unwrap().len(), 4, "{pools:#}");
    let writer = &find(&pools, &writer_name)["cluster"];
    assert_eq!(writer["role"], "writer");
    assert_eq!(writer["reads_on_primary"], false);
    let replicas = writer["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 3);
    assert_eq!(replicas[0]["name"], status.replicas[0].name.as_str());
    assert_eq!(replicas[0]["banned"], false, "{replicas:#?}");
    assert!(replicas[0]["lag_bytes"].is_u64(), "sampled: {replicas:#?}");
    assert!(replicas[0]["replay_position"].is_string());
    assert_eq!(replicas[1]["reason"], "not_a_replica", "{replicas:#?}");
    assert_eq!(replicas[2]["reason"], "failing", "{replicas:#?}");
    let failing = &find(&pools, &readers[2])["cluster"]["replica"];
    assert!(
        failing["detail"]
            .as_str()
            .unwrap()
            .contains("consecutive failure"),
        "{failing:#}"
    );

    let m = get(addr, "/metrics").await.body;
    let replica_label = |i: usize| {
        format!(
            "pool_name=\"{}\",cluster=\"{writer_name}\",replica=\"{}\"",
            readers[i], status.replicas[i].name
        )
    };
    assert_eq!(
        value(
            &m,
            &format!(
                "tidepool_replica_banned{{{},reason=\"not_a_replica\"}}",
                replica_label(1)
            )
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(
            &m,
            &format!(
                "tidepool_replica_banned{{{},reason=\"lag\"}}",
                replica_label(0)
            )
        ),
        Some(0.0)
    );
    assert!(value(
        &m,
        &format!("tidepool_replica_lag_bytes{{{}}}", replica_label(0))
    )
    .is_some());

    // A cluster whose only "replica" is the primary: every replica out,
    // reads on the primary, and the router says so.
    let lone = PgCluster::builder(&plain(&primary))
        .unwrap()
        .replica(&plain(&primary))
        .unwrap()
        .writer_config({
            let mut c = tidepool::Config::default();
            c.name = Some("lone writer".into());
            c
        })
        .build()
        .await
        .unwrap();
    lone.sample_now().await;
    let rows = lone
        .execute_query(tidepool::QueryKind::Read, "SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get(0), Some(&tidepool::Value::Bool(false)));
    let addr = serve(Pools::new().add_cluster(lone).unwrap().router()).await;
    let pools = get(addr, "/pools").await.json();
    let c = &find(&pools, "lone writer")["cluster"];
    assert_eq!(c["reads_on_primary"], true, "{c:#}");
    assert!(c["fallback_reads"].as_u64().unwrap() >= 1);
    assert!(
        c["notice"]
            .as_str()
            .unwrap()
            .contains("reads go to the primary"),
        "{c:#}"
    );
    let m = get(addr, "/metrics").await.body;
    assert_eq!(
        value(
            &m,
            "tidepool_cluster_reads_on_primary{pool_name=\"lone writer\",cluster=\"lone writer\"}"
        ),
        Some(1.0),
        "{m}"
    );
}
