//! docs/MIGRATING.md, program 5 of 7: program 4 (sqlx's pool) ported to
//! tidepool-sqlx. The pool's construction, `acquire` → `get` and the status
//! line changed; every query line is the same. `cargo run -p tidepool-sqlx
//! --all-features --example sqlx_tidepool`.

use std::time::Duration;

use sqlx::Connection;
use tidepool_sqlx::PgManager;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the program against `url`; returns the balance moved and a status line.
pub async fn run(url: &str) -> Result<(i32, String), BoxError> {
    // 1. Configuration.
    let pool = tidepool::Pool::builder(PgManager::new(url)?)
        .max_size(16)
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .await?;

    // 2. Checkout.
    let mut conn = pool.get().await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS tp_mig_sqlx_tidepool;
         CREATE TABLE tp_mig_sqlx_tidepool (id INT PRIMARY KEY, balance INT NOT NULL);
         INSERT INTO tp_mig_sqlx_tidepool VALUES (1, 100), (2, 0);",
    )
    .execute(&mut *conn)
    .await?;

    // 3. A prepared statement: sqlx prepares and caches every query.
    let balance = "SELECT balance FROM tp_mig_sqlx_tidepool WHERE id = $1";
    let before: i32 = sqlx::query_scalar(balance)
        .bind(1)
        .fetch_one(&mut *conn)
        .await?;

    // 4. A transaction.
    let mut tx = conn.begin().await?;
    sqlx::query("UPDATE tp_mig_sqlx_tidepool SET balance = balance - 10 WHERE id = $1")
        .bind(1)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE tp_mig_sqlx_tidepool SET balance = balance + 10 WHERE id = $1")
        .bind(2)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let after: i32 = sqlx::query_scalar(balance)
        .bind(1)
        .fetch_one(&mut *conn)
        .await?;

    // 5. Error handling: the same sqlx error; tidepool_sqlx::classify says
    //    what kind it is.
    match sqlx::query("INSERT INTO tp_mig_sqlx_tidepool VALUES ($1, 0)")
        .bind(1)
        .execute(&mut *conn)
        .await
    {
        Err(e) if tidepool_sqlx::classify(&e) == tidepool::FailureKind::Client => {}
        other => return Err(format!("expected a unique violation, got {other:?}").into()),
    }
    sqlx::raw_sql("DROP TABLE tp_mig_sqlx_tidepool")
        .execute(&mut *conn)
        .await?;
    drop(conn);

    // 6. Status.
    let status = pool.status();
    Ok((
        before - after,
        format!(
            "size {} idle {} breaker {:?}",
            status.size,
            status.idle,
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
