use es_core::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, Serialize, Deserialize)]
#[event(name = "door.opened", version = 0)]
pub struct DoorOpened;

fn main() {}
