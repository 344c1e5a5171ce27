//! [`MysqlConnection`]: a `mysql_async::Conn` plus the state the pool reads
//! on return — whether a transaction is open, whether a query was left in
//! flight by a dropped future, whether the session was used at all, and
//! whether a fatal error was seen. Implements the uniform query face.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use mysql_async::consts::{ColumnFlags, ColumnType, StatusFlags};
use mysql_async::prelude::Queryable as _;
use mysql_async::{Column, Conn, Params, Value as MyValue};
use tidepool::{Queryable, Row, Value};
use tidepool_sql::{Analyzer, Dialect, SessionState};

use crate::error::MysqlError;
use crate::params::rewrite_dollar_placeholders;

/// Runs `$body` (which uses `$c: &mut Conn`) as one tracked operation.
/// "This command is not supported in the prepared statement protocol yet".
const ER_UNSUPPORTED_PS: u16 = 1295;

macro_rules! tracked {
    ($self:ident, $c:ident => $body:expr) => {{
        $self.begin_op();
        let result = {
            let $c = &mut $self.conn;
            $body
        };
        $self.end_op(result)
    }};
}

/// A MySQL/MariaDB connection with tracked state.
///
/// Derefs to [`mysql_async::Conn`] for native access. Native calls are not
/// tracked for "in flight" (the uniform face is), but the server's own
/// transaction flag, which every OK packet carries, is checked on return,
/// so a raw `BEGIN` through native access is still rolled back.
///
/// Note: `mysql_async::Conn`'s own `Debug` prints its options, password
/// included. This type's `Debug` does not; avoid `{:?}` on `*conn`.
pub struct MysqlConnection {
    conn: Conn,
    in_transaction: bool,
    in_flight: bool,
    touched: bool,
    native: bool,
    broken: bool,
    /// Session-state dirty bits: the kinds of session state (user
    /// variables, settings, named locks, temporary tables, ...) the
    /// statements sent since the last reset touch, read from their text
    /// by tidepool-sql (once per text).
    session: SessionState,
    /// What the session's setup (the `after_connect` hook) touched.
    baseline: SessionState,
    track_session: bool,
}

impl std::fmt::Debug for MysqlConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlConnection")
            .field("id", &self.conn.id())
            .field("in_transaction", &self.in_transaction)
            .field("in_flight", &self.in_flight)
            .field("broken", &self.broken)
            .field("session_touched", &self.session)
            .finish()
    }
}

impl Deref for MysqlConnection {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl DerefMut for MysqlConnection {
    fn deref_mut(&mut self) -> &mut Conn {
        // Anything can happen through native access: the session counts
        // as used, so the Clean policy resets it.
        self.touched = true;
        self.native = true;
        &mut self.conn
    }
}

impl MysqlConnection {
    /// Connects with `opts` (a single connection, not `mysql_async`'s pool).
    pub async fn connect(opts: mysql_async::Opts) -> Result<Self, MysqlError> {
        let conn = Conn::new(opts).await?;
        Ok(Self::from_conn(conn))
    }

    /// Wraps an open connection.
    pub fn from_conn(conn: Conn) -> Self {
        MysqlConnection {
            conn,
            in_transaction: false,
            in_flight: false,
            touched: false,
            native: false,
            broken: false,
            session: SessionState::EMPTY,
            baseline: SessionState::EMPTY,
            track_session: true,
        }
    }

    /// Turns the session-state dirty bits on or off (on by default; see
    /// [`MysqlManager::with_session_tracking`](crate::MysqlManager::with_session_tracking)).
    pub fn set_session_tracking(&mut self, on: bool) {
        self.track_session = on;
    }

    /// The kinds of session state the statements sent since the last reset
    /// may have changed, as the dirty bits read them. Under
    /// [`ResetPolicy::Fast`](crate::ResetPolicy::Fast) any of them makes
    /// the return reset the session (`COM_RESET_CONNECTION`). Statements
    /// sent natively through `DerefMut` are not read (native use stays free
    /// under `Fast`, as before): use `Clean` for code that changes session
    /// state that way.
    ///
    /// ```no_run
    /// # async fn demo(pool: tidepool::Pool<tidepool_mysql::MysqlManager>) -> Result<(), Box<dyn std::error::Error>> {
    /// use tidepool::Queryable;
    /// let mut conn = pool.get().await?;
    /// conn.execute_values("SET @cart = 42", &[]).await?;
    /// assert!(!conn.session_touched().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn session_touched(&self) -> SessionState {
        self.session
    }

    /// Makes the session as it stands the starting point of every
    /// borrower: forgets the dirty bits, so nothing sent so far is reset
    /// on return. The pool calls it after its `after_connect` hook
    /// ([`tidepool::Manager::session_baseline`]). Under `Fast` and
    /// `Verified`, a borrower who then changes session state makes the
    /// connection discarded rather than reset (the reset would lose the
    /// setup too, [`has_session_setup`](Self::has_session_setup)); under
    /// `Clean`, a later reset (a
    /// borrower's own `SET`, say) is `COM_RESET_CONNECTION`, which takes
    /// the session back to the server's defaults, setup included.
    ///
    /// ```no_run
    /// # async fn demo(mut conn: tidepool_mysql::MysqlConnection) -> Result<(), tidepool_mysql::MysqlError> {
    /// use tidepool::Queryable;
    /// conn.execute_values("SET time_zone = '+00:00'", &[]).await?;
    /// conn.mark_session_baseline();
    /// assert!(conn.session_touched().is_empty() && conn.has_session_setup());
    /// # Ok(()) }
    /// ```
    pub fn mark_session_baseline(&mut self) {
        self.baseline |= self.session;
        self.session = SessionState::EMPTY;
        self.touched = false;
    }

    /// Whether the session's setup (see
    /// [`mark_session_baseline`](Self::mark_session_baseline)) touched any
    /// session state: then `COM_RESET_CONNECTION`, which clears it all,
    /// would lose it, and under `Fast` and `Verified` a connection whose
    /// borrower changed session state is discarded instead of reset.
    pub fn has_session_setup(&self) -> bool {
        !self.baseline.is_empty()
    }

    /// Records the session state `sql` touches (cached per text).
    fn note_sql(&mut self, sql: &str) {
        if self.track_session {
            self.session |= Analyzer::global(Dialect::MySql).session(sql);
        }
    }

    /// Unwraps the native connection.
    pub fn into_inner(self) -> Conn {
        self.conn
    }

    /// The server's connection id (what `KILL` takes).
    pub fn connection_id(&self) -> u32 {
        self.conn.id()
    }

    /// Whether a query future was dropped before it finished: the protocol
    /// state is unknown, so the pool discards the connection.
    pub fn has_query_in_flight(&self) -> bool {
        self.in_flight
    }

    /// Whether a fatal error (lost or killed connection) was seen.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Whether the session ran anything since it was last reset.
    pub fn was_used(&self) -> bool {
        self.touched
    }

    /// The server's transaction flag from its last OK packet, if any.
    pub fn server_in_transaction(&self) -> Option<bool> {
        self.conn.last_ok_packet().map(|ok| {
            ok.status_flags()
                .contains(StatusFlags::SERVER_STATUS_IN_TRANS)
        })
    }

    /// Whether the connection may be inside a transaction. The server's
    /// flag from its last OK packet is authoritative when there is one; an
    /// error clears it, and then our own tracking decides — or, if native
    /// access was used meanwhile (which we cannot track), "maybe".
    pub fn maybe_in_transaction(&self) -> bool {
        match self.server_in_transaction() {
            Some(open) => open,
            None => self.in_transaction || self.native,
        }
    }

    pub(crate) fn mark_clean(&mut self) {
        self.in_transaction = false;
        self.touched = false;
        self.native = false;
        self.session = SessionState::EMPTY;
    }

    /// Marks the start of a tracked operation: the session is used and a
    /// query is in flight until [`end_op`](Self::end_op) runs (it does not
    /// if the future is dropped).
    fn begin_op(&mut self) {
        self.touched = true;
        self.in_flight = true;
    }

    /// Ends a tracked operation: records fatal errors and refreshes the
    /// transaction flag from the server.
    fn end_op<T>(&mut self, result: Result<T, mysql_async::Error>) -> Result<T, MysqlError> {
        self.in_flight = false;
        let result = result.map_err(MysqlError::from);
        if let Err(e) = &result {
            if e.is_fatal() {
                tracing::debug!(target: "tidepool::mysql", connection_id = self.conn.id(), error = %e, "fatal error; the connection will be discarded");
                self.broken = true;
            }
        }
        if let Some(server) = self.server_in_transaction() {
            self.in_transaction = server;
        }
        result
    }

    /// Resets the session with `COM_RESET_CONNECTION` (rolls back, drops
    /// temporary tables, clears user variables and session settings,
    /// releases locks). Falls back to `ROLLBACK` on servers without it.
    pub async fn reset_session(&mut self) -> Result<(), MysqlError> {
        let supported = tracked!(self, c => c.reset().await)?;
        if !supported {
            tracked!(self, c => c.query_drop("ROLLBACK").await)?;
        }
        self.mark_clean();
        Ok(())
    }

    /// Rolls back any open transaction (`ROLLBACK` is harmless outside one).
    pub async fn rollback_if_open(&mut self) -> Result<(), MysqlError> {
        if self.maybe_in_transaction() {
            tracked!(self, c => c.query_drop("ROLLBACK").await)?;
            self.in_transaction = false;
        }
        Ok(())
    }

    /// Pings the server. A ping does not count as using the session.
    pub async fn ping(&mut self) -> Result<(), MysqlError> {
        let touched = self.touched;
        let result = tracked!(self, c => c.ping().await);
        self.touched = touched;
        result
    }
}

fn to_mysql(position: usize, value: &Value) -> Result<MyValue, MysqlError> {
    use chrono::{Datelike, Timelike};
    let datetime = |t: &chrono::NaiveDateTime| -> Result<MyValue, MysqlError> {
        let year = u16::try_from(t.year()).map_err(|_| MysqlError::UnsupportedValue {
            position,
            reason: "the year is outside MySQL's range (0 to 9999)".into(),
        })?;
        Ok(MyValue::Date(
            year,
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
            t.nanosecond() / 1_000 % 1_000_000,
        ))
    };
    Ok(match value {
        Value::Null => MyValue::NULL,
        Value::Bool(b) => MyValue::Int(i64::from(*b)),
        Value::Int(i) => MyValue::Int(*i),
        Value::Float(f) => MyValue::Double(*f),
        Value::Text(s) => MyValue::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => MyValue::Bytes(b.clone()),
        Value::Timestamp(t) => datetime(t)?,
        // MySQL's TIMESTAMP is shown in the session's time zone: this is
        // the UTC wall-clock time, right when the session's is UTC.
        Value::TimestampTz(t) => datetime(&t.naive_utc())?,
        Value::Date(d) => datetime(&d.and_time(chrono::NaiveTime::MIN))?,
        Value::Time(t) => MyValue::Time(
            false,
            0,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
            t.nanosecond() / 1_000 % 1_000_000,
        ),
        // As text, which the server converts exactly (a double would not).
        Value::Decimal(d) => MyValue::Bytes(d.as_str().as_bytes().to_vec()),
        // For CHAR(36); a BINARY(16) column takes `Value::Bytes` of the
        // UUID's 16 bytes instead (see the README).
        Value::Uuid(u) => MyValue::Bytes(u.hyphenated().to_string().into_bytes()),
        Value::Json(j) => MyValue::Bytes(j.to_string().into_bytes()),
        other => {
            return Err(MysqlError::UnsupportedValue {
                position,
                reason: format!("no MySQL encoding for a {} value", other.type_name()),
            })
        }
    })
}

const BINARY_CHARSET: u16 = 63;

fn is_bool_column(col: &Column) -> bool {
    col.column_type() == ColumnType::MYSQL_TYPE_TINY && col.column_length() == 1
}

fn text_of(bytes: Vec<u8>, col: &Column) -> Value {
    if col.character_set() == BINARY_CHARSET
        && !is_temporal(col.column_type())
        && !is_numeric(col.column_type())
    {
        return Value::Bytes(bytes);
    }
    match String::from_utf8(bytes) {
        Ok(s) => Value::Text(s),
        Err(e) => Value::Bytes(e.into_bytes()),
    }
}

fn is_numeric(t: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        t,
        MYSQL_TYPE_TINY
            | MYSQL_TYPE_SHORT
            | MYSQL_TYPE_INT24
            | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG
            | MYSQL_TYPE_YEAR
            | MYSQL_TYPE_FLOAT
            | MYSQL_TYPE_DOUBLE
            | MYSQL_TYPE_DECIMAL
            | MYSQL_TYPE_NEWDECIMAL
    )
}

fn is_temporal(t: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        t,
        MYSQL_TYPE_DATE
            | MYSQL_TYPE_NEWDATE
            | MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_DATETIME2
            | MYSQL_TYPE_TIMESTAMP
            | MYSQL_TYPE_TIMESTAMP2
            | MYSQL_TYPE_TIME
            | MYSQL_TYPE_TIME2
    )
}

#[allow(clippy::too_many_arguments)]
fn date_value(
    ty: ColumnType,
    y: u16,
    mo: u8,
    d: u8,
    h: u8,
    mi: u8,
    s: u8,
    us: u32,
) -> Option<Value> {
    let date = chrono::NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(d))?;
    if matches!(
        ty,
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE
    ) {
        return Some(Value::Date(date));
    }
    date.and_hms_micro_opt(u32::from(h), u32::from(mi), u32::from(s), us)
        .map(Value::Timestamp)
}

/// A `TIME` within a day is a time of day; MySQL's wider durations
/// (negative, or 24 hours and more) stay text.
fn time_value(neg: bool, days: u32, h: u8, mi: u8, s: u8, us: u32) -> Value {
    let time_of_day = (!neg && days == 0)
        .then(|| {
            chrono::NaiveTime::from_hms_micro_opt(u32::from(h), u32::from(mi), u32::from(s), us)
        })
        .flatten();
    if let Some(t) = time_of_day {
        return Value::Time(t);
    }
    let hours = days * 24 + u32::from(h);
    let sign = if neg { "-" } else { "" };
    let frac = if us > 0 {
        format!(".{us:06}")
    } else {
        String::new()
    };
    Value::Text(format!("{sign}{hours:02}:{mi:02}:{s:02}{frac}"))
}

/// Converts a value as the server sent it (binary protocol: typed; text
/// protocol: bytes) into a [`Value`], guided by the column's type.
fn from_mysql(value: MyValue, col: &Column) -> Value {
    use ColumnType::*;
    let ty = col.column_type();
    match value {
        MyValue::NULL => Value::Null,
        MyValue::Int(i) if is_bool_column(col) && (i == 0 || i == 1) => Value::Bool(i == 1),
        MyValue::Int(i) => Value::Int(i),
        // BIGINT UNSIGNED past i64::MAX: exact, as a decimal.
        MyValue::UInt(u) => i64::try_from(u).map_or_else(|_| Value::Decimal(u.into()), Value::Int),
        MyValue::Float(f) => Value::Float(f64::from(f)),
        MyValue::Double(f) => Value::Float(f),
        MyValue::Date(y, mo, d, h, mi, s, us) => date_value(ty, y, mo, d, h, mi, s, us)
            .unwrap_or_else(|| Value::Text(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))),
        MyValue::Time(neg, days, h, mi, s, us) => time_value(neg, days, h, mi, s, us),
        MyValue::Bytes(bytes) => {
            // The text protocol sends everything as text: parse by type.
            let text = || std::str::from_utf8(&bytes).ok().map(str::trim);
            let parsed = match ty {
                MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
                | MYSQL_TYPE_LONGLONG | MYSQL_TYPE_YEAR => text().and_then(|t| {
                    let unsigned = col.flags().contains(ColumnFlags::UNSIGNED_FLAG);
                    match t.parse::<i64>() {
                        Ok(i) => Some(from_mysql(MyValue::Int(i), col)),
                        Err(_) if unsigned => t.parse().ok().map(Value::Decimal),
                        Err(_) => None,
                    }
                }),
                MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => {
                    text().and_then(|t| t.parse::<f64>().ok()).map(Value::Float)
                }
                // The binary protocol sends decimals as text too.
                MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => {
                    text().and_then(|t| t.parse().ok()).map(Value::Decimal)
                }
                MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => text()
                    .and_then(|t| chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok())
                    .map(Value::Date),
                MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => text().and_then(parse_time),
                // MySQL's JSON type; MariaDB's JSON is LONGTEXT and reads
                // as text.
                MYSQL_TYPE_JSON => serde_json::from_slice(&bytes).ok().map(Value::Json),
                MYSQL_TYPE_DATETIME
                | MYSQL_TYPE_DATETIME2
                | MYSQL_TYPE_TIMESTAMP
                | MYSQL_TYPE_TIMESTAMP2 => text().and_then(parse_datetime).map(Value::Timestamp),
                MYSQL_TYPE_BIT if is_bool_column(col) || bytes.len() == 1 => {
                    bytes.first().map(|b| Value::Bool(*b != 0))
                }
                _ => None,
            };
            parsed.unwrap_or_else(|| text_of(bytes, col))
        }
    }
}

/// A text-protocol TIME: a time of day when it is one, else `None` (the
/// caller keeps it as text).
fn parse_time(s: &str) -> Option<Value> {
    chrono::NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
        .ok()
        .filter(|_| s.as_bytes().get(2) == Some(&b':'))
        .map(Value::Time)
}

fn parse_datetime(s: &str) -> Option<chrono::NaiveDateTime> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

fn convert_rows(rows: Vec<mysql_async::Row>) -> Vec<Row> {
    let mut names: Option<Arc<[String]>> = None;
    rows.into_iter()
        .map(|row| {
            let columns = row.columns();
            let names = names
                .get_or_insert_with(|| columns.iter().map(|c| c.name_str().into_owned()).collect())
                .clone();
            // `Row::unwrap` is mysql_async's infallible "take the values".
            let values = mysql_async::Row::unwrap(row)
                .into_iter()
                .zip(columns.iter())
                .map(|(v, c)| from_mysql(v, c))
                .collect();
            Row::new(names, values)
        })
        .collect()
}

fn prepare_params(sql: &str, params: &[Value]) -> Result<(String, Params), MysqlError> {
    let (sql, order) = rewrite_dollar_placeholders(sql)?;
    let ordered: Vec<MyValue> = match order {
        None => params
            .iter()
            .enumerate()
            .map(|(i, v)| to_mysql(i + 1, v))
            .collect::<Result<_, _>>()?,
        Some(order) => {
            let mut used = vec![false; params.len()];
            let values = order
                .iter()
                .map(|&n| {
                    let value = params.get(n - 1).ok_or_else(|| MysqlError::Parameters {
                        reason: format!(
                            "the statement uses parameter ${n}, but {} were given",
                            params.len()
                        ),
                    })?;
                    used[n - 1] = true;
                    to_mysql(n, value)
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(unused) = used.iter().position(|u| !u) {
                return Err(MysqlError::Parameters {
                    reason: format!(
                        "{} parameters were given, but the statement does not use ${}",
                        params.len(),
                        unused + 1
                    ),
                });
            }
            values
        }
    };
    let params = if ordered.is_empty() {
        Params::Empty
    } else {
        Params::Positional(ordered)
    };
    Ok((sql.into_owned(), params))
}

impl Queryable for MysqlConnection {
    type Error = MysqlError;

    async fn execute_values(&mut self, sql: &str, params: &[Value]) -> Result<u64, MysqlError> {
        self.note_sql(sql);
        let (sql, params) = prepare_params(sql, params)?;
        tracked!(self, c => match params {
            Params::Empty => c.query_drop(sql).await,
            params => c.exec_drop(sql, params).await,
        }
        .map(|()| c.affected_rows()))
    }

    async fn query_values(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, MysqlError> {
        self.note_sql(sql);
        let (sql, params) = prepare_params(sql, params)?;
        let rows: Vec<mysql_async::Row> = tracked!(self, c => match params {
            // Prepared (and cached per connection) even without
            // parameters: the server parses the statement once instead of
            // on every call (SELECT 1: ~0.6x mysql_async's prepared path as
            // text). Statements the server cannot prepare go as text.
            Params::Empty => match c.exec(sql.as_str(), ()).await {
                Err(mysql_async::Error::Server(e)) if e.code == ER_UNSUPPORTED_PS => {
                    c.query(sql).await
                }
                other => other,
            },
            params => c.exec(sql, params).await,
        })?;
        Ok(convert_rows(rows))
    }

    async fn query_one_values(&mut self, sql: &str, params: &[Value]) -> Result<Row, MysqlError> {
        let mut rows = self.query_values(sql, params).await?;
        match rows.len() {
            1 => rows.pop().ok_or(MysqlError::RowCount { rows: 0 }),
            n => Err(MysqlError::RowCount { rows: n }),
        }
    }

    async fn begin(&mut self) -> Result<(), MysqlError> {
        tracked!(self, c => c.query_drop("BEGIN").await)?;
        self.in_transaction = true;
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), MysqlError> {
        tracked!(self, c => c.query_drop("COMMIT").await)?;
        self.in_transaction = false;
        Ok(())
    }

    async fn rollback(&mut self) -> Result<(), MysqlError> {
        tracked!(self, c => c.query_drop("ROLLBACK").await)?;
        self.in_transaction = false;
        Ok(())
    }

    fn in_transaction(&self) -> bool {
        self.server_in_transaction().unwrap_or(self.in_transaction)
    }
}
