//! What a user of the SQLite store relies on: odd text round-trips, conflicts say why,
//! versions are gapless under concurrent writers, corrupt rows are named not clamped, files
//! of another layout are refused, and any number of openers may create a file at once.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)] // failed assertions are the point

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use uuid::Uuid;

use super::{LayoutError, SqliteStore};
use crate::envelope::{Metadata, NewEvent, Payload};
use crate::error::StoreError;
use crate::stream::StreamId;

#[cfg(feature = "testing")]
mod corruption;
mod daemon;
mod log;
mod opening;
mod read_models;
mod statements;

/// A directory of its own per test, removed with everything SQLite put in it (-wal, -shm).
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "es-core-sqlite-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(super) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Where [`fresh_store`] keeps its file.
    pub(super) fn store_path(&self) -> PathBuf {
        self.file("store.db")
    }
}

/// A new store in a directory of its own named after the test; the directory goes when the
/// test drops it.
pub(super) async fn fresh_store(name: &str) -> (TempDir, SqliteStore) {
    let dir = TempDir::new(name);
    let store = SqliteStore::open(dir.store_path()).await.unwrap();
    (dir, store)
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn stream(aggregate_type: &str, aggregate_id: &str) -> StreamId {
    StreamId::new(aggregate_type, aggregate_id).unwrap()
}

pub(super) fn event(name: &str, payload: &str) -> NewEvent {
    NewEvent {
        event_name: name.into(),
        schema_version: 1,
        metadata: Metadata::new(Uuid::now_v7()),
        payload: Payload::from_json_text(payload),
    }
}

pub(super) fn events(count: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|n| event("test.happened", &format!("{{\"n\":{n}}}")))
        .collect()
}

/// A raw connection, to write what the store never would.
pub(super) fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

pub(super) fn corruption(result: Result<impl std::fmt::Debug, StoreError>) -> crate::CorruptRecord {
    match result {
        Err(StoreError::Corrupt(record)) => *record,
        other => panic!("expected a corrupt record error, got {other:?}"),
    }
}

pub(super) fn layout_error(result: Result<SqliteStore, StoreError>) -> LayoutError {
    match result {
        Err(StoreError::Backend { source, .. }) => match source.downcast::<LayoutError>() {
            Ok(layout) => *layout,
            Err(other) => panic!("expected a layout error, got {other}"),
        },
        other => panic!("expected a layout error, got {other:?}"),
    }
}
