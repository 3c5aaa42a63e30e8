-- Reading one stream in version order, its current version, and the guarantee that two
-- appends can never both write the same version of a stream.
CREATE UNIQUE INDEX es_events_by_stream ON es_events (stream_id, version);
