-- One row per generation of a projection's read model: the code version that builds it, the
-- next position it reads (moved only by compare-and-set, see `read_models/tx.rs`), whether
-- it serves queries or is a rebuild catching up, and where and why it stopped. Its documents
-- live in a table of their own, `es_doc_{projection}_{generation}`, made at run time.
CREATE TABLE es_projection_generations (
    projection        TEXT    NOT NULL,
    generation        INTEGER NOT NULL CHECK (generation BETWEEN 0 AND 4294967295),
    version           TEXT    NOT NULL,
    checkpoint        INTEGER NOT NULL CHECK (checkpoint >= 0),
    status            TEXT    NOT NULL CHECK (status IN ('live', 'building')),
    -- Both set when the projection stopped at an event, both NULL otherwise.
    stopped_position  INTEGER CHECK (stopped_position >= 0),
    stopped_error     TEXT,
    CHECK ((stopped_position IS NULL) = (stopped_error IS NULL)),
    PRIMARY KEY (projection, generation)
) STRICT, WITHOUT ROWID;
