//! Commands a process manager sends, and the registry of repositories that runs them.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::aggregate::Aggregate;
use crate::error::RepositoryError;
use crate::process::error::ProcessError;
use crate::repository::{CommandMetadata, Repository};

/// "Send this command to aggregate `A` with this id", with the aggregate's type erased so
/// that one process manager can address several aggregates.
///
/// A command is checked against its aggregate at compile time: [`Dispatch::to`] takes any
/// `C: Into<A::Command>`, and `#[aggregate]` implements `From<C>` for `A::Command` only for
/// the commands `A` has a `#[handle]` method for, so sending a command `A` does not handle
/// does not compile.
///
/// ```
/// # use es_core::{aggregate, Command, Event};
/// # use es_core::process::Dispatch;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
/// # pub struct Archived;
/// # #[derive(Command, Clone, Debug, PartialEq)]
/// # pub struct Archive;
/// # #[derive(Debug, thiserror::Error)] #[error("never")] pub struct Never;
/// # #[aggregate(name = "draft", id = u32, error = Never)]
/// # #[derive(Default, Debug)]
/// # pub struct Draft;
/// # #[aggregate]
/// # impl Draft {
/// #     #[handle] fn archive(&self, _: Archive) -> Result<Archived, Never> { Ok(Archived) }
/// #     #[apply] fn archived(&mut self, _: &Archived) {}
/// # }
/// let dispatch = Dispatch::to::<Draft>(7, Archive);
/// assert_eq!(dispatch.to_string(), "draft 7 <- Archive");
/// ```
pub struct Dispatch {
    aggregate: &'static str,
    target: String,
    command: String,
    send: Box<dyn ErasedSend>,
}

impl Dispatch {
    /// `command` for the aggregate `A` whose id is `id`.
    pub fn to<A>(id: A::Id, command: impl Into<A::Command> + fmt::Debug) -> Self
    where
        A: Aggregate,
        A::Id: fmt::Debug + Send + Sync,
        A::Command: Clone + Sync,
    {
        let described = format!("{command:?}");
        Dispatch {
            aggregate: A::NAME,
            target: format!("{id:?}"),
            command: described,
            send: Box::new(Typed::<A> {
                id,
                command: command.into(),
            }),
        }
    }

    /// The stored type of the aggregate it goes to.
    pub fn aggregate(&self) -> &'static str {
        self.aggregate
    }

    /// The aggregate's id, as its `Debug` shows it.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The command, as its `Debug` shows it.
    pub fn command(&self) -> &str {
        &self.command
    }

    pub(crate) fn send<'a>(
        self,
        dispatcher: &'a Dispatcher,
        process: &'static str,
        metadata: CommandMetadata,
    ) -> BoxFuture<'a, Result<Sent, ProcessError>> {
        let described = self.to_string();
        self.send.send(dispatcher, process, described, metadata)
    }
}

/// What became of a sent command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Appended (or already appended by an earlier run under the same command id).
    Applied,
    /// The aggregate said no; a process manager takes that as an answer, not a failure.
    Rejected(String),
}

/// Two dispatches are equal when they send the same command (as `Debug` shows it) to the same
/// aggregate: what a test compares.
impl PartialEq for Dispatch {
    fn eq(&self, other: &Self) -> bool {
        (self.aggregate, &self.target, &self.command)
            == (other.aggregate, &other.target, &other.command)
    }
}

impl fmt::Display for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} <- {}", self.aggregate, self.target, self.command)
    }
}

impl fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dispatch({self})")
    }
}

trait ErasedSend: Send + Sync {
    fn send<'a>(
        self: Box<Self>,
        dispatcher: &'a Dispatcher,
        process: &'static str,
        described: String,
        metadata: CommandMetadata,
    ) -> BoxFuture<'a, Result<Sent, ProcessError>>;
}

struct Typed<A: Aggregate> {
    id: A::Id,
    command: A::Command,
}

impl<A> ErasedSend for Typed<A>
where
    A: Aggregate,
    A::Id: Send + Sync,
    A::Command: Clone + Sync,
{
    fn send<'a>(
        self: Box<Self>,
        dispatcher: &'a Dispatcher,
        process: &'static str,
        described: String,
        metadata: CommandMetadata,
    ) -> BoxFuture<'a, Result<Sent, ProcessError>> {
        Box::pin(async move {
            let Some(repository) = dispatcher.repository::<A>() else {
                return Err(ProcessError::NoRoute {
                    process,
                    aggregate: A::NAME,
                });
            };
            match repository
                .execute_with(&self.id, self.command, metadata)
                .await
            {
                Ok(_) => Ok(Sent::Applied),
                Err(RepositoryError::Rejected(refusal)) => Ok(Sent::Rejected(refusal.to_string())),
                Err(other) => Err(ProcessError::Dispatch {
                    process,
                    command: described,
                    source: Box::new(other),
                }),
            }
        })
    }
}

/// The repositories a process manager's commands run on, one per aggregate type.
///
/// ```
/// # use es_core::{aggregate, Command, Event, MemoryStore, Repository};
/// # use es_core::process::Dispatcher;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
/// # pub struct Archived;
/// # #[derive(Command, Clone, Debug)]
/// # pub struct Archive;
/// # #[derive(Debug, thiserror::Error)] #[error("never")] pub struct Never;
/// # #[aggregate(name = "draft", id = u32, error = Never)]
/// # #[derive(Default, Debug)]
/// # pub struct Draft;
/// # #[aggregate]
/// # impl Draft {
/// #     #[handle] fn archive(&self, _: Archive) -> Result<Archived, Never> { Ok(Archived) }
/// #     #[apply] fn archived(&mut self, _: &Archived) {}
/// # }
/// let store = std::sync::Arc::new(MemoryStore::new());
/// let dispatcher = Dispatcher::new().route(Repository::<Draft>::new(store.clone()));
/// assert_eq!(dispatcher.aggregates(), ["draft"]);
/// ```
#[derive(Clone, Default)]
pub struct Dispatcher {
    routes: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    names: Vec<&'static str>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.names).finish()
    }
}

impl Dispatcher {
    /// Routes nowhere yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs commands for `A` on `repository` (replacing an earlier route for `A`).
    pub fn route<A: Aggregate>(mut self, repository: Repository<A>) -> Self {
        if self
            .routes
            .insert(TypeId::of::<A>(), Arc::new(repository))
            .is_none()
        {
            self.names.push(A::NAME);
            self.names.sort_unstable();
        }
        self
    }

    /// The aggregates it routes to, by stored type, in name order.
    pub fn aggregates(&self) -> &[&'static str] {
        &self.names
    }

    fn repository<A: Aggregate>(&self) -> Option<&Repository<A>> {
        self.routes.get(&TypeId::of::<A>())?.downcast_ref()
    }
}
