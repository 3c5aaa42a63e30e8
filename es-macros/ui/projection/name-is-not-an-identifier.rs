use es_core::{projection, Docs, Envelope, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "door.opened")]
pub struct DoorOpened;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Openings {
    count: u32,
}

#[projection(name = "Open Count", per_stream)]
pub struct OpenCount;

#[projection]
impl OpenCount {
    #[on]
    fn opened(&self, event: &Envelope<DoorOpened>, docs: &mut Docs<Openings>) {
        docs.upsert(event.aggregate_id(), |doc| doc.count += 1);
    }
}
fn main() {}
