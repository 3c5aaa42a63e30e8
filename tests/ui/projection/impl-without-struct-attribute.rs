use es_core::{projection, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "door.opened")]
pub struct DoorOpened;

#[derive(Default, Debug)]
pub struct OpenCount {
    count: u32,
}

#[projection]
impl OpenCount {
    #[on]
    fn opened(&mut self, _: &DoorOpened) {
        self.count += 1;
    }
}

fn main() {}
