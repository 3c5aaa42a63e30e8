//! An author: registers once, then logs in from time to time, and may be suspended.

use chrono::{DateTime, Utc};
use es_core::{aggregate, Command, Context, Event};
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

/// The author was suspended; the draft janitor archives their drafts.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "author.suspended")]
pub struct AuthorSuspended {
    pub reason: String,
}

/// Join as an author.
#[derive(Command, Clone, Debug)]
pub struct RegisterAuthor {
    pub name: String,
}

/// Record a login, at the time the author's [`Clock`] tells.
#[derive(Command, Clone, Debug)]
pub struct LogIn;

/// Suspend the author: they write no more, and their drafts are archived.
#[derive(Command, Clone, Debug)]
pub struct SuspendAuthor {
    pub reason: String,
}

/// The time, for handlers: the service authors declare (`services = Clock`).
///
/// Reading a clock is a query, so it is safe in a handler that runs again after a conflict
/// (each attempt reads a fresh time; only the committed attempt's time is stored). The system
/// clock is the default, so `Repository::new` needs nothing more; tests fix the time with
/// `Author::given(...).with_services(Clock::Fixed(at))`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// Always the same instant.
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// The current time by this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(at) => *at,
        }
    }
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
    #[error("this author is already suspended")]
    AlreadySuspended,
}

#[aggregate(name = "author", id = String, error = AuthorError, services = Clock)]
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Author {
    pub name: Option<String>,
    pub logins: u32,
    pub last_login: Option<DateTime<Utc>>,
    pub suspended: bool,
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
    fn log_in(&self, _: LogIn, context: &Context<Clock>) -> Result<LoggedIn, AuthorError> {
        if self.name.is_none() {
            return Err(AuthorError::NotRegistered);
        }
        Ok(LoggedIn {
            at: context.services().now(),
        })
    }

    #[handle]
    fn suspend(&self, command: SuspendAuthor) -> Result<AuthorSuspended, AuthorError> {
        if self.name.is_none() {
            return Err(AuthorError::NotRegistered);
        }
        if self.suspended {
            return Err(AuthorError::AlreadySuspended);
        }
        Ok(AuthorSuspended {
            reason: command.reason,
        })
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

    #[apply]
    fn suspended(&mut self, _: &AuthorSuspended) {
        self.suspended = true;
    }
}
