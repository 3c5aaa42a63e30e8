use es_core::{projection, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "door.opened")]
pub struct DoorOpened;

#[projection]
#[derive(Default, Debug)]
pub struct OpenCount {
    count: u32,
}

#[projection]
impl OpenCount {
    fn count(&self) -> u32 {
        self.count
    }
}

fn main() {}
