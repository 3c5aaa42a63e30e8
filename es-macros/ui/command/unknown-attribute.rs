use es_core::Command;

#[derive(Command, Clone, Debug)]
#[command(name = "open")]
pub struct OpenDoor;

fn main() {}
