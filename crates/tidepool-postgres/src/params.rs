//! Turning [`Value`] parameters into what a statement declares. A prepared
//! statement tells us each parameter's type; a value is converted to it
//! (an `Int` for an `int4` column is sent as `int4`, range-checked; a
//! `Date` for a `timestamptz` as midnight UTC), sent in binary when we know
//! the encoding, and otherwise sent as text for the server's own input
//! function to parse (a `Decimal` for `numeric`, `Json` for `jsonb`, any
//! value for a type we do not encode). In transaction-pooler mode nothing
//! is prepared, so each value carries its own type and text values let the
//! server infer theirs. Errors name types and positions, never values.

use std::error::Error as StdError;

use bytes::BytesMut;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use tidepool::Value;
use tokio_postgres::types::{Format, IsNull, ToSql, Type};

use crate::error::PgError;

type BoxError = Box<dyn StdError + Sync + Send>;

/// One parameter, ready to send.
#[derive(Debug)]
pub(crate) enum Param {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    Oid(u32),
    F32(f32),
    F64(f64),
    /// UTF-8 text for a text-like type (binary format is the bytes).
    Str(String),
    Bytes(Vec<u8>),
    Timestamp(NaiveDateTime),
    TimestampTz(chrono::DateTime<Utc>),
    Date(NaiveDate),
    Time(NaiveTime),
    Uuid(uuid::Uuid),
    /// Text for the server to parse as the declared type.
    TextFormat(String),
}

/// Converts `values` to the declared `types` of a prepared statement.
pub(crate) fn for_declared(values: &[Value], types: &[Type]) -> Result<Vec<Param>, PgError> {
    if values.len() != types.len() {
        return Err(PgError::ParameterCount {
            expected: types.len(),
            got: values.len(),
        });
    }
    values
        .iter()
        .zip(types)
        .enumerate()
        .map(|(i, (v, t))| convert(i + 1, v, t))
        .collect()
}

/// Pairs values with the types sent for an unprepared (pooler-mode) query:
/// integers as int8, floats as float8, decimals as numeric, JSON as jsonb
/// (which PostgreSQL assigns to json columns too), booleans, bytea, dates,
/// times, timestamps and uuids as themselves, text and NULL as `unknown` so
/// the server infers the type.
pub(crate) fn self_typed(values: &[Value]) -> Result<Vec<(Param, Type)>, PgError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            Ok(match v {
                Value::Null => (Param::Null, Type::UNKNOWN),
                Value::Bool(b) => (Param::Bool(*b), Type::BOOL),
                Value::Int(n) => (Param::I64(*n), Type::INT8),
                Value::Float(f) => (Param::F64(*f), Type::FLOAT8),
                Value::Text(s) => (Param::TextFormat(s.clone()), Type::UNKNOWN),
                Value::Bytes(b) => (Param::Bytes(b.clone()), Type::BYTEA),
                Value::Timestamp(t) => (Param::Timestamp(*t), Type::TIMESTAMP),
                Value::TimestampTz(t) => (Param::TimestampTz(*t), Type::TIMESTAMPTZ),
                Value::Date(d) => (Param::Date(*d), Type::DATE),
                Value::Time(t) => (Param::Time(*t), Type::TIME),
                Value::Uuid(u) => (Param::Uuid(*u), Type::UUID),
                Value::Decimal(d) => (Param::TextFormat(d.to_string()), Type::NUMERIC),
                Value::Json(j) => (Param::TextFormat(j.to_string()), Type::JSONB),
                other => return Err(unsupported(i + 1, other)),
            })
        })
        .collect()
}

fn convert(position: usize, value: &Value, ty: &Type) -> Result<Param, PgError> {
    let out_of_range = |what: &str| PgError::Parameter {
        position,
        reason: format!("{what} is out of range for {}", ty.name()),
    };
    Ok(match (value, ty) {
        (Value::Null, _) => Param::Null,
        (Value::Bool(b), &Type::BOOL) => Param::Bool(*b),
        (Value::Int(n), &Type::INT2) => {
            Param::I16(i16::try_from(*n).map_err(|_| out_of_range(&n.to_string()))?)
        }
        (Value::Int(n), &Type::INT4) => {
            Param::I32(i32::try_from(*n).map_err(|_| out_of_range(&n.to_string()))?)
        }
        (Value::Int(n), &Type::INT8) => Param::I64(*n),
        (Value::Int(n), &Type::OID) => {
            Param::Oid(u32::try_from(*n).map_err(|_| out_of_range(&n.to_string()))?)
        }
        (Value::Int(n), &Type::FLOAT4) => Param::F32(*n as f32),
        (Value::Int(n), &Type::FLOAT8) => Param::F64(*n as f64),
        (Value::Float(f), &Type::FLOAT4) => Param::F32(*f as f32),
        (Value::Float(f), &Type::FLOAT8) => Param::F64(*f),
        (Value::Text(s), t) if is_text_like(t) => Param::Str(s.clone()),
        (Value::Bytes(b), &Type::BYTEA) => Param::Bytes(b.clone()),
        (Value::Timestamp(t), &Type::TIMESTAMP) => Param::Timestamp(*t),
        (Value::Timestamp(t), &Type::TIMESTAMPTZ) => Param::TimestampTz(Utc.from_utc_datetime(t)),
        (Value::TimestampTz(t), &Type::TIMESTAMPTZ) => Param::TimestampTz(*t),
        // An instant in a column without zone: its UTC wall-clock time, the
        // same convention `Timestamp` follows the other way.
        (Value::TimestampTz(t), &Type::TIMESTAMP) => Param::Timestamp(t.naive_utc()),
        (Value::Date(d), &Type::DATE) => Param::Date(*d),
        (Value::Date(d), &Type::TIMESTAMP) => Param::Timestamp(d.and_time(NaiveTime::MIN)),
        (Value::Date(d), &Type::TIMESTAMPTZ) => {
            Param::TimestampTz(d.and_time(NaiveTime::MIN).and_utc())
        }
        (Value::Time(t), &Type::TIME) => Param::Time(*t),
        (Value::Uuid(u), &Type::UUID) => Param::Uuid(*u),
        (Value::Bytes(b), t) => match std::str::from_utf8(b) {
            Ok(s) if is_text_like(t) => Param::Str(s.to_string()),
            Ok(s) => Param::TextFormat(s.to_string()),
            Err(_) => {
                return Err(PgError::Parameter {
                    position,
                    reason: format!("bytes that are not UTF-8 cannot be sent as {}", t.name()),
                })
            }
        },
        // Everything else goes as text; the server parses it as the declared
        // type (and says so precisely if it cannot).
        (v, _) => Param::TextFormat(as_text(position, v)?),
    })
}

fn is_text_like(t: &Type) -> bool {
    matches!(
        *t,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

fn as_text(position: usize, v: &Value) -> Result<String, PgError> {
    Ok(match v {
        Value::Bool(b) => if *b { "true" } else { "false" }.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Float(f) if f.is_nan() => "NaN".to_string(),
        Value::Float(f) if f.is_infinite() => {
            if *f > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
        }
        Value::Float(f) => format!("{f:?}"),
        Value::Text(s) => s.clone(),
        Value::Timestamp(t) => t.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
        Value::TimestampTz(t) => t.format("%Y-%m-%d %H:%M:%S%.f+00").to_string(),
        Value::Date(d) => d.format("%Y-%m-%d").to_string(),
        Value::Time(t) => t.format("%H:%M:%S%.f").to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::Uuid(u) => u.hyphenated().to_string(),
        Value::Json(j) => j.to_string(),
        other => return Err(unsupported(position, other)),
    })
}

/// A value this driver has no encoding for (a variant newer than it).
/// Names the type only: the value may be a secret.
fn unsupported(position: usize, value: &Value) -> PgError {
    PgError::Parameter {
        position,
        reason: format!("no PostgreSQL encoding for a {} value", value.type_name()),
    }
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Bool(v) => v.to_sql(ty, out),
            Param::I16(v) => v.to_sql(ty, out),
            Param::I32(v) => v.to_sql(ty, out),
            Param::I64(v) => v.to_sql(ty, out),
            Param::Oid(v) => v.to_sql(ty, out),
            Param::F32(v) => v.to_sql(ty, out),
            Param::F64(v) => v.to_sql(ty, out),
            Param::Str(s) | Param::TextFormat(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Param::Bytes(b) => b.as_slice().to_sql(ty, out),
            Param::Timestamp(t) => t.to_sql(ty, out),
            Param::TimestampTz(t) => t.to_sql(ty, out),
            Param::Date(d) => d.to_sql(ty, out),
            Param::Time(t) => t.to_sql(ty, out),
            Param::Uuid(u) => u.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        // Conversion to the declared type happened in `convert`.
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        match self {
            Param::TextFormat(_) => Format::Text,
            _ => Format::Binary,
        }
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.to_sql(ty, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_int_for_an_int4_parameter_is_sent_as_int4_and_range_checked() {
        assert!(matches!(
            convert(1, &Value::Int(7), &Type::INT4),
            Ok(Param::I32(7))
        ));
        assert!(matches!(
            convert(1, &Value::Int(1 << 40), &Type::INT4),
            Err(PgError::Parameter { position: 1, .. })
        ));
        assert!(
            matches!(convert(2, &Value::Int(7), &Type::NUMERIC), Ok(Param::TextFormat(s)) if s == "7")
        );
        assert!(
            matches!(convert(1, &Value::Float(1.5), &Type::NUMERIC), Ok(Param::TextFormat(s)) if s == "1.5")
        );
    }
}
