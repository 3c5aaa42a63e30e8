-- One row per event. Every column here is NOT NULL, and the fixed-width columns come first,
-- widest first, so rows carry no alignment padding. (Layout 4 adds one nullable column,
-- `command_id`: see events_command_id_column.sql.)
-- The aggregate type is not stored apart: it is the part of stream_id before the first `/`.
-- metadata holds only what differs from the defaults: `{}` for an event that started its
-- correlation, had no causation and no free-form entries.
CREATE TABLE "{schema}".es_events (
    position        bigint      NOT NULL,
    version         bigint      NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    schema_version  int         NOT NULL,
    event_id        uuid        NOT NULL,
    stream_id       text        NOT NULL,
    event_name      text        NOT NULL,
    payload         json        NOT NULL,
    metadata        json        NOT NULL,
    PRIMARY KEY (stream_id, version)
);
