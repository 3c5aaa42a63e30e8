use es_core::{aggregate, Command, Context, Event, MemoryStore, Repository};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub email: String,
}

#[derive(Command, Clone, Debug)]
pub struct RegisterUser {
    pub email: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the email is taken")]
pub struct EmailTaken;

/// Asks a read model whether an email is taken; it cannot make itself up.
pub struct Directory {
    pub taken: Vec<String>,
}

#[aggregate(name = "user", id = u32, error = EmailTaken, services = Directory)]
#[derive(Default, Debug)]
pub struct User {
    registered: bool,
}

#[aggregate]
impl User {
    #[handle]
    fn register(&self, command: RegisterUser, context: &Context<Directory>) -> Result<UserRegistered, EmailTaken> {
        if context.services().taken.contains(&command.email) {
            return Err(EmailTaken);
        }
        Ok(UserRegistered { email: command.email })
    }

    #[apply]
    fn registered(&mut self, _: &UserRegistered) {
        self.registered = true;
    }
}

fn main() {
    // `User` declares `services = Directory`, which has no `Default`:
    // `Repository::with_services(store, directory)` supplies them.
    let _users = Repository::<User>::new(MemoryStore::new());
}
