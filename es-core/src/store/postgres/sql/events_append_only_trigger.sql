CREATE TRIGGER es_events_append_only BEFORE UPDATE OR DELETE ON "{schema}".es_events
    FOR EACH ROW EXECUTE FUNCTION "{schema}".es_refuse_change();
