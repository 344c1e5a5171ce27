//! Closing folds the write-ahead log back: however the pool closes its
//! connections (`close`, dropping the pool, idle reaping, lifetime
//! retirement), once the last one is gone the database is a single,
//! self-contained file — no `-wal`, no `-shm`, and a copy of the main file
//! alone holds every committed row.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tidepool::{Manager, Pool, Pooled};
use tidepool_sqlite::rusqlite;
use tidepool_sqlite::SqliteManager;

const ROWS: i64 = 200;

struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Db {
    fn new() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        Db { _dir: dir, path }
    }

    fn manager(&self) -> SqliteManager {
        SqliteManager::from_url(&format!("sqlite://{}", self.path.display())).unwrap()
    }

    fn side_file(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(suffix);
        name.into()
    }

    fn leftovers(&self) -> Vec<PathBuf> {
        ["-wal", "-shm", "-journal"]
            .iter()
            .map(|s| self.side_file(s))
            .filter(|p| p.exists())
            .collect()
    }

    /// Waits (up to 10 s) for the side files to go.
    async fn wait_for_a_single_file(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.leftovers().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[track_caller]
    fn assert_single_self_contained_file(&self) {
        assert_eq!(
            self.leftovers(),
            Vec::<PathBuf>::new(),
            "files left beside the database"
        );
        // What a backup of the main file alone would hold.
        let copy_dir = tempfile::tempdir().unwrap();
        let copy = copy_dir.path().join("copy.db");
        std::fs::copy(&self.path, &copy).unwrap();
        assert_eq!(
            rows_in(&copy),
            Ok(ROWS),
            "rows in a copy of the main file alone"
        );
    }
}

fn rows_in(path: &Path) -> Result<i64, String> {
    let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    conn.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .map_err(|e| e.to_string())
}

/// Writes [`ROWS`] rows through three connections checked out at once, so
/// the pool holds three open connections afterwards, and the database is
/// in WAL mode with the rows in the log.
async fn fill(pool: &Pool<SqliteManager>, db: &Db) {
    let conns: Vec<Pooled<SqliteManager>> = vec![
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
        pool.get().await.unwrap(),
    ];
    conns[0]
        .call(|c| c.execute_batch("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)"))
        .await
        .unwrap();
    for k in 0..ROWS {
        conns[(k % 3) as usize]
            .call(move |c| c.execute("INSERT INTO kv VALUES (?1, 'x')", [k]))
            .await
            .unwrap();
    }
    drop(conns);
    assert!(
        db.side_file("-wal").exists(),
        "the test needs a WAL database with a log"
    );
    assert_eq!(pool.status().size, 3);
}

fn builder(db: &Db) -> tidepool::Builder<SqliteManager> {
    Pool::builder(db.manager())
        .max_size(3)
        .acquire_timeout(Duration::from_secs(10))
}

#[tokio::test]
async fn after_close_the_database_is_a_single_self_contained_file() {
    let db = Db::new();
    let pool = builder(&db).build().await.unwrap();
    fill(&pool, &db).await;
    let report = pool.close(Duration::from_secs(5)).await;
    assert_eq!(report.closed_idle, 3);
    // No waiting: `close` returns once the connections are closed.
    db.assert_single_self_contained_file();
}

#[tokio::test]
async fn after_the_pool_is_dropped_the_database_is_a_single_self_contained_file() {
    let db = Db::new();
    let pool = builder(&db).build().await.unwrap();
    fill(&pool, &db).await;
    drop(pool);
    db.wait_for_a_single_file().await;
    db.assert_single_self_contained_file();
}

#[tokio::test]
async fn after_idle_reaping_closes_the_last_connection_the_database_is_a_single_file() {
    let db = Db::new();
    let pool = builder(&db)
        .min_size(0)
        .idle_timeout(Some(Duration::from_millis(200)))
        .maintenance_interval(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    fill(&pool, &db).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.status().size > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pool.status().size, 0, "idle connections were reaped");
    db.wait_for_a_single_file().await;
    db.assert_single_self_contained_file();
}

#[tokio::test]
async fn after_lifetime_retirement_closes_the_last_connection_the_database_is_a_single_file() {
    let db = Db::new();
    let pool = builder(&db)
        .min_size(0)
        .idle_timeout(None)
        .max_lifetime(Some(Duration::from_millis(400)))
        .maintenance_interval(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    fill(&pool, &db).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.status().size > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pool.status().size, 0, "connections were retired");
    db.wait_for_a_single_file().await;
    db.assert_single_self_contained_file();
}

#[tokio::test]
async fn a_connection_interrupted_while_idle_still_closes_cleanly() {
    // `interrupt()` on an idle connection leaves SQLite's flag set until the
    // next statement starts; the close must not inherit it.
    let db = Db::new();
    let manager = db.manager();
    let conn = manager.connect().await.unwrap();
    conn.call(|c| {
        c.execute_batch("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)")?;
        for k in 0..ROWS {
            c.execute("INSERT INTO kv VALUES (?1, 'x')", [k])?;
        }
        Ok::<_, rusqlite::Error>(())
    })
    .await
    .unwrap();
    conn.interrupt();
    drop(conn);
    // Dropping an idle connection waits for its close.
    db.assert_single_self_contained_file();
}

#[tokio::test]
async fn a_connection_dropped_with_a_statement_running_still_closes_cleanly() {
    let db = Db::new();
    let manager = db.manager();
    let conn = manager.connect().await.unwrap();
    conn.call(|c| {
        c.execute_batch("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)")?;
        for k in 0..ROWS {
            c.execute("INSERT INTO kv VALUES (?1, 'x')", [k])?;
        }
        Ok::<_, rusqlite::Error>(())
    })
    .await
    .unwrap();
    // A statement that never ends on its own, abandoned mid-way: the drop
    // interrupts it, and the close after it still folds the log back.
    let endless =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let call = conn.call(move |c| c.query_row(endless, [], |r| r.get::<_, i64>(0)));
    let _ = tokio::time::timeout(Duration::from_millis(100), call).await;
    drop(conn);
    db.wait_for_a_single_file().await;
    db.assert_single_self_contained_file();
}
