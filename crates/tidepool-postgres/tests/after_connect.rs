//! An after-connect hook (deadpool's `post_create`, sqlx's
//! `after_connect`) sets up every new session on the real server.

mod support;

use tidepool::Pool;
use tidepool_postgres::{PgError, PgManager};

#[tokio::test]
async fn every_new_connection_runs_the_hook_before_its_first_borrower() {
    let Some(url) = support::url("after_connect") else {
        return;
    };
    let manager = PgManager::builder_from_url(&support::plain(&url))
        .unwrap()
        .build()
        .unwrap();
    let pool = Pool::builder(manager)
        .max_size(2)
        .after_connect(|conn| {
            Box::pin(async move {
                conn.batch_execute(
                    "SET application_name = 'tp_hooked'; SET search_path = pg_catalog",
                )
                .await
                .map_err(PgError::from)
            })
        })
        .build()
        .await
        .unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    for conn in [&a, &b] {
        let name: String = conn
            .query_one("SELECT current_setting('application_name')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(name, "tp_hooked");
    }
    // What the hook set is the session's starting point, not a borrower's
    // change: the default reset (whose dirty bits saw the hook's SETs, and
    // were told by `Manager::session_baseline` to forget them) keeps it
    // for the next borrower.
    drop((a, b));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let again = pool.get().await.unwrap();
    let name: String = again
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "tp_hooked");
}
