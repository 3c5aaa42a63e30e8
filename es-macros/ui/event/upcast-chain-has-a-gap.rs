use es_core::Event;
use serde::{Deserialize, Serialize};

fn v1_to_v2(payload: serde_json::Value) -> Result<serde_json::Value, es_core::UpcastError> {
    Ok(payload)
}

#[derive(Event, Clone, Debug, Serialize, Deserialize)]
#[event(name = "door.opened", version = 3, upcast(from = 1, with = v1_to_v2))]
pub struct DoorOpened;

fn main() {}
