-- An append carrying a command id first looks for that id on its stream, under the write
-- lock, in the same transaction as its inserts: that is what makes a command idempotent.
-- Not unique: every event of a command carries its id. Partial, so events appended
-- without a command id cost nothing here.
CREATE INDEX es_events_by_command ON es_events (command_id, stream_id) WHERE command_id IS NOT NULL;
