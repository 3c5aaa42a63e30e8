//! The document tables: one per generation of a projection, named by
//! [`DocumentTable::sql_name`], with one text column and one index per indexed field.
//! Their statements depend on the table, so they are written here per call (and prepared
//! once per connection by the statement cache).

use std::collections::BTreeMap;

use tokio_postgres::Row;

use crate::envelope::Payload;
use crate::error::StoreError;
use crate::read::list_sql::{index_column, page_clauses};
use crate::read::{DocumentRow, DocumentTable, DocumentWrite, ListQuery};

const TABLE: &str = include_str!("sql/document_table.sql");
const INDEX: &str = include_str!("sql/document_index.sql");

/// PostgreSQL cuts longer identifiers short, which could make two tables one.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// The schema-qualified, quoted name of a document table.
pub(super) struct TableName {
    /// `"schema"."es_doc_..."`, for SQL text.
    pub(super) quoted: String,
}

impl TableName {
    pub(super) fn new(schema: &str, table: &DocumentTable) -> Result<Self, StoreError> {
        let name = table.sql_name();
        if name.len() > MAX_IDENTIFIER_BYTES {
            return Err(StoreError::backend(
                "naming a PostgreSQL document table",
                TableNameTooLong { name },
            ));
        }
        // The schema is a checked identifier; the projection name may hold anything a
        // hand-written `Projection` puts there, so quotes are doubled.
        Ok(TableName {
            quoted: format!("\"{schema}\".\"{}\"", name.replace('"', "\"\"")),
        })
    }

    /// The statements creating the table and its indexes.
    pub(super) fn create(&self, table: &DocumentTable) -> String {
        let index_columns: String = (0..table.indexes.len())
            .map(|index| format!(",\n    {} text COLLATE \"C\"", index_column(index)))
            .collect();
        let mut sql = TABLE
            .replace("{table}", &self.quoted)
            .replace("{index_columns}", &index_columns);
        for index in 0..table.indexes.len() {
            sql.push('\n');
            sql.push_str(
                &INDEX
                    .replace("{table}", &self.quoted)
                    .replace("{column}", &index_column(index)),
            );
        }
        sql
    }

    pub(super) fn get(&self) -> String {
        format!(
            "SELECT key, body::text AS body FROM {} WHERE key = $1::text",
            self.quoted
        )
    }

    pub(super) fn load(&self) -> String {
        format!(
            "SELECT key, body::text AS body FROM {} WHERE key = ANY($1::text[])",
            self.quoted
        )
    }

    /// A page: `$1` the limit, then the filter value and the cursor when given. Each shape is
    /// its own statement, so its generic plan can use the index (the connections force
    /// generic plans).
    /// The list statement: `$1` the limit, then the filter's value, then the cursor (the key,
    /// or with an order the value and the key), as `list_documents` passes them.
    pub(super) fn list(&self, query: &ListQuery) -> String {
        let mut parameter = 1;
        let (filter, order) = page_clauses(query, |_| {
            parameter += 1;
            format!("${parameter}::text")
        });
        format!(
            "SELECT key, body::text AS body FROM {}{filter} ORDER BY {order} LIMIT $1::bigint",
            self.quoted
        )
    }

    /// One statement storing every document of a batch: `$1` keys, `$2` bodies, then one
    /// array per indexed field.
    pub(super) fn upsert(&self, table: &DocumentTable) -> String {
        let columns: Vec<String> = (0..table.indexes.len()).map(index_column).collect();
        let arrays: String = (0..columns.len())
            .map(|index| format!(", ${}::text[]", index + 3))
            .collect();
        let names: String = columns.iter().map(|name| format!(", {name}")).collect();
        let updates: String = columns
            .iter()
            .map(|name| format!(", {name} = excluded.{name}"))
            .collect();
        format!(
            "INSERT INTO {table} (key, body{names})
             SELECT written.key, written.body::json{selected}
             FROM unnest($1::text[], $2::text[]{arrays}) AS written(key, body{names})
             ON CONFLICT (key) DO UPDATE SET body = excluded.body{updates}",
            table = self.quoted,
            selected = columns
                .iter()
                .map(|name| format!(", written.{name}"))
                .collect::<String>(),
        )
    }

    pub(super) fn delete(&self) -> String {
        format!("DELETE FROM {} WHERE key = ANY($1::text[])", self.quoted)
    }
}

/// A batch's writes as statement parameters: the last write of each key wins, and keys are
/// in order, so two transactions writing the same keys lock them in the same order.
pub(super) struct Changes {
    pub(super) keys: Vec<String>,
    pub(super) bodies: Vec<String>,
    /// Per indexed field, its value for each stored document.
    pub(super) index_values: Vec<Vec<Option<String>>>,
    pub(super) deleted: Vec<String>,
}

impl Changes {
    pub(super) fn new(table: &DocumentTable, writes: Vec<DocumentWrite>) -> Self {
        let latest: BTreeMap<String, DocumentWrite> = writes
            .into_iter()
            .map(|write| (write.key.clone(), write))
            .collect();
        let mut changes = Changes {
            keys: Vec::new(),
            bodies: Vec::new(),
            index_values: vec![Vec::new(); table.indexes.len()],
            deleted: Vec::new(),
        };
        for (key, write) in latest {
            match write.body {
                Some(body) => {
                    changes.keys.push(key);
                    changes.bodies.push(body.as_str().to_owned());
                    let mut values = write.index_values.into_iter();
                    for column in &mut changes.index_values {
                        column.push(values.next().flatten());
                    }
                }
                None => changes.deleted.push(key),
            }
        }
        changes
    }
}

/// Reads a `key, body` row.
pub(super) fn row(row: &Row, table: &DocumentTable) -> Result<DocumentRow, StoreError> {
    let name = table.sql_name();
    let key: String = super::required(row, "key", &name, "?")?;
    let body: String = super::required(row, "body", &name, &key)?;
    Ok(DocumentRow {
        key,
        body: Payload::from_json_text(body),
    })
}

/// A document table name longer than PostgreSQL keeps.
#[derive(Debug, thiserror::Error)]
#[error("document table name `{name}` is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte identifiers; use a shorter projection name")]
struct TableNameTooLong {
    name: String,
}
