//! Statement-cache affinity on the real server: a checkout for a statement
//! gets the connection that has it prepared, and `execute_query` asks for
//! one.

mod support;

use tidepool::{statement_key, Pool, Pooled, QueryKind, Value};
use tidepool_postgres::PgManager;

#[tokio::test]
async fn a_checkout_for_a_prepared_statement_gets_the_connection_that_prepared_it() {
    let Some(url) = support::url("statement_affinity") else {
        return;
    };
    let manager = PgManager::builder_from_url(&support::plain(&url))
        .unwrap()
        .build()
        .unwrap();
    let pool = Pool::builder(manager).max_size(3).build().await.unwrap();
    let sql = "SELECT pg_backend_pid()::int8 + $1::int8 AS pid";
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.get().await.unwrap());
    }
    // Only the first prepares it; it goes back first, below the others.
    let pid: i64 = held[0].query_one(sql, &[&0i64]).await.unwrap().get(0);
    let id = Pooled::id(&held[0]);
    drop(held);
    let conn = pool.get_for(statement_key(sql)).await.unwrap();
    assert_eq!(Pooled::id(&conn), id);
    let again: i64 = conn.query_one(sql, &[&0i64]).await.unwrap().get(0);
    assert_eq!(
        again, pid,
        "the same backend, its statement already prepared"
    );
    drop(conn);
    // The portable face asks for it too.
    let rows = pool
        .execute_query(QueryKind::Read, sql, &[Value::Int(0)])
        .await
        .unwrap();
    assert_eq!(rows[0].get(0).and_then(Value::as_i64), Some(pid));
    assert_eq!(pool.metrics().affinity_hits, 2);
}
