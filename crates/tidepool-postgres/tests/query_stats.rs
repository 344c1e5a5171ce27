//! Queries through the pool are counted under tidepool-sql's fingerprint:
//! inlined literals fold into one shape, and a slow one is counted slow.

use tidepool::{QueryKind, Value};
use tidepool_postgres::ResetPolicy;

mod support;

#[tokio::test]
async fn queries_through_the_pool_are_counted_by_fingerprint() {
    let Some(url) = support::url("query_stats") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    for n in [1, 2, 3] {
        pool.execute_query(QueryKind::Read, &format!("SELECT {n} + 1 AS v"), &[])
            .await
            .unwrap();
    }
    pool.execute_query(QueryKind::Read, "SELECT $1::int4 AS v", &[Value::Int(7)])
        .await
        .unwrap();
    pool.execute_query(QueryKind::Read, "SELECT pg_sleep(0.2)", &[])
        .await
        .unwrap();
    assert!(pool
        .execute_query(QueryKind::Read, "SELEC 1", &[])
        .await
        .is_err());

    let stats = pool.queries();
    let find = |text: &str| {
        stats
            .iter()
            .find(|s| &*s.text == text)
            .unwrap_or_else(|| panic!("no shape {text:?} in {stats:#?}"))
    };
    let folded = find("select ? + ? as v");
    assert_eq!((folded.count, folded.rows, folded.errors), (3, 3, 0));
    assert_eq!(find("select $1::int4 as v").count, 1);
    let sleep = find("select pg_sleep(?)");
    assert_eq!(sleep.slow, 1);
    assert!(sleep.total_time.as_millis() >= 200);
    assert_eq!(stats[0].text, sleep.text, "largest total time first");
    assert_eq!(find("selec ?").errors, 1);
    let conn = &pool.metrics().connections[0];
    assert_eq!(conn.query_count, 6);
    assert!(conn.avg_query_time.as_millis() >= 30);
}
