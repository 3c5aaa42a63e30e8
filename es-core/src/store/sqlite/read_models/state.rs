//! Projection state: generations and their checkpoints, dead letters and leases.

use std::time::Duration;

use chrono::Utc;
use rusqlite::{named_params, params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::super::{backend, decode, TooLarge};
use super::documents;
use crate::error::StoreError;
use crate::read::{DeadLetter, DocumentTable, GenerationState, GenerationStatus, Stopped};

/// A number as a SQLite integer, or the error saying it does not fit.
pub(super) fn to_sql_integer(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::backend("writing to SQLite", TooLarge::new(what, value)))
}

/// One generation's state, if it exists.
pub(super) fn generation(
    connection: &Connection,
    projection: &str,
    generation: u32,
) -> Result<Option<GenerationState>, StoreError> {
    connection
        .prepare_cached(&format!(
            "SELECT {} FROM es_projection_generations WHERE projection = ?1 AND generation = ?2",
            decode::GENERATION
        ))
        .and_then(|mut statement| {
            statement
                .query_row(params![projection, generation], |row| {
                    Ok(decode::generation(row))
                })
                .optional()
        })
        .map_err(backend("reading a SQLite projection generation"))?
        .transpose()
}

/// Every generation of `projection`, oldest first.
pub(super) fn generations(
    connection: &Connection,
    projection: &str,
) -> Result<Vec<GenerationState>, StoreError> {
    list(
        connection,
        Listing::Generations,
        projection,
        decode::generation,
    )
}

/// The lists SQLite keeps per projection, each read whole.
#[derive(Clone, Copy)]
pub(super) enum Listing {
    Generations,
    DeadLetters,
}

impl Listing {
    /// The statement selecting the list's rows of the projection `?1`, oldest first.
    fn sql(self) -> String {
        let (columns, table, order) = match self {
            Listing::Generations => (
                decode::GENERATION,
                "es_projection_generations",
                "generation",
            ),
            Listing::DeadLetters => (decode::DEAD_LETTER, "es_dead_letters", "position"),
        };
        format!("SELECT {columns} FROM {table} WHERE projection = ?1 ORDER BY {order}")
    }

    /// What preparing its statement and reading its rows are, for their errors.
    fn contexts(self) -> (&'static str, &'static str) {
        match self {
            Listing::Generations => (
                "preparing a SQLite projection read",
                "reading SQLite projection generations",
            ),
            Listing::DeadLetters => (
                "preparing a SQLite dead letter read",
                "reading SQLite dead letters",
            ),
        }
    }
}

/// `listing`'s rows of `projection`, oldest first, each decoded by `decode`.
pub(super) fn list<T>(
    connection: &Connection,
    listing: Listing,
    projection: &str,
    decode: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let (preparing, reading) = listing.contexts();
    let mut statement = connection
        .prepare_cached(&listing.sql())
        .map_err(backend(preparing))?;
    let mut rows = statement.query([projection]).map_err(backend(reading))?;
    let mut decoded = Vec::new();
    while let Some(row) = rows.next().map_err(backend(reading))? {
        decoded.push(decode(row)?);
    }
    Ok(decoded)
}

/// Creates `table`'s generation (its table, indexes and state row) unless it exists, and
/// returns its state. The first generation of a projection is live, later ones building.
pub(super) fn create_generation(
    connection: &mut Connection,
    table: &DocumentTable,
    version: &str,
) -> Result<GenerationState, StoreError> {
    // The write lock first, so two processes starting the same projection agree on which
    // generation is first.
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("starting a SQLite projection setup"))?;
    // Made (or kept) either way: a table dropped by hand comes back empty, as in memory.
    documents::create(&transaction, table)?;
    let state = match generation(&transaction, &table.projection, table.generation)? {
        Some(existing) => existing,
        None => {
            let first = !transaction
                .prepare_cached("SELECT 1 FROM es_projection_generations WHERE projection = ?1")
                .and_then(|mut statement| statement.exists([&table.projection]))
                .map_err(backend("reading SQLite projection generations"))?;
            let state = GenerationState::created(table, version, first);
            transaction
                .prepare_cached(
                    "INSERT INTO es_projection_generations \
                     (projection, generation, version, checkpoint, status) \
                     VALUES (?1, ?2, ?3, 1, ?4)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        state.projection,
                        state.generation,
                        state.version,
                        state.status.as_str()
                    ])
                })
                .map_err(backend("creating a SQLite projection generation"))?;
            state
        }
    };
    transaction
        .commit()
        .map_err(backend("committing a SQLite projection setup"))?;
    Ok(state)
}

/// Makes `table`'s generation live, and deletes the others' rows and drops their tables, in
/// one transaction.
pub(super) fn promote(
    connection: &mut Connection,
    table: &DocumentTable,
) -> Result<(), StoreError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("starting a SQLite projection promotion"))?;
    promote_in(&transaction, table)?;
    transaction
        .commit()
        .map_err(backend("committing a SQLite projection promotion"))
}

/// Makes `table`'s generation live, and deletes the others' rows and drops their tables,
/// inside the transaction open on `connection`.
pub(super) fn promote_in(connection: &Connection, table: &DocumentTable) -> Result<(), StoreError> {
    if generation(connection, &table.projection, table.generation)?.is_none() {
        // Another process promoted a newer generation (and dropped this one) first.
        return Err(StoreError::CheckpointMoved {
            projection: table.projection.clone(),
            generation: table.generation,
            expected: 0,
            actual: None,
        });
    }
    let others: Vec<u32> = generations(connection, &table.projection)?
        .into_iter()
        .map(|state| state.generation)
        .filter(|generation| *generation != table.generation)
        .collect();
    for other in others {
        let retired = DocumentTable {
            projection: table.projection.clone(),
            generation: other,
            indexes: Vec::new(),
        };
        connection
            .execute_batch(&format!(
                "DROP TABLE IF EXISTS {}",
                documents::quote(&retired.sql_name())
            ))
            .map_err(backend("dropping a retired SQLite document table"))?;
    }
    connection
        .execute(
            "DELETE FROM es_projection_generations WHERE projection = ?1 AND generation <> ?2",
            params![table.projection, table.generation],
        )
        .and_then(|_| {
            connection.execute(
                "UPDATE es_projection_generations SET status = 'live' \
                 WHERE projection = ?1 AND generation = ?2",
                params![table.projection, table.generation],
            )
        })
        .map_err(backend("promoting a SQLite projection generation"))?;
    Ok(())
}

/// The live generation of `projection`, if it has one.
pub(super) fn live_generation(
    connection: &Connection,
    projection: &str,
) -> Result<Option<u32>, StoreError> {
    Ok(generations(connection, projection)?
        .into_iter()
        .find(|state| state.status == GenerationStatus::Live)
        .map(|state| state.generation))
}

/// Moves the checkpoint of `table`'s generation from `from` to `to` if it is still at `from`.
pub(super) fn advance(
    connection: &Connection,
    table: &DocumentTable,
    from: u64,
    to: u64,
) -> Result<(), StoreError> {
    let to_stored = to_sql_integer("checkpoint", to)?;
    // A checkpoint beyond i64::MAX cannot be stored, so the row cannot be at it.
    let moved = match i64::try_from(from) {
        Ok(from_stored) => connection
            .prepare_cached(
                "UPDATE es_projection_generations SET checkpoint = ?1 \
                 WHERE projection = ?2 AND generation = ?3 AND checkpoint = ?4",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    to_stored,
                    table.projection,
                    table.generation,
                    from_stored
                ])
            })
            .map_err(backend("moving a SQLite projection checkpoint"))?,
        Err(_) => 0,
    };
    if moved == 1 {
        return Ok(());
    }
    let actual =
        generation(connection, &table.projection, table.generation)?.map(|state| state.checkpoint);
    Err(StoreError::CheckpointMoved {
        projection: table.projection.clone(),
        generation: table.generation,
        expected: from,
        actual,
    })
}

/// Records where `table`'s generation stopped, or clears it.
pub(super) fn set_stopped(
    connection: &Connection,
    table: &DocumentTable,
    stopped: Option<&Stopped>,
) -> Result<(), StoreError> {
    let position = stopped
        .map(|stopped| to_sql_integer("stopped position", stopped.position))
        .transpose()?;
    connection
        .prepare_cached(
            "UPDATE es_projection_generations SET stopped_position = ?1, stopped_error = ?2 \
             WHERE projection = ?3 AND generation = ?4",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                position,
                stopped.map(|stopped| stopped.error.as_str()),
                table.projection,
                table.generation
            ])
        })
        .map_err(backend("recording where a SQLite projection stopped"))?;
    Ok(())
}

/// Sets an event aside (replacing an earlier letter for the same event).
pub(super) fn add_dead_letter(
    connection: &Connection,
    letter: &DeadLetter,
) -> Result<(), StoreError> {
    let position = to_sql_integer("dead letter position", letter.position)?;
    let version = to_sql_integer("dead letter version", letter.version)?;
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO es_dead_letters \
             (projection, position, stream_id, version, event_name, error, failed_at_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                letter.projection,
                position,
                letter.stream.as_str(),
                version,
                letter.event_name,
                letter.error,
                letter.failed_at.timestamp_micros()
            ])
        })
        .map_err(backend("storing a SQLite dead letter"))?;
    Ok(())
}

/// Removes a dead letter; whether it was there.
pub(super) fn remove_dead_letter(
    connection: &Connection,
    projection: &str,
    position: u64,
) -> Result<bool, StoreError> {
    let Ok(position) = i64::try_from(position) else {
        return Ok(false); // beyond what can be stored, so not there
    };
    let removed = connection
        .prepare_cached("DELETE FROM es_dead_letters WHERE projection = ?1 AND position = ?2")
        .and_then(|mut statement| statement.execute(params![projection, position]))
        .map_err(backend("removing a SQLite dead letter"))?;
    Ok(removed > 0)
}

/// Microseconds since the Unix epoch, now and `ttl` from now.
fn now_and_expiry(ttl: Duration) -> (i64, i64) {
    let now = Utc::now().timestamp_micros();
    let ttl = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
    (now, now.saturating_add(ttl))
}

/// Takes the lease when it is free, expired or already `holder`'s; returns who holds it.
pub(super) fn acquire_lease(
    connection: &mut Connection,
    projection: &str,
    holder: &str,
    ttl: Duration,
) -> Result<String, StoreError> {
    let (now, expires) = now_and_expiry(ttl);
    // IMMEDIATE: the upsert and the read of its outcome see the same row, whichever
    // process races us.
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("starting a SQLite lease"))?;
    transaction
        .prepare_cached(
            "INSERT INTO es_projection_leases (projection, holder, expires_at_us) \
             VALUES (:projection, :holder, :expires) \
             ON CONFLICT (projection) DO UPDATE SET \
                holder = excluded.holder, expires_at_us = excluded.expires_at_us \
             WHERE es_projection_leases.holder = excluded.holder \
                OR es_projection_leases.expires_at_us <= :now",
        )
        .and_then(|mut statement| {
            statement.execute(named_params! {
                ":projection": projection,
                ":holder": holder,
                ":expires": expires,
                ":now": now,
            })
        })
        .map_err(backend("taking a SQLite lease"))?;
    let current: String = transaction
        .prepare_cached("SELECT holder FROM es_projection_leases WHERE projection = ?1")
        .and_then(|mut statement| statement.query_row([projection], |row| row.get(0)))
        .map_err(backend("reading a SQLite lease"))?;
    transaction
        .commit()
        .map_err(backend("committing a SQLite lease"))?;
    Ok(current)
}

/// Who holds the lease on `projection`, unless it expired.
pub(super) fn lease_holder(
    connection: &Connection,
    projection: &str,
) -> Result<Option<String>, StoreError> {
    let now = Utc::now().timestamp_micros();
    connection
        .prepare_cached(
            "SELECT holder FROM es_projection_leases WHERE projection = ?1 AND expires_at_us > ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![projection, now], |row| row.get(0))
                .optional()
        })
        .map_err(backend("reading a SQLite lease"))
}

/// Gives the lease up if `holder` has it.
pub(super) fn release_lease(
    connection: &Connection,
    projection: &str,
    holder: &str,
) -> Result<(), StoreError> {
    connection
        .prepare_cached("DELETE FROM es_projection_leases WHERE projection = ?1 AND holder = ?2")
        .and_then(|mut statement| statement.execute(params![projection, holder]))
        .map_err(backend("releasing a SQLite lease"))?;
    Ok(())
}
