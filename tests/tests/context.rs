//! What a `#[handle]` method sees through its `Context`: the services the repository (or the
//! fixture) was given, the caller's metadata and the aggregate's id, on every attempt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use es_core::{
    aggregate, Command, CommandMetadata, Context, Event, EventLog, ExpectedVersion, GivenExt,
    MemoryStore, Metadata, NewEvent, Payload, Repository, RetryPolicy, StreamId,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the handler saw, written down so the test can read it back.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "ticket.stamped")]
pub struct Stamped {
    pub desk: String,
    pub user: Option<String>,
    pub correlation: Option<Uuid>,
    pub causation: Option<Uuid>,
    pub ticket: String,
}

#[derive(Command, Clone, Debug)]
pub struct Stamp;

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("never")]
pub struct Never;

/// The services: a name to read, and a count of how often a handler consulted them.
/// `interlope` is a test hook that writes to the stream behind the handler's back once, so
/// the repository's append conflicts and the command is handled again.
#[derive(Debug)]
pub struct Desk {
    pub name: String,
    pub consulted: AtomicU32,
    pub interlope: Mutex<Option<(MemoryStore, StreamId)>>,
}

impl Desk {
    fn named(name: &str) -> Self {
        Desk {
            name: name.to_owned(),
            consulted: AtomicU32::new(0),
            interlope: Mutex::new(None),
        }
    }
}

#[aggregate(name = "ticket", id = String, error = Never, services = Desk)]
#[derive(Default, Debug, PartialEq)]
pub struct Ticket {
    stamps: u32,
}

#[aggregate]
impl Ticket {
    #[handle]
    fn stamp(&self, _: Stamp, context: &Context<Desk>) -> Result<Stamped, Never> {
        let desk = context.services();
        desk.consulted.fetch_add(1, Ordering::SeqCst);
        if let Some((store, stream)) = desk.interlope.lock().unwrap().take() {
            let other_writer = NewEvent {
                event_name: "ticket.stamped".into(),
                schema_version: 1,
                metadata: Metadata::new(Uuid::now_v7()),
                payload: Payload::encode(&Stamped {
                    desk: "other".into(),
                    user: None,
                    correlation: None,
                    causation: None,
                    ticket: context.aggregate_id().to_owned(),
                })
                .unwrap(),
            };
            futures::executor::block_on(store.append(
                &stream,
                ExpectedVersion::Any,
                vec![other_writer],
            ))
            .unwrap();
        }
        let metadata = context.metadata();
        Ok(Stamped {
            desk: desk.name.clone(),
            user: metadata.get("user").map(str::to_owned),
            correlation: metadata.correlation(),
            causation: metadata.causation(),
            ticket: context.aggregate_id().to_owned(),
        })
    }

    #[apply]
    fn stamped(&mut self, _: &Stamped) {
        self.stamps += 1;
    }
}

#[tokio::test]
async fn the_handler_sees_the_repositorys_services_and_the_callers_metadata() {
    let tickets = Repository::<Ticket>::with_services(MemoryStore::new(), Desk::named("front"));
    let (correlation, causation) = (Uuid::now_v7(), Uuid::now_v7());
    let metadata = CommandMetadata::new()
        .correlation_id(correlation)
        .causation_id(causation)
        .with("user", "ann");
    let committed = tickets
        .execute_with(&"t-1".to_owned(), Stamp, metadata)
        .await
        .unwrap();
    assert_eq!(
        committed[0].event,
        Stamped {
            desk: "front".into(),
            user: Some("ann".into()),
            correlation: Some(correlation),
            causation: Some(causation),
            ticket: "t-1".into(),
        }
        .into()
    );
    assert_eq!(tickets.services().consulted.load(Ordering::SeqCst), 1);

    // Without metadata the handler sees none, and the same services.
    let committed = tickets.execute(&"t-2".to_owned(), Stamp).await.unwrap();
    assert_eq!(
        committed[0].event,
        Stamped {
            desk: "front".into(),
            user: None,
            correlation: None,
            causation: None,
            ticket: "t-2".into(),
        }
        .into()
    );
}

/// The documented rule, observed: after a conflict the command is handled again, so whatever a
/// handler does through its services happens once per attempt. Only queries belong there.
#[tokio::test]
async fn after_a_conflict_the_handler_runs_again_with_the_same_context() {
    let store = MemoryStore::new();
    let stream = StreamId::new("ticket", "t-1").unwrap();
    let desk = Desk::named("front");
    *desk.interlope.lock().unwrap() = Some((store.clone(), stream.clone()));
    let tickets =
        Repository::<Ticket>::with_services(store.clone(), desk).with_retry(RetryPolicy::default());
    let committed = tickets
        .execute_with(
            &"t-1".to_owned(),
            Stamp,
            CommandMetadata::new().with("user", "ann"),
        )
        .await
        .unwrap();
    assert_eq!(tickets.services().consulted.load(Ordering::SeqCst), 2);
    // The second attempt's events land after the other writer's, with the caller's metadata.
    assert_eq!(committed[0].version, 2);
    let Stamped { desk, user, .. } = match &committed[0].event {
        TicketEvent::Stamped(stamped) => stamped.clone(),
    };
    assert_eq!((desk.as_str(), user.as_deref()), ("front", Some("ann")));
}

#[test]
fn the_fixture_hands_its_services_metadata_and_id_to_the_handler() {
    let ticket = Ticket::given_with(Desk::named("back"), [])
        .with_metadata(CommandMetadata::new().with("user", "bob"))
        .with_id(&"t-9".to_owned())
        .when(Stamp)
        .then([Stamped {
            desk: "back".into(),
            user: Some("bob".into()),
            correlation: None,
            causation: None,
            ticket: "t-9".into(),
        }
        .into()]);
    assert_eq!(ticket.stamps, 1);
}
