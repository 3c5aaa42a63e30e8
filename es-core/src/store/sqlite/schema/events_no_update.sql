-- The log is append-only: history is corrected with new events, never rewritten.
CREATE TRIGGER es_events_no_update BEFORE UPDATE ON es_events
BEGIN
    SELECT RAISE(ABORT, 'es_events is append-only: UPDATE refused');
END;
