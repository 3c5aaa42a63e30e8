//! The SQLite store: one file, no server; the embedded default.
//!
//! Uses `rusqlite` (with SQLite bundled, so nothing to install) on tokio's blocking pool, so a
//! slow disk never stalls the async runtime. One writer connection appends inside
//! `BEGIN IMMEDIATE` transactions, so commit order is position order and read-all can never
//! skip an event; readers use their own connections and, in WAL mode, never wait for the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use crate::envelope::{Metadata, NewEvent, Payload, RecordedEvent};
use crate::error::StoreError;
use crate::store::{EventStore, ExpectedVersion, Snapshot, StoredPayload};

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

/// The schema this code writes; stored in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: &[&str] = &[
    // 1: events, snapshots, checkpoints.
    "CREATE TABLE es_events (
        position        INTEGER PRIMARY KEY,
        stream_id       TEXT    NOT NULL,
        version         INTEGER NOT NULL,
        aggregate_type  TEXT    NOT NULL,
        event_name      TEXT    NOT NULL,
        schema_version  INTEGER NOT NULL,
        recorded_at_us  INTEGER NOT NULL,
        event_id        TEXT    NOT NULL,
        correlation_id  TEXT    NOT NULL,
        causation_id    TEXT,
        extra           TEXT,
        payload         TEXT    NOT NULL,
        UNIQUE (stream_id, version)
    );
    CREATE TRIGGER es_events_no_update BEFORE UPDATE ON es_events
        BEGIN SELECT RAISE(ABORT, 'es_events is append-only: UPDATE refused'); END;
    CREATE TRIGGER es_events_no_delete BEFORE DELETE ON es_events
        BEGIN SELECT RAISE(ABORT, 'es_events is append-only: DELETE refused'); END;
    CREATE TABLE es_snapshots (
        stream_id          TEXT PRIMARY KEY,
        aggregate_type     TEXT    NOT NULL,
        version            INTEGER NOT NULL,
        state_fingerprint  TEXT    NOT NULL,
        state              TEXT    NOT NULL,
        taken_at_us        INTEGER NOT NULL
    );
    CREATE TABLE es_checkpoints (
        projection     TEXT PRIMARY KEY,
        next_position  INTEGER NOT NULL
    );",
];

/// An event store in one SQLite file.
///
/// ```no_run
/// # async fn demo() -> Result<(), es_core::StoreError> {
/// use es_core::store::sqlite::SqliteStore;
///
/// let store = SqliteStore::open("blog.db").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    durability: Durability,
    writer: Mutex<Connection>,
    /// Idle read connections; more are opened on demand.
    readers: Mutex<Vec<Connection>>,
}

fn backend(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |error| StoreError::backend(context, error)
}

impl SqliteStore {
    /// Opens (or creates) the store at `path` with [`Durability::Full`], creating or upgrading its schema.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full).await
    }

    /// Opens the store with an explicit durability setting.
    pub async fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let writer = open_connection(&path, durability)?;
            migrate(&writer)?;
            Ok(SqliteStore {
                inner: Arc::new(Inner {
                    path,
                    durability,
                    writer: Mutex::new(writer),
                    readers: Mutex::new(Vec::new()),
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

    /// Runs `work` with the writer connection on the blocking pool.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // A panic inside `work` cannot leave the connection mid-transaction: rusqlite's
            // `Transaction` rolls back on drop. So a poisoned lock is still usable.
            let mut writer = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut writer)
        })
        .await
        .map_err(|error| StoreError::backend("SQLite write task", error))?
    }

    /// Runs `work` with a read connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let idle = inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let connection = match idle {
                Some(connection) => connection,
                None => open_connection(&inner.path, inner.durability)?,
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

fn open_connection(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let connection = Connection::open_with_flags(path, flags).map_err(|error| {
        StoreError::backend(
            format!("cannot open SQLite file `{}`", path.display()),
            error,
        )
    })?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    connection
        .execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = 10000;"
        ))
        .map_err(|error| {
            StoreError::backend(format!("cannot configure SQLite file `{}`", path.display()), error)
        })?;
    Ok(connection)
}

fn migrate(connection: &Connection) -> Result<(), StoreError> {
    let current: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(backend("reading the SQLite schema version"))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::InvalidRequest(format!(
            "the SQLite file has schema version {current}, newer than this code's {SCHEMA_VERSION}; upgrade es-core"
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        connection
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; {migration}; PRAGMA user_version = {version}; COMMIT;"
            ))
            .map_err(backend("creating the SQLite schema"))?;
    }
    Ok(())
}

fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::InvalidRequest(format!("{what} {value} is out of range")))
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn from_micros(value: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_micros(value).single()
}

fn encode_extra(metadata: &Metadata) -> Result<Option<String>, StoreError> {
    if metadata.extra.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(&metadata.extra)
        .map(Some)
        .map_err(|error| {
            StoreError::InvalidRequest(format!("metadata does not serialize: {error}"))
        })
}

/// The columns of `es_events` in the order `ROW` selects them.
const ROW: &str = "position, stream_id, version, aggregate_type, event_name, schema_version, recorded_at_us, event_id, correlation_id, causation_id, extra, payload";

struct RawRow {
    position: i64,
    stream_id: String,
    version: i64,
    aggregate_type: String,
    event_name: String,
    schema_version: i64,
    recorded_at_us: i64,
    event_id: String,
    correlation_id: String,
    causation_id: Option<String>,
    extra: Option<String>,
    payload: String,
}

fn raw_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        position: row.get(0)?,
        stream_id: row.get(1)?,
        version: row.get(2)?,
        aggregate_type: row.get(3)?,
        event_name: row.get(4)?,
        schema_version: row.get(5)?,
        recorded_at_us: row.get(6)?,
        event_id: row.get(7)?,
        correlation_id: row.get(8)?,
        causation_id: row.get(9)?,
        extra: row.get(10)?,
        payload: row.get(11)?,
    })
}

impl RawRow {
    /// Checks every column a row can get wrong, naming the stream and version if one is bad.
    fn into_recorded(self) -> Result<RecordedEvent, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            stream_id: self.stream_id.clone(),
            version: self.version.max(0) as u64,
            reason,
        };
        let uuid = |column: &str, text: &str| {
            Uuid::parse_str(text)
                .map_err(|error| corrupt(format!("{column} `{text}` is not a UUID: {error}")))
        };
        let metadata = Metadata {
            event_id: uuid("event_id", &self.event_id)?,
            correlation_id: uuid("correlation_id", &self.correlation_id)?,
            causation_id: self
                .causation_id
                .as_deref()
                .map(|text| uuid("causation_id", text))
                .transpose()?,
            extra: match &self.extra {
                None => Default::default(),
                Some(text) => serde_json::from_str(text).map_err(|error| {
                    corrupt(format!("metadata is not a map of strings: {error}"))
                })?,
            },
        };
        Ok(RecordedEvent {
            recorded_at: from_micros(self.recorded_at_us).ok_or_else(|| {
                corrupt(format!("recorded_at {} is not a time", self.recorded_at_us))
            })?,
            position: u64::try_from(self.position)
                .map_err(|_| corrupt(format!("position {} is negative", self.position)))?,
            version: u64::try_from(self.version)
                .map_err(|_| corrupt(format!("version {} is negative", self.version)))?,
            schema_version: u32::try_from(self.schema_version).map_err(|_| {
                corrupt(format!(
                    "schema version {} is out of range",
                    self.schema_version
                ))
            })?,
            metadata,
            stream_id: self.stream_id,
            aggregate_type: self.aggregate_type,
            event_name: self.event_name,
            event: Payload::from_json_text(self.payload),
        })
    }
}

fn query_events(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut statement = connection
        .prepare_cached(sql)
        .map_err(backend("preparing a SQLite read"))?;
    let rows = statement
        .query_map(params, raw_row)
        .map_err(backend("reading SQLite events"))?;
    rows.map(|row| {
        row.map_err(backend("reading a SQLite event row"))?
            .into_recorded()
    })
    .collect()
}

fn stream_version(connection: &Connection, stream_id: &str) -> Result<u64, StoreError> {
    let version: i64 = connection
        .prepare_cached("SELECT coalesce(max(version), 0) FROM es_events WHERE stream_id = ?1")
        .and_then(|mut statement| statement.query_row([stream_id], |row| row.get(0)))
        .map_err(backend("reading a SQLite stream version"))?;
    Ok(version.max(0) as u64)
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream_id: &str,
        aggregate_type: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        crate::store::require_stream_id(stream_id)?;
        let stream_id = stream_id.to_owned();
        let aggregate_type = aggregate_type.to_owned();
        self.write(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend("starting a SQLite append"))?;
            let actual = stream_version(&transaction, &stream_id)?;
            if !expected.accepts(actual) {
                return Err(StoreError::Conflict { stream_id, expected, actual });
            }
            let recorded_at = Utc::now();
            // SQLite keeps microseconds; round now so what we return equals what a read returns.
            let recorded_at = from_micros(micros(recorded_at)).unwrap_or(recorded_at);
            let mut recorded = Vec::with_capacity(events.len());
            {
                let mut insert = transaction
                    .prepare_cached(
                        "INSERT INTO es_events (stream_id, version, aggregate_type, event_name, schema_version,
                            recorded_at_us, event_id, correlation_id, causation_id, extra, payload)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )
                    .map_err(backend("preparing a SQLite append"))?;
                for (offset, event) in events.into_iter().enumerate() {
                    let version = actual + offset as u64 + 1;
                    insert
                        .execute(params![
                            stream_id,
                            to_i64(version, "version")?,
                            aggregate_type,
                            event.event_name,
                            event.schema_version,
                            micros(recorded_at),
                            event.metadata.event_id.to_string(),
                            event.metadata.correlation_id.to_string(),
                            event.metadata.causation_id.map(|id| id.to_string()),
                            encode_extra(&event.metadata)?,
                            event.payload.as_str(),
                        ])
                        .map_err(backend("appending to SQLite"))?;
                    recorded.push(RecordedEvent {
                        stream_id: stream_id.clone(),
                        aggregate_type: aggregate_type.clone(),
                        version,
                        position: transaction.last_insert_rowid() as u64,
                        recorded_at,
                        event_name: event.event_name,
                        schema_version: event.schema_version,
                        metadata: event.metadata,
                        event: event.payload,
                    });
                }
            }
            transaction.commit().map_err(backend("committing a SQLite append"))?;
            Ok(recorded)
        })
        .await
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let stream_id = stream_id.to_owned();
        let from = to_i64(from_version, "version")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |connection| {
            query_events(
                connection,
                &format!("SELECT {ROW} FROM es_events WHERE stream_id = ?1 AND version >= ?2 ORDER BY version LIMIT ?3"),
                params![stream_id, from, limit],
            )
        })
        .await
    }

    async fn read_stream_payloads(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredPayload>, StoreError> {
        let stream_id = stream_id.to_owned();
        let from = to_i64(from_version, "version")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT version, event_name, schema_version, payload, recorded_at_us FROM es_events
                     WHERE stream_id = ?1 AND version >= ?2 ORDER BY version LIMIT ?3",
                )
                .map_err(backend("preparing a SQLite read"))?;
            let rows = statement
                .query_map(params![stream_id, from, limit], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                })
                .map_err(backend("reading SQLite events"))?;
            rows.map(|row| {
                let (version, event_name, schema_version, payload, recorded_at_us) =
                    row.map_err(backend("reading a SQLite event row"))?;
                Ok(StoredPayload {
                    version: version.max(0) as u64,
                    event_name,
                    schema_version: u32::try_from(schema_version).map_err(|_| {
                        StoreError::Corrupt {
                            stream_id: stream_id.clone(),
                            version: version.max(0) as u64,
                            reason: format!("schema version {schema_version} is out of range"),
                        }
                    })?,
                    recorded_at: from_micros(recorded_at_us).ok_or_else(|| StoreError::Corrupt {
                        stream_id: stream_id.clone(),
                        version: version.max(0) as u64,
                        reason: format!("recorded_at {recorded_at_us} is not a time"),
                    })?,
                    payload: Payload::from_json_text(payload),
                })
            })
            .collect()
        })
        .await
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from = to_i64(from_position, "position")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |connection| {
            query_events(
                connection,
                &format!(
                    "SELECT {ROW} FROM es_events WHERE position >= ?1 ORDER BY position LIMIT ?2"
                ),
                params![from, limit],
            )
        })
        .await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.read(|connection| {
            let head: i64 = connection
                .query_row(
                    "SELECT coalesce(max(position), 0) FROM es_events",
                    [],
                    |row| row.get(0),
                )
                .map_err(backend("reading the SQLite head position"))?;
            Ok(head.max(0) as u64)
        })
        .await
    }

    async fn stream_version(&self, stream_id: &str) -> Result<u64, StoreError> {
        let stream_id = stream_id.to_owned();
        self.read(move |connection| stream_version(connection, &stream_id))
            .await
    }

    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        let stream_id = stream_id.to_owned();
        self.read(move |connection| {
            let row = connection
                .prepare_cached(
                    "SELECT aggregate_type, version, state_fingerprint, state, taken_at_us FROM es_snapshots WHERE stream_id = ?1",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row([&stream_id], |row| {
                            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?, row.get::<_, i64>(4)?))
                        })
                        .optional()
                })
                .map_err(backend("reading a SQLite snapshot"))?;
            let Some((aggregate_type, version, state_fingerprint, state, taken_at_us)) = row else {
                return Ok(None);
            };
            let corrupt = |reason: &str| StoreError::Corrupt { stream_id: stream_id.clone(), version: version.max(0) as u64, reason: reason.into() };
            Ok(Some(Snapshot {
                aggregate_type,
                version: u64::try_from(version).map_err(|_| corrupt("snapshot version is negative"))?,
                state_fingerprint,
                state: Payload::from_json_text(state),
                taken_at: from_micros(taken_at_us).ok_or_else(|| corrupt("snapshot time is not a time"))?,
                stream_id: stream_id.clone(),
            }))
        })
        .await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "INSERT INTO es_snapshots (stream_id, aggregate_type, version, state_fingerprint, state, taken_at_us)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (stream_id) DO UPDATE SET
                        aggregate_type = excluded.aggregate_type, version = excluded.version,
                        state_fingerprint = excluded.state_fingerprint, state = excluded.state, taken_at_us = excluded.taken_at_us
                     WHERE excluded.version >= es_snapshots.version",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        snapshot.stream_id,
                        snapshot.aggregate_type,
                        to_i64(snapshot.version, "version").unwrap_or(i64::MAX),
                        snapshot.state_fingerprint,
                        snapshot.state.as_str(),
                        micros(snapshot.taken_at),
                    ])
                })
                .map_err(backend("saving a SQLite snapshot"))?;
            Ok(())
        })
        .await
    }

    async fn load_checkpoint(&self, projection: &str) -> Result<Option<u64>, StoreError> {
        let projection = projection.to_owned();
        self.read(move |connection| {
            let position: Option<i64> = connection
                .prepare_cached("SELECT next_position FROM es_checkpoints WHERE projection = ?1")
                .and_then(|mut statement| {
                    statement
                        .query_row([&projection], |row| row.get(0))
                        .optional()
                })
                .map_err(backend("reading a SQLite checkpoint"))?;
            Ok(position.map(|p| p.max(0) as u64))
        })
        .await
    }

    async fn save_checkpoint(
        &self,
        projection: &str,
        next_position: u64,
    ) -> Result<(), StoreError> {
        let projection = projection.to_owned();
        let next = to_i64(next_position, "position")?;
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "INSERT INTO es_checkpoints (projection, next_position) VALUES (?1, ?2)
                     ON CONFLICT (projection) DO UPDATE SET next_position = excluded.next_position",
                )
                .and_then(|mut statement| statement.execute(params![projection, next]))
                .map_err(backend("saving a SQLite checkpoint"))?;
            Ok(())
        })
        .await
    }
}
