//! docs/MIGRATING.md, program 4 of 7: the small program under sqlx's own
//! pool. `cargo run -p tidepool-sqlx --all-features --example sqlx_pool`.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::Connection;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the program against `url`; returns the balance moved and a status line.
pub async fn run(url: &str) -> Result<(i32, String), BoxError> {
    // 1. Configuration.
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await?;

    // 2. Checkout.
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS tp_mig_sqlx;
         CREATE TABLE tp_mig_sqlx (id INT PRIMARY KEY, balance INT NOT NULL);
         INSERT INTO tp_mig_sqlx VALUES (1, 100), (2, 0);",
    )
    .execute(&mut *conn)
    .await?;

    // 3. A prepared statement: sqlx prepares and caches every query.
    let balance = "SELECT balance FROM tp_mig_sqlx WHERE id = $1";
    let before: i32 = sqlx::query_scalar(balance)
        .bind(1)
        .fetch_one(&mut *conn)
        .await?;

    // 4. A transaction.
    let mut tx = conn.begin().await?;
    sqlx::query("UPDATE tp_mig_sqlx SET balance = balance - 10 WHERE id = $1")
        .bind(1)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE tp_mig_sqlx SET balance = balance + 10 WHERE id = $1")
        .bind(2)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let after: i32 = sqlx::query_scalar(balance)
        .bind(1)
        .fetch_one(&mut *conn)
        .await?;

    // 5. Error handling.
    match sqlx::query("INSERT INTO tp_mig_sqlx VALUES ($1, 0)")
        .bind(1)
        .execute(&mut *conn)
        .await
    {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
        other => return Err(format!("expected a unique violation, got {other:?}").into()),
    }
    sqlx::raw_sql("DROP TABLE tp_mig_sqlx")
        .execute(&mut *conn)
        .await?;
    drop(conn);

    // 6. Status.
    Ok((
        before - after,
        format!("size {} idle {}", pool.size(), pool.num_idle()),
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
