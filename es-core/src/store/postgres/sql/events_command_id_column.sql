-- The id of the command whose append recorded the event (`Metadata::command_id`); NULL for
-- an event appended without one. Every event of a command carries it, so a retry of the
-- command reads back all it appended. A column rather than a metadata entry: 16 bytes
-- instead of about 50 of JSON text, and indexable. It makes the row's one nullable column,
-- so a row without a command id carries a null bitmap (8 bytes, after alignment).
-- Adding a nullable column without a default rewrites no row.
ALTER TABLE "{schema}".es_events ADD COLUMN command_id uuid;
