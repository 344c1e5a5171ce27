//! Queries through the pool are counted under tidepool-sql's fingerprint.

use tidepool::{Pool, QueryKind, Value};
use tidepool_sqlite::SqliteManager;

#[tokio::test]
async fn queries_through_the_pool_are_counted_by_fingerprint() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let pool = Pool::builder(manager).max_size(1).build().await.unwrap();
    for n in [1, 2, 3] {
        pool.execute_query(QueryKind::Read, &format!("SELECT {n} + 1 AS v"), &[])
            .await
            .unwrap();
    }
    pool.execute_query(QueryKind::Read, "SELECT ?1 AS v", &[Value::Int(7)])
        .await
        .unwrap();
    let stats = pool.queries();
    let texts: Vec<(&str, u64)> = stats.iter().map(|s| (&*s.text, s.count)).collect();
    assert!(texts.contains(&("select ? + ? as v", 3)), "{texts:?}");
    assert!(texts.contains(&("select ?1 as v", 1)), "{texts:?}");
    assert_eq!(pool.metrics().connections[0].query_count, 4);
}
