//! A per-call deadline on the pool's portable face: past it the call fails
//! with a typed error, the statement is cancelled on the server, and the
//! connection goes back clean.

mod support;

use std::time::{Duration, Instant};

use tidepool::{Error, QueryKind, Value};

#[tokio::test]
async fn a_query_past_its_deadline_fails_typed_and_is_cancelled_on_the_server() {
    let Some(url) = support::url("query_timeout") else {
        return;
    };
    let pool = support::pool(
        &support::plain(&url),
        1,
        tidepool_postgres::ResetPolicy::Fast,
    )
    .await;
    let started = Instant::now();
    let outcome = pool
        .execute_query_within(
            Duration::from_millis(200),
            QueryKind::Read,
            "SELECT pg_sleep(5), 'tp_query_timeout_marker'",
            &[],
        )
        .await;
    assert!(
        matches!(outcome, Err(Error::QueryTimeout { after }) if after == Duration::from_millis(200)),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // The only connection is usable again, and the sleep is not running.
    let rows = pool
        .execute_query_within(
            Duration::from_secs(5),
            QueryKind::Read,
            "SELECT count(*)::int8 FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' AND pid <> pg_backend_pid()",
            &[Value::Text("%tp_query_timeout_marker%".into())],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get(0).and_then(Value::as_i64), Some(0));
    assert_eq!(
        pool.status().size,
        1,
        "the connection was kept, not thrown away"
    );
}
