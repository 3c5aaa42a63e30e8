use es_core::process::Process;
use es_core::{process_manager, Envelope, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "author.suspended")]
pub struct AuthorSuspended;

#[process_manager]
pub struct Janitor;

#[process_manager]
impl Janitor {
    #[on]
    fn suspended(&mut self, _event: &Envelope<AuthorSuspended>, _process: &mut Process<'_, ()>) {}
}

fn main() {}
