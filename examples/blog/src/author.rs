//! An author: registers once, then logs in from time to time.

use chrono::{DateTime, Utc};
use es_core::{aggregate, Command, Event};
use serde::{Deserialize, Serialize};

/// A new author joined.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "author.registered")]
pub struct AuthorRegistered {
    pub name: String,
}

/// The author logged in at `at`.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "author.logged_in")]
pub struct LoggedIn {
    pub at: DateTime<Utc>,
}

/// Join as an author.
#[derive(Command, Clone, Debug)]
pub struct RegisterAuthor {
    pub name: String,
}

/// Record a login. The time comes with the command: handlers are pure and read no clock.
#[derive(Command, Clone, Debug)]
pub struct LogIn {
    pub at: DateTime<Utc>,
}

/// Why an author refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorError {
    #[error("this author is already registered")]
    AlreadyRegistered,
    #[error("no such author; register first")]
    NotRegistered,
    #[error("an author needs a name")]
    EmptyName,
}

#[aggregate(name = "author", id = String, error = AuthorError)]
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Author {
    pub name: Option<String>,
    pub logins: u32,
    pub last_login: Option<DateTime<Utc>>,
}

#[aggregate]
impl Author {
    #[handle]
    fn register(&self, command: RegisterAuthor) -> Result<AuthorRegistered, AuthorError> {
        if self.name.is_some() {
            return Err(AuthorError::AlreadyRegistered);
        }
        if command.name.trim().is_empty() {
            return Err(AuthorError::EmptyName);
        }
        Ok(AuthorRegistered { name: command.name })
    }

    #[handle]
    fn log_in(&self, command: LogIn) -> Result<LoggedIn, AuthorError> {
        if self.name.is_none() {
            return Err(AuthorError::NotRegistered);
        }
        Ok(LoggedIn { at: command.at })
    }

    #[apply]
    fn registered(&mut self, event: &AuthorRegistered) {
        self.name = Some(event.name.clone());
    }

    #[apply]
    fn logged_in(&mut self, event: &LoggedIn) {
        self.logins += 1;
        self.last_login = Some(event.at);
    }
}
