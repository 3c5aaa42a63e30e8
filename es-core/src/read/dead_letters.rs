//! Retrying an event a projection set aside, once its cause is fixed.

use crate::error::{ProjectionError, StoreError};
use crate::read::store::ReadStore;
use crate::read::{live_state, table_of, Projections};

/// Applies the dead letter of `projection` at `position` to its live generation and removes
/// it, in one transaction: applied once, however many callers retry at the same time (the
/// others get [`StoreError::NoDeadLetter`]). If it fails again, nothing changes.
pub async fn retry_dead_letter(
    store: &dyn ReadStore,
    projections: &Projections,
    projection: &str,
    position: u64,
) -> Result<(), ProjectionError> {
    let Some(entry) = projections.get(projection) else {
        return Err(ProjectionError::NotRegistered(projection.to_owned()));
    };
    let no_letter = || StoreError::NoDeadLetter {
        projection: projection.to_owned(),
        position,
    };
    let event = store
        .read_all(position, 1)
        .await?
        .into_iter()
        .find(|event| event.position == position)
        .ok_or_else(no_letter)?;
    let live = live_state(store, projection)
        .await?
        .ok_or_else(|| ProjectionError::NotRegistered(projection.to_owned()))?;
    let table = table_of(&**entry, live.generation);
    let mut tx = store.begin().await?;
    if !tx.remove_dead_letter(projection, position).await? {
        return Err(no_letter().into());
    }
    let outcome = entry
        .apply_batch(store, &mut *tx, &table, std::slice::from_ref(&event))
        .await?;
    let failure = outcome
        .stopped
        .or_else(|| outcome.skipped.into_iter().next());
    if let Some((_, error)) = failure {
        // Dropping the transaction rolls it back: the dead letter stays.
        return Err(ProjectionError::Stopped {
            projection: projection.to_owned(),
            position,
            error,
        });
    }
    tx.commit().await?;
    Ok(())
}
