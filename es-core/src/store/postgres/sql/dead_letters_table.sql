-- Events a projection could not apply under the skip policy, kept for a retry.
CREATE TABLE "{schema}".es_dead_letters (
    projection  text         NOT NULL,
    position    bigint       NOT NULL,
    stream_id   text         NOT NULL,
    version     bigint       NOT NULL,
    event_name  text         NOT NULL,
    error       text         NOT NULL,
    failed_at   timestamptz  NOT NULL,
    PRIMARY KEY (projection, position)
);
