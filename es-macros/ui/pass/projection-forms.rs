//! Projections: envelope and plain handlers, fallible handlers, configuration, indexes,
//! failure policies, a rollback handler, discovery through inventory.
use es_core::{projection, Docs, Envelope, Event, Projection, Projections, RolledBack};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "door.opened")]
pub struct DoorOpened;

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "door.closed")]
pub struct DoorClosed;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DoorState {
    open: bool,
    building: String,
}

/// Per door, built from that door's stream: discovered, since it is a unit struct.
#[projection(name = "door_states", index(building), per_stream, version = 2)]
pub struct DoorStates;

#[projection]
impl DoorStates {
    #[on]
    fn opened(&self, event: &Envelope<DoorOpened>, docs: &mut Docs<DoorState>) {
        docs.upsert(event.aggregate_id(), |door| door.open = true);
    }

    #[on]
    fn closed(&self, _: &DoorClosed, docs: &mut Docs<DoorState>) -> Result<(), String> {
        docs.delete("never-used");
        Ok(())
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tally {
    openings: u64,
}

/// Across doors, with configuration (so added by hand) and the skip policy.
#[projection(on_failure = skip)]
pub struct OpeningTally {
    key: String,
}

#[projection]
impl OpeningTally {
    #[on]
    fn opened(&self, _: &DoorOpened, docs: &mut Docs<Tally>) {
        docs.upsert(&self.key, |tally| tally.openings += 1);
    }

    #[on]
    fn rolled_back(&self, _: &Envelope<RolledBack>, _: &mut Docs<Tally>) {}
}

fn main() {
    let projections = Projections::discover().with(OpeningTally { key: "all".into() });
    assert_eq!(projections.names(), vec!["door_states", "opening_tally"]);
    assert_eq!(<DoorStates as Projection>::VERSION, "2");
    assert_eq!(<DoorStates as Projection>::INDEXES, ["building"]);
    assert!(<OpeningTally as Projection>::VERSION.starts_with("fp-"));
}
