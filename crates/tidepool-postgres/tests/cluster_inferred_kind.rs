//! `PgCluster::execute_query(None, ..)` routes by the kind tidepool-sql
//! infers from the statement: a plain read to the replica, a `SELECT ...
//! FOR UPDATE` and a writing `WITH` to the primary — against the real
//! primary (:5432) and its streaming replica (:5433).

use tidepool::Value;
use tidepool_postgres::PgCluster;

mod support;

#[tokio::test]
async fn a_query_without_a_kind_goes_where_its_inferred_kind_belongs() {
    let test = "cluster_inferred_kind";
    let Some(primary) = support::url(test) else {
        return;
    };
    let Some(replica) = tidepool_testkit::replica_url(test) else {
        return;
    };
    let cluster = PgCluster::builder(&support::plain(&primary))
        .unwrap()
        .replica(&support::plain(&replica))
        .unwrap()
        .build()
        .await
        .unwrap();
    assert!(
        cluster.status().replicas[0].banned.is_none(),
        "{:?}",
        cluster.status()
    );
    let table = support::table("kind");
    let writer = cluster.writer().await.unwrap();
    writer
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int4); INSERT INTO {table} VALUES (1)"
        ))
        .await
        .unwrap();
    drop(writer);
    let on_replica = |rows: Vec<tidepool::Row>| rows[0].get("r") == Some(&Value::Bool(true));
    for (sql, replica) in [
        ("SELECT pg_is_in_recovery() AS r".to_string(), true),
        (
            format!("SELECT pg_is_in_recovery() AS r FROM {table} LIMIT 1 FOR UPDATE"),
            false,
        ),
        (
            format!("WITH w AS (INSERT INTO {table} VALUES (2) RETURNING id) SELECT pg_is_in_recovery() AS r FROM w"),
            false,
        ),
    ] {
        for _ in 0..5 {
            let rows = cluster.execute_query(None, &sql, &[]).await.unwrap();
            assert_eq!(on_replica(rows), replica, "{sql}");
        }
    }
    let writer = cluster.writer().await.unwrap();
    writer
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
