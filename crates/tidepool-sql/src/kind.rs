//! What a statement does, as the core's [`QueryKind`]: read, write,
//! transaction control, analytics or maintenance, read from its tokens
//! (no parse tree). The rules are in the crate README; when in doubt the
//! answer is `Write`, so nothing unknown is ever taken for a read that a
//! replica or a shared connection could serve.

use tidepool::QueryKind;

use crate::lex::Tok;

/// Aggregate functions: with `GROUP BY`, a window, or no `WHERE`, a read
/// that scans rather than looks up.
const AGGREGATES: &[&str] = &[
    "array_agg",
    "avg",
    "bit_and",
    "bit_or",
    "bool_and",
    "bool_or",
    "count",
    "every",
    "group_concat",
    "json_agg",
    "json_arrayagg",
    "json_object_agg",
    "json_objectagg",
    "jsonb_agg",
    "jsonb_object_agg",
    "max",
    "min",
    "percentile_cont",
    "percentile_disc",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "sum",
    "total",
    "var_pop",
    "var_samp",
    "variance",
];

/// Functions that change the database or the session although they are
/// called from a `SELECT`: such a select is a write.
const WRITING_FUNCTIONS: &[&str] = &[
    "get_lock",
    "lo_create",
    "lo_import",
    "lo_unlink",
    "nextval",
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_advisory_xact_lock",
    "pg_advisory_xact_lock_shared",
    "pg_cancel_backend",
    "pg_notify",
    "pg_reload_conf",
    "pg_terminate_backend",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared",
    "release_all_locks",
    "release_lock",
    "set_config",
    "setval",
    "txid_current",
];

/// Splits a token stream into statements at `;`.
pub(crate) fn statements(toks: &[Tok]) -> impl Iterator<Item = &[Tok]> {
    toks.split(|t| t.is_punct(";")).filter(|s| !s.is_empty())
}

fn word(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Word(w)) => Some(w),
        _ => None,
    }
}

/// Whether `name(` is called anywhere in `toks`.
fn calls(toks: &[Tok], names: &[&str]) -> bool {
    toks.windows(2)
        .any(|w| w[1].is_punct("(") && word(Some(&w[0])).is_some_and(|n| names.contains(&n)))
}

fn has_word(toks: &[Tok], w: &str) -> bool {
    toks.iter().any(|t| t.is_word(w))
}

fn has_pair(toks: &[Tok], a: &str, b: &str) -> bool {
    toks.windows(2).any(|w| w[0].is_word(a) && w[1].is_word(b))
}

/// The kind of one statement.
fn classify_one(toks: &[Tok]) -> QueryKind {
    // `(SELECT ..) UNION (SELECT ..)` starts with parentheses.
    let start = toks.iter().position(|t| !t.is_punct("(")).unwrap_or(0);
    let toks = &toks[start..];
    let Some(first) = word(toks.first()) else {
        return QueryKind::Write;
    };
    let second = word(toks.get(1));
    match first {
        "begin" | "start" | "commit" | "rollback" | "savepoint" | "release" | "abort" | "end" => {
            QueryKind::Transaction
        }
        "prepare" if second == Some("transaction") => QueryKind::Transaction,
        "set" if second == Some("transaction") || second == Some("constraints") => {
            QueryKind::Transaction
        }
        "xa" => QueryKind::Transaction,
        "select" | "values" | "table" | "with" => read_or_write(toks),
        "show" | "describe" | "desc" => QueryKind::Read,
        "explain" => {
            // EXPLAIN ANALYZE runs the statement: it is what it explains.
            let inner = toks.iter().position(|t| {
                word(Some(t)).is_some_and(|w| {
                    matches!(
                        w,
                        "select" | "insert" | "update" | "delete" | "merge" | "with" | "values"
                    )
                })
            });
            match inner {
                Some(i) if has_word(&toks[..i], "analyze") || has_word(&toks[..i], "analyse") => {
                    classify_one(&toks[i..])
                }
                _ => QueryKind::Read,
            }
        }
        "pragma" => {
            if toks.iter().any(|t| t.is_punct("=")) {
                QueryKind::Maintenance
            } else {
                QueryKind::Read
            }
        }
        "copy" => {
            // `COPY t TO ..` reads; `COPY t FROM ..` writes.
            let mut depth = 0i32;
            for t in toks {
                match t {
                    Tok::Punct("(") => depth += 1,
                    Tok::Punct(")") => depth -= 1,
                    Tok::Word(w) if depth == 0 && w == "to" => return QueryKind::Read,
                    Tok::Word(w) if depth == 0 && w == "from" => return QueryKind::Write,
                    _ => {}
                }
            }
            QueryKind::Write
        }
        "create" | "alter" | "drop" | "truncate" | "vacuum" | "analyze" | "analyse" | "reindex"
        | "cluster" | "grant" | "revoke" | "comment" | "refresh" | "optimize" | "repair"
        | "check" | "checkpoint" | "rename" | "set" | "reset" | "discard" | "listen"
        | "unlisten" | "prepare" | "deallocate" | "security" | "import" | "flush" | "reassign"
        | "attach" | "detach" | "use" | "reindexdb" => QueryKind::Maintenance,
        _ => QueryKind::Write,
    }
}

/// A `SELECT`, `VALUES`, `TABLE` or `WITH`: a read unless it writes (a
/// data-modifying CTE, `FOR UPDATE`, `SELECT .. INTO`, a writing function),
/// analytics when it aggregates over no `WHERE`, groups or windows.
fn read_or_write(toks: &[Tok]) -> QueryKind {
    let writes = (toks.first().is_some_and(|t| t.is_word("with"))
        && ["insert", "update", "delete", "merge"]
            .iter()
            .any(|w| has_word(toks, w)))
        || has_pair(toks, "for", "update")
        || has_pair(toks, "for", "share")
        || has_pair(toks, "for", "no")
        || has_pair(toks, "for", "key")
        || has_pair(toks, "lock", "in")
        || has_word(toks, "into")
        || calls(toks, WRITING_FUNCTIONS);
    if writes {
        return QueryKind::Write;
    }
    let windowed = toks
        .windows(2)
        .any(|w| w[0].is_word("over") && (w[1].is_punct("(") || matches!(w[1], Tok::Word(_))));
    let grouped = has_pair(toks, "group", "by")
        || calls(toks, &["rollup", "cube"])
        || has_pair(toks, "grouping", "sets");
    let aggregates_everything = calls(toks, AGGREGATES) && !has_word(toks, "where");
    if windowed || grouped || aggregates_everything {
        QueryKind::Analytics
    } else {
        QueryKind::Read
    }
}

/// The kind of a whole text: of its one statement, or for several the
/// first that applies of transaction, maintenance, write, analytics, read.
/// Text with no statement at all (empty, only comments) is a read.
pub(crate) fn classify(toks: &[Tok]) -> QueryKind {
    let mut kinds = statements(toks).map(classify_one).peekable();
    if kinds.peek().is_none() {
        return QueryKind::Read;
    }
    let rank = |k: QueryKind| match k {
        QueryKind::Transaction => 0,
        QueryKind::Maintenance => 1,
        QueryKind::Write => 2,
        QueryKind::Analytics => 3,
        QueryKind::Read => 4,
        // A kind added to the core later is treated as a write.
        _ => 2,
    };
    kinds.min_by_key(|k| rank(*k)).unwrap_or(QueryKind::Write)
}
