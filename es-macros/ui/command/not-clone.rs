use es_core::Command;

#[derive(Command, Debug)]
pub struct OpenDoor {
    pub by: String,
}

fn main() {}
