-- The id of the command whose append recorded the event (`Metadata::command_id`), as text
-- like the other ids; NULL for an event appended without one. Every event of a command
-- carries it, so a retry of the command finds all it appended.
ALTER TABLE es_events ADD COLUMN command_id TEXT;
