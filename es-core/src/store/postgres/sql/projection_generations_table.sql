-- One row per generation of each projection: where it stands (the next position it reads),
-- whether it serves queries ('live') or is a rebuild catching up ('building'), and where
-- and why it stopped. Its documents are in the table es_doc_{projection}_{generation}.
CREATE TABLE "{schema}".es_projection_generations (
    projection        text    NOT NULL,
    generation        int     NOT NULL CHECK (generation > 0),
    version           text    NOT NULL,
    checkpoint        bigint  NOT NULL CHECK (checkpoint > 0),
    status            text    NOT NULL CHECK (status IN ('live', 'building')),
    stopped_position  bigint  NULL,
    stopped_error     text    NULL,
    PRIMARY KEY (projection, generation)
);
