//! Values passed to and read from a SQL projection's statements, the same on every backend.

use std::fmt;

/// One parameter or column value.
///
/// Parameters are converted to the column type the database expects where that is lossless
/// (an `Integer` bound to an `INT4` column on PostgreSQL, a `Bool` stored as 0/1 on SQLite);
/// anything else is an error naming both types.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    /// SQL `NULL`.
    Null,
    /// A whole number (PostgreSQL `INT2`, `INT4`, `INT8`; SQLite `INTEGER`).
    Integer(i64),
    /// A floating-point number (`FLOAT4`, `FLOAT8`; `REAL`).
    Real(f64),
    /// Text (`TEXT`, `VARCHAR`, also `JSON`/`JSONB` parameters on PostgreSQL).
    Text(String),
    /// A boolean (`BOOL`; stored as 0 or 1 on SQLite, and read back as an `Integer`).
    Bool(bool),
}

impl SqlValue {
    /// The value as an `i64`, if it is a whole number (or a boolean, as 0 or 1).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SqlValue::Integer(value) => Some(*value),
            SqlValue::Bool(value) => Some(i64::from(*value)),
            _ => None,
        }
    }

    /// The value as an `f64`, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            SqlValue::Real(value) => Some(*value),
            #[allow(clippy::cast_precision_loss)] // a documented widening, as SQL does
            SqlValue::Integer(value) => Some(*value as f64),
            _ => None,
        }
    }

    /// The value as text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            SqlValue::Text(value) => Some(value),
            _ => None,
        }
    }

    /// Whether it is SQL `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, SqlValue::Null)
    }

    /// Its kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            SqlValue::Null => "null",
            SqlValue::Integer(_) => "integer",
            SqlValue::Real(_) => "real",
            SqlValue::Text(_) => "text",
            SqlValue::Bool(_) => "bool",
        }
    }
}

impl fmt::Display for SqlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlValue::Null => f.write_str("NULL"),
            SqlValue::Integer(value) => write!(f, "{value}"),
            SqlValue::Real(value) => write!(f, "{value}"),
            SqlValue::Text(value) => write!(f, "{value:?}"),
            SqlValue::Bool(value) => write!(f, "{value}"),
        }
    }
}

macro_rules! from_integer {
    ($($t:ty),*) => {$(
        impl From<$t> for SqlValue {
            fn from(value: $t) -> Self {
                SqlValue::Integer(i64::from(value))
            }
        }
    )*};
}
from_integer!(i8, i16, i32, i64, u8, u16, u32);

impl TryFrom<u64> for SqlValue {
    type Error = std::num::TryFromIntError;
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        i64::try_from(value).map(SqlValue::Integer)
    }
}

impl From<f64> for SqlValue {
    fn from(value: f64) -> Self {
        SqlValue::Real(value)
    }
}

impl From<bool> for SqlValue {
    fn from(value: bool) -> Self {
        SqlValue::Bool(value)
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        SqlValue::Text(value.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        SqlValue::Text(value)
    }
}

impl From<&String> for SqlValue {
    fn from(value: &String) -> Self {
        SqlValue::Text(value.clone())
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(SqlValue::Null, Into::into)
    }
}

/// The rows a query returned: each row's values in column order, with the column names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SqlRows {
    /// The columns' names, in order.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<SqlValue>>,
}

impl SqlRows {
    /// The value of column `name` in row `row`, if both exist.
    pub fn get(&self, row: usize, name: &str) -> Option<&SqlValue> {
        let column = self.columns.iter().position(|column| column == name)?;
        self.rows.get(row)?.get(column)
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}
