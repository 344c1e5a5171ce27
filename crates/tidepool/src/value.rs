//! [`Value`]: one parameter or column value on the uniform query face, of a
//! type every driver can send and read. The drivers map their native types
//! to these variants (their READMEs have the tables); anything else is text
//! or a driver error that says to cast in SQL. Nothing here prints a value
//! into an error: values may be secrets.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use crate::decimal::Decimal;

/// A parameter or column value of a basic type.
///
/// ```
/// use tidepool::Value;
/// let v: Value = 42i64.into();
/// assert_eq!(v.as_i64(), Some(42));
/// assert!(Value::Null.is_null());
/// let day = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
/// assert_eq!(Value::from(day).type_name(), "date");
/// ```
///
/// New variants may be added (the enum is `#[non_exhaustive]`): match with
/// a `_` arm, or read values with [`Row::try_get`](crate::Row::try_get).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// Any integer column (smallint, int, bigint) widened to 64 bits.
    Int(i64),
    /// Any floating-point column widened to 64 bits.
    Float(f64),
    /// Text.
    Text(String),
    /// Raw bytes (bytea, blob).
    Bytes(Vec<u8>),
    /// A point in time without zone, by convention UTC (`timestamp`,
    /// `DATETIME`).
    Timestamp(NaiveDateTime),
    /// A calendar date (`date`, `DATE`).
    Date(NaiveDate),
    /// A time of day without zone, to the microsecond (`time`, a MySQL
    /// `TIME` between 00:00 and 24:00).
    Time(NaiveTime),
    /// An instant (`timestamptz`).
    TimestampTz(DateTime<Utc>),
    /// An exact decimal (`numeric`, `DECIMAL`), every digit kept.
    Decimal(Decimal),
    /// A UUID (`uuid`).
    Uuid(uuid::Uuid),
    /// A JSON document (`json`, `jsonb`, MySQL's `JSON`).
    Json(serde_json::Value),
}

impl Value {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    /// The float (integers convert), if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
    /// The text, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
    /// The timestamp, if this is one.
    pub fn as_timestamp(&self) -> Option<NaiveDateTime> {
        match self {
            Value::Timestamp(t) => Some(*t),
            _ => None,
        }
    }
    /// The date, if this is one.
    pub fn as_date(&self) -> Option<NaiveDate> {
        match self {
            Value::Date(d) => Some(*d),
            _ => None,
        }
    }
    /// The time of day, if this is one.
    pub fn as_time(&self) -> Option<NaiveTime> {
        match self {
            Value::Time(t) => Some(*t),
            _ => None,
        }
    }
    /// The instant, if this is one.
    pub fn as_timestamp_tz(&self) -> Option<DateTime<Utc>> {
        match self {
            Value::TimestampTz(t) => Some(*t),
            _ => None,
        }
    }
    /// The decimal, if this is one.
    pub fn as_decimal(&self) -> Option<&Decimal> {
        match self {
            Value::Decimal(d) => Some(d),
            _ => None,
        }
    }
    /// The UUID, if this is one.
    pub fn as_uuid(&self) -> Option<uuid::Uuid> {
        match self {
            Value::Uuid(u) => Some(*u),
            _ => None,
        }
    }
    /// The JSON document, if this is one.
    pub fn as_json(&self) -> Option<&serde_json::Value> {
        match self {
            Value::Json(j) => Some(j),
            _ => None,
        }
    }

    /// The variant's name in lower case (`"int"`, `"timestamptz"`, ...),
    /// for error messages that must say what was found without showing it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Timestamp(_) => "timestamp",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::TimestampTz(_) => "timestamptz",
            Value::Decimal(_) => "decimal",
            Value::Uuid(_) => "uuid",
            Value::Json(_) => "json",
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident($conv:expr)),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::$variant($conv(v)) }
        })*
    };
}

value_from! {
    bool => Bool(|v| v),
    i8 => Int(i64::from),
    i16 => Int(i64::from),
    i32 => Int(i64::from),
    i64 => Int(|v| v),
    u8 => Int(i64::from),
    u16 => Int(i64::from),
    u32 => Int(i64::from),
    f32 => Float(f64::from),
    f64 => Float(|v| v),
    String => Text(|v| v),
    &str => Text(str::to_string),
    Vec<u8> => Bytes(|v| v),
    &[u8] => Bytes(<[u8]>::to_vec),
    NaiveDateTime => Timestamp(|v| v),
    NaiveDate => Date(|v| v),
    NaiveTime => Time(|v| v),
    DateTime<Utc> => TimestampTz(|v| v),
    Decimal => Decimal(|v| v),
    uuid::Uuid => Uuid(|v| v),
    serde_json::Value => Json(|v| v),
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
