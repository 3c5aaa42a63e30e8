use es_core::{aggregate, Command, Context, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DoorOpened;

#[derive(Command, Clone, Debug)]
pub struct OpenDoor;

#[derive(Debug, thiserror::Error)]
#[error("the door is stuck")]
pub struct DoorError;

#[derive(Default)]
pub struct Clock;

#[aggregate(name = "door", id = u32, error = DoorError)]
#[derive(Default, Debug)]
pub struct Door {
    open: bool,
}

#[aggregate]
impl Door {
    #[apply]
    fn opened(&mut self, _: &DoorOpened) {
        self.open = true;
    }

    #[handle]
    fn open(&self, _: OpenDoor, context: &Context<Clock>) -> Result<DoorOpened, DoorError> {
        let _ = context;
        Ok(DoorOpened)
    }
}

fn main() {}
