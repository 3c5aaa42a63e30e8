//! The SQLite store: one file, no server; the embedded default.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use es_core::sqlite::SqliteStore;
//! use es_core::{EventLog, StreamId};
//!
//! let store = SqliteStore::open("blog.db").await?;
//! let stream = StreamId::new("post", "42")?;
//! let version = store.stream_version(&stream).await?;
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! - **Blocking work off the runtime.** `rusqlite` is synchronous; every call runs on tokio's
//!   blocking pool, so a slow disk never stalls the async runtime.
//! - **One writer, many readers.** A store holds one writer connection, behind a mutex, and a
//!   pool of reader connections opened on demand. The file is in WAL mode, so readers never
//!   wait for the writer and the writer never waits for readers.
//! - **Commit order is position order.** Appends run in `BEGIN IMMEDIATE` transactions, which
//!   hold SQLite's single write lock (across processes too) while the version is checked and
//!   positions are given out; so read-all can never skip an event. See `append.rs`.
//! - **Identity in one column.** `stream_id` holds [`StreamId::as_str`](crate::StreamId::as_str);
//!   the aggregate type is a generated column derived from it, indexed together with the
//!   position, so [`read_aggregate_type`](crate::EventLog::read_aggregate_type) seeks instead
//!   of scanning the log.
//! - **Strict reads.** Every read path decodes rows through one decoder (`decode.rs`) that
//!   turns anything unexpected in a row into a [`StoreError::Corrupt`] naming the stream,
//!   version and event name, instead of clamping or panicking.
//! - **A file says what it holds.** The schema (one `.sql` file per table, index and trigger
//!   in `schema/`) is created under the write lock by whichever opener comes first, so any
//!   number of threads and processes can open a new file at once; a file of another layout is
//!   refused with a [`LayoutError`](crate::sqlite::LayoutError). See `schema.rs`.
//!
//! The `rusqlite` this store is built on is re-exported as
//! [`es_core::sqlite::rusqlite`](crate::sqlite::rusqlite), so an application that also opens
//! the file itself uses the same driver and links one SQLite (a `rusqlite` of its own in
//! another version would bring a second `libsqlite3-sys`, which cargo refuses to link):
//!
//! ```
//! use es_core::sqlite::rusqlite::{params, Connection};
//! use es_core::sqlite::SqliteStore;
//! use es_core::{EventLog, ExpectedVersion, Metadata, NewEvent, Payload, StreamId};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! # let dir = std::env::temp_dir().join(format!("es-core-rusqlite-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let path = dir.join("blog.db");
//! let store = SqliteStore::open(&path).await?;
//! let post = StreamId::new("post", "42")?;
//! let drafted = NewEvent {
//!     event_name: "post.drafted".into(),
//!     schema_version: 1,
//!     metadata: Metadata::new(uuid::Uuid::now_v7()),
//!     payload: Payload::encode(&serde_json::json!({ "title": "Hello" }))?,
//! };
//! store.append(&post, ExpectedVersion::NoStream, vec![drafted]).await?;
//!
//! // The application's own connection to the same file, through the same driver.
//! let connection = Connection::open(&path)?;
//! let (name, payload): (String, String) = connection.query_row(
//!     "SELECT event_name, payload FROM es_events WHERE stream_id = ?1 AND version = 1",
//!     params![post.as_str()],
//!     |row| Ok((row.get(0)?, row.get(1)?)),
//! )?;
//! assert_eq!(name, "post.drafted");
//! assert_eq!(payload, r#"{"title":"Hello"}"#);
//! # drop((store, connection));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Schema (layout 3)
//!
//! - `es_events (position INTEGER PRIMARY KEY, stream_id TEXT, version INTEGER,
//!   aggregate_type TEXT GENERATED, event_name TEXT, schema_version INTEGER,
//!   recorded_at_us INTEGER, event_id TEXT, correlation_id TEXT, causation_id TEXT NULL,
//!   extra TEXT NULL, payload TEXT) STRICT`, unique on `(stream_id, version)`, indexed on
//!   `aggregate_type`, with triggers refusing `UPDATE` and `DELETE`.
//! - `es_snapshots (stream_id TEXT PRIMARY KEY, version INTEGER, state_fingerprint TEXT,
//!   state TEXT, taken_at_us INTEGER) STRICT`.
//! - Layout 2 adds the read side (see `read_models.rs`): `es_projection_generations
//!   (projection, generation, version, checkpoint, status, stopped_position, stopped_error)`,
//!   `es_dead_letters (projection, position, stream_id, version, event_name, error,
//!   failed_at_us)`, `es_projection_leases (projection, holder, expires_at_us)`, and one
//!   `es_doc_{projection}_{generation} (key, body, idx_0, ...)` per projection generation,
//!   made at run time.
//! - Layout 3 adds `es_events.command_id TEXT NULL` (the id of the command that appended
//!   the event), with a partial index on `(command_id, stream_id)` for the idempotency check
//!   every append with a command id makes. An older file is upgraded when opened.
//!
//! Times are stored as microseconds since the Unix epoch, so they read back truncated to the
//! microsecond; the events `append` returns are truncated the same way.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

pub use rusqlite;

mod append;
mod decode;
mod read;
mod read_models;
mod schema;
mod snapshots;
mod sql;
#[cfg(test)]
mod tests;

pub use schema::LayoutError;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::error::StoreError;
use crate::store::{EventLog, ExpectedVersion, Snapshot, SnapshotStore, StoredPayload};
use crate::stream::StreamId;

/// How hard SQLite works to keep a commit across a power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = FULL`: a commit survives power loss. The default.
    #[default]
    Full,
    /// `synchronous = NORMAL`: in WAL mode a commit survives a crash of the process but the
    /// last commits may be lost on power loss. Several times faster on slow disks.
    Normal,
}

/// An event store in one SQLite file: an [`EventLog`] and a [`SnapshotStore`].
///
/// Clones share the connections. Several stores (in one process or many) may open the same
/// file at once; their appends are serialized by SQLite's write lock.
///
/// ```no_run
/// # async fn demo() -> Result<(), es_core::StoreError> {
/// use es_core::sqlite::{Durability, SqliteStore};
///
/// let store = SqliteStore::open("blog.db").await?;
/// let faster = SqliteStore::open_with("cache.db", Durability::Normal).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// An async mutex, so a projection batch ([`ReadStore::begin`](crate::read::ReadStore::begin))
    /// can hold the connection, and its open transaction, across `.await`s; see `read_models`.
    writer: Arc<tokio::sync::Mutex<rusqlite::Connection>>,
    /// Idle read connections; more are opened on demand.
    readers: Mutex<Vec<rusqlite::Connection>>,
    /// The position of the last event appended through this store (and its clones).
    appended: tokio::sync::watch::Sender<u64>,
}

/// Wraps a driver error with what the store was doing.
fn backend(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |error| StoreError::backend(context, error)
}

/// A number that does not fit in SQLite's 64-bit signed integers; nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("{what} {value} is larger than SQLite can store ({max})", max = i64::MAX)]
struct TooLarge {
    what: &'static str,
    value: u64,
}

impl TooLarge {
    fn new(what: &'static str, value: u64) -> Self {
        TooLarge { what, value }
    }
}

impl SqliteStore {
    /// Opens (or creates) the store at `path` with [`Durability::Full`].
    ///
    /// A new or empty file gets the schema; an existing store is checked to hold the layout
    /// this code reads. Fails with a [`StoreError::Backend`] whose source is a [`LayoutError`]
    /// if the file belongs to another program or to another es-core layout.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full).await
    }

    /// Opens (or creates) the store at `path` with an explicit durability setting.
    pub async fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let writer = schema::open_writer(&path, durability)?;
            Ok(SqliteStore {
                inner: Arc::new(Inner {
                    path,
                    writer: Arc::new(tokio::sync::Mutex::new(writer)),
                    readers: Mutex::new(Vec::new()),
                    appended: tokio::sync::watch::Sender::new(0),
                }),
            })
        })
        .await
        .map_err(|error| StoreError::backend("opening the SQLite store", error))?
    }

    /// The file this store writes to.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `work` with the writer connection on the blocking pool, once no one else holds
    /// it (an open projection batch included: see `read_models`).
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let mut writer = self.lock_writer().await;
        // A panic inside `work` cannot leave the connection mid-transaction: rusqlite's
        // `Transaction` rolls back on drop, and a batch transaction rolls back when dropped.
        tokio::task::spawn_blocking(move || {
            read_models::reset(&writer)?;
            work(&mut writer)
        })
        .await
        .map_err(|error| StoreError::backend("SQLite write task", error))?
    }

    /// Takes the writer connection once no one else in this process holds it: another write,
    /// or an open projection batch, served first come first served. Waiting parks the task,
    /// not a blocking-pool thread. Not bounded by a timer: `tokio::time` would panic in a
    /// runtime built without the time driver; every holder lets go after one transaction.
    async fn lock_writer(&self) -> tokio::sync::OwnedMutexGuard<rusqlite::Connection> {
        Arc::clone(&self.inner.writer).lock_owned().await
    }

    /// Runs `work` with a read connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // The pool only holds idle connections, so a poisoned lock guards nothing broken.
            let idle = inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let connection = match idle {
                Some(connection) => connection,
                None => schema::open_reader(&inner.path)?,
            };
            let result = work(&connection);
            inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(connection);
            result
        })
        .await
        .map_err(|error| StoreError::backend("SQLite read task", error))?
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        crate::limits::check_append(stream, &events)?;
        if events.is_empty() {
            // Nothing to write: check the expectation on a reader, without the write lock.
            let actual = self.stream_version(stream).await?;
            expected.check(stream, actual)?;
            return Ok(Vec::new());
        }
        let stream = stream.clone();
        let recorded = self
            .write(move |connection| append::append(connection, &stream, expected, events))
            .await?;
        if let Some(last) = recorded.last() {
            // The highest position, not the latest sent: two appenders may finish out of order.
            self.inner
                .appended
                .send_modify(|head| *head = (*head).max(last.position));
        }
        Ok(recorded)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let stream = stream.clone();
        self.read(move |connection| read::read_stream(connection, &stream, from_version, limit))
            .await
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read(move |connection| read::read_all(connection, from_position, limit))
            .await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        let stream = stream.clone();
        self.read(move |connection| read::stream_version(connection, &stream))
            .await
    }

    async fn read_stream_payloads(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredPayload>, StoreError> {
        let stream = stream.clone();
        self.read(move |connection| read::read_stream(connection, &stream, from_version, limit))
            .await
    }

    async fn read_aggregate_type(
        &self,
        aggregate_type: &str,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let aggregate_type = aggregate_type.to_owned();
        self.read(move |connection| {
            read::read_aggregate_type(connection, &aggregate_type, from_position, limit)
        })
        .await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.read(read::head_position).await
    }
}

#[async_trait]
impl SnapshotStore for SqliteStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let stream = stream.clone();
        self.read(move |connection| snapshots::load(connection, &stream))
            .await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.write(move |connection| snapshots::save(connection, &snapshot))
            .await
    }
}
