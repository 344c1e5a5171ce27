//! docs/MIGRATING.md, program 6 of 7: the small program under diesel-async
//! with its deadpool integration. `cargo run -p tidepool-diesel
//! --all-features --example diesel_deadpool`.

use std::time::Duration;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

diesel::table! {
    tp_mig_diesel_deadpool (id) {
        id -> Integer,
        balance -> Integer,
    }
}
use tp_mig_diesel_deadpool as accounts;

/// Code that takes the connection itself, as diesel code usually does.
async fn balance_of(conn: &mut AsyncPgConnection, id: i32) -> QueryResult<i32> {
    accounts::table
        .find(id)
        .select(accounts::balance)
        .first(conn)
        .await
}

/// Runs the program against `url`; returns the balance moved and a status line.
pub async fn run(url: &str) -> Result<(i32, String), BoxError> {
    // 1. Configuration.
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    let pool = Pool::builder(manager)
        .max_size(16)
        .wait_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()?;

    // 2. Checkout.
    let mut conn = pool.get().await?;
    conn.batch_execute(
        "DROP TABLE IF EXISTS tp_mig_diesel_deadpool;
         CREATE TABLE tp_mig_diesel_deadpool (id INT PRIMARY KEY, balance INT NOT NULL);
         INSERT INTO tp_mig_diesel_deadpool VALUES (1, 100), (2, 0);",
    )
    .await?;

    // 3. A prepared statement: diesel prepares and caches its queries.
    let before = balance_of(&mut conn, 1).await?;

    // 4. A transaction.
    conn.transaction::<_, DieselError, _>(async |tx| {
        diesel::update(accounts::table.find(1))
            .set(accounts::balance.eq(accounts::balance - 10))
            .execute(tx)
            .await?;
        diesel::update(accounts::table.find(2))
            .set(accounts::balance.eq(accounts::balance + 10))
            .execute(tx)
            .await?;
        Ok(())
    })
    .await?;
    let after = balance_of(&mut conn, 1).await?;

    // 5. Error handling.
    match diesel::insert_into(accounts::table)
        .values((accounts::id.eq(1), accounts::balance.eq(0)))
        .execute(&mut conn)
        .await
    {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
        other => return Err(format!("expected a unique violation, got {other:?}").into()),
    }
    conn.batch_execute("DROP TABLE tp_mig_diesel_deadpool")
        .await?;
    drop(conn);

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
