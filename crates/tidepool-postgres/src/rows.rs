//! Reading result columns into [`Value`]s: integers (int2/4/8, oid) as
//! `Int`, float4/8 as `Float`, bool, text-like types (text, varchar, char,
//! name, xml, enums) as `Text`, bytea as `Bytes`, timestamp as
//! `Timestamp`, timestamptz as `TimestampTz`, date as `Date`, time as
//! `Time` (its `24:00:00`, which no `NaiveTime` holds, as text), numeric as
//! `Decimal` with every digit, uuid as `Uuid`, json and jsonb as `Json`,
//! void as `Null`. Domains read as their base type.
//! Other types are refused with an error that says to cast in SQL.

use std::error::Error as StdError;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use tidepool::{Row, Value};
use tokio_postgres::types::{FromSql, Json, Kind, Type};

use crate::error::PgError;

type BoxError = Box<dyn StdError + Sync + Send>;

/// PostgreSQL's `time '24:00:00'` in microseconds; chrono's decoding would
/// wrap it to midnight.
const END_OF_DAY: i64 = 86_400_000_000;

/// One column's value, decoded from the binary wire format.
struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        decode(ty, raw).map(Cell)
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, BoxError> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

fn decode(ty: &Type, raw: &[u8]) -> Result<Value, BoxError> {
    Ok(match *ty {
        Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
        Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
        Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
        Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
        Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
        Type::FLOAT4 => Value::Float(f32::from_sql(ty, raw)?.into()),
        Type::FLOAT8 => Value::Float(f64::from_sql(ty, raw)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::XML => {
            Value::Text(std::str::from_utf8(raw)?.to_string())
        }
        Type::JSON | Type::JSONB => Value::Json(Json::<serde_json::Value>::from_sql(ty, raw)?.0),
        Type::CHAR => Value::Text(char::from(i8::from_sql(ty, raw)? as u8).to_string()),
        Type::BYTEA => Value::Bytes(raw.to_vec()),
        Type::VOID => Value::Null,
        Type::TIMESTAMP => Value::Timestamp(NaiveDateTime::from_sql(ty, raw)?),
        Type::TIMESTAMPTZ => Value::TimestampTz(DateTime::<Utc>::from_sql(ty, raw)?),
        Type::DATE => Value::Date(NaiveDate::from_sql(ty, raw)?),
        Type::TIME if raw == END_OF_DAY.to_be_bytes() => Value::Text("24:00:00".into()),
        Type::TIME => Value::Time(NaiveTime::from_sql(ty, raw)?),
        Type::NUMERIC => Value::Decimal(numeric_to_string(raw)?.parse()?),
        Type::UUID => Value::Uuid(uuid::Uuid::from_sql(ty, raw)?),
        _ => match ty.kind() {
            Kind::Enum(_) => Value::Text(std::str::from_utf8(raw)?.to_string()),
            Kind::Domain(base) => decode(base, raw)?,
            _ => {
                return Err(format!(
                    "type `{}` has no tidepool::Value mapping; cast it in SQL (for example `col::text`)",
                    ty.name()
                )
                .into())
            }
        },
    })
}

/// Converts every row of a result.
pub(crate) fn convert(rows: Vec<tokio_postgres::Row>) -> Result<Vec<Row>, PgError> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let names: Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    rows.iter()
        .map(|row| {
            let values = (0..row.len())
                .map(|i| {
                    row.try_get::<_, Cell>(i)
                        .map(|c| c.0)
                        .map_err(|e| PgError::Column {
                            column: names.get(i).cloned().unwrap_or_default(),
                            reason: std::error::Error::source(&e)
                                .map_or_else(|| e.to_string(), |s| s.to_string()),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Row::new(names.clone(), values))
        })
        .collect()
}

/// PostgreSQL's binary numeric: ndigits, weight, sign, dscale, then
/// base-10000 digits.
fn numeric_to_string(raw: &[u8]) -> Result<String, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".into())
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i32;
    let sign = word(2)?;
    let dscale = word(3)? as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<Vec<u16>, _>>()?;
    let digit = |i: i32| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                out.push_str(&digit(i).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        frac.truncate(dscale);
        out.push_str(&frac);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::numeric_to_string;

    fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale].iter().chain(digits) {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v
    }

    #[test]
    fn binary_numerics_print_as_postgres_prints_them() {
        assert_eq!(
            numeric_to_string(&numeric(2, 0, 0, 2, &[12, 3400])).unwrap(),
            "12.34"
        );
        assert_eq!(
            numeric_to_string(&numeric(1, -1, 0x4000, 4, &[5])).unwrap(),
            "-0.0005"
        );
        assert_eq!(
            numeric_to_string(&numeric(2, 1, 0, 0, &[1, 0])).unwrap(),
            "10000"
        );
        assert_eq!(
            numeric_to_string(&numeric(0, 0, 0, 3, &[])).unwrap(),
            "0.000"
        );
        assert_eq!(
            numeric_to_string(&numeric(1, -2, 0, 8, &[1234])).unwrap(),
            "0.00001234"
        );
    }
}
