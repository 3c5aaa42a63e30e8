-- A filtered page (`idx_n = value AND key > cursor ORDER BY key LIMIT n`) is one range scan.
-- Unnamed: PostgreSQL picks a free name, so long table names cannot collide once truncated.
CREATE INDEX ON {table} ({column}, key);
