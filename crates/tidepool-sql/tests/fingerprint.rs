//! What a fingerprint keeps and what it folds, statement by statement.

use tidepool_sql::{fingerprint, Dialect};

const PG: Dialect = Dialect::Postgres;
const MY: Dialect = Dialect::MySql;
const LITE: Dialect = Dialect::Sqlite;

fn norm(sql: &str, d: Dialect) -> String {
    fingerprint(sql, d).normalized
}

fn same(a: &str, b: &str, d: Dialect) {
    let (fa, fb) = (fingerprint(a, d), fingerprint(b, d));
    assert_eq!(fa, fb, "\n{a}\n{b}\nshould share a fingerprint");
}

fn differ(a: &str, b: &str, d: Dialect) {
    let (fa, fb) = (fingerprint(a, d), fingerprint(b, d));
    assert_ne!(fa.id, fb.id, "\n{a}\n{b}\nshould not share a fingerprint");
    assert_ne!(fa.normalized, fb.normalized);
}

#[test]
fn literals_fold_to_a_question_mark_and_case_spacing_and_comments_vanish() {
    assert_eq!(
        norm(
            "SELECT  Name FROM Users\n WHERE id = 42 AND note = 'x' -- trailing\n",
            PG
        ),
        "select name from users where id = ? and note = ?"
    );
    same(
        "/* leading */ SELECT name FROM users WHERE id = 1",
        "select name /* a /* nested */ comment */ from USERS where ID=99999;",
        PG,
    );
}

#[test]
fn every_kind_of_postgres_string_literal_folds_alike() {
    for lit in [
        "'plain'",
        "'it''s'",
        "E'esc\\'aped'",
        "e'\\n'",
        "$$dollar$$",
        "$tag$dollar 'quoted' $$ inside$tag$",
        "U&'\\0041'",
        "B'0101'",
        "X'ff'",
        "N'national'",
    ] {
        assert_eq!(
            norm(&format!("SELECT * FROM t WHERE a = {lit}"), PG),
            "select * from t where a = ?",
            "{lit}"
        );
    }
}

#[test]
fn numbers_fold_with_their_sign_but_subtraction_stays() {
    assert_eq!(
        norm("SELECT -5, +5, 1.5e3, .5, 0", PG),
        "select ?, + ?, ?, ?, ?"
    );
    assert_eq!(
        norm("SELECT a - 5, a - -5, a + -5, a -5", PG),
        "select a - ?, a - ?, a + ?, a - ?"
    );
    same(
        "UPDATE a SET b = b + 1 WHERE c = 2",
        "UPDATE a SET b = b + -100 WHERE c = -3",
        PG,
    );
}

#[test]
fn booleans_and_null_fold_as_values_but_not_in_tests_or_constraints() {
    assert_eq!(
        norm("UPDATE t SET a = NULL, b = TRUE WHERE c = false", PG),
        "update t set a = ?, b = ?, c = ?".replace(", c = ?", " where c = ?")
    );
    assert_eq!(
        norm(
            "SELECT * FROM t WHERE a IS NULL AND b IS NOT NULL AND c IS TRUE AND d IS NOT FALSE",
            PG
        ),
        "select * from t where a is null and b is not null and c is true and d is not false"
    );
    assert_eq!(
        norm("CREATE TABLE t (a int NOT NULL DEFAULT 0, b text NULL)", PG),
        "create table t(a int not null default ?, b text ?)"
    );
}

#[test]
fn casts_keep_the_type_and_fold_the_literal() {
    assert_eq!(
        norm(
            "SELECT $1::int, 'x'::text, CAST('7' AS bigint), '{1,2}'::int[], DATE '2024-01-01'",
            PG
        ),
        "select $1::int, ?::text, cast(? as bigint), ?::int[], date ?"
    );
    differ("SELECT 'x'::text", "SELECT 'x'::varchar", PG);
}

#[test]
fn in_lists_of_any_length_fold_to_one_shape() {
    let one = fingerprint("SELECT * FROM t WHERE id IN (1)", PG);
    for list in [
        "(1, 2)",
        "(1,2,3,4,5,6,7,8,9,10)",
        "($1, $2, $3)",
        "('a'::text, 'b')",
        "(-1, 2)",
    ] {
        assert_eq!(
            fingerprint(&format!("SELECT * FROM t WHERE id IN {list}"), PG),
            one,
            "{list}"
        );
    }
    assert_eq!(one.normalized, "select * from t where id in (...)");
    same(
        "SELECT * FROM t WHERE (a, b) IN ((1, 2))",
        "SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4), (5, 6))",
        PG,
    );
    // A list that is not all values keeps its shape.
    differ(
        "SELECT * FROM t WHERE id IN (a, b)",
        "SELECT * FROM t WHERE id IN (a, b, c)",
        PG,
    );
    assert_eq!(
        norm(
            "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = 1)",
            PG
        ),
        "select * from t where id in (select id from u where x = ?)"
    );
    same(
        "SELECT * FROM t WHERE id = ANY(ARRAY[1,2])",
        "SELECT * FROM t WHERE id = ANY(ARRAY[3])",
        PG,
    );
}

#[test]
fn values_lists_of_any_length_fold_to_one_shape() {
    let one = fingerprint("INSERT INTO t (a, b) VALUES (1, 'x')", PG);
    assert_eq!(one.normalized, "insert into t(a, b) values (?, ?), ...");
    same(
        "INSERT INTO t (a, b) VALUES (1, 'x')",
        "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')",
        PG,
    );
    // Rows of another shape are part of the shape; so is the column count.
    differ(
        "INSERT INTO t VALUES (1, 2)",
        "INSERT INTO t VALUES (1, 2, 3)",
        PG,
    );
    differ(
        "INSERT INTO t VALUES (1, 2)",
        "INSERT INTO t VALUES (1, now())",
        PG,
    );
    // MySQL's VALUES(col) function is not a row list.
    assert_eq!(
        norm(
            "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)",
            MY
        ),
        "insert into t(a) values (?), ... on duplicate key update a = values (a)"
    );
}

#[test]
fn placeholders_stay_placeholders() {
    assert_eq!(
        norm("SELECT * FROM t WHERE a = $1 AND b = $2", PG),
        "select * from t where a = $1 and b = $2"
    );
    differ(
        "SELECT * FROM t WHERE a = $1",
        "SELECT * FROM t WHERE a = $2",
        PG,
    );
    assert_eq!(
        norm("SELECT * FROM t WHERE a = ? AND b = :name", MY),
        "select * from t where a = ? and b = :name"
    );
    assert_eq!(
        norm(
            "SELECT * FROM t WHERE a = :a AND b = @b AND c = $c AND d = ?4",
            LITE
        ),
        "select * from t where a = :a and b = @b and c = $c and d = ?4"
    );
    // An array slice is not a named placeholder.
    assert_eq!(norm("SELECT a[1:n] FROM t", PG), "select a[? : n] from t");
}

#[test]
fn quoted_identifiers_stay_identifiers() {
    differ(r#"SELECT "Name" FROM t"#, "SELECT name FROM t", PG);
    same(r#"SELECT "name" FROM "t""#, "SELECT name FROM t", PG);
    assert_eq!(
        norm(r#"SELECT "user", "a""b" FROM t"#, PG),
        r#"select "user", "a""b" from t"#
    );
    assert_eq!(
        norm("SELECT `Users`.`id` FROM `users`", MY),
        r#"select "Users".id from users"#
    );
    // In MySQL a double-quoted text is a string.
    assert_eq!(
        norm(r#"SELECT * FROM t WHERE a = "x""#, MY),
        "select * from t where a = ?"
    );
    assert_eq!(
        norm("SELECT [Order] FROM [t]", LITE),
        r#"select "Order" from t"#
    );
}

#[test]
fn positional_order_by_and_group_by_references_are_kept() {
    differ(
        "SELECT a, b FROM t ORDER BY 1",
        "SELECT a, b FROM t ORDER BY 2",
        PG,
    );
    assert_eq!(
        norm(
            "SELECT a, count(*) FROM t GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10 OFFSET 20",
            PG
        ),
        "select a, count(*) from t group by 1 order by 2 desc, 1 limit ? offset ?"
    );
    // An expression in ORDER BY still folds its literal.
    same(
        "SELECT a FROM t ORDER BY a + 1",
        "SELECT a FROM t ORDER BY a + 2",
        PG,
    );
}

#[test]
fn keywords_tables_and_columns_are_part_of_the_shape() {
    differ("SELECT a FROM t", "SELECT b FROM t", PG);
    differ("SELECT a FROM t", "SELECT a FROM u", PG);
    differ(
        "SELECT a FROM t WHERE x = 1",
        "SELECT a FROM t WHERE x > 1",
        PG,
    );
    differ("SELECT a FROM t", "SELECT DISTINCT a FROM t", PG);
    differ(
        "SELECT a FROM t WHERE x = 1 AND y = 2",
        "SELECT a FROM t WHERE x = 1 OR y = 2",
        PG,
    );
}

#[test]
fn a_tokenizer_error_gives_a_lossy_fingerprint_not_a_panic() {
    assert_eq!(
        norm("SELECT * FROM t WHERE a = 'unterminated", PG),
        "select * from t where a = <unparsed>"
    );
    same("SELECT 'abc", "SELECT 'xyz", PG);
    assert_eq!(norm("SELECT /* open comment", PG), "select <unparsed>");
    assert_eq!(norm("SELECT \"open identifier", PG), "select <unparsed>");
    assert_eq!(norm("", PG), "");
}

#[test]
fn ids_are_a_fixed_hash_of_the_normalized_text() {
    // Pinned: the id is a hash this crate defines (no random seed), so
    // every process and machine agrees; a change here changes every
    // stored fingerprint and must be deliberate.
    let f = fingerprint("SELECT 1", PG);
    assert_eq!(f.normalized, "select ?");
    assert_eq!(format!("{:016x}", f.id), "4294c3252ce95487");
    assert_eq!(f.id, fingerprint("select 2", MY).id);
}
