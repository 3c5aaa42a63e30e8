//! Given/when/then for process managers, in memory: given these events, when this event (or
//! this much time), then these commands and these pending deadlines.
#![allow(clippy::panic)] // a failed assertion in a test fixture is meant to panic

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::envelope::{Envelope, Metadata, Payload};
use crate::event::Event;
use crate::process::dispatch::Dispatch;
use crate::process::error::ProcessError;
use crate::process::manager::{Cause, DeadlineChange, Process, ProcessManager, StoredDeadline};
use crate::read::Docs;

/// Runs a process manager's handlers in memory, the way the runner would, and checks what
/// they send and schedule. Its assertions panic, as test assertions do.
///
/// ```text
/// ProcessFixture::new(DraftJanitor)
///     .given::<Draft>(&"d1".into(), DraftStarted { author: "ann".into() })
///     .when::<Author>(&"ann".into(), AuthorSuspended)
///     .then_commands([Dispatch::to::<Draft>("d1".into(), ArchiveDraft)])
///     .then_deadlines::<&str>([]);
/// ```
pub struct ProcessFixture<P: ProcessManager> {
    manager: P,
    state: Docs<P::State>,
    deadlines: BTreeMap<String, StoredDeadline>,
    now: DateTime<Utc>,
    position: u64,
    versions: HashMap<String, u64>,
    correlation_id: Uuid,
    sent: Vec<Dispatch>,
}

impl<P: ProcessManager> std::fmt::Debug for ProcessFixture<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessFixture")
            .field("process", &P::NAME)
            .field("now", &self.now)
            .field("deadlines", &self.deadlines.keys().collect::<Vec<_>>())
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl<P: ProcessManager> ProcessFixture<P> {
    /// `manager` with no state, no deadlines, at the current time.
    pub fn new(manager: P) -> Self {
        ProcessFixture {
            manager,
            state: Docs::complete(),
            deadlines: BTreeMap::new(),
            now: Utc::now(),
            position: 0,
            versions: HashMap::new(),
            correlation_id: Uuid::now_v7(),
            sent: Vec::new(),
        }
    }

    /// Handles `event` of the aggregate `A` with id `id`; forgets the commands it sends.
    pub fn given<A: Aggregate>(mut self, id: &A::Id, event: impl Event) -> Self {
        self.handle::<A>(id, event);
        self.sent.clear();
        self
    }

    /// Handles `event` of the aggregate `A` with id `id`; its commands are what `then_commands`
    /// checks.
    pub fn when<A: Aggregate>(mut self, id: &A::Id, event: impl Event) -> Self {
        self.sent = self.handle::<A>(id, event);
        self
    }

    /// Moves time on by `by` and fires the deadlines due by then, earliest first; their
    /// commands are what `then_commands` checks.
    pub fn when_time_passes(mut self, by: std::time::Duration) -> Self {
        let step = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        self.now = self
            .now
            .checked_add_signed(step)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut sent = Vec::new();
        loop {
            let next = self
                .deadlines
                .iter()
                .filter(|(_, deadline)| deadline.due_at <= self.now)
                .min_by_key(|(key, deadline)| (deadline.due_at, (*key).clone()))
                .map(|(key, _)| key.clone());
            let Some(key) = next else { break };
            let Some(stored) = self.deadlines.remove(&key) else {
                break;
            };
            let deadline = match stored.into_deadline(key.clone()) {
                Ok(deadline) => deadline,
                Err(error) => panic!("deadline `{key}` does not encode: {error}"),
            };
            let mut changes = Vec::new();
            let mut process = Process::new(
                P::NAME,
                &mut self.state,
                &mut changes,
                Cause::of_deadline(&deadline),
            );
            let commands = self.manager.on_deadline(&deadline, &mut process);
            sent.extend(self.settle(commands, changes));
        }
        self.sent = sent;
        self
    }

    /// Asserts that the last `when` sent exactly `expected`, in order.
    #[track_caller]
    pub fn then_commands(self, expected: impl IntoIterator<Item = Dispatch>) -> Self {
        let expected: Vec<Dispatch> = expected.into_iter().collect();
        assert_eq!(
            self.sent,
            expected,
            "process manager `{}` sent other commands than expected",
            P::NAME
        );
        self
    }

    /// Asserts that exactly the deadlines under `keys` are pending.
    #[track_caller]
    pub fn then_deadlines<K: AsRef<str>>(self, keys: impl IntoIterator<Item = K>) -> Self {
        let mut expected: Vec<String> = keys.into_iter().map(|k| k.as_ref().to_owned()).collect();
        expected.sort();
        let pending: Vec<String> = self.deadlines.keys().cloned().collect();
        assert_eq!(
            pending,
            expected,
            "process manager `{}` has other deadlines pending than expected",
            P::NAME
        );
        self
    }

    /// The state document under `key`, if any.
    pub fn state(&self, key: &str) -> Option<&P::State> {
        self.state.get(key)
    }

    #[track_caller]
    fn handle<A: Aggregate>(&mut self, id: &A::Id, event: impl Event) -> Vec<Dispatch> {
        let stream = match A::stream(id) {
            Ok(stream) => stream,
            Err(refusal) => panic!("invalid id for aggregate `{}`: {refusal}", A::NAME),
        };
        let version = self.versions.entry(stream.to_string()).or_insert(0);
        *version += 1;
        self.position += 1;
        let payload = match Payload::encode(&event) {
            Ok(payload) => payload,
            Err(error) => panic!("event does not serialize: {error}"),
        };
        let record = Envelope {
            stream,
            version: *version,
            position: self.position,
            recorded_at: self.now,
            event_name: Arc::from(event.event_name_of()),
            schema_version: event.schema_version_of(),
            metadata: Metadata::new(self.correlation_id),
            event: payload,
        };
        if !P::EVENTS.contains(&&*record.event_name) {
            return Vec::new();
        }
        let mut changes = Vec::new();
        let mut process = Process::new(
            P::NAME,
            &mut self.state,
            &mut changes,
            Cause::of_event(&record),
        );
        let commands = self.manager.on_event(&record, &mut process);
        self.settle(commands, changes)
    }

    #[track_caller]
    fn settle(
        &mut self,
        commands: Result<Vec<Dispatch>, ProcessError>,
        changes: Vec<DeadlineChange>,
    ) -> Vec<Dispatch> {
        let commands = match commands {
            Ok(commands) => commands,
            Err(error) => panic!("{error}"),
        };
        for change in changes {
            match change {
                DeadlineChange::Cancel { key } => {
                    self.deadlines.remove(&key);
                }
                DeadlineChange::Schedule { key, deadline } => match deadline {
                    Ok(deadline) => {
                        self.deadlines.insert(key, deadline);
                    }
                    Err(error) => panic!("deadline `{key}` does not serialize: {error}"),
                },
            }
        }
        commands
    }
}

/// The stored name and version of an event value, for the fixture.
trait EventValue {
    fn event_name_of(&self) -> &'static str;
    fn schema_version_of(&self) -> u32;
}

impl<E: Event> EventValue for E {
    fn event_name_of(&self) -> &'static str {
        E::NAME
    }
    fn schema_version_of(&self) -> u32 {
        E::VERSION
    }
}
