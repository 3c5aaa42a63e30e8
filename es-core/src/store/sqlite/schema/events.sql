-- The event log. One row per event; `position` is the rowid, so appends go to the end of the
-- b-tree and read-all walks it in order. STRICT: SQLite refuses a value of the wrong type
-- instead of silently converting it; the CHECKs refuse what no append can produce. Neither
-- replaces the strict decoder (a file can be edited by other tools), they only make
-- corruption harder to write.
CREATE TABLE es_events (
    position        INTEGER PRIMARY KEY CHECK (position >= 1),
    -- `StreamId::as_str()`: "{aggregate type}/{aggregate id}", split at the first '/'.
    stream_id       TEXT    NOT NULL CHECK (instr(stream_id, '/') > 1),
    version         INTEGER NOT NULL CHECK (version >= 1),
    -- Derived from `stream_id`, never written: one source of truth for identity. VIRTUAL,
    -- so rows do not store it twice; only the index below does.
    aggregate_type  TEXT    GENERATED ALWAYS AS (substr(stream_id, 1, instr(stream_id, '/') - 1)) VIRTUAL,
    event_name      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL CHECK (schema_version BETWEEN 0 AND 4294967295),
    -- Microseconds since the Unix epoch, UTC.
    recorded_at_us  INTEGER NOT NULL,
    event_id        TEXT    NOT NULL,
    correlation_id  TEXT    NOT NULL,
    causation_id    TEXT,
    -- The free-form metadata entries as a JSON object of strings; NULL when there are none.
    extra           TEXT,
    payload         TEXT    NOT NULL
) STRICT;
