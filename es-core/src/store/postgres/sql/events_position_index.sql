-- Read-all walks the log in position order; unique, so two appends can never share a position.
CREATE UNIQUE INDEX es_events_position ON "{schema}".es_events (position);
