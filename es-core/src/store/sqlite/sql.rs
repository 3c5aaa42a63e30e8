//! SQL projections on SQLite: their statements with `$1`-style parameters, bound from
//! [`SqlValue`]s, and their rows read back as such.

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::Connection;

use super::backend;
use crate::error::StoreError;
use crate::sql::{SqlRows, SqlValue};

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Null => ToSqlOutput::Owned(Value::Null),
            SqlValue::Integer(value) => ToSqlOutput::Owned(Value::Integer(*value)),
            SqlValue::Real(value) => ToSqlOutput::Owned(Value::Real(*value)),
            SqlValue::Text(value) => ToSqlOutput::Borrowed(ValueRef::Text(value.as_bytes())),
            SqlValue::Bool(value) => ToSqlOutput::Owned(Value::Integer(i64::from(*value))),
        })
    }
}

/// A quoted identifier.
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `$1`, `$2`, ... as SQLite's numbered `?1`, `?2`, ... (SQLite would read `$1` as a *named*
/// parameter, numbered by first appearance, so `$2 ... $1` would bind the wrong values).
/// Quoted strings and identifiers are left alone.
pub(super) fn numbered_parameters(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(open) => {
                if c == open {
                    quote = None;
                }
                out.push(c);
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => out.push('?'),
            None => out.push(c),
        }
    }
    out
}

/// Runs one statement on `connection`.
pub(super) fn execute(
    connection: &Connection,
    sql: &str,
    params: &[SqlValue],
) -> Result<(), StoreError> {
    let context = "running a SQL projection's statement on SQLite";
    let mut statement = connection
        .prepare_cached(&numbered_parameters(sql))
        .map_err(backend(context))?;
    statement
        .execute(rusqlite::params_from_iter(params))
        .map_err(backend(context))?;
    Ok(())
}

/// Runs one query on `connection`.
pub(super) fn query(
    connection: &Connection,
    sql: &str,
    params: &[SqlValue],
) -> Result<SqlRows, StoreError> {
    let context = "running a SQL projection's query on SQLite";
    let mut statement = connection
        .prepare_cached(&numbered_parameters(sql))
        .map_err(backend(context))?;
    let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
    let mut rows = statement
        .query(rusqlite::params_from_iter(params))
        .map_err(backend(context))?;
    let mut out = SqlRows {
        columns,
        rows: Vec::new(),
    };
    while let Some(row) = rows.next().map_err(backend(context))? {
        let values = (0..out.columns.len())
            .map(|index| {
                let value = row.get_ref(index).map_err(backend(context))?;
                value_of(value, &out.columns[index])
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.rows.push(values);
    }
    Ok(out)
}

fn value_of(value: ValueRef<'_>, column: &str) -> Result<SqlValue, StoreError> {
    Ok(match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(value) => SqlValue::Integer(value),
        ValueRef::Real(value) => SqlValue::Real(value),
        ValueRef::Text(text) => SqlValue::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(_) => {
            return Err(StoreError::Unsupported {
                what: format!("column `{column}` holds a blob, which SQL projections do not read; select it as hex() or text"),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::numbered_parameters;

    #[test]
    fn dollar_parameters_become_numbered_ones_outside_quotes() {
        assert_eq!(
            numbered_parameters("UPDATE t SET a = $2 WHERE b = $1 AND c = '$3' AND \"$4\" = $10"),
            "UPDATE t SET a = ?2 WHERE b = ?1 AND c = '$3' AND \"$4\" = ?10"
        );
    }
}
