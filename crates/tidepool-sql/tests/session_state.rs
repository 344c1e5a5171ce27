//! Which session state a statement changes, one row per kind of state.

use tidepool_sql::{session_state, Dialect, SessionState as S};

fn check(rows: &[(&str, S)], d: Dialect) {
    let wrong: Vec<String> = rows
        .iter()
        .filter(|(sql, want)| session_state(sql, d) != *want)
        .map(|(sql, want)| format!("{sql:?}: want {want:?}, got {:?}", session_state(sql, d)))
        .collect();
    assert!(
        wrong.is_empty(),
        "wrong session state:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn postgres_statements_that_change_the_session_are_recognized() {
    check(
        &[
            ("SET search_path = app", S::SETTINGS),
            ("SET SESSION statement_timeout = '5s'", S::SETTINGS),
            ("set TIME ZONE 'UTC'", S::SETTINGS),
            ("RESET search_path", S::SETTINGS),
            ("RESET ALL", S::SETTINGS),
            ("SET LOCAL search_path = app", S::EMPTY),
            ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", S::EMPTY),
            ("SET ROLE admin", S::ROLE),
            ("SET SESSION AUTHORIZATION bob", S::ROLE),
            ("RESET ROLE", S::ROLE),
            ("SELECT set_config('app.user', '7', false)", S::SETTINGS),
            ("SELECT set_config('app.user', $1, $2)", S::SETTINGS),
            ("SELECT set_config('app.user', '7', true)", S::EMPTY),
            ("LISTEN jobs", S::LISTEN),
            ("UNLISTEN *", S::EMPTY),
            ("PREPARE q(int) AS SELECT $1", S::PREPARED),
            ("DEALLOCATE q", S::PREPARED),
            ("PREPARE TRANSACTION 'x'", S::EMPTY),
            ("CREATE TEMP TABLE scratch (id int)", S::TEMP_OBJECTS),
            ("CREATE TEMPORARY VIEW v AS SELECT 1", S::TEMP_OBJECTS),
            ("CREATE GLOBAL TEMPORARY TABLE g (id int)", S::TEMP_OBJECTS),
            ("CREATE OR REPLACE TEMP VIEW v AS SELECT 1", S::TEMP_OBJECTS),
            ("SELECT * INTO TEMP copy FROM t", S::TEMP_OBJECTS),
            ("CREATE TABLE temp_stuff (id int)", S::EMPTY),
            ("SELECT pg_advisory_lock(42)", S::ADVISORY_LOCKS),
            (
                "SELECT pg_try_advisory_lock_shared(1, 2)",
                S::ADVISORY_LOCKS,
            ),
            ("SELECT pg_advisory_xact_lock(42)", S::EMPTY),
            ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", S::CURSORS),
            ("DECLARE c CURSOR FOR SELECT 1", S::EMPTY),
            ("DO $$ BEGIN PERFORM 1; END $$", S::OPAQUE),
            ("CALL p()", S::OPAQUE),
            ("SET search_path = a; LISTEN x", S::SETTINGS | S::LISTEN),
            ("SELECT * FROM t WHERE id = $1", S::EMPTY),
            ("UPDATE t SET search_path = 1", S::EMPTY),
            ("INSERT INTO t VALUES (1)", S::EMPTY),
        ],
        Dialect::Postgres,
    );
}

#[test]
fn mysql_statements_that_change_the_session_are_recognized() {
    check(
        &[
            ("SET @x = 1", S::USER_VARIABLES),
            ("SET @a = 1, sql_mode = ''", S::USER_VARIABLES | S::SETTINGS),
            ("SELECT @x := 5", S::USER_VARIABLES),
            ("SELECT id INTO @x FROM t LIMIT 1", S::USER_VARIABLES),
            ("SET NAMES utf8mb4", S::SETTINGS),
            ("SET SESSION sql_mode = ''", S::SETTINGS),
            ("SET autocommit = 0", S::SETTINGS),
            ("SET @@session.wait_timeout = 10", S::SETTINGS),
            ("SET GLOBAL max_connections = 10", S::EMPTY),
            ("SET @@global.max_connections = 10", S::EMPTY),
            ("SELECT GET_LOCK('job', 10)", S::ADVISORY_LOCKS),
            ("LOCK TABLES t WRITE", S::TABLE_LOCKS),
            ("CREATE TEMPORARY TABLE tmp (id int)", S::TEMP_OBJECTS),
            ("PREPARE s FROM 'SELECT 1'", S::PREPARED),
            ("USE other", S::SETTINGS),
            ("INSERT INTO t SELECT @x", S::EMPTY),
            ("SELECT @x", S::EMPTY),
        ],
        Dialect::MySql,
    );
}

#[test]
fn sqlite_statements_that_change_the_session_are_recognized() {
    check(
        &[
            ("PRAGMA foreign_keys = ON", S::SETTINGS),
            ("PRAGMA foreign_keys", S::EMPTY),
            ("ATTACH DATABASE 'x.db' AS x", S::SETTINGS),
            ("CREATE TEMP TABLE t (id)", S::TEMP_OBJECTS),
            ("SELECT * FROM t WHERE a = @a", S::EMPTY),
        ],
        Dialect::Sqlite,
    );
}

#[test]
fn the_bitset_reads_as_names() {
    let s = S::SETTINGS | S::LISTEN;
    assert_eq!(s.names().collect::<Vec<_>>(), ["settings", "listen"]);
    assert_eq!(format!("{s:?}"), "SessionState(settings | listen)");
    assert_eq!(S::from_bits(s.bits()), s);
    assert!(s.contains(S::LISTEN) && !s.contains(S::ROLE) && s.intersects(S::LISTEN | S::ROLE));
    assert!(S::from_bits(u16::MAX).contains(S::OPAQUE));
}
