//! SQL projections on PostgreSQL: [`SqlValue`] parameters bound as whatever type the server
//! expects for each (where that is lossless), and rows read back as `SqlValue`s.

use std::error::Error;

use bytes::BytesMut;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::Row;

use crate::error::StoreError;
use crate::sql::{SqlRows, SqlValue};

type BoxError = Box<dyn Error + Sync + Send>;

/// A parameter the server wants as a type this value cannot become without loss.
#[derive(Debug, thiserror::Error)]
#[error("cannot pass {kind} {value} as PostgreSQL type `{ty}`; cast it in the SQL (e.g. `$1::{ty}`) or pass another kind of value")]
struct Mismatch {
    kind: &'static str,
    value: String,
    ty: Type,
}

impl ToSql for SqlValue {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let mismatch = || -> BoxError {
            Box::new(Mismatch {
                kind: self.kind(),
                value: self.to_string(),
                ty: ty.clone(),
            })
        };
        match self {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Integer(value) => match *ty {
                Type::INT2 => i16::try_from(*value)
                    .map_err(|_| mismatch())?
                    .to_sql(ty, out),
                Type::INT4 => i32::try_from(*value)
                    .map_err(|_| mismatch())?
                    .to_sql(ty, out),
                Type::INT8 => value.to_sql(ty, out),
                #[allow(clippy::cast_precision_loss)] // SQL's own widening
                Type::FLOAT8 => (*value as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => value.to_string().to_sql(ty, out),
                _ => Err(mismatch()),
            },
            SqlValue::Real(value) => match *ty {
                Type::FLOAT8 => value.to_sql(ty, out),
                #[allow(clippy::cast_possible_truncation)] // a FLOAT4 column asks for it
                Type::FLOAT4 => (*value as f32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => value.to_string().to_sql(ty, out),
                _ => Err(mismatch()),
            },
            SqlValue::Text(value) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    value.as_str().to_sql(ty, out)
                }
                Type::JSON => {
                    out.extend_from_slice(value.as_bytes());
                    Ok(IsNull::No)
                }
                // JSONB's binary form is a version byte, then the text.
                Type::JSONB => {
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(value.as_bytes());
                    Ok(IsNull::No)
                }
                _ => Err(mismatch()),
            },
            SqlValue::Bool(value) => match *ty {
                Type::BOOL => value.to_sql(ty, out),
                _ => Err(mismatch()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        // Which conversions work depends on the value as well as the type: `to_sql` decides.
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A quoted, schema-qualified table name.
pub(super) fn qualified(schema: &str, name: &str) -> String {
    format!("\"{schema}\".\"{}\"", name.replace('"', "\"\""))
}

/// The parameters as the driver takes them.
pub(super) fn params(values: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|value| value as &(dyn ToSql + Sync))
        .collect()
}

/// Query rows as [`SqlRows`]; a column of a type without a lossless `SqlValue` is an error
/// that says to cast it.
pub(super) fn rows(rows: &[Row]) -> Result<SqlRows, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(SqlRows::default());
    };
    let columns: Vec<String> = first
        .columns()
        .iter()
        .map(|column| column.name().to_owned())
        .collect();
    let mut out = SqlRows {
        columns,
        rows: Vec::with_capacity(rows.len()),
    };
    for row in rows {
        let values = row
            .columns()
            .iter()
            .enumerate()
            .map(|(index, column)| value_of(row, index, column.type_(), column.name()))
            .collect::<Result<Vec<_>, _>>()?;
        out.rows.push(values);
    }
    Ok(out)
}

/// The column at `index` read as a `T`, made a value by `value`; NULL stays NULL.
fn nullable<'r, T: FromSql<'r>>(
    row: &'r Row,
    index: usize,
    value: impl FnOnce(T) -> SqlValue,
) -> Result<SqlValue, StoreError> {
    let read = row.try_get::<_, Option<T>>(index).map_err(|error| {
        StoreError::backend("reading a SQL projection's row from PostgreSQL", error)
    })?;
    Ok(read.map_or(SqlValue::Null, value))
}

fn value_of(row: &Row, index: usize, ty: &Type, column: &str) -> Result<SqlValue, StoreError> {
    Ok(match *ty {
        Type::INT2 => nullable::<i16>(row, index, SqlValue::from)?,
        Type::INT4 => nullable::<i32>(row, index, SqlValue::from)?,
        Type::INT8 => nullable::<i64>(row, index, SqlValue::from)?,
        Type::FLOAT4 => nullable::<f32>(row, index, |value| SqlValue::Real(f64::from(value)))?,
        Type::FLOAT8 => nullable::<f64>(row, index, SqlValue::Real)?,
        Type::BOOL => nullable::<bool>(row, index, SqlValue::Bool)?,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            nullable::<String>(row, index, SqlValue::Text)?
        }
        _ => {
            return Err(StoreError::Unsupported {
                what: format!(
                    "column `{column}` is of PostgreSQL type `{ty}`, which SQL projections do not read; cast it in the query (e.g. `{column}::text` or `{column}::float8`)"
                ),
            })
        }
    })
}
