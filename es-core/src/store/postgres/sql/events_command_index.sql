-- An append carrying a command id first looks for that id on its stream, in the same
-- statement as its insert. Not unique: every event of a command carries its id. Two runs
-- of one command cannot both insert, for the same reason two writers cannot both write a
-- version: both would insert the stream's next version, and the primary key lets one
-- through (the other reads back the first outcome). Keyed by the id alone, so an entry is
-- 24 bytes, not 24 plus the stream key; the stream is checked on the few rows it finds.
-- Partial: events without a command id cost nothing here.
CREATE INDEX es_events_command ON "{schema}".es_events (command_id) WHERE command_id IS NOT NULL;
