//! Queries through the pool are counted under tidepool-sql's fingerprint:
//! inlined literals fold into one shape, and a slow one is counted slow.

use tidepool::{QueryKind, Value};
use tidepool_mysql::ResetPolicy;

mod support;

#[tokio::test]
async fn queries_through_the_pool_are_counted_by_fingerprint() {
    let Some(url) = support::url("query_stats") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::default()).await;
    for n in [1, 2, 3] {
        pool.execute_query(QueryKind::Read, &format!("SELECT {n} + 1 AS v"), &[])
            .await
            .unwrap();
    }
    pool.execute_query(QueryKind::Read, "SELECT ? AS v", &[Value::Int(7)])
        .await
        .unwrap();
    pool.execute_query(QueryKind::Read, "SELECT SLEEP(0.2)", &[])
        .await
        .unwrap();

    let stats = pool.queries();
    let find = |text: &str| {
        stats
            .iter()
            .find(|s| &*s.text == text)
            .unwrap_or_else(|| panic!("no shape {text:?} in {stats:#?}"))
    };
    let folded = find("select ? + ? as v");
    assert_eq!((folded.count, folded.rows), (3, 3));
    // A MySQL placeholder and a folded literal read alike.
    assert_eq!(find("select ? as v").count, 1);
    assert_eq!(find("select sleep(?)").slow, 1);
    assert_eq!(pool.metrics().connections[0].query_count, 5);
}
