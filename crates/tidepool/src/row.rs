//! [`Row`]: one result row of the uniform face, and typed reading of it —
//! a column with [`Row::try_get`], a whole row with [`FromRow`] (tuples by
//! position; a struct by writing `from_row` with `try_get` per field, there
//! is no derive macro). Errors name the column and the types involved and
//! never the value.

use std::sync::Arc;

use crate::from_value::{FromValue, ValueError};
use crate::value::Value;

/// One result row: column names (shared by all rows of a result) and values.
///
/// ```
/// use std::sync::Arc;
/// use tidepool::{Row, Value};
/// let row = Row::new(Arc::from(vec!["id".to_string()]), vec![Value::Int(7)]);
/// assert_eq!(row.get("id"), Some(&Value::Int(7)));
/// assert_eq!(row.get(0), Some(&Value::Int(7)));
/// let id: i32 = row.try_get("id").unwrap();
/// assert_eq!(id, 7);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

/// Why a row, or a column of it, could not be read as the type asked for.
/// Names columns and types, never values.
///
/// ```
/// use std::sync::Arc;
/// use tidepool::{Row, RowError, Value, ValueError};
/// let row = Row::new(Arc::from(vec!["id".to_string()]), vec![Value::Text("x".into())]);
/// let err = row.try_get::<i32, _>("id").unwrap_err();
/// assert_eq!(err.to_string(), "column `id`: expected i32, found text");
/// assert!(matches!(
///     err,
///     RowError::Value { error: ValueError::WrongType { expected: "i32", found: "text" }, .. }
/// ));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowError {
    /// No column of that name, or the index is past the last column.
    /// Indexes are written `#N`, counting from 0.
    #[error("no column `{column}` in the row")]
    NoSuchColumn {
        /// The name asked for, or `#N` for an index.
        column: String,
    },
    /// The column's value could not be read as the type asked for.
    #[error("column `{column}`: {error}")]
    Value {
        /// The column's name.
        column: String,
        /// What was expected and what was found.
        error: ValueError,
    },
    /// A tuple was asked for and the row has another number of columns.
    #[error("the row has {found} columns, but {expected} were asked for")]
    ColumnCount {
        /// The tuple's length.
        expected: usize,
        /// The row's length.
        found: usize,
    },
}

impl Row {
    /// A row from its column names and values (drivers build these).
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        Row { columns, values }
    }
    /// The value at a column index or name.
    pub fn get<I: ColumnIndex>(&self, index: I) -> Option<&Value> {
        index
            .position(&self.columns)
            .and_then(|i| self.values.get(i))
    }
    /// The value at a column index or name, read as `T` (see [`FromValue`]
    /// for what converts to what; integers are range-checked).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tidepool::{Row, Value};
    /// # fn demo() -> Result<(), tidepool::RowError> {
    /// # let row = Row::new(Arc::from(vec!["id".into(), "email".into()]), vec![Value::Int(7), Value::Null]);
    /// let id: i32 = row.try_get("id")?;
    /// let email: Option<String> = row.try_get("email")?;
    /// # assert_eq!((id, email), (7, None));
    /// # Ok(()) }
    /// # demo().unwrap();
    /// ```
    pub fn try_get<T: FromValue, I: ColumnIndex>(&self, index: I) -> Result<T, RowError> {
        let Some((position, value)) = index
            .position(&self.columns)
            .and_then(|i| Some((i, self.values.get(i)?)))
        else {
            return Err(RowError::NoSuchColumn {
                column: index.describe(),
            });
        };
        T::from_value(value).map_err(|error| RowError::Value {
            column: self.columns.get(position).cloned().unwrap_or_default(),
            error,
        })
    }
    /// Column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
    /// Values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }
    /// The number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }
    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// Takes the values out of the row.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }
}

/// Something that names a column: an index or a name.
pub trait ColumnIndex {
    /// Where the column is, if it exists.
    fn position(&self, columns: &[String]) -> Option<usize>;
    /// How an error names the column when it does not exist.
    fn describe(&self) -> String {
        "?".to_string()
    }
}

impl ColumnIndex for usize {
    fn position(&self, columns: &[String]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
    fn describe(&self) -> String {
        format!("#{self}")
    }
}

impl ColumnIndex for &str {
    fn position(&self, columns: &[String]) -> Option<usize> {
        columns.iter().position(|c| c == self)
    }
    fn describe(&self) -> String {
        self.to_string()
    }
}

/// A Rust type that a whole [`Row`] can be read as.
///
/// Tuples of up to six [`FromValue`] types read the columns by position and
/// need the row to have exactly that many. For a struct, write `from_row`
/// with [`Row::try_get`] per field (there is no derive macro):
///
/// ```
/// use tidepool::{FromRow, Row, RowError};
/// struct User {
///     id: i32,
///     name: String,
///     email: Option<String>,
/// }
/// impl FromRow for User {
///     fn from_row(row: &Row) -> Result<Self, RowError> {
///         Ok(User {
///             id: row.try_get("id")?,
///             name: row.try_get("name")?,
///             email: row.try_get("email")?,
///         })
///     }
/// }
/// # use std::sync::Arc;
/// # use tidepool::Value;
/// # let row = Row::new(
/// #     Arc::from(vec!["id".into(), "name".into(), "email".into()]),
/// #     vec![Value::Int(1), Value::Text("ada".into()), Value::Null],
/// # );
/// let user = User::from_row(&row)?;
/// let (id, name, _): (i64, String, Option<String>) = FromRow::from_row(&row)?;
/// # assert_eq!((user.id, user.name.as_str(), user.email), (1, "ada", None));
/// # assert_eq!((id, name.as_str()), (1, "ada"));
/// # Ok::<(), RowError>(())
/// ```
pub trait FromRow: Sized {
    /// Reads `row` as `Self`.
    fn from_row(row: &Row) -> Result<Self, RowError>;
}

impl FromRow for Row {
    fn from_row(row: &Row) -> Result<Self, RowError> {
        Ok(row.clone())
    }
}

macro_rules! tuple_from_row {
    ($len:literal: $($t:ident $i:tt),+) => {
        impl<$($t: FromValue),+> FromRow for ($($t,)+) {
            fn from_row(row: &Row) -> Result<Self, RowError> {
                if row.len() != $len {
                    return Err(RowError::ColumnCount { expected: $len, found: row.len() });
                }
                Ok(($(row.try_get::<$t, usize>($i)?,)+))
            }
        }
    };
}

tuple_from_row!(1: A 0);
tuple_from_row!(2: A 0, B 1);
tuple_from_row!(3: A 0, B 1, C 2);
tuple_from_row!(4: A 0, B 1, C 2, D 3);
tuple_from_row!(5: A 0, B 1, C 2, D 3, E 4);
tuple_from_row!(6: A 0, B 1, C 2, D 3, E 4, F 5);

#[cfg(test)]
mod tests {
    use super::*;

    fn row(columns: &[&str], values: Vec<Value>) -> Row {
        Row::new(
            columns
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .into(),
            values,
        )
    }

    #[test]
    fn a_missing_column_is_named_in_the_error() {
        let r = row(&["id"], vec![Value::Int(1)]);
        assert_eq!(
            r.try_get::<i64, _>("name"),
            Err(RowError::NoSuchColumn {
                column: "name".into()
            })
        );
        assert_eq!(
            r.try_get::<i64, _>(3),
            Err(RowError::NoSuchColumn {
                column: "#3".into()
            })
        );
        assert_eq!(
            r.try_get::<i64, _>("name").unwrap_err().to_string(),
            "no column `name` in the row"
        );
    }

    #[test]
    fn a_conversion_error_names_the_column_and_types_but_never_the_value() {
        let secret = "hunter2-secret";
        let r = row(
            &["password", "n"],
            vec![Value::Text(secret.into()), Value::Int(1 << 40)],
        );
        let err = r.try_get::<i64, _>("password").unwrap_err();
        assert_eq!(
            err,
            RowError::Value {
                column: "password".into(),
                error: ValueError::WrongType {
                    expected: "i64",
                    found: "text"
                }
            }
        );
        assert!(!err.to_string().contains(secret));
        assert!(!format!("{err:?}").contains(secret));
        let err = r.try_get::<uuid::Uuid, _>("password").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column `password`: expected Uuid, found text that does not parse as one"
        );
        let err = r.try_get::<i32, _>(1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column `n`: the int value does not fit in i32"
        );
        assert!(!err.to_string().contains(&(1i64 << 40).to_string()));
        let err = r.try_get::<i32, _>("missing").unwrap_err();
        assert!(matches!(err, RowError::NoSuchColumn { .. }));
    }

    #[test]
    fn null_columns_need_an_option() {
        let r = row(&["email"], vec![Value::Null]);
        assert_eq!(r.try_get::<Option<String>, _>("email"), Ok(None));
        assert_eq!(
            r.try_get::<String, _>("email").unwrap_err().to_string(),
            "column `email`: expected String, found NULL (read it as an Option to allow NULL)"
        );
    }

    #[test]
    fn tuples_read_columns_by_position_and_check_the_count() {
        let r = row(
            &["a", "b", "c", "d", "e", "f"],
            vec![
                Value::Int(1),
                Value::Text("two".into()),
                Value::Float(3.5),
                Value::Bool(true),
                Value::Null,
                Value::Bytes(vec![6]),
            ],
        );
        let all: (i8, String, f64, bool, Option<i64>, Vec<u8>) = FromRow::from_row(&r).unwrap();
        assert_eq!(all, (1, "two".into(), 3.5, true, None, vec![6]));
        assert_eq!(
            <(i64, String)>::from_row(&r),
            Err(RowError::ColumnCount {
                expected: 2,
                found: 6
            })
        );
        let one = row(&["n"], vec![Value::Int(5)]);
        assert_eq!(<(u16,)>::from_row(&one), Ok((5,)));
        let bad = row(&["n", "m"], vec![Value::Int(5), Value::Int(-1)]);
        assert_eq!(
            <(u16, u16)>::from_row(&bad),
            Err(RowError::Value {
                column: "m".into(),
                error: ValueError::OutOfRange {
                    expected: "u16",
                    found: "int"
                }
            })
        );
        assert_eq!(Row::from_row(&bad), Ok(bad.clone()));
    }
}
