//! docs/MIGRATING.md, program 1 of 7: the small program under
//! deadpool-postgres, as its users write it. `cargo run -p tidepool-bench
//! --example deadpool_postgres` (TIDEPOOL_PG_URL, default
//! `postgres://postgres@127.0.0.1:5432/test`).

use std::time::Duration;

use deadpool_postgres::{Config, ManagerConfig, PoolConfig, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the program against `url`; returns the balance moved and a status line.
pub async fn run(url: &str) -> Result<(i32, String), BoxError> {
    // 1. Configuration.
    let mut cfg = Config::new();
    cfg.url = Some(url.to_string());
    cfg.manager = Some(ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    });
    let mut pool_cfg = PoolConfig::new(16);
    pool_cfg.timeouts = Timeouts {
        wait: Some(Duration::from_secs(5)),
        create: Some(Duration::from_secs(5)),
        recycle: Some(Duration::from_secs(5)),
    };
    cfg.pool = Some(pool_cfg);
    let pool = cfg.create_pool(Some(Runtime::Tokio1), NoTls)?;

    // 2. Checkout.
    let mut client = pool.get().await?;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS tp_mig_deadpool;
             CREATE TABLE tp_mig_deadpool (id INT PRIMARY KEY, balance INT NOT NULL);
             INSERT INTO tp_mig_deadpool VALUES (1, 100), (2, 0);",
        )
        .await?;

    // 3. A prepared statement, cached on the connection.
    let stmt = client
        .prepare_cached("SELECT balance FROM tp_mig_deadpool WHERE id = $1")
        .await?;
    let before: i32 = client.query_one(&stmt, &[&1i32]).await?.get(0);

    // 4. A transaction.
    let tx = client.transaction().await?;
    tx.execute(
        "UPDATE tp_mig_deadpool SET balance = balance - 10 WHERE id = $1",
        &[&1i32],
    )
    .await?;
    tx.execute(
        "UPDATE tp_mig_deadpool SET balance = balance + 10 WHERE id = $1",
        &[&2i32],
    )
    .await?;
    tx.commit().await?;
    let after: i32 = client.query_one(&stmt, &[&1i32]).await?.get(0);

    // 5. Error handling: a duplicate key is the caller's mistake.
    match client
        .execute("INSERT INTO tp_mig_deadpool VALUES ($1, 0)", &[&1i32])
        .await
    {
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
        other => return Err(format!("expected a unique violation, got {other:?}").into()),
    }
    client.batch_execute("DROP TABLE tp_mig_deadpool").await?;
    drop(client);

    // 6. Status.
    let status = pool.status();
    Ok((
        before - after,
        format!(
            "size {} available {} max {}",
            status.size, status.available, status.max_size
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
