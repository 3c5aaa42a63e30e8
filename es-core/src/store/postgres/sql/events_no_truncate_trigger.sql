CREATE TRIGGER es_events_no_truncate BEFORE TRUNCATE ON "{schema}".es_events
    FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".es_refuse_change();
