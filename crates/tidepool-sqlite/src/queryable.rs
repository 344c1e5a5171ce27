//! The uniform query face ([`tidepool::Queryable`]) on [`SqliteConnection`]:
//! binding [`Value`] parameters, reading rows back as values, and the
//! transaction verbs. All SQLite work runs on the connection's thread.
//!
//! Placeholders: `?` (in order), `?N` and `$N` (by number, so PostgreSQL-style
//! SQL works unchanged). Named parameters (`:name`, `@name`) are bound in
//! order of first appearance.
//!
//! SQLite has no date, decimal, UUID or JSON types: those values are stored
//! as text (ISO-8601, canonical decimal, hyphenated UUID, JSON), and a
//! column's declared type says which `Value` to read the text back as
//! (`decl_of`). Text that does not parse stays `Text` rather than failing
//! the query.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rusqlite::types::{Value as SqlValue, ValueRef};
use tidepool::{Decimal, Queryable, Row, Value};

use crate::connection::SqliteConnection;
use crate::error::SqliteError;

/// The text form timestamps are stored in: ISO-8601 with a space, as
/// SQLite's own date functions write them, so `datetime('now')` compares.
const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";

/// Formats a timestamp the way this driver binds it.
///
/// ```
/// let t = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap().and_hms_milli_opt(13, 5, 9, 250).unwrap();
/// assert_eq!(tidepool_sqlite::format_timestamp(&t), "2024-02-29 13:05:09.250");
/// ```
pub fn format_timestamp(t: &NaiveDateTime) -> String {
    t.format(TIMESTAMP_FORMAT).to_string()
}

/// Parses the timestamp forms SQLite and this driver write
/// (`YYYY-MM-DD HH:MM[:SS[.fff]]`, with `T` or a space, an optional
/// trailing `Z`, or a bare date).
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().trim_end_matches('Z');
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t);
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// Parses an instant: a `Z` or `±HH:MM` offset is honoured, and text
/// without one (what `CURRENT_TIMESTAMP` writes) is UTC.
fn parse_timestamp_tz(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%:z"]
        .iter()
        .find_map(|fmt| DateTime::parse_from_str(s, fmt).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| parse_timestamp(s).map(|t| t.and_utc()))
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
}

fn to_sql(position: usize, value: &Value) -> Result<SqlValue, SqliteError> {
    Ok(match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Float(f) => SqlValue::Real(*f),
        Value::Text(s) => SqlValue::Text(s.clone()),
        Value::Bytes(b) => SqlValue::Blob(b.clone()),
        Value::Timestamp(t) => SqlValue::Text(format_timestamp(t)),
        // With an explicit offset, which SQLite's date functions honour.
        Value::TimestampTz(t) => {
            SqlValue::Text(format!("{}+00:00", format_timestamp(&t.naive_utc())))
        }
        Value::Date(d) => SqlValue::Text(d.format("%Y-%m-%d").to_string()),
        Value::Time(t) => SqlValue::Text(t.format("%H:%M:%S%.f").to_string()),
        Value::Decimal(d) => SqlValue::Text(d.to_string()),
        Value::Uuid(u) => SqlValue::Text(u.hyphenated().to_string()),
        Value::Json(j) => SqlValue::Text(j.to_string()),
        other => {
            return Err(SqliteError::UnsupportedValue {
                position,
                reason: format!("no SQLite mapping for a {} value", other.type_name()),
            })
        }
    })
}

/// What a declared column type tells us about reading it back.
#[derive(Clone, Copy)]
enum Decl {
    Plain,
    Timestamp,
    TimestampTz,
    Date,
    Time,
    Bool,
    Decimal,
    Uuid,
    Json,
}

/// The declared type's reading: `TIMESTAMPTZ` or `TIMESTAMP WITH TIME
/// ZONE` → instants; any other `TIMESTAMP` or `DATETIME` → timestamps;
/// and by the type's first word, `DATE`, `TIME`, `BOOLEAN`/`BOOL`,
/// `DECIMAL`/`NUMERIC`, `UUID` and `JSON`.
fn decl_of(decl: Option<&str>) -> Decl {
    let Some(decl) = decl else { return Decl::Plain };
    let upper = decl.to_ascii_uppercase();
    let base = upper
        .split(|c: char| c == '(' || c.is_ascii_whitespace())
        .next()
        .unwrap_or("");
    if upper.contains("TIMESTAMPTZ")
        || (upper.contains("TIMESTAMP") && upper.contains("WITH TIME ZONE"))
    {
        Decl::TimestampTz
    } else if upper.contains("TIMESTAMP") || upper.contains("DATETIME") {
        Decl::Timestamp
    } else {
        match base {
            "DATE" => Decl::Date,
            "TIME" => Decl::Time,
            "BOOLEAN" | "BOOL" => Decl::Bool,
            "DECIMAL" | "NUMERIC" => Decl::Decimal,
            "UUID" => Decl::Uuid,
            "JSON" => Decl::Json,
            _ => Decl::Plain,
        }
    }
}

fn from_text(text: String, decl: Decl) -> Value {
    let parsed = match decl {
        Decl::Timestamp => parse_timestamp(&text).map(Value::Timestamp),
        Decl::TimestampTz => parse_timestamp_tz(&text).map(Value::TimestampTz),
        Decl::Date => NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .ok()
            .map(Value::Date),
        Decl::Time => parse_time(&text).map(Value::Time),
        Decl::Decimal => text.parse::<Decimal>().ok().map(Value::Decimal),
        Decl::Uuid => uuid::Uuid::try_parse(text.trim()).ok().map(Value::Uuid),
        Decl::Json => serde_json::from_str(&text).ok().map(Value::Json),
        Decl::Plain | Decl::Bool => None,
    };
    parsed.unwrap_or(Value::Text(text))
}

fn from_sql(value: ValueRef<'_>, decl: Decl) -> Value {
    match (value, decl) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(i), Decl::Bool) if i == 0 || i == 1 => Value::Bool(i == 1),
        (ValueRef::Integer(i), Decl::Decimal) => Value::Decimal(i.into()),
        (ValueRef::Integer(i), _) => Value::Int(i),
        // NUMERIC affinity already made this a double (15 significant
        // digits): its shortest text is the most that is left.
        (ValueRef::Real(f), Decl::Decimal) => {
            Decimal::from_f64(f).map_or(Value::Float(f), Value::Decimal)
        }
        (ValueRef::Real(f), _) => Value::Float(f),
        (ValueRef::Text(bytes), decl) => {
            from_text(String::from_utf8_lossy(bytes).into_owned(), decl)
        }
        (ValueRef::Blob(b), Decl::Uuid) if b.len() == 16 => {
            uuid::Uuid::from_slice(b).map_or_else(|_| Value::Bytes(b.to_vec()), Value::Uuid)
        }
        (ValueRef::Blob(b), _) => Value::Bytes(b.to_vec()),
    }
}

/// Binds `params` to `stmt`'s placeholders: `?N`/`$N` by number, the rest
/// in order.
fn bind(stmt: &mut rusqlite::Statement<'_>, params: &[Value]) -> Result<(), SqliteError> {
    let count = stmt.parameter_count();
    let mut next_positional = 0usize;
    let mut used = vec![false; params.len()];
    for index in 1..=count {
        let numbered = stmt
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$').or_else(|| name.strip_prefix('?')))
            .and_then(|n| n.parse::<usize>().ok());
        let position = match numbered {
            Some(n) if n >= 1 => n,
            Some(_) => {
                return Err(SqliteError::Parameters {
                    reason: "placeholders are numbered from 1".into(),
                });
            }
            None => {
                next_positional += 1;
                next_positional
            }
        };
        let Some(value) = params.get(position - 1) else {
            return Err(SqliteError::Parameters {
                reason: format!(
                    "the statement uses parameter {position}, but {} were given",
                    params.len()
                ),
            });
        };
        used[position - 1] = true;
        stmt.raw_bind_parameter(index, to_sql(position, value)?)?;
    }
    if let Some(unused) = used.iter().position(|u| !u) {
        return Err(SqliteError::Parameters {
            reason: format!(
                "{} parameters were given, but the statement does not use parameter {}",
                params.len(),
                unused + 1
            ),
        });
    }
    Ok(())
}

fn run_query(
    conn: &mut rusqlite::Connection,
    in_memory: bool,
    sql: &str,
    params: &[Value],
    limit: usize,
) -> Result<Vec<Row>, SqliteError> {
    let mut stmt = crate::memdb::prepare(conn, sql, in_memory)?;
    bind(&mut stmt, params)?;
    let columns: Arc<[String]> = stmt
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let decls: Vec<Decl> = stmt
        .columns()
        .iter()
        .map(|c| decl_of(c.decl_type()))
        .collect();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..decls.len())
            .map(|i| row.get_ref(i).map(|v| from_sql(v, decls[i])))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Row::new(Arc::clone(&columns), values));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

fn run_execute(
    conn: &mut rusqlite::Connection,
    in_memory: bool,
    sql: &str,
    params: &[Value],
) -> Result<u64, SqliteError> {
    let before = conn.total_changes();
    let mut stmt = crate::memdb::prepare(conn, sql, in_memory)?;
    bind(&mut stmt, params)?;
    let readonly = stmt.readonly();
    // Step through any rows (a PRAGMA or `INSERT ... RETURNING` yields some)
    // rather than failing as rusqlite's `execute` does.
    let mut rows = stmt.raw_query();
    while rows.next()?.is_some() {}
    drop(rows);
    drop(stmt);
    if readonly || conn.total_changes() == before {
        Ok(0)
    } else {
        Ok(conn.changes())
    }
}

impl Queryable for SqliteConnection {
    type Error = SqliteError;

    async fn execute_values(&mut self, sql: &str, params: &[Value]) -> Result<u64, SqliteError> {
        let (sql, params, in_memory) = (sql.to_string(), params.to_vec(), self.in_memory);
        self.call(move |c| run_execute(c, in_memory, &sql, &params))
            .await
    }

    async fn query_values(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqliteError> {
        let (sql, params, in_memory) = (sql.to_string(), params.to_vec(), self.in_memory);
        self.call(move |c| run_query(c, in_memory, &sql, &params, usize::MAX))
            .await
    }

    async fn query_one_values(&mut self, sql: &str, params: &[Value]) -> Result<Row, SqliteError> {
        let (sql, params, in_memory) = (sql.to_string(), params.to_vec(), self.in_memory);
        let mut rows = self
            .call(move |c| run_query(c, in_memory, &sql, &params, 2))
            .await?;
        match rows.len() {
            1 => rows.pop().ok_or(SqliteError::RowCount { rows: 0 }),
            n => Err(SqliteError::RowCount { rows: n }),
        }
    }

    async fn begin(&mut self) -> Result<(), SqliteError> {
        let sql = self.begin_mode.sql();
        self.call(move |c| c.execute_batch(sql)).await
    }

    async fn commit(&mut self) -> Result<(), SqliteError> {
        self.call(|c| c.execute_batch("COMMIT")).await
    }

    async fn rollback(&mut self) -> Result<(), SqliteError> {
        self.call(|c| c.execute_batch("ROLLBACK")).await
    }

    fn in_transaction(&self) -> bool {
        self.in_transaction_tracked()
    }
}
