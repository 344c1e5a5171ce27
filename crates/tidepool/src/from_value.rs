//! [`FromValue`]: reading one [`Value`] as a Rust type, with range-checked
//! narrowing and the few lossless conversions portable code needs (SQLite
//! keeps dates, decimals and UUIDs as text; MariaDB keeps JSON as text).
//! Errors name the expected and the found type, never the value.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use crate::decimal::Decimal;
use crate::value::Value;

/// Why a [`Value`] could not be read as the type asked for. Names types,
/// never the value, which may be sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The value is NULL and the type has no NULL; read an `Option<T>`.
    #[error("expected {expected}, found NULL (read it as an Option to allow NULL)")]
    UnexpectedNull {
        /// The Rust type asked for.
        expected: &'static str,
    },
    /// The value is of a type that does not convert to the one asked for.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The Rust type asked for.
        expected: &'static str,
        /// The value's [`Value::type_name`].
        found: &'static str,
    },
    /// The value is of a type that converts, but this one does not fit
    /// (too large, negative for an unsigned type, or with a fraction for
    /// an integer type).
    #[error("the {found} value does not fit in {expected}")]
    OutOfRange {
        /// The Rust type asked for.
        expected: &'static str,
        /// The value's [`Value::type_name`].
        found: &'static str,
    },
    /// The value is text that does not parse as the type asked for.
    #[error("expected {expected}, found {found} that does not parse as one")]
    Unparseable {
        /// The Rust type asked for.
        expected: &'static str,
        /// The value's [`Value::type_name`].
        found: &'static str,
    },
}

/// A Rust type that a column [`Value`] can be read as; used by
/// [`Row::try_get`](crate::Row::try_get).
///
/// Each type takes its own variant, plus these lossless conversions:
///
/// | Rust type | reads |
/// |---|---|
/// | `i8` … `i64`, `u8` … `u64` | `Int`; `Decimal` without a fraction; range-checked |
/// | `f32`, `f64` | `Float`, `Int`, `Decimal` (nearest; `f32` range-checked) |
/// | `bool` | `Bool`; `Int` 0 or 1 |
/// | `String` | `Text` |
/// | `Vec<u8>` | `Bytes`; `Text` as UTF-8 |
/// | `NaiveDate`, `NaiveTime`, `NaiveDateTime` | their variant; ISO-8601 `Text` |
/// | `DateTime<Utc>` | `TimestampTz`; `Timestamp` as UTC; ISO-8601 `Text` |
/// | [`Decimal`] | `Decimal`, `Int`; `Float` (shortest text); `Text` |
/// | `uuid::Uuid` | `Uuid`; `Text`; 16 `Bytes` (MySQL `BINARY(16)`) |
/// | `serde_json::Value` | `Json`; `Text` |
/// | `Option<T>` | `Null` as `None`, anything else as `T` |
/// | [`Value`] | anything (a clone) |
///
/// ```
/// use tidepool::{FromValue, Value, ValueError};
/// assert_eq!(i32::from_value(&Value::Int(7)), Ok(7));
/// assert_eq!(
///     i8::from_value(&Value::Int(300)),
///     Err(ValueError::OutOfRange { expected: "i8", found: "int" })
/// );
/// assert_eq!(Option::<i64>::from_value(&Value::Null), Ok(None));
/// ```
pub trait FromValue: Sized {
    /// Reads `value` as `Self`.
    fn from_value(value: &Value) -> Result<Self, ValueError>;
}

fn wrong(expected: &'static str, value: &Value) -> ValueError {
    match value {
        Value::Null => ValueError::UnexpectedNull { expected },
        other => ValueError::WrongType {
            expected,
            found: other.type_name(),
        },
    }
}

fn unparseable(expected: &'static str) -> ValueError {
    ValueError::Unparseable {
        expected,
        found: "text",
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        Ok(value.clone())
    }
}

macro_rules! integer_from_value {
    ($($t:ty),*) => {
        $(impl FromValue for $t {
            fn from_value(value: &Value) -> Result<Self, ValueError> {
                const EXPECTED: &str = stringify!($t);
                let out_of_range = ValueError::OutOfRange { expected: EXPECTED, found: value.type_name() };
                let wide: i128 = match value {
                    Value::Int(i) => i128::from(*i),
                    Value::Decimal(d) => d.to_i128().ok_or(out_of_range)?,
                    other => return Err(wrong(EXPECTED, other)),
                };
                <$t>::try_from(wide).map_err(|_| out_of_range)
            }
        })*
    };
}

integer_from_value!(i8, i16, i32, i64, u8, u16, u32, u64);

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::Decimal(d) => Ok(d.to_f64()),
            other => Err(wrong("f64", other)),
        }
    }
}

impl FromValue for f32 {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        let wide = f64::from_value(value).map_err(|e| match e {
            ValueError::UnexpectedNull { .. } => ValueError::UnexpectedNull { expected: "f32" },
            _ => wrong("f32", value),
        })?;
        let narrow = wide as f32;
        if narrow.is_infinite() && wide.is_finite() {
            return Err(ValueError::OutOfRange {
                expected: "f32",
                found: value.type_name(),
            });
        }
        Ok(narrow)
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Bool(b) => Ok(*b),
            // MySQL's `SELECT a = b` and SQLite's comparisons are integers.
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            Value::Int(_) => Err(ValueError::OutOfRange {
                expected: "bool",
                found: "int",
            }),
            other => Err(wrong("bool", other)),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            other => Err(wrong("String", other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Bytes(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(wrong("Vec<u8>", other)),
        }
    }
}

impl FromValue for NaiveDate {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        const EXPECTED: &str = "NaiveDate";
        match value {
            Value::Date(d) => Ok(*d),
            Value::Text(s) => {
                NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| unparseable(EXPECTED))
            }
            other => Err(wrong(EXPECTED, other)),
        }
    }
}

impl FromValue for NaiveTime {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        const EXPECTED: &str = "NaiveTime";
        match value {
            Value::Time(t) => Ok(*t),
            Value::Text(s) => parse_time(s.trim()).ok_or(unparseable(EXPECTED)),
            other => Err(wrong(EXPECTED, other)),
        }
    }
}

impl FromValue for NaiveDateTime {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        const EXPECTED: &str = "NaiveDateTime";
        match value {
            Value::Timestamp(t) => Ok(*t),
            Value::Text(s) => parse_naive_datetime(s.trim()).ok_or(unparseable(EXPECTED)),
            other => Err(wrong(EXPECTED, other)),
        }
    }
}

impl FromValue for DateTime<Utc> {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        const EXPECTED: &str = "DateTime<Utc>";
        match value {
            Value::TimestampTz(t) => Ok(*t),
            // `Timestamp` is UTC by this crate's convention.
            Value::Timestamp(t) => Ok(t.and_utc()),
            Value::Text(s) => parse_datetime_utc(s.trim()).ok_or(unparseable(EXPECTED)),
            other => Err(wrong(EXPECTED, other)),
        }
    }
}

impl FromValue for Decimal {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        const EXPECTED: &str = "Decimal";
        match value {
            Value::Decimal(d) => Ok(d.clone()),
            Value::Int(i) => Ok(Decimal::from(*i)),
            Value::Float(f) => Decimal::from_f64(*f).ok_or(ValueError::OutOfRange {
                expected: EXPECTED,
                found: "float",
            }),
            Value::Text(s) => s.parse().map_err(|_| unparseable(EXPECTED)),
            other => Err(wrong(EXPECTED, other)),
        }
    }
}

impl FromValue for uuid::Uuid {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        const EXPECTED: &str = "Uuid";
        match value {
            Value::Uuid(u) => Ok(*u),
            Value::Text(s) => uuid::Uuid::try_parse(s.trim()).map_err(|_| unparseable(EXPECTED)),
            Value::Bytes(b) => uuid::Uuid::from_slice(b).map_err(|_| ValueError::OutOfRange {
                expected: EXPECTED,
                found: "bytes",
            }),
            other => Err(wrong(EXPECTED, other)),
        }
    }
}

impl FromValue for serde_json::Value {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        const EXPECTED: &str = "serde_json::Value";
        match value {
            Value::Json(j) => Ok(j.clone()),
            Value::Text(s) => serde_json::from_str(s).map_err(|_| unparseable(EXPECTED)),
            other => Err(wrong(EXPECTED, other)),
        }
    }
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
}

/// The forms SQLite's date functions and the drivers write:
/// `YYYY-MM-DD HH:MM[:SS[.fff]]` with a space or `T`, and a bare date.
fn parse_naive_datetime(s: &str) -> Option<NaiveDateTime> {
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
}

/// RFC 3339 and the same with a space; a `Z` or `±HH[:MM]` offset is
/// honoured, and text without one is UTC.
fn parse_datetime_utc(s: &str) -> Option<DateTime<Utc>> {
    if let Some(naive) = s.strip_suffix('Z').and_then(parse_naive_datetime) {
        return Some(naive.and_utc());
    }
    ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"]
        .iter()
        .find_map(|fmt| DateTime::parse_from_str(s, fmt).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| parse_naive_datetime(s).map(|t| t.and_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_narrow_only_when_the_value_fits() {
        assert_eq!(i16::from_value(&Value::Int(-32768)), Ok(-32768));
        assert_eq!(
            u8::from_value(&Value::Int(-1)),
            Err(ValueError::OutOfRange {
                expected: "u8",
                found: "int"
            })
        );
        assert_eq!(
            i32::from_value(&Value::Int(i64::from(i32::MAX) + 1)),
            Err(ValueError::OutOfRange {
                expected: "i32",
                found: "int"
            })
        );
        let big: Decimal = "18446744073709551615".parse().unwrap();
        assert_eq!(u64::from_value(&Value::Decimal(big.clone())), Ok(u64::MAX));
        assert_eq!(
            i64::from_value(&Value::Decimal(big)),
            Err(ValueError::OutOfRange {
                expected: "i64",
                found: "decimal"
            })
        );
        let fractional: Decimal = "2.5".parse().unwrap();
        assert_eq!(
            i64::from_value(&Value::Decimal(fractional)),
            Err(ValueError::OutOfRange {
                expected: "i64",
                found: "decimal"
            })
        );
        assert_eq!(
            i64::from_value(&Value::Text("7".into())),
            Err(ValueError::WrongType {
                expected: "i64",
                found: "text"
            })
        );
    }

    #[test]
    fn null_is_an_error_unless_an_option_is_asked_for() {
        assert_eq!(
            String::from_value(&Value::Null),
            Err(ValueError::UnexpectedNull { expected: "String" })
        );
        assert_eq!(
            f32::from_value(&Value::Null),
            Err(ValueError::UnexpectedNull { expected: "f32" })
        );
        assert_eq!(Option::<String>::from_value(&Value::Null), Ok(None));
        assert_eq!(
            Option::<String>::from_value(&Value::Text("x".into())),
            Ok(Some("x".into()))
        );
        assert_eq!(
            Option::<i32>::from_value(&Value::Text("x".into())),
            Err(ValueError::WrongType {
                expected: "i32",
                found: "text"
            })
        );
    }

    #[test]
    fn floats_read_numbers_and_f32_refuses_what_it_cannot_hold() {
        assert_eq!(f64::from_value(&Value::Int(3)), Ok(3.0));
        assert_eq!(
            f64::from_value(&Value::Decimal("0.25".parse().unwrap())),
            Ok(0.25)
        );
        assert_eq!(f32::from_value(&Value::Float(1.5)), Ok(1.5));
        assert_eq!(
            f32::from_value(&Value::Float(1e300)),
            Err(ValueError::OutOfRange {
                expected: "f32",
                found: "float"
            })
        );
        assert_eq!(
            f32::from_value(&Value::Bool(true)),
            Err(ValueError::WrongType {
                expected: "f32",
                found: "bool"
            })
        );
        assert!(f32::from_value(&Value::Float(f64::INFINITY)).is_ok());
    }

    #[test]
    fn booleans_read_integers_zero_and_one_only() {
        assert_eq!(bool::from_value(&Value::Int(1)), Ok(true));
        assert_eq!(bool::from_value(&Value::Int(0)), Ok(false));
        assert_eq!(
            bool::from_value(&Value::Int(2)),
            Err(ValueError::OutOfRange {
                expected: "bool",
                found: "int"
            })
        );
    }

    #[test]
    fn dates_and_times_read_their_variants_and_iso_text() {
        let day = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        let at = day.and_hms_milli_opt(13, 5, 9, 250).unwrap();
        assert_eq!(NaiveDate::from_value(&Value::Date(day)), Ok(day));
        assert_eq!(
            NaiveDate::from_value(&Value::Text("2024-02-29".into())),
            Ok(day)
        );
        assert_eq!(
            NaiveTime::from_value(&Value::Text("13:05:09.25".into())),
            Ok(at.time())
        );
        assert_eq!(
            NaiveDateTime::from_value(&Value::Text("2024-02-29T13:05:09.250".into())),
            Ok(at)
        );
        assert_eq!(
            DateTime::<Utc>::from_value(&Value::Timestamp(at)),
            Ok(at.and_utc())
        );
        for text in [
            "2024-02-29 15:05:09.250+02:00",
            "2024-02-29T13:05:09.250Z",
            "2024-02-29 13:05:09.250",
            "2024-02-29T11:05:09.250-02",
        ] {
            assert_eq!(
                DateTime::<Utc>::from_value(&Value::Text(text.into())),
                Ok(at.and_utc()),
                "{text}"
            );
        }
        assert_eq!(
            NaiveDate::from_value(&Value::Text("29/02/2024".into())),
            Err(ValueError::Unparseable {
                expected: "NaiveDate",
                found: "text"
            })
        );
        assert_eq!(
            NaiveDate::from_value(&Value::Timestamp(at)),
            Err(ValueError::WrongType {
                expected: "NaiveDate",
                found: "timestamp"
            })
        );
    }

    #[test]
    fn decimals_uuids_and_json_read_their_text_forms() {
        let d: Decimal = "12.50".parse().unwrap();
        assert_eq!(Decimal::from_value(&Value::Text("12.50".into())), Ok(d));
        assert_eq!(
            Decimal::from_value(&Value::Int(-3)).map(Decimal::into_string),
            Ok("-3".into())
        );
        assert_eq!(
            Decimal::from_value(&Value::Float(f64::NAN)),
            Err(ValueError::OutOfRange {
                expected: "Decimal",
                found: "float"
            })
        );
        let id = uuid::Uuid::from_u128(0xa0ee_bc99_9c0b_4ef8_bb6d_6bb9_bd38_0a11);
        assert_eq!(
            uuid::Uuid::from_value(&Value::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())),
            Ok(id)
        );
        assert_eq!(
            uuid::Uuid::from_value(&Value::Bytes(id.as_bytes().to_vec())),
            Ok(id)
        );
        assert_eq!(
            uuid::Uuid::from_value(&Value::Bytes(vec![1, 2, 3])),
            Err(ValueError::OutOfRange {
                expected: "Uuid",
                found: "bytes"
            })
        );
        assert_eq!(
            serde_json::Value::from_value(&Value::Text("{\"a\":[1,2]}".into())),
            Ok(serde_json::json!({"a": [1, 2]}))
        );
        assert_eq!(
            serde_json::Value::from_value(&Value::Text("{not json".into())),
            Err(ValueError::Unparseable {
                expected: "serde_json::Value",
                found: "text"
            })
        );
    }
}
