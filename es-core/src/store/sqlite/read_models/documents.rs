//! Document tables: one per generation of a projection, made at run time with one column and
//! one index per indexed field.

use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension};

use super::super::{backend, decode};
use crate::error::StoreError;
use crate::read::list_sql::{index_column, page_clauses};
use crate::read::{DocumentRow, DocumentTable, DocumentWrite, ListQuery};

const CREATE_TABLE: &str = include_str!("document_table.sql");
const CREATE_INDEX: &str = include_str!("document_index.sql");

/// `name` as a quoted SQL identifier. Projection names are checked to be identifiers, but a
/// table name spliced into SQL is quoted anyway, so no name can ever change a statement.
pub(in super::super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The name of the index on the `n`th indexed field.
pub(in super::super) fn index_name(table: &DocumentTable, n: usize) -> String {
    format!("{}_idx_{n}", table.sql_name())
}

/// Creates `table` and its indexes unless they exist.
pub(super) fn create(connection: &Connection, table: &DocumentTable) -> Result<(), StoreError> {
    let name = quote(&table.sql_name());
    let index_columns: String = (0..table.indexes.len())
        .map(|n| format!(",\n    {} TEXT", index_column(n)))
        .collect();
    let mut sql = CREATE_TABLE
        .replace("{table}", &name)
        .replace("{index_columns}", &index_columns);
    for n in 0..table.indexes.len() {
        sql.push_str(
            &CREATE_INDEX
                .replace("{index}", &quote(&index_name(table, n)))
                .replace("{table}", &name)
                .replace("{column}", &index_column(n)),
        );
    }
    connection
        .execute_batch(&sql)
        .map_err(backend("creating a SQLite document table"))
}

/// Whether `table` exists (a projection that has not started has none).
fn exists(connection: &Connection, table: &DocumentTable) -> Result<bool, StoreError> {
    connection
        .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")
        .and_then(|mut statement| statement.exists([table.sql_name()]))
        .map_err(backend("looking up a SQLite document table"))
}

/// The statement that reads one document by key.
fn get_sql(table: &DocumentTable) -> String {
    format!(
        "SELECT {} FROM {} WHERE key = ?1",
        decode::DOCUMENT,
        quote(&table.sql_name())
    )
}

/// The statement that reads a page: filtered on the `filter`th indexed field (`:value`)
/// if given, after the key `:after` if `after`, in key order, `:limit` rows at most.
pub(in super::super) fn list_sql(table: &DocumentTable, query: &ListQuery) -> String {
    let (filter, order) = page_clauses(query, |name| format!(":{name}"));
    format!(
        "SELECT {} FROM {}{filter} ORDER BY {order} LIMIT :limit",
        decode::DOCUMENT,
        quote(&table.sql_name())
    )
}

fn read_one(
    connection: &Connection,
    table: &DocumentTable,
    key: &str,
) -> Result<Option<DocumentRow>, StoreError> {
    let mut statement = connection
        .prepare_cached(&get_sql(table))
        .map_err(backend("preparing a SQLite document read"))?;
    let name = table.sql_name();
    statement
        .query_row([key], |row| Ok(decode::document(&name, row)))
        .optional()
        .map_err(backend("reading a SQLite document"))?
        .transpose()
}

/// One document by key, or `None`, also when the table does not exist.
pub(super) fn get(
    connection: &Connection,
    table: &DocumentTable,
    key: &str,
) -> Result<Option<DocumentRow>, StoreError> {
    // One read transaction, so the table cannot be dropped (by a promotion) between the
    // lookup and the read.
    let snapshot = connection
        .unchecked_transaction()
        .map_err(backend("starting a SQLite read"))?;
    if !exists(&snapshot, table)? {
        return Ok(None);
    }
    read_one(&snapshot, table, key)
}

/// A page of documents in key order; empty when the table does not exist or the filter names
/// a field the table does not index.
pub(super) fn list(
    connection: &Connection,
    table: &DocumentTable,
    query: &ListQuery,
) -> Result<Vec<DocumentRow>, StoreError> {
    // LIMIT is "at most": more than i64::MAX rows cannot exist, so saturating loses nothing.
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let in_range = query
        .filter
        .as_ref()
        .is_none_or(|(n, _)| *n < table.indexes.len())
        && query
            .order
            .as_ref()
            .is_none_or(|order| order.index < table.indexes.len());
    if limit == 0 || !in_range {
        return Ok(Vec::new());
    }
    let snapshot = connection
        .unchecked_transaction()
        .map_err(backend("starting a SQLite read"))?;
    if !exists(&snapshot, table)? {
        return Ok(Vec::new());
    }
    let sql = list_sql(table, query);
    let mut arguments: Vec<(&str, &dyn ToSql)> = vec![(":limit", &limit)];
    if let Some((_, value)) = &query.filter {
        arguments.push((":value", value));
    }
    match &query.order {
        Some(order) => {
            if let Some((value, key)) = &order.after {
                arguments.push((":after_value", value));
                arguments.push((":after_key", key));
            }
        }
        None => {
            if let Some(after) = &query.after {
                arguments.push((":after", after));
            }
        }
    }
    let mut statement = snapshot
        .prepare_cached(&sql)
        .map_err(backend("preparing a SQLite document list"))?;
    let mut rows = statement
        .query(arguments.as_slice())
        .map_err(backend("listing SQLite documents"))?;
    let name = table.sql_name();
    let mut documents = Vec::new();
    while let Some(row) = rows.next().map_err(backend("listing SQLite documents"))? {
        documents.push(decode::document(&name, row)?);
    }
    Ok(documents)
}

/// The documents under `keys` that exist, in the order asked for; none when the table does
/// not exist. Runs inside a batch transaction, so it sees the batch's own writes.
pub(super) fn load(
    connection: &Connection,
    table: &DocumentTable,
    keys: &[String],
) -> Result<Vec<DocumentRow>, StoreError> {
    if keys.is_empty() || !exists(connection, table)? {
        return Ok(Vec::new());
    }
    // One cached statement per key: no bound on how many keys, and each is one b-tree seek.
    let mut found = Vec::new();
    for key in keys {
        found.extend(read_one(connection, table, key)?);
    }
    Ok(found)
}

/// Stores and deletes documents, creating the table first if it is missing (as the memory
/// store does). Runs inside a batch transaction.
pub(super) fn write(
    connection: &Connection,
    table: &DocumentTable,
    writes: &[DocumentWrite],
) -> Result<(), StoreError> {
    create(connection, table)?;
    let name = quote(&table.sql_name());
    let columns: Vec<String> = (0..table.indexes.len()).map(index_column).collect();
    let mut upsert_sql = format!("INSERT INTO {name} (key, body");
    for column in &columns {
        upsert_sql.push_str(", ");
        upsert_sql.push_str(column);
    }
    upsert_sql.push_str(") VALUES (?1, ?2");
    for n in 0..columns.len() {
        upsert_sql.push_str(&format!(", ?{}", n + 3));
    }
    upsert_sql.push_str(") ON CONFLICT (key) DO UPDATE SET body = excluded.body");
    for column in &columns {
        upsert_sql.push_str(&format!(", {column} = excluded.{column}"));
    }
    let mut upsert = connection
        .prepare_cached(&upsert_sql)
        .map_err(backend("preparing a SQLite document write"))?;
    let mut delete = connection
        .prepare_cached(&format!("DELETE FROM {name} WHERE key = ?1"))
        .map_err(backend("preparing a SQLite document delete"))?;
    for write in writes {
        match &write.body {
            Some(body) => {
                let index_values: Vec<Option<&str>> = (0..columns.len())
                    .map(|n| write.index_values.get(n).and_then(Option::as_deref))
                    .collect();
                let body = body.as_str();
                let mut arguments: Vec<&dyn ToSql> = vec![&write.key, &body];
                arguments.extend(index_values.iter().map(|value| value as &dyn ToSql));
                upsert
                    .execute(arguments.as_slice())
                    .map_err(backend("writing a SQLite document"))?;
            }
            None => {
                delete
                    .execute(params![write.key])
                    .map_err(backend("deleting a SQLite document"))?;
            }
        }
    }
    Ok(())
}
