-- The documents of one generation of one projection. A template: `documents.rs` fills in the
-- table's name and, after `body`, one TEXT column `idx_N` per indexed field, in the
-- projection's index order, holding the field's value as text (NULL: absent or null).
-- WITHOUT ROWID: the rows live in the key's b-tree, so a lookup or a page in key order is
-- one walk, and every secondary index ends with the key.
CREATE TABLE IF NOT EXISTS {table} (
    key   TEXT NOT NULL PRIMARY KEY,
    body  TEXT NOT NULL{index_columns}
) STRICT, WITHOUT ROWID;
