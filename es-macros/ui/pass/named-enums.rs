//! The generated enums can be named when `{Struct}Event` / `{Struct}Command` are taken.
use es_core::{aggregate, Aggregate, Command, Event, EventSet, GivenExt};
use serde::{Deserialize, Serialize};

/// A type of the user's own that happens to have the default name.
#[allow(dead_code)]
pub struct AccountEvent;
/// Likewise.
#[allow(dead_code)]
pub struct AccountCommand;

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "account.opened")]
pub struct Opened;

#[derive(Command, Clone, Debug)]
pub struct Open;

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("already open")]
pub struct AlreadyOpen;

#[aggregate(name = "account", id = String, error = AlreadyOpen)]
#[derive(Default, Debug, PartialEq)]
pub struct Account {
    open: bool,
}

#[aggregate(events = AccountEvents, commands = AccountCommands)]
impl Account {
    #[handle]
    fn open(&self, _: Open) -> Result<Vec<AccountEvents>, AlreadyOpen> {
        if self.open {
            return Err(AlreadyOpen);
        }
        Ok(vec![Opened.into()])
    }

    #[apply]
    fn opened(&mut self, _: &Opened) {
        self.open = true;
    }
}

fn main() {
    let _: fn(AccountCommands) = |_| {};
    let event: <Account as Aggregate>::Event = AccountEvents::Opened(Opened);
    assert_eq!(event.event_name(), "account.opened");
    Account::given([]).when(Open).then([Opened.into()]);
    Account::given([Opened.into()]).when(Open).then_error(AlreadyOpen);
}
