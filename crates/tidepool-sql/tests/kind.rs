//! The classifier, table-driven: one row per rule in the README.

use tidepool::QueryKind::{self, Analytics, Maintenance, Read, Transaction, Write};
use tidepool_sql::{classify, Dialect};

fn check(rows: &[(&str, QueryKind)], d: Dialect) {
    let wrong: Vec<String> = rows
        .iter()
        .filter(|(sql, want)| classify(sql, d) != *want)
        .map(|(sql, want)| format!("{sql:?}: want {want}, got {}", classify(sql, d)))
        .collect();
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
}

#[test]
fn postgres_statements_get_the_documented_kind() {
    check(
        &[
            ("SELECT * FROM t WHERE id = $1", Read),
            ("(SELECT 1) UNION (SELECT 2)", Read),
            ("VALUES (1), (2)", Read),
            ("TABLE t", Read),
            ("SHOW search_path", Read),
            ("EXPLAIN SELECT * FROM t", Read),
            ("EXPLAIN ANALYZE DELETE FROM t", Write),
            (
                "EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM t",
                Analytics,
            ),
            ("WITH x AS (SELECT 1) SELECT * FROM x", Read),
            ("SELECT * FROM t WHERE id = 1 FOR UPDATE", Write),
            ("SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED", Write),
            ("SELECT * FROM t FOR SHARE", Write),
            ("SELECT * FROM t FOR KEY SHARE", Write),
            (
                "WITH x AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM x",
                Write,
            ),
            (
                "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d",
                Write,
            ),
            ("WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT 1", Write),
            ("SELECT * INTO new_t FROM t", Write),
            ("SELECT nextval('s')", Write),
            ("SELECT pg_advisory_lock(1)", Write),
            ("SELECT set_config('a.b', 'c', false)", Write),
            ("INSERT INTO t VALUES (1)", Write),
            ("UPDATE t SET a = 1", Write),
            ("DELETE FROM t", Write),
            (
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
                Write,
            ),
            ("COPY t FROM STDIN", Write),
            ("COPY t TO STDOUT", Read),
            ("COPY (SELECT * FROM t) TO STDOUT", Read),
            ("CALL proc(1)", Write),
            ("DO $$ BEGIN END $$", Write),
            ("NOTIFY ch", Write),
            ("LOCK TABLE t", Write),
            ("something_unknown 1 2 3", Write),
            ("BEGIN", Transaction),
            ("BEGIN ISOLATION LEVEL SERIALIZABLE", Transaction),
            ("START TRANSACTION", Transaction),
            ("COMMIT", Transaction),
            ("END", Transaction),
            ("ROLLBACK TO SAVEPOINT a", Transaction),
            ("SAVEPOINT a", Transaction),
            ("RELEASE SAVEPOINT a", Transaction),
            (
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                Transaction,
            ),
            ("PREPARE TRANSACTION 'x'", Transaction),
            ("BEGIN; UPDATE t SET a = 1; COMMIT", Transaction),
            ("CREATE TABLE t (id int)", Maintenance),
            ("CREATE TEMP TABLE t (id int)", Maintenance),
            ("ALTER TABLE t ADD COLUMN b int", Maintenance),
            ("DROP TABLE t", Maintenance),
            ("TRUNCATE t", Maintenance),
            ("VACUUM ANALYZE t", Maintenance),
            ("ANALYZE t", Maintenance),
            ("REINDEX TABLE t", Maintenance),
            ("GRANT SELECT ON t TO r", Maintenance),
            ("REFRESH MATERIALIZED VIEW v", Maintenance),
            ("SET search_path = app", Maintenance),
            ("RESET ALL", Maintenance),
            ("DISCARD ALL", Maintenance),
            ("LISTEN ch", Maintenance),
            ("PREPARE q AS SELECT 1", Maintenance),
            ("DEALLOCATE q", Maintenance),
            (
                "CREATE TABLE a (id int); INSERT INTO a VALUES (1)",
                Maintenance,
            ),
            ("", Read),
            ("-- only a comment", Read),
        ],
        Dialect::Postgres,
    );
}

#[test]
fn analytics_is_grouping_windows_or_aggregates_over_no_where() {
    check(
        &[
            (
                "SELECT status, count(*) FROM orders GROUP BY status",
                Analytics,
            ),
            (
                "SELECT user_id, sum(amount) FROM orders WHERE created_at > $1 GROUP BY user_id",
                Analytics,
            ),
            ("SELECT count(*) FROM orders", Analytics),
            ("SELECT max(id) FROM t", Analytics),
            (
                "SELECT id, rank() OVER (ORDER BY amount) FROM orders WHERE user_id = $1",
                Analytics,
            ),
            (
                "SELECT id, sum(a) OVER w FROM t WINDOW w AS (ORDER BY id)",
                Analytics,
            ),
            (
                "SELECT a, b, sum(c) FROM t GROUP BY ROLLUP (a, b)",
                Analytics,
            ),
            ("SELECT count(*) FROM orders WHERE user_id = $1", Read),
            ("SELECT count, max FROM counters WHERE id = 1", Read),
            ("SELECT id FROM t WHERE id = 1", Read),
        ],
        Dialect::Postgres,
    );
}

#[test]
fn mysql_and_sqlite_statements_get_the_documented_kind() {
    check(
        &[
            ("SELECT * FROM t WHERE id = ? LOCK IN SHARE MODE", Write),
            ("SELECT * FROM t WHERE id = ? FOR UPDATE", Write),
            ("REPLACE INTO t VALUES (1)", Write),
            ("SELECT GET_LOCK('a', 1)", Write),
            ("SELECT a INTO @x FROM t WHERE id = 1", Write),
            ("DESCRIBE t", Read),
            ("SHOW TABLES", Read),
            ("OPTIMIZE TABLE t", Maintenance),
            ("SET NAMES utf8mb4", Maintenance),
            ("USE test", Maintenance),
            ("XA START 'x'", Transaction),
            ("START TRANSACTION READ ONLY", Transaction),
        ],
        Dialect::MySql,
    );
    check(
        &[
            ("PRAGMA journal_mode", Read),
            ("PRAGMA table_info(t)", Read),
            ("PRAGMA journal_mode = WAL", Maintenance),
            ("ATTACH DATABASE 'x.db' AS x", Maintenance),
            ("INSERT OR REPLACE INTO t VALUES (1)", Write),
            ("BEGIN IMMEDIATE", Transaction),
            ("SELECT * FROM t WHERE a = ?1", Read),
        ],
        Dialect::Sqlite,
    );
}
