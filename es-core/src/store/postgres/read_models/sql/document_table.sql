-- The documents of one generation of one projection. Keys sort by bytes (COLLATE "C"), as
-- on every other store, so pages come in the same order everywhere. idx_0, idx_1, ... hold
-- the indexed fields' values as text, in the projection's index order.
CREATE TABLE IF NOT EXISTS {table} (
    key   text COLLATE "C" PRIMARY KEY,
    body  json NOT NULL{index_columns}
);
