use es_core::Event;

#[derive(Event, Clone, Debug)]
#[event(name = "door.opened")]
pub struct DoorOpened {
    pub by: String,
}

fn main() {}
