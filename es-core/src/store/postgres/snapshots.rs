//! Snapshots: the latest one per stream, in `es_snapshots`.

use super::decode;
use super::Shared;
use crate::error::StoreError;
use crate::store::Snapshot;
use crate::stream::StreamId;

/// The SQL of the snapshot statements, with the schema filled in.
#[derive(Debug)]
pub(super) struct Sql {
    load: String,
    save: String,
}

impl Sql {
    pub(super) fn new(schema: &str) -> Self {
        let snapshots = format!("\"{schema}\".es_snapshots");
        Sql {
            load: format!(
                "SELECT version, state_fingerprint, state, taken_at FROM {snapshots} WHERE stream_id = $1::text"
            ),
            // An older snapshot never replaces a newer one.
            save: format!(
                "INSERT INTO {snapshots} AS existing (stream_id, version, state_fingerprint, state, taken_at)
                 VALUES ($1::text, $2::bigint, $3::text, $4::text::json, $5::timestamptz)
                 ON CONFLICT (stream_id) DO UPDATE SET
                    version = excluded.version, state_fingerprint = excluded.state_fingerprint,
                    state = excluded.state, taken_at = excluded.taken_at
                 WHERE excluded.version >= existing.version"
            ),
        }
    }
}

pub(super) async fn load(
    shared: &Shared,
    stream: &StreamId,
) -> Result<Option<Snapshot>, StoreError> {
    let key = stream.as_str();
    let rows = shared
        .query_pooled(
            &shared.sql.snapshots.load,
            &[&key],
            "reading a PostgreSQL snapshot",
        )
        .await?;
    rows.first()
        .map(|row| decode::snapshot(row, stream))
        .transpose()
}

pub(super) async fn save(shared: &Shared, snapshot: Snapshot) -> Result<(), StoreError> {
    let Ok(version) = i64::try_from(snapshot.version) else {
        // No stream reaches a version past i64::MAX here, so no load could use it.
        return Err(StoreError::backend(
            "saving a PostgreSQL snapshot",
            VersionOutOfRange(snapshot.version),
        ));
    };
    let key = snapshot.stream.as_str();
    shared
        .query_pooled(
            &shared.sql.snapshots.save,
            &[
                &key,
                &version,
                &snapshot.state_fingerprint,
                &snapshot.state.as_str(),
                &snapshot.taken_at,
            ],
            "saving a PostgreSQL snapshot",
        )
        .await?;
    Ok(())
}

/// A snapshot of a version no stream of this store can reach.
#[derive(Debug, thiserror::Error)]
#[error("snapshot version {0} is beyond the largest version PostgreSQL stores ({max})", max = i64::MAX)]
struct VersionOutOfRange(u64);
