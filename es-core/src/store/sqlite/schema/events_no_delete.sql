-- The log is append-only; this also keeps positions from ever being reused, since SQLite
-- gives a new row the largest rowid + 1.
CREATE TRIGGER es_events_no_delete BEFORE DELETE ON es_events
BEGIN
    SELECT RAISE(ABORT, 'es_events is append-only: DELETE refused');
END;
