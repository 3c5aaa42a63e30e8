-- Which process runs each projection. A holder renews its row before it expires; a row past
-- `expires_at_us` is free for anyone to take. Wall-clock time, since the holders may be
-- different processes: clocks of processes sharing one file agree closely enough for
-- leases of seconds.
CREATE TABLE es_projection_leases (
    projection     TEXT    PRIMARY KEY,
    holder         TEXT    NOT NULL,
    -- Microseconds since the Unix epoch, UTC.
    expires_at_us  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
