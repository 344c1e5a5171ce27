//! docs/MIGRATING.md, program 3 of 7: program 1 (deadpool-postgres) ported
//! to tidepool-postgres. Only the pool's construction and the status line
//! changed; every query line is the same. `cargo run -p tidepool-bench
//! --example tidepool_postgres`.

use std::time::Duration;

use tokio_postgres::error::SqlState;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the program against `url`; returns the balance moved and a status line.
pub async fn run(url: &str) -> Result<(i32, String), BoxError> {
    // 1. Configuration: the URL carries the connection; the builder the
    //    pool (every setter states its default).
    let pool = tidepool_postgres::pool(url)?
        .max_size(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .await?;

    // 2. Checkout.
    let mut client = pool.get().await?;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS tp_mig_tidepool;
             CREATE TABLE tp_mig_tidepool (id INT PRIMARY KEY, balance INT NOT NULL);
             INSERT INTO tp_mig_tidepool VALUES (1, 100), (2, 0);",
        )
        .await?;

    // 3. A prepared statement, cached on the connection.
    let stmt = client
        .prepare_cached("SELECT balance FROM tp_mig_tidepool WHERE id = $1")
        .await?;
    let before: i32 = client.query_one(&stmt, &[&1i32]).await?.get(0);

    // 4. A transaction.
    let tx = client.transaction().await?;
    tx.execute(
        "UPDATE tp_mig_tidepool SET balance = balance - 10 WHERE id = $1",
        &[&1i32],
    )
    .await?;
    tx.execute(
        "UPDATE tp_mig_tidepool SET balance = balance + 10 WHERE id = $1",
        &[&2i32],
    )
    .await?;
    tx.commit().await?;
    let after: i32 = client.query_one(&stmt, &[&1i32]).await?.get(0);

    // 5. Error handling: the same tokio-postgres error.
    match client
        .execute("INSERT INTO tp_mig_tidepool VALUES ($1, 0)", &[&1i32])
        .await
    {
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
        other => return Err(format!("expected a unique violation, got {other:?}").into()),
    }
    client.batch_execute("DROP TABLE tp_mig_tidepool").await?;
    drop(client);

    // 6. Status.
    let status = pool.status();
    Ok((
        before - after,
        format!(
            "size {} idle {} max {} breaker {:?}",
            status.size,
            status.idle,
            status.max_size,
            pool.breaker_state()
        ),
    ))
}

#[tokio::main]
#[allow(dead_code)]
async fn main() -> Result<(), BoxError> {
    let url = tidepool_testkit::postgres_url_unchecked();
    let (moved, status) = run(&url).await?;
    println!("moved {moved}; {status}");
    Ok(())
}
