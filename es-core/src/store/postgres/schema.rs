//! The tables, created on first connect, and the guard that refuses a schema of another
//! layout. Each table, index and trigger is in its own `.sql` file beside this module.

use deadpool_postgres::Object;

use super::config::Timeouts;
use super::connection::{bounded, QueryError};
use super::SetupError;
use crate::error::StoreError;

/// The table layout this code reads and writes, recorded in `es_schema_version`.
///
/// 2: no `aggregate_type` column (it is the prefix of `stream_id`), every column NOT NULL,
/// metadata ids in one `metadata` json column, no checkpoint table.
///
/// 3: read models beside the events: `es_projection_generations`, `es_dead_letters`,
/// `es_projection_leases` (document tables are created per projection generation).
///
/// 4: idempotent commands: `es_events.command_id`, with an index. A schema of layout 3 is
/// upgraded in place when opened (no row is rewritten).
pub const SCHEMA_VERSION: i32 = 4;

/// What turns a schema of layout 3 into layout 4; also run, in order, after [`OBJECTS`] when
/// creating a schema, so both paths make the same table.
const UPGRADE_FROM_3: [&str; 2] = [
    include_str!("sql/events_command_id_column.sql"),
    include_str!("sql/events_command_index.sql"),
];

/// Everything the store needs, in creation order. `{schema}` stands for the schema name, a
/// checked identifier (never a value).
const OBJECTS: [&str; 10] = [
    include_str!("sql/schema_version_table.sql"),
    include_str!("sql/events_table.sql"),
    include_str!("sql/events_position_index.sql"),
    include_str!("sql/refuse_change_function.sql"),
    include_str!("sql/events_append_only_trigger.sql"),
    include_str!("sql/events_no_truncate_trigger.sql"),
    include_str!("sql/snapshots_table.sql"),
    include_str!("sql/projection_generations_table.sql"),
    include_str!("sql/dead_letters_table.sql"),
    include_str!("sql/projection_leases_table.sql"),
];

/// Creates the tables in `schema` if it holds none, or checks they are of
/// [`SCHEMA_VERSION`]. Safe to run from many processes at once: they take turns on an
/// advisory lock.
pub(super) async fn prepare(
    client: &mut Object,
    schema: &str,
    timeouts: &Timeouts,
) -> Result<(), StoreError> {
    let failed =
        |context: &'static str| move |error: QueryError| error.into_store(context, timeouts);
    let transaction = bounded(timeouts, client.transaction())
        .await
        .map_err(failed("starting to prepare the PostgreSQL schema"))?;
    bounded(
        timeouts,
        transaction.execute(
            "SELECT pg_advisory_xact_lock(hashtext('es-core schema ' || $1::text))",
            &[&schema],
        ),
    )
    .await
    .map_err(failed("locking the PostgreSQL schema"))?;
    bounded(
        timeouts,
        transaction.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")),
    )
    .await
    .map_err(failed("creating the PostgreSQL schema"))?;
    let qualified = |table: &str| format!("\"{schema}\".{table}");
    let existing = bounded(
        timeouts,
        transaction.query_one(
            "SELECT to_regclass($1)::text, to_regclass($2)::text",
            &[&qualified("es_schema_version"), &qualified("es_events")],
        ),
    )
    .await
    .map_err(failed("inspecting the PostgreSQL schema"))?;
    let has_version_table = matches!(existing.try_get::<_, Option<String>>(0), Ok(Some(_)));
    let has_events_table = matches!(existing.try_get::<_, Option<String>>(1), Ok(Some(_)));
    if has_version_table {
        let row = bounded(
            timeouts,
            transaction.query_one(
                &format!(
                    "SELECT max(version)::bigint FROM {}",
                    qualified("es_schema_version")
                ),
                &[],
            ),
        )
        .await
        .map_err(failed("reading the PostgreSQL schema version"))?;
        let found: Option<i64> = row.try_get(0).unwrap_or(None);
        if found == Some(3) {
            // Under the advisory lock: one opener upgrades, the others then find layout 4.
            let record = format!("UPDATE {} SET version = $1", qualified("es_schema_version"));
            let context = "upgrading the PostgreSQL tables";
            upgrade_from_3(&transaction, schema, &record, context, timeouts).await?;
        } else if found != Some(i64::from(SCHEMA_VERSION)) {
            return Err(wrong_version(schema, found));
        }
        return bounded(timeouts, transaction.commit())
            .await
            .map_err(failed("checking the PostgreSQL schema"));
    }
    if has_events_table {
        return Err(wrong_version(schema, None));
    }
    run_all(&transaction, schema, &OBJECTS, timeouts)
        .await
        .map_err(failed("creating the PostgreSQL tables"))?;
    let record = format!(
        "INSERT INTO {} (version) VALUES ($1)",
        qualified("es_schema_version")
    );
    let context = "creating the PostgreSQL tables";
    upgrade_from_3(&transaction, schema, &record, context, timeouts).await?;
    bounded(timeouts, transaction.commit())
        .await
        .map_err(failed("committing the PostgreSQL tables"))
}

/// Brings tables of layout 3 (old ones, or the ones just created) to this layout, and
/// records it with `record`: the UPDATE of the layout row, or the INSERT of the first.
async fn upgrade_from_3(
    transaction: &deadpool_postgres::Transaction<'_>,
    schema: &str,
    record: &str,
    context: &'static str,
    timeouts: &Timeouts,
) -> Result<(), StoreError> {
    run_all(transaction, schema, &UPGRADE_FROM_3, timeouts)
        .await
        .map_err(|error| error.into_store(context, timeouts))?;
    bounded(timeouts, transaction.execute(record, &[&SCHEMA_VERSION]))
        .await
        .map_err(|error| error.into_store("recording the PostgreSQL schema version", timeouts))?;
    Ok(())
}

/// The refusal of a schema whose tables are of another layout than this code's (`found`
/// `None`: tables without a recorded layout).
fn wrong_version(schema: &str, found: Option<i64>) -> StoreError {
    StoreError::backend(
        "checking the PostgreSQL schema version",
        SetupError::SchemaVersion {
            schema: schema.to_owned(),
            found,
            expected: SCHEMA_VERSION,
        },
    )
}

/// Runs each statement with the schema name filled in.
async fn run_all(
    transaction: &deadpool_postgres::Transaction<'_>,
    schema: &str,
    statements: &[&str],
    timeouts: &Timeouts,
) -> Result<(), QueryError> {
    for statement in statements {
        bounded(
            timeouts,
            transaction.batch_execute(&statement.replace("{schema}", schema)),
        )
        .await?;
    }
    Ok(())
}
