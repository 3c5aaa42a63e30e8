//! Projections: envelope and plain handlers, fallible handlers, discovery through inventory.
use es_core::{projection, Envelope, Event, Projections};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "door.opened")]
pub struct DoorOpened;

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "door.closed")]
pub struct DoorClosed;

#[projection(name = "door_log")]
#[derive(Default, Debug)]
pub struct DoorLog {
    lines: Vec<String>,
}

#[projection]
impl DoorLog {
    #[on]
    fn opened(&mut self, event: &Envelope<DoorOpened>) {
        self.lines.push(format!("opened {}", event.aggregate_id()));
    }

    #[on]
    fn closed(&mut self, _: &DoorClosed) -> Result<(), String> {
        self.lines.push("closed".into());
        Ok(())
    }
}

fn main() {
    let projections = Projections::discover();
    assert_eq!(projections.names(), vec!["door_log"]);
    assert_eq!(projections.query(|log: &DoorLog| log.lines.len()).unwrap(), 0);
}
