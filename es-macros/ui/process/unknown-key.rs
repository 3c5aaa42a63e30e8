use es_core::process_manager;

#[process_manager(name = "janitor", every = 5)]
pub struct Janitor;

fn main() {}
