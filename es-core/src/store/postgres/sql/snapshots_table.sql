-- The latest snapshot of each stream; stream_id is the same key as in es_events.
CREATE TABLE "{schema}".es_snapshots (
    stream_id          text        PRIMARY KEY,
    version            bigint      NOT NULL,
    taken_at           timestamptz NOT NULL,
    state_fingerprint  text        NOT NULL,
    state              json        NOT NULL
);
