use es_core::{aggregate, Command, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DoorOpened;

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DoorClosed;

#[derive(Command, Clone, Debug)]
pub struct OpenDoor;

#[derive(Command, Clone, Debug)]
pub struct CloseDoor;

#[derive(Debug, thiserror::Error)]
#[error("the door is stuck")]
pub struct DoorError;

#[aggregate(name = "door", id = u32, error = DoorError)]
#[derive(Default, Debug)]
pub struct Door {
    open: bool,
}

#[aggregate]
impl Door {
    #[apply]
    fn opened(&self, _: &DoorOpened) {}

    #[handle]
    fn open(&mut self, _: OpenDoor) -> Result<DoorOpened, DoorError> {
        Ok(DoorOpened)
    }

    #[handle]
    fn close(&self, _: CloseDoor) -> Result<DoorClosed, DoorError> {
        Ok(DoorClosed)
    }
}

fn main() {}
