//! Every shape a `#[handle]` method may return its events in.
use es_core::{aggregate, Command, Event, EventSet, GivenExt};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "counter.added")]
pub struct Added(u32);

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "counter.reset", version = 2)]
pub struct Reset {
    pub reason: String,
}

#[derive(Command, Clone, Debug)]
pub struct AddOne;
#[derive(Command, Clone, Debug)]
pub struct AddTwice;
#[derive(Command, Clone, Debug)]
pub struct AddMaybe(bool);
#[derive(Command, Clone, Debug)]
pub struct AddMany(u32);
#[derive(Command, Clone, Debug)]
pub struct Nothing;

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("too big")]
pub struct TooBig;

#[aggregate(id = u64, error = TooBig)]
#[derive(Default, Debug, PartialEq)]
pub struct Counter {
    total: u32,
}

#[aggregate]
impl Counter {
    #[handle]
    fn add_one(&self, _: AddOne) -> Result<Added, TooBig> {
        Ok(Added(1))
    }

    #[handle]
    fn add_twice(&self, _: AddTwice) -> Result<(Added, Reset), TooBig> {
        Ok((Added(1), Reset { reason: "twice".into() }))
    }

    #[handle]
    fn add_maybe(&self, command: AddMaybe) -> Result<Option<Added>, TooBig> {
        Ok(command.0.then_some(Added(1)))
    }

    #[handle]
    fn add_many(&self, command: AddMany) -> Result<Vec<CounterEvent>, TooBig> {
        if command.0 > 10 {
            return Err(TooBig);
        }
        Ok((0..command.0).map(|_| Added(1).into()).collect())
    }

    #[handle]
    fn nothing(&self, _: Nothing) -> Result<(), TooBig> {
        Ok(())
    }

    #[apply]
    fn added(&mut self, event: &Added) {
        self.total += event.0;
    }

    #[apply]
    fn reset(&mut self, _: &Reset) {
        self.total = 0;
    }

    /// Plain methods without attributes stay as they are.
    pub fn total(&self) -> u32 {
        self.total
    }
}

fn main() {
    assert_eq!(<Counter as es_core::Aggregate>::NAME, "counter");
    assert_eq!(CounterEvent::EVENT_NAMES, &["counter.added", "counter.reset"]);
    assert_eq!(CounterEvent::from(Reset { reason: String::new() }).schema_version(), 2);
    Counter::given([]).when(AddOne).then([Added(1).into()]);
    Counter::given([]).when(AddTwice).then([Added(1).into(), Reset { reason: "twice".into() }.into()]);
    Counter::given([]).when(AddMaybe(false)).then([]);
    let state = Counter::given([]).when(AddMany(3)).then([Added(1).into(), Added(1).into(), Added(1).into()]);
    assert_eq!(state.total(), 3);
    Counter::given([]).when(AddMany(11)).then_error(TooBig);
    Counter::given([]).when(Nothing).then([]);
}
