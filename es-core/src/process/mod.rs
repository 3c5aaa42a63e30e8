//! Process managers: react to events by sending commands to aggregates, with state of their
//! own and deadlines ("if this draft is not published in 30 days, archive it").
//!
//! ```
//! use std::time::Duration;
//! use es_core::{aggregate, process_manager, Command, Envelope, Event};
//! use es_core::process::{Deadline, Dispatch, Process};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
//! #[event(name = "draft.started")]
//! pub struct DraftStarted;
//! #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
//! #[event(name = "draft.published")]
//! pub struct DraftPublished;
//! #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
//! #[event(name = "draft.archived")]
//! pub struct DraftArchived;
//! #[derive(Command, Clone, Debug)]
//! pub struct ArchiveDraft;
//! # #[derive(Debug, thiserror::Error)] #[error("never")] pub struct Never;
//! #[aggregate(name = "draft", id = String, error = Never)]
//! #[derive(Default, Debug)]
//! pub struct Draft;
//! #[aggregate]
//! impl Draft {
//!     #[handle] fn archive(&self, _: ArchiveDraft) -> Result<DraftArchived, Never> { Ok(DraftArchived) }
//!     #[apply] fn started(&mut self, _: &DraftStarted) {}
//!     #[apply] fn published(&mut self, _: &DraftPublished) {}
//!     #[apply] fn archived(&mut self, _: &DraftArchived) {}
//! }
//!
//! /// A deadline's message: declared like an event (a stored name, serde).
//! #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
//! #[event(name = "draft.stale")]
//! pub struct DraftStale { pub draft: String }
//!
//! #[derive(Clone, Debug, Default, Serialize, Deserialize)]
//! pub struct Nothing;
//!
//! #[process_manager(name = "draft_janitor")]
//! pub struct DraftJanitor;
//!
//! #[process_manager]
//! impl DraftJanitor {
//!     #[on]
//!     fn started(&self, event: &Envelope<DraftStarted>, process: &mut Process<'_, Nothing>) {
//!         let draft = event.aggregate_id().to_owned();
//!         process.schedule_after(draft.clone(), Duration::from_secs(30 * 86_400), DraftStale { draft });
//!     }
//!
//!     #[on]
//!     fn published(&self, event: &Envelope<DraftPublished>, process: &mut Process<'_, Nothing>) {
//!         process.cancel(event.aggregate_id());
//!     }
//!
//!     #[on]
//!     fn stale(&self, deadline: &Deadline<DraftStale>, process: &mut Process<'_, Nothing>) -> Dispatch {
//!         Dispatch::to::<Draft>(deadline.message.draft.clone(), ArchiveDraft)
//!     }
//! }
//! ```
//!
//! Run it with a [`ProcessRunner`] over a store, a [`Dispatcher`] that routes each aggregate
//! to its repository, and a [`Clock`]; test it with [`ProcessFixture`].
//!
//! # Guarantees
//!
//! - **Each command applied once.** Commands carry a command id made from the process
//!   manager's name, the id of the event (or deadline) that caused them and their index, and
//!   the event's correlation id (causation: the event's id). A process that dies after sending
//!   and before its checkpoint commits sends the same commands again, which the repository's
//!   command-id idempotency turns into no-ops.
//! - **State and checkpoint together.** State documents, deadline changes and the checkpoint
//!   commit in one transaction; the checkpoint moves by compare-and-set.
//! - **Deadlines fire once**, after restarts too: they are documents in the store, fired by
//!   the lease holder, each in a transaction guarded by a compare-and-set counter; a
//!   cancelled one never fires. One fires only after every event recorded before it came due
//!   has been handled, so an event that cancels it in time wins also when the process
//!   manager is catching up (after a restart, a crash, a long pause).
//! - **Checked at compile time**: [`Dispatch::to`] takes `impl Into<A::Command>`, so a
//!   command the aggregate has no `#[handle]` for is a type error at the call; a handler's
//!   shape is checked by `#[process_manager]`.
//!
//! # Limits
//!
//! - A rejected command (the aggregate said no) is logged and counted in
//!   [`ProcessHealth::rejected_commands`], not retried; any other failure (store, conflicts
//!   past the retry policy, a handler's error) holds the process manager at that batch and
//!   retries it after a pause.
//! - The lease holder remembers the earliest due time of its pending deadlines and reads them
//!   only once that time comes (or after a lease's time, in case another holder scheduled
//!   some): a round with nothing due reads no deadline. When it does read, it reads every
//!   pending one: fine for tens of thousands, not for millions.
//! - "Recorded before it came due" is judged by the recorded time of the last event of each
//!   batch read: an event of a concurrent writer whose recorded time is out of log order can
//!   still lose to a deadline that came due by that margin.

mod clock;
mod dispatch;
mod error;
mod fixture;
mod ids;
#[doc(hidden)]
pub mod macro_support;
mod manager;
mod runner;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dispatch::{Dispatch, Dispatcher};
pub use error::ProcessError;
pub use fixture::ProcessFixture;
pub use manager::{Deadline, IntoDispatches, Process, ProcessManager};
pub use runner::{ProcessConfig, ProcessHealth, ProcessRunner};
