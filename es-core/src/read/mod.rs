//! The read side: projections that keep documents in the store's database, fed by a daemon
//! that catches up from each projection's checkpoint and then follows new events.
//!
//! | mode | when it sees an event | a failing handler | guarantee |
//! |---|---|---|---|
//! | async (the default) | shortly after the commit, in batches | stops the projection (or skips the event, with `on_failure = skip`); commands go on | each event applied exactly once: a batch's documents and checkpoint commit together |
//!
//! Commands never wait for, fail on, or lock against async projections; a caller that
//! wants to read its own write waits for it explicitly, with a timeout
//! ([`Daemon::wait_for`]).

pub(crate) mod background;
mod batch;
mod daemon;
mod dead_letters;
mod docs;
mod forward;
mod health;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod list_sql;
pub(crate) mod memory;
mod projection;
mod query;
mod rebuild;
pub mod sql;
mod store;
mod swap;

use std::fmt;
use std::sync::Arc;

pub use daemon::{Daemon, DaemonConfig};
pub use dead_letters::retry_dead_letter;
pub use docs::Docs;
pub use health::{health, HealthState, ProjectionHealth};
pub use projection::{Document, OnFailure, Projection};
pub use query::{Documents, Page, ReadStoreExt};
pub use rebuild::{rebuild, RebuildProgress};
pub use store::{
    DeadLetter, DocumentRow, DocumentTable, DocumentWrite, GenerationState, GenerationStatus,
    ListQuery, Order, ReadStore, ReadTx, Stopped,
};

pub use batch::project_in_memory;
#[doc(hidden)]
pub use batch::ErasedProjection;
#[doc(hidden)]
pub use projection::ProjectionDecl;

/// A store with everything: an event log, snapshots, and read models. Implemented for every
/// type that is all three (the memory, SQLite and PostgreSQL stores), so an application can
/// hold one `Arc<dyn Store>` for its repositories and its projection daemon.
pub trait Store: crate::store::EventStore + ReadStore {}

impl<S: crate::store::EventStore + ReadStore + ?Sized> Store for S {}

/// How `#[projection]` makes a projection discoverable: its name and a constructor, collected
/// by `inventory` from every crate linked into the binary. Only projections the macro can
/// build without arguments (unit structs, and structs that derive `Default`) register.
#[derive(Debug)]
pub struct ProjectionRegistration {
    name: &'static str,
    create: fn() -> Arc<dyn ErasedProjection>,
}

impl ProjectionRegistration {
    #[doc(hidden)]
    pub const fn new(name: &'static str, create: fn() -> Arc<dyn ErasedProjection>) -> Self {
        ProjectionRegistration { name, create }
    }

    /// The projection's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

inventory::collect!(ProjectionRegistration);

/// Every projection registered with `#[projection]` in this binary.
pub fn registered_projections() -> impl Iterator<Item = &'static ProjectionRegistration> {
    inventory::iter::<ProjectionRegistration>.into_iter()
}

/// A set of projections for a [`Daemon`] to run.
#[derive(Clone, Default)]
pub struct Projections {
    entries: Vec<Arc<dyn ErasedProjection>>,
}

impl fmt::Debug for Projections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Projections {
    /// No projections.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every projection declared with `#[projection]`, linked into this binary, and
    /// constructible without arguments. Add projections that hold configuration by hand.
    pub fn discover() -> Self {
        let mut set = Self::new();
        for registration in registered_projections() {
            set = set.with_erased((registration.create)());
        }
        set
    }

    /// Adds a projection (for example one that holds configuration). A projection already
    /// in the set under the same name is replaced.
    pub fn with(self, projection: impl Projection) -> Self {
        self.with_erased(Arc::new(projection))
    }

    /// Adds a [SQL projection](crate::sql), which writes tables of its own. A projection
    /// already in the set under the same name is replaced.
    pub fn with_sql(self, projection: impl sql::SqlProjection) -> Self {
        self.with_erased(Arc::new(sql::SqlModel::new(projection)))
    }

    fn with_erased(mut self, projection: Arc<dyn ErasedProjection>) -> Self {
        self.entries
            .retain(|entry| entry.name() != projection.name());
        self.entries.push(projection);
        self.entries.sort_by_key(|entry| entry.name());
        self
    }

    /// The names of the projections in this set, in name order.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|entry| entry.name()).collect()
    }

    /// Only the inline projections of the set.
    pub(crate) fn only_inline(mut self) -> Self {
        self.entries.retain(|entry| entry.inline());
        self
    }

    pub(crate) fn entries(&self) -> &[Arc<dyn ErasedProjection>] {
        &self.entries
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn ErasedProjection>> {
        self.entries.iter().find(|entry| entry.name() == name)
    }
}

/// The state of the live generation of `projection`, if it has one.
pub(crate) async fn live_state(
    store: &dyn ReadStore,
    projection: &str,
) -> Result<Option<GenerationState>, crate::error::StoreError> {
    Ok(store
        .generations(projection)
        .await?
        .into_iter()
        .find(|state| state.status == GenerationStatus::Live))
}

/// The live generation of `projection`, if it has one.
pub(crate) async fn live_generation(
    store: &dyn ReadStore,
    projection: &str,
) -> Result<Option<u32>, crate::error::StoreError> {
    Ok(live_state(store, projection)
        .await?
        .map(|state| state.generation))
}

/// The state of the live generation of `table`'s projection, made (as `table`, at `version`)
/// when it has none.
pub(crate) async fn ensure_live(
    store: &dyn ReadStore,
    table: &DocumentTable,
    version: &str,
) -> Result<GenerationState, crate::error::StoreError> {
    match live_state(store, &table.projection).await? {
        Some(live) => Ok(live),
        None => store.create_generation(table, version).await,
    }
}

/// The table of the live generation of `projection`, made when it has none (see
/// [`first_live`]).
pub(crate) async fn live_table(
    store: &dyn ReadStore,
    projection: &dyn ErasedProjection,
) -> Result<DocumentTable, crate::error::StoreError> {
    let live = first_live(store, projection).await?;
    Ok(table_of(projection, live.generation))
}

/// The live generation of `projection`, made (generation 1) when it has none.
///
/// An inline projection's first generation, made on a log that already has events, would
/// miss them: commands write it only from now on. So it comes with a building generation
/// (2), which the daemon (or [`rebuild`](crate::rebuild)) fills from the log and swaps in;
/// until then health says it is rebuilding. The two are made one after the other: a process
/// that dies between them leaves generation 1 live without the history, which `rebuild`
/// mends.
pub(crate) async fn first_live(
    store: &dyn ReadStore,
    projection: &dyn ErasedProjection,
) -> Result<GenerationState, crate::error::StoreError> {
    if let Some(live) = live_state(store, projection.name()).await? {
        return Ok(live);
    }
    let head = store.head_position().await?;
    let live = store
        .create_generation(&table_of(projection, 1), projection.version())
        .await?;
    if projection.inline() && head > 0 {
        tracing::info!(
            projection = projection.name(),
            head,
            "a new inline projection on a log with events: building it from the log beside the live generation"
        );
        store
            .create_generation(&table_of(projection, 2), projection.version())
            .await?;
    }
    Ok(live)
}

/// The table of one generation of `projection`.
pub(crate) fn table_of(projection: &dyn ErasedProjection, generation: u32) -> DocumentTable {
    DocumentTable {
        projection: projection.name().to_owned(),
        generation,
        indexes: projection
            .indexes()
            .iter()
            .map(|index| (*index).to_owned())
            .collect(),
    }
}
