-- One indexed field of a document table, ordered by key within each value, so a filtered
-- page seeks to (value, cursor) and walks forward without sorting. A template: `documents.rs`
-- fills in the index's name, the table's name and the field's column.
CREATE INDEX IF NOT EXISTS {index} ON {table} ({column}, key);
