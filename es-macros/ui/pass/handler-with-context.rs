//! A `#[handle]` method may take a context after its command: the aggregate's services (here a
//! clock and a registry of taken names) and the metadata its caller attached. The repository
//! and the fixture both supply it; handlers that do not ask for it keep their short form.
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use es_core::{aggregate, Command, CommandMetadata, Context, Event, GivenExt, MemoryStore, Repository};
use serde::{Deserialize, Serialize};

/// Queries only: a handler may run more than once for one command.
pub struct Services {
    pub now: u64,
    pub taken: Arc<Mutex<BTreeSet<String>>>,
}

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "account.opened")]
pub struct Opened {
    pub name: String,
    pub by: String,
    pub at: u64,
}

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "account.closed")]
pub struct Closed;

#[derive(Command, Clone, Debug)]
pub struct Open {
    pub name: String,
}

#[derive(Command, Clone, Debug)]
pub struct Close;

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("the name is taken")]
    NameTaken,
    #[error("commands need a user")]
    Anonymous,
}

#[aggregate(name = "account", id = String, error = AccountError, services = Services)]
#[derive(Default, Debug, PartialEq)]
pub struct Account {
    open: bool,
}

#[aggregate]
impl Account {
    #[handle]
    fn open(&self, command: Open, context: &Context<Services>) -> Result<Opened, AccountError> {
        let services = context.services();
        if services.taken.lock().unwrap().contains(&command.name) {
            return Err(AccountError::NameTaken);
        }
        let by = context.metadata().get("user").ok_or(AccountError::Anonymous)?;
        Ok(Opened {
            name: command.name,
            by: format!("{by} for {}", context.aggregate_id()),
            at: services.now,
        })
    }

    #[handle]
    fn close(&self, _: Close) -> Result<Closed, AccountError> {
        Ok(Closed)
    }

    #[apply]
    fn opened(&mut self, _: &Opened) {
        self.open = true;
    }

    #[apply]
    fn closed(&mut self, _: &Closed) {
        self.open = false;
    }
}

fn services(taken: &[&str]) -> Services {
    Services {
        now: 7,
        taken: Arc::new(Mutex::new(taken.iter().map(|name| name.to_string()).collect())),
    }
}

fn main() {
    let ann = CommandMetadata::new().with("user", "ann");
    // `Services` has no `Default`: the fixture takes them up front.
    Account::given_with(services(&[]), [])
        .with_metadata(ann.clone())
        .with_id(&"a1".to_string())
        .when(Open { name: "savings".into() })
        .then([Opened { name: "savings".into(), by: "ann for a1".into(), at: 7 }.into()]);
    Account::given_with(services(&["savings"]), [])
        .with_metadata(ann.clone())
        .when(Open { name: "savings".into() })
        .then_error(AccountError::NameTaken);
    Account::given_with(services(&[]), []).when(Open { name: "x".into() }).then_error(AccountError::Anonymous);

    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async {
            let accounts = Repository::<Account>::with_services(MemoryStore::new(), services(&[]));
            let id = "a2".to_string();
            let committed = accounts
                .execute_with(&id, Open { name: "current".into() }, ann)
                .await
                .unwrap();
            assert_eq!(
                committed[0].event,
                Opened { name: "current".into(), by: "ann for a2".into(), at: 7 }.into()
            );
            accounts.execute(&id, Close).await.unwrap();
        });
}
