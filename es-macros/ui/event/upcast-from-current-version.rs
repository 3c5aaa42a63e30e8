use es_core::Event;
use serde::{Deserialize, Serialize};

fn upgrade(payload: serde_json::Value) -> Result<serde_json::Value, es_core::UpcastError> {
    Ok(payload)
}

#[derive(Event, Clone, Debug, Serialize, Deserialize)]
#[event(name = "door.opened", version = 2, upcast(from = 1, with = upgrade), upcast(from = 2, with = upgrade))]
pub struct DoorOpened;

fn main() {}
