-- `read_aggregate_type` without scanning the whole log. Every index entry ends with the
-- rowid, which is `position`, so this index is ordered by (aggregate_type, position): a read
-- seeks to its type and first position and walks forward.
CREATE INDEX es_events_by_aggregate_type ON es_events (aggregate_type);
