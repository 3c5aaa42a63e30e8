use es_core::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, Serialize, Deserialize)]
#[event(name = "door.opened", name = "door.was_opened")]
pub struct DoorOpened;

fn main() {}
