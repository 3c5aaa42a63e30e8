-- One indexed field of a document table, ordered by key within each value, so a filtered
-- page seeks to (value, cursor) and walks forward without sorting. `{index}`, `{table}` and
-- `{column}` are filled in at run time (see `documents.rs`).
CREATE INDEX IF NOT EXISTS {index} ON {table} ({column}, key);
