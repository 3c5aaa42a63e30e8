-- Which process runs each projection, until when (the server's clock: now()). A holder
-- renews before expires_at; after it, anyone may take the projection over.
CREATE TABLE "{schema}".es_projection_leases (
    projection  text         PRIMARY KEY,
    holder      text         NOT NULL,
    expires_at  timestamptz  NOT NULL
);
