//! Event-sourced aggregates declared with macros.
//!
//! Write your domain as plain structs and methods; `#[aggregate]`, `#[derive(Event)]`,
//! `#[derive(Command)]` and `#[projection]` generate the event and command enums, the
//! dispatch, projection wiring and a given/when/then fixture. A [`Repository`] runs commands
//! against any [`EventStore`]: [`MemoryStore`] always, SQLite and PostgreSQL behind features.
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
//! # Features
//!
//! - `sqlite`: `store::sqlite::SqliteStore`, a single-file store.
//! - `postgres`: `store::postgres::PostgresStore`, shared by many processes.
//! - `testing`: the store conformance suite in `testing`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate self as es_core;

pub mod aggregate;
pub mod cache;
pub mod command;
pub mod envelope;
pub mod error;
pub mod event;
pub mod fixture;
pub mod history;
pub mod projection;
mod replay;
pub mod repository;
#[cfg(feature = "testing")]
mod schema_guard;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use aggregate::Aggregate;
pub use command::Command;
pub use envelope::{Envelope, Metadata, NewEvent, Payload, RecordedEvent};
pub use error::{DecodeError, ProjectionError, RepositoryError, StoreError};
pub use event::{DecodeFailure, Event, EventSet, UpcastError};
pub use fixture::{Given, GivenExt, Outcome};
pub use history::{Change, RolledBack};
pub use projection::{Projection, Projections};
pub use repository::{CommandMetadata, Loaded, Repository, RetryPolicy};
pub use store::memory::MemoryStore;
pub use store::{EventStore, EventStoreExt, ExpectedVersion, Snapshot, StoredPayload};

pub use es_macros::{aggregate, projection, Command, Event};
