//! The oracle: PostgreSQL's own fingerprint. A corpus of more than 500
//! statements (pgbench's, the CLI bench's workload, and generated variants
//! with other literals, list lengths, comments, casing and whitespace) is
//! sent with its literals inlined, through a role of its own, and each
//! statement's `queryid` is read back from `pg_stat_statements`. Grouping
//! by tidepool's fingerprint must give the same classes as grouping by
//! `queryid`, except for the classes listed in `DELIBERATE_FOLDS`, where
//! tidepool folds lists of different lengths that PostgreSQL 15 keeps
//! apart.
//!
//! Needs `pg_stat_statements` in `shared_preload_libraries` and the
//! extension in the test database (`.ci/setup-postgres.sh` does both);
//! without it the test skips, or fails when `TIDEPOOL_REQUIRE_DB=1`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tidepool_sql::{fingerprint, Dialect};
use tokio_postgres::{Client, NoTls};

const ROLE: &str = "tidepool_fingerprint";
const SCHEMA: &str = "tidepool_fp";

/// Tidepool classes that PostgreSQL splits, on purpose: lists of values of
/// different lengths are one shape to tidepool (`IN`, `ARRAY[..]`, the rows
/// of `VALUES`), several to PostgreSQL 15.
const DELIBERATE_FOLDS: &[&str] = &[
    "select id, name from t_users where id in (...)",
    "select id from t_orders where status in (...) and amount > ?",
    "select id from t_users where id = any (array[...])",
    "insert into t_users(id, name, email, balance, created_at) values (?, ?, ?, ?, ?), ... on conflict do nothing",
    "select v.id, v.label from (values (?, ?), ...) as v(id, label) order by 1",
];

/// A small deterministic generator (splitmix64): the corpus is the same on
/// every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// A slot's type decides the literal's spelling; PostgreSQL types
/// constants, so each slot keeps one type across variants.
#[derive(Clone, Copy)]
enum Slot {
    /// int4: -99999..=99999.
    Int,
    /// A positive int4 key.
    Key,
    /// int8: epoch milliseconds.
    Millis,
    /// numeric: `12.34`.
    Num,
    /// A string of unknown type, in any of PostgreSQL's spellings.
    Text,
    /// `true` / `false`.
    Bool,
    /// `IN (..)` / `ARRAY[..]` items: 1 to 8 keys.
    Keys,
    /// `IN (..)` items: 1 to 6 strings.
    Texts,
    /// Rows of `VALUES` for `t_users`: 1 to 5.
    UserRows,
    /// Rows `(int, text)`: 1 to 4.
    PairRows,
}

fn text_literal(rng: &mut Rng) -> String {
    let words = [
        "alpha",
        "it's",
        "new",
        "paid",
        "O'Brien",
        "x y z",
        "",
        "100%",
        "back\\slash",
    ];
    let w = rng.pick(&words);
    match rng.next() % 5 {
        0 | 1 => format!("'{}'", w.replace('\'', "''")),
        2 => format!("E'{}'", w.replace('\\', "\\\\").replace('\'', "\\'")),
        3 => format!("$${w}$$"),
        _ => format!("$q${w}$q$"),
    }
}

fn literal(rng: &mut Rng, slot: Slot) -> String {
    match slot {
        Slot::Int => rng.range(-99_999, 99_999).to_string(),
        Slot::Key => rng.range(1, 99_999).to_string(),
        Slot::Millis => rng.range(1_600_000_000_000, 1_800_000_000_000).to_string(),
        Slot::Num => format!("{}.{:02}", rng.range(0, 999), rng.range(0, 99)),
        Slot::Text => text_literal(rng),
        Slot::Bool => rng.pick(&["true", "false", "TRUE", "False"]).to_string(),
        Slot::Keys => {
            let n = rng.range(1, 8);
            let items: Vec<String> = (0..n).map(|_| literal(rng, Slot::Key)).collect();
            items.join(", ")
        }
        Slot::Texts => {
            let n = rng.range(1, 6);
            let items: Vec<String> = (0..n).map(|_| text_literal(rng)).collect();
            items.join(", ")
        }
        Slot::UserRows => {
            let n = rng.range(1, 5);
            let rows: Vec<String> = (0..n)
                .map(|_| {
                    format!(
                        "({}, {}, {}, {}, {})",
                        literal(rng, Slot::Key),
                        text_literal(rng),
                        text_literal(rng),
                        literal(rng, Slot::Int),
                        literal(rng, Slot::Millis)
                    )
                })
                .collect();
            rows.join(", ")
        }
        Slot::PairRows => {
            let n = rng.range(1, 4);
            let rows: Vec<String> = (0..n)
                .map(|_| format!("({}, {})", literal(rng, Slot::Key), text_literal(rng)))
                .collect();
            rows.join(", ")
        }
    }
}

/// Statement templates: `{}` is a literal slot (types in order), `~`
/// marks where whitespace or a comment goes, `|a|b|` a spelling chosen at
/// random among equivalents. Words are re-cased at random.
fn templates() -> Vec<(&'static str, Vec<Slot>)> {
    use Slot::*;
    vec![
        // pgbench's TPC-B-like script, and its select-only script.
        ("UPDATE pgbench_accounts SET abalance = abalance + {} WHERE aid = {}", vec![Int, Key]),
        ("SELECT abalance FROM pgbench_accounts WHERE aid = {}", vec![Key]),
        ("UPDATE pgbench_tellers SET tbalance = tbalance + {} WHERE tid = {}", vec![Int, Key]),
        ("UPDATE pgbench_branches SET bbalance = bbalance + {} WHERE bid = {}", vec![Int, Key]),
        (
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ({}, {}, {}, {}, CURRENT_TIMESTAMP)",
            vec![Key, Key, Key, Int],
        ),
        // The CLI bench's workload (crates/tidepool-cli/src/workload.rs).
        ("SELECT id, name, email, balance FROM t_users WHERE id = {}", vec![Key]),
        (
            "SELECT id, amount, status, created_at FROM t_orders WHERE user_id = {} ORDER BY created_at DESC LIMIT {}",
            vec![Key, Key],
        ),
        (
            "INSERT INTO t_events (user_id, kind, payload, created_at) VALUES ({}, {}, {}, {})",
            vec![Key, Text, Text, Millis],
        ),
        ("UPDATE t_users SET balance = balance + {} WHERE id = {}", vec![Int, Key]),
        (
            "INSERT INTO t_orders (user_id, amount, status, created_at) VALUES ({}, {}, {}, {})",
            vec![Key, Int, Text, Millis],
        ),
        // Its seeding: multi-row inserts (a deliberate fold).
        ("INSERT INTO t_users (id, name, email, balance, created_at) VALUES {} ON CONFLICT DO NOTHING", vec![UserRows]),
        // More shapes.
        ("SELECT id, name FROM t_users WHERE id IN ({})", vec![Keys]),
        ("SELECT id FROM t_orders WHERE status IN ({}) AND amount > {}", vec![Texts, Int]),
        ("SELECT id FROM t_users WHERE id = ANY(ARRAY[{}])", vec![Keys]),
        ("SELECT v.id, v.label FROM (VALUES {}) AS v(id, label) ORDER BY 1", vec![PairRows]),
        ("SELECT count(*) FROM t_orders WHERE status = {} AND amount > {}", vec![Text, Int]),
        (
            "SELECT u.name, o.amount FROM t_users u JOIN t_orders o ON o.user_id = u.id WHERE u.id = {} ORDER BY o.amount DESC LIMIT {}",
            vec![Key, Key],
        ),
        ("SELECT status, sum(amount) FROM t_orders GROUP BY status ORDER BY 2 DESC", vec![]),
        ("SELECT status, sum(amount) FROM t_orders GROUP BY status ORDER BY 1", vec![]),
        ("DELETE FROM t_events WHERE created_at < {}", vec![Millis]),
        ("SELECT * FROM t_users WHERE |name|\"name\"| LIKE {} AND balance BETWEEN {} AND {}", vec![Text, Int, Int]),
        ("UPDATE t_orders SET status = {} WHERE id = {} RETURNING id", vec![Text, Key]),
        ("SELECT id FROM t_users WHERE email = {} AND balance IS NOT NULL", vec![Text]),
        ("SELECT id FROM t_orders WHERE status |<>|!=| {} FOR UPDATE", vec![Text]),
        (
            "WITH recent AS (SELECT user_id FROM t_orders WHERE created_at > {}) SELECT count(*) FROM recent",
            vec![Millis],
        ),
        ("SELECT {} * amount FROM t_orders WHERE id = {}", vec![Num, Key]),
        ("SELECT id FROM flags WHERE enabled = {} AND id > {}", vec![Bool, Int]),
        ("SELECT coalesce(max(amount), {}) FROM t_orders WHERE user_id = {}", vec![Int, Key]),
        ("SELECT id FROM t_users ORDER BY id LIMIT {} OFFSET {}", vec![Key, Key]),
        ("SELECT {}::text, {}::bigint", vec![Text, Int]),
        ("SELECT id FROM t_events WHERE kind = {} AND created_at > {}::bigint", vec![Text, Millis]),
        ("UPDATE flags SET enabled = {} WHERE id = {}", vec![Bool, Key]),
        ("SELECT id, name FROM |t_users|\"t_users\"| WHERE balance > {} - {}", vec![Int, Key]),
    ]
}

/// One variant of a template: fresh literals, casing, gaps, spellings.
fn render(template: &str, slots: &[Slot], rng: &mut Rng) -> String {
    let mut out = String::new();
    let mut slots = slots.iter();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("{}") {
            let slot = slots.next().copied().unwrap_or(Slot::Int);
            out.push_str(&literal(rng, slot));
            rest = r;
        } else if let Some(r) = rest.strip_prefix('|') {
            // |a|b|: one of the alternatives.
            let end = r.find("| ").or_else(|| r.rfind('|')).unwrap_or(r.len());
            let alternatives: Vec<&str> = r[..end].split('|').collect();
            out.push_str(rng.pick(&alternatives));
            rest = &r[(end + 1).min(r.len())..];
        } else if let Some(r) = rest.strip_prefix(' ') {
            out.push_str(rng.pick(&[" ", "  ", "\n    ", "\t", " /* c */ ", " -- note\n "]));
            rest = r;
        } else {
            let end = rest
                .find(['{', '|', ' ', '\'', '"'])
                .unwrap_or(rest.len())
                .max(1);
            let chunk = &rest[..end];
            let quoted = chunk.starts_with('"');
            let chunk = if quoted {
                let close = rest[1..].find('"').map_or(rest.len(), |i| i + 2);
                &rest[..close]
            } else {
                chunk
            };
            out.push_str(&match rng.next() % 3 {
                _ if quoted => chunk.to_string(),
                0 => chunk.to_uppercase(),
                1 => chunk.to_lowercase(),
                _ => chunk.to_string(),
            });
            rest = &rest[chunk.len()..];
        }
    }
    if rng.next().is_multiple_of(3) {
        out.push(';');
    }
    if rng.next().is_multiple_of(4) {
        out = format!("/* app=tidepool */ {out}");
    }
    out
}

fn corpus() -> Vec<String> {
    let mut rng = Rng(0x7469_6465_706f_6f6c);
    let mut out = Vec::new();
    for (template, slots) in templates() {
        for _ in 0..18 {
            out.push(render(template, &slots, &mut rng));
        }
    }
    out
}

const SCHEMA_SQL: &str = "
CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84));
CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88));
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
CREATE TABLE t_users (id BIGINT PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL, balance BIGINT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE t_orders (id BIGSERIAL PRIMARY KEY, user_id BIGINT NOT NULL, amount BIGINT NOT NULL, status VARCHAR(255) NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE t_events (id BIGSERIAL PRIMARY KEY, user_id BIGINT NOT NULL, kind VARCHAR(255) NOT NULL, payload VARCHAR(255) NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE flags (id int PRIMARY KEY, enabled boolean NOT NULL);
";

async fn connect(config: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(config, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to PostgreSQL ({config}): {e}"));
    tokio::spawn(connection);
    client
}

/// Whether `pg_stat_statements` is loaded and installed in this database.
async fn oracle_available(admin: &Client) -> Result<(), String> {
    let preload: String = admin
        .query_one("SELECT current_setting('shared_preload_libraries')", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    if !preload.split(',').any(|l| l.trim() == "pg_stat_statements") {
        return Err(format!(
            "pg_stat_statements is not in shared_preload_libraries ({preload:?}); run .ci/setup-postgres.sh"
        ));
    }
    admin
        .query_one("SELECT count(*) FROM pg_stat_statements", &[])
        .await
        .map_err(|e| {
            format!("pg_stat_statements is not readable ({e}); run .ci/setup-postgres.sh")
        })?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprints_group_statements_as_pg_stat_statements_does() {
    let Some(url) = tidepool_testkit::postgres_url("tidepool-sql pg_stat_statements oracle") else {
        return;
    };
    let admin = connect(&url).await;
    if let Err(why) = oracle_available(&admin).await {
        assert!(
            !tidepool_testkit::database_required(),
            "TIDEPOOL_REQUIRE_DB=1: {why}"
        );
        eprintln!("SKIPPED tidepool-sql pg_stat_statements oracle: {why}");
        return;
    }
    // One run at a time: the role, its schema and its statistics are shared.
    admin
        .execute(
            "SELECT pg_advisory_lock(hashtext('tidepool-sql oracle'))",
            &[],
        )
        .await
        .expect("advisory lock");
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                     CREATE ROLE {ROLE} LOGIN;
                 END IF;
             END $$;
             DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
             CREATE SCHEMA {SCHEMA} AUTHORIZATION {ROLE};"
        ))
        .await
        .expect("role and schema");
    let role_url = format!(
        "host=127.0.0.1 port={} user={ROLE} dbname=test options='-c search_path={SCHEMA}'",
        tidepool_testkit::host_port(&url, 5432).map_or(5432, |(_, p)| p)
    );
    let client = connect(&role_url).await;
    client
        .batch_execute(SCHEMA_SQL)
        .await
        .expect("corpus tables");
    let ids = admin
        .query_one(
            "SELECT r.oid, d.oid FROM pg_roles r, pg_database d WHERE r.rolname = $1 AND d.datname = current_database()",
            &[&ROLE],
        )
        .await
        .expect("role and database oids");
    let (userid, dbid): (u32, u32) = (ids.get(0), ids.get(1));
    // Only this role's entries: other tests' traffic is left alone.
    admin
        .execute("SELECT pg_stat_statements_reset($1, 0, 0)", &[&userid])
        .await
        .expect("reset this role's statistics");

    let read_calls = || async {
        let rows = admin
            .query(
                "SELECT queryid, calls FROM pg_stat_statements WHERE userid = $1 AND dbid = $2",
                &[&userid, &dbid],
            )
            .await
            .expect("read pg_stat_statements");
        rows.iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
            .collect::<HashMap<i64, i64>>()
    };

    let corpus = corpus();
    assert!(
        corpus.len() >= 500,
        "the corpus has {} statements",
        corpus.len()
    );
    let mut before = read_calls().await;
    let mut queryid_of: Vec<i64> = Vec::with_capacity(corpus.len());
    for sql in &corpus {
        client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("corpus statement failed: {sql}\n{e}"));
        let after = read_calls().await;
        let moved: Vec<i64> = after
            .iter()
            .filter(|(q, c)| before.get(q).copied().unwrap_or(0) < **c)
            .map(|(q, _)| *q)
            .collect();
        assert_eq!(
            moved.len(),
            1,
            "one queryid per statement, got {moved:?} for {sql}"
        );
        queryid_of.push(moved[0]);
        before = after;
    }
    admin
        .execute(
            "SELECT pg_advisory_unlock(hashtext('tidepool-sql oracle'))",
            &[],
        )
        .await
        .expect("advisory unlock");

    // tidepool id -> server queryids, and server queryid -> tidepool ids.
    let mut by_fingerprint: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut by_queryid: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    let mut example: HashMap<String, Vec<&str>> = HashMap::new();
    for (sql, q) in corpus.iter().zip(&queryid_of) {
        let f = fingerprint(sql, Dialect::Postgres).normalized;
        by_fingerprint.entry(f.clone()).or_default().insert(*q);
        by_queryid.entry(*q).or_default().insert(f.clone());
        example.entry(f).or_default().push(sql);
    }

    // Never split what PostgreSQL groups.
    let split: Vec<String> = by_queryid
        .values()
        .filter(|fs| fs.len() > 1)
        .map(|fs| format!("{fs:#?}"))
        .collect();
    assert!(
        split.is_empty(),
        "tidepool splits classes PostgreSQL groups:\n{}",
        split.join("\n")
    );

    // Never merge what PostgreSQL keeps apart, except the listed folds —
    // and each listed fold really is one PostgreSQL keeps apart.
    let merged: BTreeSet<&str> = by_fingerprint
        .iter()
        .filter(|(_, qs)| qs.len() > 1)
        .map(|(f, _)| f.as_str())
        .collect();
    let listed: BTreeSet<&str> = DELIBERATE_FOLDS.iter().copied().collect();
    let unexpected: Vec<String> = merged
        .difference(&listed)
        .map(|f| format!("{f}\n  e.g. {:?}", &example[*f][..2.min(example[*f].len())]))
        .collect();
    assert!(
        unexpected.is_empty(),
        "tidepool merges classes PostgreSQL keeps apart:\n{}",
        unexpected.join("\n")
    );
    let missing: Vec<&&str> = listed.difference(&merged).collect();
    assert!(
        missing.is_empty(),
        "listed folds that PostgreSQL did not split (or that are not in the corpus): {missing:#?}"
    );

    let classes = by_fingerprint.len();
    let server_classes = by_queryid.len();
    eprintln!(
        "{} statements: {classes} tidepool classes, {server_classes} pg_stat_statements classes, {} deliberate folds",
        corpus.len(),
        listed.len()
    );
}
