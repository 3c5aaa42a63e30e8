//! Where read models live: the same database as the events, behind one small trait that
//! every backend implements (memory, SQLite, PostgreSQL).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::envelope::Payload;
use crate::error::StoreError;
use crate::store::EventLog;
use crate::stream::StreamId;

/// One generation of one projection's documents: a table the runtime manages. A rebuild
/// writes a new generation beside the live one and swaps them when it has caught up.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DocumentTable {
    /// The projection's name.
    pub projection: String,
    /// Counts up from 1 with every rebuild.
    pub generation: u32,
    /// The document fields that can be filtered on, each with its own index.
    pub indexes: Vec<String>,
}

impl DocumentTable {
    /// The SQL name of the table: `es_doc_{projection}_{generation}`. Projection names are
    /// checked to be identifiers, so this is one too.
    pub fn sql_name(&self) -> String {
        format!("es_doc_{}_{}", self.projection, self.generation)
    }
}

/// A stored document.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentRow {
    /// Its key.
    pub key: String,
    /// The document as JSON.
    pub body: Payload,
}

/// One change of a batch: store `body` under `key` (with the values of the indexed fields,
/// in the table's index order), or delete `key` when `body` is `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentWrite {
    /// The key.
    pub key: String,
    /// The new document, or `None` to delete it.
    pub body: Option<Payload>,
    /// The indexed fields' values as text (`None`: absent or null).
    pub index_values: Vec<Option<String>>,
}

/// How to list documents: optionally filtered on one indexed field, in key order (or in the
/// order of an indexed field), after a cursor, a page at a time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `(index position, value)`: only documents whose indexed field equals the value.
    pub filter: Option<(usize, String)>,
    /// Only keys after this one (the last key of the previous page); unused with `order`.
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
    /// In the order of an indexed field's value (as text, by bytes), then of the key, rather
    /// than of the key alone; documents without the field are left out.
    pub order: Option<Order>,
}

/// The order of a listing by an indexed field: which, which way, and where the previous page
/// ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Order {
    /// The index position of the field.
    pub index: usize,
    /// Largest value first.
    pub descending: bool,
    /// Only documents after this `(value, key)` in this order (the previous page's last).
    pub after: Option<(String, String)>,
}

/// Where a generation of a projection stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerationState {
    /// The projection.
    pub projection: String,
    /// The generation.
    pub generation: u32,
    /// The projection's version (declared, or its fingerprint) this generation was built by.
    pub version: String,
    /// The next position it will read.
    pub checkpoint: u64,
    /// Live (serving queries), building (a rebuild catching up) or retired.
    pub status: GenerationStatus,
    /// Where and why it stopped, if a handler failed under the stop policy.
    pub stopped: Option<Stopped>,
}

impl GenerationState {
    /// A generation `create_generation` just made, at `version`, from the start of the log:
    /// live when it is the projection's `first`, else building beside the live one.
    pub(crate) fn created(table: &DocumentTable, version: &str, first: bool) -> Self {
        GenerationState {
            projection: table.projection.clone(),
            generation: table.generation,
            version: version.to_owned(),
            checkpoint: 1,
            status: if first {
                GenerationStatus::Live
            } else {
                GenerationStatus::Building
            },
            stopped: None,
        }
    }
}

/// The role of a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenerationStatus {
    /// Serves queries.
    Live,
    /// A rebuild catching up beside the live one.
    Building,
}

impl GenerationStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            GenerationStatus::Live => "live",
            GenerationStatus::Building => "building",
        }
    }

    /// From what is stored.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "live" => Some(GenerationStatus::Live),
            "building" => Some(GenerationStatus::Building),
            _ => None,
        }
    }
}

/// Where a projection stopped and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// The position of the event it could not apply.
    pub position: u64,
    /// The error, as text.
    pub error: String,
}

/// An event a projection could not apply under the skip policy, kept for a later retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The projection.
    pub projection: String,
    /// The event's position.
    pub position: u64,
    /// Its stream.
    pub stream: StreamId,
    /// Its version.
    pub version: u64,
    /// Its stored name.
    pub event_name: String,
    /// Why it failed.
    pub error: String,
    /// When it was set aside.
    pub failed_at: DateTime<Utc>,
}

/// A store that keeps read models beside its events.
///
/// # For implementors
///
/// - A [`ReadTx`] is one database transaction: documents, checkpoint and dead letters of one
///   batch commit together or not at all. That is what makes projections exactly once.
/// - [`ReadTx::advance`] is a compare-and-set on the checkpoint: it fails with
///   [`StoreError::CheckpointMoved`] when another worker moved it, so two workers racing on
///   one projection can never both commit a batch.
/// - [`ReadTx::live_generation`] and [`ReadTx::promote`] exclude each other (one waits, or
///   the later commit fails): inline projections write the live generation without a
///   checkpoint, so this is what keeps a rebuild's swap from losing their writes.
/// - Document tables are created on demand by [`create_generation`](ReadStore::create_generation),
///   each indexed field with an index of its own.
/// - The conformance suite in `es_core::testing` covers all of it.
#[async_trait]
pub trait ReadStore: EventLog {
    /// Every generation of `projection` the store knows, oldest first.
    async fn generations(&self, projection: &str) -> Result<Vec<GenerationState>, StoreError>;

    /// Creates a generation (its table and its state row, checkpoint 1) unless it exists.
    /// The first generation of a projection is live; later ones are building.
    async fn create_generation(
        &self,
        table: &DocumentTable,
        version: &str,
    ) -> Result<GenerationState, StoreError>;

    /// Makes `table`'s generation the live one and drops the others, in one transaction.
    async fn promote(&self, table: &DocumentTable) -> Result<(), StoreError>;

    /// Starts a batch transaction.
    async fn begin(&self) -> Result<Box<dyn ReadTx + '_>, StoreError>;

    /// One document by key.
    async fn get_document(
        &self,
        table: &DocumentTable,
        key: &str,
    ) -> Result<Option<DocumentRow>, StoreError>;

    /// A page of documents in key order.
    async fn list_documents(
        &self,
        table: &DocumentTable,
        query: &ListQuery,
    ) -> Result<Vec<DocumentRow>, StoreError>;

    /// The dead letters of `projection`, oldest first.
    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError>;

    /// Takes or renews the lease on `projection` for `holder` for `ttl`; returns who holds
    /// it now (`holder` when taken). A lease whose holder stopped renewing expires.
    async fn acquire_lease(
        &self,
        projection: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<String, StoreError>;

    /// Who holds the lease on `projection` now, if anyone (an expired lease is no one's).
    async fn lease_holder(&self, projection: &str) -> Result<Option<String>, StoreError>;

    /// Gives the lease up, if `holder` has it.
    async fn release_lease(&self, projection: &str, holder: &str) -> Result<(), StoreError>;

    /// A receiver that changes whenever events are appended (in this process, or, where the
    /// store can tell, in any), so a daemon sleeps instead of polling. `None`: poll.
    fn append_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// `name` as this store's SQL should be told it (quoted, schema-qualified where the
    /// store has a schema), or `None` when it has no SQL: for [SQL projections](crate::sql).
    fn sql_table_name(&self, name: &str) -> Option<String> {
        let _ = name;
        None
    }

    /// Runs a read-only query outside any batch, never waiting for one to commit: how
    /// [`sql::query`](crate::sql::query) reads SQL projections' tables.
    async fn query_sql(
        &self,
        sql: &str,
        params: &[crate::sql::SqlValue],
    ) -> Result<crate::sql::SqlRows, StoreError> {
        let _ = (sql, params);
        Err(StoreError::Unsupported {
            what: "this store has no SQL to query".to_owned(),
        })
    }
}

/// One batch transaction of a projection, or of a command with inline projections.
#[async_trait]
pub trait ReadTx: Send {
    /// Appends `events` to `stream` as part of this transaction: they are stored when it
    /// commits and never when it is dropped, and the returned records are exactly what is
    /// stored. Same rules as [`EventLog::append`](crate::EventLog::append) (limits, expected
    /// version, command ids). A store may find a conflict only at commit
    /// ([`StoreError::Conflict`] then too). Inline projections are applied to these records
    /// in the same transaction.
    async fn append(
        &mut self,
        stream: &StreamId,
        expected: crate::store::ExpectedVersion,
        events: Vec<crate::envelope::NewEvent>,
    ) -> Result<Vec<crate::envelope::RecordedEvent>, StoreError>;

    /// The documents under `keys` that exist.
    async fn load(
        &mut self,
        table: &DocumentTable,
        keys: &[String],
    ) -> Result<Vec<DocumentRow>, StoreError>;

    /// Stores and deletes documents.
    async fn write(
        &mut self,
        table: &DocumentTable,
        writes: Vec<DocumentWrite>,
    ) -> Result<(), StoreError>;

    /// Moves the generation's checkpoint from `from` to `to`, or fails with
    /// [`StoreError::CheckpointMoved`] when it is no longer at `from`.
    async fn advance(
        &mut self,
        table: &DocumentTable,
        from: u64,
        to: u64,
    ) -> Result<(), StoreError>;

    /// The live generation of `projection` (`None`: it has none yet), held for the rest of
    /// this transaction: a [`promote`](ReadTx::promote) of the projection in another
    /// transaction waits until this one ends, or (on a store that never waits) this one's
    /// commit fails with [`StoreError::CheckpointMoved`] if a promotion committed first. So
    /// an inline projection that writes the generation read here never writes one a rebuild
    /// has already swapped out.
    async fn live_generation(&mut self, projection: &str) -> Result<Option<u32>, StoreError>;

    /// Up to `limit` events from `from_position` on, in position order, as this transaction
    /// sees the log: after a [`promote`](ReadTx::promote), every event that a transaction
    /// writing the retired generation committed. Unlike
    /// [`EventLog::read_all`](crate::EventLog::read_all), it does not hold back events of
    /// transactions that are still running.
    async fn read_all(
        &mut self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<crate::envelope::RecordedEvent>, StoreError>;

    /// Makes `table`'s generation the live one and drops the others when this transaction
    /// commits. From this call on, every transaction that read the projection's live
    /// generation with [`live_generation`](ReadTx::live_generation) has ended (this call
    /// waits for them) and later ones wait for this transaction; a store that never waits
    /// instead fails this transaction's commit with [`StoreError::CheckpointMoved`] (`actual`:
    /// the generation's checkpoint as stored) when events were committed after this
    /// transaction's [`read_all`](ReadTx::read_all). Either way, a rebuild that applies what
    /// `read_all` returns after this call and commits swaps in a generation that misses no
    /// event written inline. Fails with [`StoreError::CheckpointMoved`] (`actual: None`) when
    /// the generation is gone.
    async fn promote(&mut self, table: &DocumentTable) -> Result<(), StoreError>;

    /// Records that the generation stopped at `stopped` (or clears it with `None`).
    async fn set_stopped(
        &mut self,
        table: &DocumentTable,
        stopped: Option<&Stopped>,
    ) -> Result<(), StoreError>;

    /// Sets an event aside.
    async fn add_dead_letter(&mut self, letter: &DeadLetter) -> Result<(), StoreError>;

    /// Removes a dead letter; returns whether it was there (a retry applies it only then).
    async fn remove_dead_letter(
        &mut self,
        projection: &str,
        position: u64,
    ) -> Result<bool, StoreError>;

    /// The transaction's SQL, for [SQL projections](crate::sql); `None` on a store without.
    fn sql(&mut self) -> Option<&mut dyn crate::sql::SqlExecutor> {
        None
    }

    /// Commits everything.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}
