//! docs/MIGRATING.md, program 2 of 7: the small program under bb8-postgres.
//! `cargo run -p tidepool-bench --example bb8_postgres`.

use std::time::Duration;

use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the program against `url`; returns the balance moved and a status line.
pub async fn run(url: &str) -> Result<(i32, String), BoxError> {
    // 1. Configuration.
    let manager = PostgresConnectionManager::new_from_stringlike(url, NoTls)?;
    let pool = bb8::Pool::builder()
        .max_size(16)
        .connection_timeout(Duration::from_secs(5))
        .build(manager)
        .await?;

    // 2. Checkout.
    let mut client = pool.get().await?;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS tp_mig_bb8;
             CREATE TABLE tp_mig_bb8 (id INT PRIMARY KEY, balance INT NOT NULL);
             INSERT INTO tp_mig_bb8 VALUES (1, 100), (2, 0);",
        )
        .await?;

    // 3. A prepared statement (tokio-postgres' Client has no cache: bb8
    //    users prepare per checkout or keep their own).
    let stmt = client
        .prepare("SELECT balance FROM tp_mig_bb8 WHERE id = $1")
        .await?;
    let before: i32 = client.query_one(&stmt, &[&1i32]).await?.get(0);

    // 4. A transaction.
    let tx = client.transaction().await?;
    tx.execute(
        "UPDATE tp_mig_bb8 SET balance = balance - 10 WHERE id = $1",
        &[&1i32],
    )
    .await?;
    tx.execute(
        "UPDATE tp_mig_bb8 SET balance = balance + 10 WHERE id = $1",
        &[&2i32],
    )
    .await?;
    tx.commit().await?;
    let after: i32 = client.query_one(&stmt, &[&1i32]).await?.get(0);

    // 5. Error handling.
    match client
        .execute("INSERT INTO tp_mig_bb8 VALUES ($1, 0)", &[&1i32])
        .await
    {
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
        other => return Err(format!("expected a unique violation, got {other:?}").into()),
    }
    client.batch_execute("DROP TABLE tp_mig_bb8").await?;
    drop(client);

    // 6. Status.
    let state = pool.state();
    Ok((
        before - after,
        format!(
            "connections {} idle {}",
            state.connections, state.idle_connections
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
