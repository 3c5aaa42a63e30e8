-- Which layout the tables below follow; es-core refuses to open a schema of another version.
CREATE TABLE "{schema}".es_schema_version (
    version int NOT NULL
);
