//! Validation and clean returns, the same for every backend: diesel-async's
//! `AnsiTransactionManager` is the one both connections use.
//!
//! A returned connection reaches [`clean`] only when the watch in
//! `tracked` saw something (a transaction statement, a query that did not
//! finish, a lost connection). Here the real state is read with `&mut`:
//! an open transaction is rolled back, a transaction manager in its error
//! state or cancelled mid-statement is refused (the pool closes the
//! connection), a query that never finished is followed by a round trip
//! so that nothing half-read is handed to the next borrower.

use diesel::connection::TransactionManagerStatus;
use diesel_async::{AnsiTransactionManager, AsyncConnection, TransactionManager};

use crate::error::Error;
use crate::tracked::TrackedConnection;

/// The validation query: one round trip, nothing prepared.
pub(crate) async fn validate<C>(conn: &mut TrackedConnection<C>) -> Result<(), Error>
where
    C: AsyncConnection<TransactionManager = AnsiTransactionManager> + Send,
{
    conn.inner_mut().batch_execute("SELECT 1").await?;
    Ok(())
}

pub(crate) async fn clean<C>(conn: &mut TrackedConnection<C>) -> Result<(), Error>
where
    C: AsyncConnection<TransactionManager = AnsiTransactionManager> + Send,
{
    if conn.state().is_lost() {
        return Err(Error::Unusable(
            "a query found the connection to the server gone",
        ));
    }
    let inner = conn.inner_mut();
    if AnsiTransactionManager::is_broken_transaction_manager(inner) {
        let depth =
            AnsiTransactionManager::transaction_manager_status_mut(inner).transaction_depth();
        match depth {
            Err(_) => {
                return Err(Error::Unusable(
                    "diesel's transaction manager is in its error state",
                ))
            }
            Ok(Some(_)) => {
                // A raw ROLLBACK ends every level at once (savepoints
                // included); diesel's own rollback would step down one
                // level at a time and refuses to run after a cancelled
                // statement.
                inner.batch_execute("ROLLBACK").await?;
                *AnsiTransactionManager::transaction_manager_status_mut(inner) =
                    TransactionManagerStatus::default();
            }
            Ok(None) => {}
        }
        // Still broken with no transaction open: a BEGIN, COMMIT or
        // ROLLBACK future was dropped mid-way, and diesel keeps that flag
        // for the connection's life.
        if AnsiTransactionManager::is_broken_transaction_manager(inner) {
            return Err(Error::Unusable(
                "a BEGIN, COMMIT or ROLLBACK was cancelled mid-way, so its outcome is unknown",
            ));
        }
    }
    if conn.state().needs_ping() {
        conn.inner_mut().batch_execute("SELECT 1").await?;
    }
    conn.state().settled();
    if conn.state().is_lost() {
        return Err(Error::Unusable(
            "a query found the connection to the server gone",
        ));
    }
    Ok(())
}
