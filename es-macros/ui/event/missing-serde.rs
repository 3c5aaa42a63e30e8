use es_core::{aggregate, Command, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq)]
#[event(name = "door.opened")]
pub struct DoorOpened {
    pub by: String,
}

// Applying the event, next to another one, adds no error of its own.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "door.closed")]
pub struct DoorClosed;

#[derive(Command, Clone, Debug)]
pub struct OpenDoor;

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
    #[handle]
    fn open(&self, _: OpenDoor) -> Result<DoorOpened, DoorError> {
        Ok(DoorOpened { by: "me".into() })
    }

    #[apply]
    fn opened(&mut self, _: &DoorOpened) {
        self.open = true;
    }

    #[apply]
    fn closed(&mut self, _: &DoorClosed) {
        self.open = false;
    }
}

fn main() {}
