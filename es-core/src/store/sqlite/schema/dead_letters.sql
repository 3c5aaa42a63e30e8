-- Events a projection could not apply under the skip policy, kept for a retry; the primary
-- key orders them oldest first per projection.
CREATE TABLE es_dead_letters (
    projection    TEXT    NOT NULL,
    position      INTEGER NOT NULL CHECK (position >= 0),
    -- `StreamId::as_str()` of the event's stream.
    stream_id     TEXT    NOT NULL CHECK (instr(stream_id, '/') > 1),
    version       INTEGER NOT NULL CHECK (version >= 0),
    event_name    TEXT    NOT NULL,
    error         TEXT    NOT NULL,
    -- Microseconds since the Unix epoch, UTC.
    failed_at_us  INTEGER NOT NULL,
    PRIMARY KEY (projection, position)
) STRICT, WITHOUT ROWID;
