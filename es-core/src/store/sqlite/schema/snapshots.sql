-- The latest snapshot of each stream; a save with an older version than the one kept is
-- ignored (see snapshots.rs).
CREATE TABLE es_snapshots (
    stream_id          TEXT    PRIMARY KEY CHECK (instr(stream_id, '/') > 1),
    version            INTEGER NOT NULL CHECK (version >= 0),
    state_fingerprint  TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    -- Microseconds since the Unix epoch, UTC.
    taken_at_us        INTEGER NOT NULL
) STRICT;
