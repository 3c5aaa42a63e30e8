use es_core::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, Serialize, Deserialize)]
#[event(name = "door.opened", schema = 2)]
pub struct DoorOpened;

fn main() {}
