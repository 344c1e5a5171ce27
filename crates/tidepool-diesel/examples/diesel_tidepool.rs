//! docs/MIGRATING.md, program 7 of 7: program 6 (diesel-async + deadpool)
//! ported to tidepool-diesel. The pool's construction and the status line
//! changed; every query line, and `balance_of`'s signature, is the same.
//! `cargo run -p tidepool-diesel --all-features --example diesel_tidepool`.

use std::time::Duration;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tidepool_diesel::PgManager;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

diesel::table! {
    tp_mig_diesel_tidepool (id) {
        id -> Integer,
        balance -> Integer,
    }
}
use tp_mig_diesel_tidepool as accounts;

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
    let pool = tidepool::Pool::builder(PgManager::new(url)?)
        .max_size(16)
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .await?;

    // 2. Checkout.
    let mut conn = pool.get().await?;
    conn.batch_execute(
        "DROP TABLE IF EXISTS tp_mig_diesel_tidepool;
         CREATE TABLE tp_mig_diesel_tidepool (id INT PRIMARY KEY, balance INT NOT NULL);
         INSERT INTO tp_mig_diesel_tidepool VALUES (1, 100), (2, 0);",
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

    // 5. Error handling: the same diesel error; tidepool_diesel::classify
    //    says what kind it is.
    match diesel::insert_into(accounts::table)
        .values((accounts::id.eq(1), accounts::balance.eq(0)))
        .execute(&mut conn)
        .await
    {
        Err(e @ DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            assert_eq!(tidepool_diesel::classify(&e), tidepool::FailureKind::Client);
        }
        other => return Err(format!("expected a unique violation, got {other:?}").into()),
    }
    conn.batch_execute("DROP TABLE tp_mig_diesel_tidepool")
        .await?;
    drop(conn);

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
