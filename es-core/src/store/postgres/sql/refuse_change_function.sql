-- The log is append-only: the triggers below call this to refuse any other change.
CREATE FUNCTION "{schema}".es_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'es_events is append-only: % refused', TG_OP;
END
$$;
