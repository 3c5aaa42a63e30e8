use es_core::{projection, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "door.opened")]
pub struct DoorOpened;

#[projection(table = "open_count")]
#[derive(Default, Debug)]
pub struct OpenCount {
    count: u32,
}

fn main() {}
