//! The registry of pools by (role, database): lazy, one pool per key,
//! overrides in order, unknown keys refused, the connection budget.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tidepool::{Manager, PoolKey, Registry, RegistryConfig, RegistryError};

#[derive(Debug)]
struct Target(#[allow(dead_code)] PoolKey);

impl Manager for Target {
    type Connection = ();
    type Error = std::io::Error;
    async fn connect(&self) -> std::io::Result<()> {
        // Slow enough that concurrent first users overlap the build.
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    }
    async fn validate(&self, _: &mut ()) -> std::io::Result<()> {
        Ok(())
    }
}

fn counting(built: Arc<AtomicUsize>) -> impl Fn(&PoolKey) -> std::io::Result<Target> + Send + Sync {
    move |key| {
        built.fetch_add(1, Ordering::SeqCst);
        Ok(Target(key.clone()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_use_of_one_key_builds_one_pool_never_two() {
    let built = Arc::new(AtomicUsize::new(0));
    let registry = Registry::builder(counting(built.clone()))
        .defaults({
            let mut c = tidepool::Config::default();
            c.initial_size = 2; // a build that awaits, so the race is real
            c
        })
        .role("app", |_| {})
        .database("orders", |_| {})
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let registry = registry.clone();
            tokio::spawn(async move { registry.get("app", "orders").await.map(drop) })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(built.load(Ordering::SeqCst), 1);
    assert_eq!(registry.names(), vec!["app/orders".to_string()]);
}

#[tokio::test]
async fn overrides_apply_database_then_role_then_pool_and_name_the_pool_role_slash_database() {
    let registry = Registry::builder(counting(Arc::default()))
        .role("app", |_| {})
        .role("analytics", |c| {
            c.max_size = 4;
            c.acquire_timeout = Duration::from_secs(2);
        })
        .database("orders", |c| c.max_size = 7)
        .database("reports", |c| c.min_size = 1)
        .pool("app", "reports", |c| c.max_size = 20)
        .build()
        .unwrap();
    let c = registry.config_for(&PoolKey::new("app", "orders")).unwrap();
    assert_eq!(
        c.max_size, 7,
        "the database's override when the role has none"
    );
    let c = registry
        .config_for(&PoolKey::new("analytics", "orders"))
        .unwrap();
    assert_eq!(
        (c.max_size, c.acquire_timeout),
        (4, Duration::from_secs(2)),
        "the role wins over the database"
    );
    let c = registry
        .config_for(&PoolKey::new("app", "reports"))
        .unwrap();
    assert_eq!(
        (c.max_size, c.min_size),
        (20, 1),
        "the pool's own override last"
    );

    let pool = registry.pool("analytics", "orders").await.unwrap();
    assert_eq!(pool.name(), "analytics/orders");
    assert_eq!(pool.status().max_size, 4);
    let (status, reports) = registry.health();
    assert_eq!(status, tidepool::HealthStatus::Healthy);
    assert_eq!(reports.len(), 1);
    assert_eq!(registry.status()[0].0, "analytics/orders");
    assert_eq!(registry.metrics().len(), 1);
}

#[tokio::test]
async fn a_role_or_database_neither_configured_nor_allowed_is_a_typed_error_and_no_pool() {
    let built = Arc::new(AtomicUsize::new(0));
    let registry = Registry::builder(counting(built.clone()))
        .role("app", |_| {})
        .database("orders", |_| {})
        .build()
        .unwrap();
    let err = registry.get("intruder", "orders").await.unwrap_err();
    let RegistryError::NotConfigured { key, reason } = &err else {
        panic!("{err}")
    };
    assert_eq!(key, &PoolKey::new("intruder", "orders"));
    assert!(
        reason.contains("role `intruder`") && reason.contains("any_role"),
        "{err}"
    );
    let err = registry.get("app", "secrets").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("database `secrets` is not configured"),
        "{err}"
    );
    assert_eq!(built.load(Ordering::SeqCst), 0);
    assert!(registry.pools().is_empty());

    let open = Registry::builder(counting(built.clone()))
        .any_role(true)
        .any_database(true)
        .build()
        .unwrap();
    open.get("anyone", "anything").await.unwrap();
    assert_eq!(open.names(), vec!["anyone/anything".to_string()]);
}

#[tokio::test]
async fn the_budget_refuses_an_over_commit_with_the_arithmetic() {
    // 3 instances x (20 + 10) = 90 > 100 - 15 reserved = 85.
    let listed = Registry::builder(counting(Arc::default()))
        .role("app", |_| {})
        .database("orders", |_| {})
        .pool("app", "orders", |c| c.max_size = 20)
        .pool("app", "reports", |c| c.max_size = 10)
        .instances(3)
        .max_connections(100)
        .reserved(15)
        .build()
        .unwrap_err();
    let text = listed.to_string();
    assert!(
        text.contains("3 instance(s) x (app/orders 20 + app/reports 10 = 30) = 90 connections against max_connections 100 - 15 reserved = 85 available"),
        "{text}"
    );

    // Built lazily: the pool that would cross the line is refused, the
    // ones before it are not. Reserve defaults to max(10%, 3) = 10.
    let registry = Registry::builder(counting(Arc::default()))
        .any_role(true)
        .database("orders", |c| c.max_size = 30)
        .instances(3)
        .max_connections(100)
        .build()
        .unwrap();
    registry.pool("a", "orders").await.unwrap();
    let err = registry.pool("b", "orders").await.unwrap_err();
    let RegistryError::OverBudget { budget } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (budget.total, budget.available, budget.reserved),
        (180, 90, 10)
    );
    assert!(
        registry.pools().len() == 1,
        "the refused pool was not built"
    );
    assert!(registry.check_budget(100).unwrap().fits());
    assert!(registry.check_budget(50).is_err(), "90 > 50 - 5");
}

#[test]
fn a_registry_reads_from_toml_with_partial_overrides() {
    let config: RegistryConfig = toml::from_str(
        r#"
        instances = 2
        max_connections = 100

        [defaults]
        max_size = 10
        acquire_timeout = "5s"

        [roles.app]
        [roles.analytics]
        max_size = 4
        breaker = { window = "9s" }

        [databases.orders]
        "#,
    )
    .unwrap();
    let registry = Registry::builder(counting(Arc::default()))
        .config(config)
        .build()
        .unwrap();
    let c = registry
        .config_for(&PoolKey::new("analytics", "orders"))
        .unwrap();
    assert_eq!(c.max_size, 4);
    assert_eq!(
        c.acquire_timeout,
        Duration::from_secs(5),
        "the default kept where not overridden"
    );
    assert_eq!(c.breaker.window, Duration::from_secs(9));
    assert_eq!(
        c.breaker.min_outage,
        tidepool::BreakerConfig::default().min_outage,
        "merged field by field"
    );
    assert_eq!(
        registry
            .config_for(&PoolKey::new("app", "orders"))
            .unwrap()
            .max_size,
        10
    );
    assert!(registry.get_is_refused_for("intruder"));

    let bad = toml::from_str::<RegistryConfig>("[roles.app]\nmax_sise = 4\n").unwrap_err();
    assert!(bad.to_string().contains("max_sise"), "{bad}");
}

trait Refuses {
    fn get_is_refused_for(&self, role: &str) -> bool;
}

impl Refuses for Registry<Target> {
    fn get_is_refused_for(&self, role: &str) -> bool {
        matches!(
            self.config_for(&PoolKey::new(role, "orders")),
            Err(RegistryError::NotConfigured { .. })
        )
    }
}
