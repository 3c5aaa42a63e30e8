use es_core::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, Serialize, Deserialize)]
#[event(name = "")]
pub struct DoorOpened;

fn main() {}
