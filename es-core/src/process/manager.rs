//! What a process manager is to the runtime, and what its handlers see: the [`Process`] they
//! keep state and deadlines through, the [`Deadline`]s they receive.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::{Payload, RecordedEvent};
use crate::event::Event;
use crate::process::dispatch::Dispatch;
use crate::process::error::ProcessError;
use crate::process::ids::deadline_id;
use crate::read::{Docs, Document};

/// Reacts to events (and to its own deadlines) by sending commands to aggregates, keeping
/// its own state as documents.
///
/// Implemented by `#[process_manager]` on a struct and its impl block; see the
/// [module documentation](crate::process) for an example.
///
/// # For implementors
///
/// Handlers must be deterministic and free of side effects other than what they return and
/// what they do through [`Process`]: the runtime may run one more than once (a batch that
/// needs state it had not loaded yet runs again; a batch that failed is retried), and only
/// the last run's commands, state and deadlines count. The commands of a run that is retried
/// are sent again with the same command ids, so the aggregates apply them once.
pub trait ProcessManager: Send + Sync + 'static {
    /// The documents it keeps its state in (keyed by whatever the handlers choose).
    type State: Document;
    /// A stable name: its checkpoint, state and deadlines are filed under it.
    const NAME: &'static str;
    /// The stored names of the events it handles.
    const EVENTS: &'static [&'static str];
    /// The stored names of the deadline messages it handles.
    const DEADLINES: &'static [&'static str] = &[];

    /// Reacts to one event (one of [`EVENTS`](Self::EVENTS)).
    fn on_event(
        &self,
        event: &RecordedEvent,
        process: &mut Process<'_, Self::State>,
    ) -> Result<Vec<Dispatch>, ProcessError>;

    /// Reacts to one of its deadlines coming due.
    fn on_deadline(
        &self,
        deadline: &Deadline<Payload>,
        process: &mut Process<'_, Self::State>,
    ) -> Result<Vec<Dispatch>, ProcessError> {
        let _ = (deadline, process);
        Ok(Vec::new())
    }
}

/// A message a process manager scheduled for itself, come due.
#[derive(Clone, Debug, PartialEq)]
pub struct Deadline<M> {
    /// The key it was scheduled under (scheduling the same key again replaces it).
    pub key: String,
    /// Made from the process manager, the event that scheduled it and the key: the cause of
    /// the commands it leads to.
    pub id: Uuid,
    /// When it came due.
    pub due_at: DateTime<Utc>,
    /// The correlation of the event that scheduled it; its commands join it.
    pub correlation_id: Uuid,
    /// Its message's stored name.
    pub name: String,
    /// Its message's schema version.
    pub version: u32,
    /// The message.
    pub message: M,
}

impl Deadline<Payload> {
    /// The same deadline with `message` in place of the stored one.
    pub fn with_message<M>(&self, message: M) -> Deadline<M> {
        Deadline {
            key: self.key.clone(),
            id: self.id,
            due_at: self.due_at,
            correlation_id: self.correlation_id,
            name: self.name.clone(),
            version: self.version,
            message,
        }
    }
}

/// A deadline as its document stores it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StoredDeadline {
    pub id: Uuid,
    pub due_at: DateTime<Utc>,
    pub correlation_id: Uuid,
    pub name: String,
    pub version: u32,
    pub message: serde_json::Value,
}

impl StoredDeadline {
    pub(crate) fn into_deadline(self, key: String) -> Result<Deadline<Payload>, serde_json::Error> {
        Ok(Deadline {
            key,
            id: self.id,
            due_at: self.due_at,
            correlation_id: self.correlation_id,
            name: self.name,
            version: self.version,
            message: Payload::encode(&self.message)?,
        })
    }
}

/// A change to the deadlines, in the order the handlers made them.
#[derive(Debug)]
pub(crate) enum DeadlineChange {
    Schedule {
        key: String,
        deadline: Result<StoredDeadline, serde_json::Error>,
    },
    Cancel {
        key: String,
    },
}

impl DeadlineChange {
    pub(crate) fn key(&self) -> &str {
        match self {
            DeadlineChange::Schedule { key, .. } | DeadlineChange::Cancel { key } => key,
        }
    }
}

/// What caused a handler to run: an event or a deadline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cause {
    /// The event's id or the deadline's.
    pub id: Uuid,
    pub correlation_id: Uuid,
    /// When the event was recorded or the deadline came due: "now" for the handler, the same
    /// on every run.
    pub at: DateTime<Utc>,
}

impl Cause {
    pub(crate) fn of_event(event: &RecordedEvent) -> Self {
        Cause {
            id: event.metadata.event_id,
            correlation_id: event.metadata.correlation_id,
            at: event.recorded_at,
        }
    }

    pub(crate) fn of_deadline<M>(deadline: &Deadline<M>) -> Self {
        Cause {
            id: deadline.id,
            correlation_id: deadline.correlation_id,
            at: deadline.due_at,
        }
    }
}

/// What a handler keeps its state and its deadlines through.
///
/// ```
/// # use es_core::process::Process;
/// # #[derive(Clone, Default, serde::Serialize, serde::Deserialize)] struct Drafts { open: u32 }
/// # #[derive(es_core::Event, Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
/// # #[event(name = "draft.expired")] struct DraftExpired { post: String }
/// # fn handler(process: &mut Process<'_, Drafts>) {
/// process.state().upsert("ann", |drafts| drafts.open += 1);
/// process.schedule_after("draft-1", std::time::Duration::from_secs(30 * 86_400), DraftExpired { post: "1".into() });
/// process.cancel("draft-0");
/// # }
/// ```
pub struct Process<'p, S> {
    process: &'static str,
    state: &'p mut Docs<S>,
    deadlines: &'p mut Vec<DeadlineChange>,
    cause: Cause,
}

impl<S> fmt::Debug for Process<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("process", &self.process)
            .field("cause", &self.cause)
            .finish_non_exhaustive()
    }
}

impl<'p, S: Clone + Default> Process<'p, S> {
    pub(crate) fn new(
        process: &'static str,
        state: &'p mut Docs<S>,
        deadlines: &'p mut Vec<DeadlineChange>,
        cause: Cause,
    ) -> Self {
        Process {
            process,
            state,
            deadlines,
            cause,
        }
    }

    /// The process manager's state documents, keyed as the handlers choose (e.g. by the
    /// correlation id, or by the aggregate id the process follows).
    pub fn state(&mut self) -> &mut Docs<S> {
        self.state
    }

    /// When the event was recorded (or the deadline came due): the handler's "now", the same
    /// whenever the handler runs, so schedules made from it do not drift on a retry.
    pub fn now(&self) -> DateTime<Utc> {
        self.cause.at
    }

    /// The correlation the commands sent now join.
    pub fn correlation_id(&self) -> Uuid {
        self.cause.correlation_id
    }

    /// Schedules `message` under `key` to come due `after` [`now`](Self::now), replacing any
    /// deadline under `key`. The handler for `M` runs once it is due, once, whichever process
    /// holds the process manager then.
    pub fn schedule_after<M: Event>(
        &mut self,
        key: impl Into<String>,
        after: std::time::Duration,
        message: M,
    ) {
        let step = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
        let due_at = self
            .cause
            .at
            .checked_add_signed(step)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.schedule_at(key, due_at, message);
    }

    /// Schedules `message` under `key` to come due at `due_at`, replacing any deadline under
    /// `key`.
    pub fn schedule_at<M: Event>(
        &mut self,
        key: impl Into<String>,
        due_at: DateTime<Utc>,
        message: M,
    ) {
        let key = key.into();
        let deadline = serde_json::to_value(&message).map(|message| StoredDeadline {
            id: deadline_id(self.process, self.cause.id, &key),
            due_at,
            correlation_id: self.cause.correlation_id,
            name: M::NAME.to_owned(),
            version: M::VERSION,
            message,
        });
        self.deadlines
            .push(DeadlineChange::Schedule { key, deadline });
    }

    /// Cancels the deadline under `key`, if there is one: it will not fire.
    pub fn cancel(&mut self, key: impl Into<String>) {
        self.deadlines
            .push(DeadlineChange::Cancel { key: key.into() });
    }
}

/// What an `#[on]` handler of a process manager may return: nothing, one command, maybe one,
/// several, or any of these in a `Result` whose error says why the handler failed.
#[diagnostic::on_unimplemented(
    message = "a process manager's `#[on]` handler cannot return `{Self}`",
    label = "return the commands to send: `Vec<Dispatch>`, `Option<Dispatch>`, `Dispatch` or `()`, optionally in a `Result<_, E>`",
    note = "build each command with `Dispatch::to::<YourAggregate>(id, command)`"
)]
pub trait IntoDispatches {
    /// The commands, or the handler's error.
    fn into_dispatches(self) -> Result<Vec<Dispatch>, crate::error::BoxError>;
}

impl IntoDispatches for () {
    fn into_dispatches(self) -> Result<Vec<Dispatch>, crate::error::BoxError> {
        Ok(Vec::new())
    }
}

impl IntoDispatches for Dispatch {
    fn into_dispatches(self) -> Result<Vec<Dispatch>, crate::error::BoxError> {
        Ok(vec![self])
    }
}

impl IntoDispatches for Option<Dispatch> {
    fn into_dispatches(self) -> Result<Vec<Dispatch>, crate::error::BoxError> {
        Ok(self.into_iter().collect())
    }
}

impl IntoDispatches for Vec<Dispatch> {
    fn into_dispatches(self) -> Result<Vec<Dispatch>, crate::error::BoxError> {
        Ok(self)
    }
}

impl<T, E> IntoDispatches for Result<T, E>
where
    T: IntoDispatches,
    E: std::error::Error + Send + Sync + 'static,
{
    fn into_dispatches(self) -> Result<Vec<Dispatch>, crate::error::BoxError> {
        self.map_err(|error| Box::new(error) as crate::error::BoxError)?
            .into_dispatches()
    }
}
