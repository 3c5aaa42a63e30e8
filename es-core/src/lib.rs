//! Event-sourced aggregates declared with macros.
//!
//! Write your domain as plain structs and methods; `#[aggregate]`, `#[derive(Event)]`,
//! `#[derive(Command)]` and `#[projection]` generate the event and command enums, the
//! dispatch, projection wiring and a given/when/then fixture. A [`Repository`] runs commands
//! against any [`EventStore`] (an [`EventLog`] with a [`SnapshotStore`]): [`MemoryStore`]
//! always, SQLite and PostgreSQL behind features.
//!
//! ```
//! use es_core::{aggregate, Command, Event, GivenExt, MemoryStore, Repository};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
//! #[event(name = "account.deposited")]
//! pub struct Deposited { pub amount: u64 }
//!
//! #[derive(Command, Clone, Debug)]
//! pub struct Deposit { pub amount: u64 }
//!
//! #[derive(Debug, PartialEq, thiserror::Error)]
//! pub enum AccountError {
//!     #[error("a deposit must be positive")]
//!     NothingToDeposit,
//! }
//!
//! #[aggregate(name = "account", id = String, error = AccountError)]
//! #[derive(Default, Debug, PartialEq)]
//! pub struct Account { balance: u64 }
//!
//! #[aggregate]
//! impl Account {
//!     #[handle]
//!     fn deposit(&self, command: Deposit) -> Result<Deposited, AccountError> {
//!         if command.amount == 0 {
//!             return Err(AccountError::NothingToDeposit);
//!         }
//!         Ok(Deposited { amount: command.amount })
//!     }
//!
//!     #[apply]
//!     fn deposited(&mut self, event: &Deposited) {
//!         self.balance += event.amount;
//!     }
//! }
//!
//! // The fixture (`GivenExt`): given past events, when a command, then these events.
//! Account::given([]).when(Deposit { amount: 5 }).then([Deposited { amount: 5 }.into()]);
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let accounts = Repository::<Account>::new(MemoryStore::new());
//! accounts.execute(&"alice".to_string(), Deposit { amount: 30 }).await?;
//! let alice = accounts.load(&"alice".to_string()).await?;
//! assert_eq!((alice.state.balance, alice.version), (30, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! A handler that needs more than state and command (a clock, a uniqueness check, the user
//! from the caller's [`CommandMetadata`]) takes a [`Context`] after its command; the struct
//! declares its services with `#[aggregate(services = ...)]`. Services are queries: a
//! handler runs again when its append loses a race, so side effects belong in projections or
//! process managers (see [`Aggregate`]).
//!
//! # Features
//!
//! - `sqlite`: [`sqlite::SqliteStore`], a single-file store.
//! - `postgres`: [`postgres::PostgresStore`], shared by many processes.
//! - `nats`: [`nats::Publisher`] (an outbox to NATS JetStream) and [`nats::Subscription`].
//! - `testing`: the store conformance suite in `testing`.
//!
//! Every item has one public path: the vocabulary at the crate root, each backend in its own
//! module, the limits every store enforces in [`limits`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate self as es_core;

mod aggregate;
mod cache;
mod command;
mod context;
mod envelope;
mod error;
mod event;
mod fixture;
mod history;
pub mod limits;
#[cfg(feature = "nats")]
pub mod nats;
pub mod process;
mod read;
mod replay;
mod repository;
#[cfg(feature = "testing")]
mod schema_guard;
mod scratch;
mod store;
mod stream;
#[cfg(feature = "testing")]
pub mod testing;

/// The PostgreSQL store (feature `postgres`).
#[cfg(feature = "postgres")]
#[path = "store/postgres/mod.rs"]
pub mod postgres;
/// The SQLite store (feature `sqlite`).
#[cfg(feature = "sqlite")]
#[path = "store/sqlite/mod.rs"]
pub mod sqlite;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use aggregate::{Aggregate, AggregateId, DomainError, IntoEvents};
/// For implementing the async traits ([`sql::SqlProjection`], stores, NATS handlers) without
/// a dependency of your own: `#[es_core::async_trait]`.
pub use async_trait::async_trait;
pub use cache::AggregateCache;
pub use command::Command;
pub use context::Context;
pub use envelope::{Envelope, Metadata, NewEvent, Payload, RecordedEvent};
pub use error::{
    BoxError, Conflict, CorruptRecord, Corruption, DecodeError, Field, ProjectionError, Refusal,
    RepositoryError, StoreError,
};
pub use event::{DecodeFailure, Event, EventSet, StorableEvent, UpcastError};
pub use fixture::{Given, GivenExt, Outcome};
pub use history::{Change, RolledBack};
pub use read::sql;
pub use read::{
    health, rebuild, registered_projections, Daemon, DaemonConfig, DeadLetter, Docs, Document,
    DocumentRow, DocumentTable, DocumentWrite, Documents, GenerationState, GenerationStatus,
    HealthState, ListQuery, OnFailure, Order, Page, Projection, ProjectionHealth,
    ProjectionRegistration, Projections, ReadStore, ReadStoreExt, ReadTx, RebuildProgress, Stopped,
    Store,
};
pub use read::{project_in_memory, retry_dead_letter};
pub use repository::{decode_event, CommandMetadata, Loaded, Repository, RetryPolicy};
pub use store::memory::MemoryStore;
pub use store::{
    Blocker, EventLog, EventLogExt, EventStore, ExpectedVersion, Snapshot, SnapshotStore,
    StoredPayload, PAGE_SIZE, REPLAY_PAGE_SIZE,
};
pub use stream::StreamId;

pub use es_macros::{aggregate, process_manager, projection, Command, Event};
