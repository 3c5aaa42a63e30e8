//! What a command handler may consult besides the aggregate's state and the command: the
//! aggregate's services and the caller's metadata.

use crate::repository::CommandMetadata;

/// The context a `#[handle]` method may take as its last argument: the services the
/// aggregate declares (`#[aggregate(services = ...)]`), the metadata its caller attached to
/// the command, and the id of the aggregate handling it.
///
/// The repository supplies it on every attempt, the given/when/then fixture in tests.
///
/// ```
/// # use es_core::{aggregate, Command, CommandMetadata, Context, Event, GivenExt};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
/// # pub struct Opened { by: String, at: u64 }
/// # #[derive(Command, Clone, Debug)]
/// # pub struct Open;
/// # #[derive(Debug, PartialEq, thiserror::Error)] #[error("nobody asked")] pub struct Anonymous;
/// /// A clock: a query, so asking it again on a retry does no harm.
/// #[derive(Default)]
/// pub struct Clock { pub fixed: u64 }
///
/// #[aggregate(name = "door", id = u32, error = Anonymous, services = Clock)]
/// #[derive(Default, Debug, PartialEq)]
/// pub struct Door { open: bool }
///
/// #[aggregate]
/// impl Door {
///     #[handle]
///     fn open(&self, _: Open, context: &Context<Clock>) -> Result<Opened, Anonymous> {
///         let by = context.metadata().get("user").ok_or(Anonymous)?;
///         Ok(Opened { by: by.to_owned(), at: context.services().fixed })
///     }
///     #[apply] fn opened(&mut self, _: &Opened) { self.open = true }
/// }
///
/// Door::given([])
///     .with_services(Clock { fixed: 7 })
///     .with_metadata(CommandMetadata::new().with("user", "ann"))
///     .when(Open)
///     .then([Opened { by: "ann".into(), at: 7 }.into()]);
/// ```
///
/// # Services are queries
///
/// When another writer changes the aggregate first, the repository reloads it and handles the
/// command again, so a handler can run several times for one command (see
/// [`RetryPolicy`](crate::RetryPolicy)). Services should therefore only answer questions (read
/// the clock, look up a price, ask whether an email is taken), never change the world:
/// an email sent from a handler would go out once per attempt, and also for attempts whose
/// events were never stored. Do side effects after the events are committed, in a projection
/// or a process manager that reacts to them.
#[derive(Debug)]
pub struct Context<'a, S = ()> {
    services: &'a S,
    metadata: &'a CommandMetadata,
    aggregate_id: &'a str,
}

// Not derived: a derive would require `S: Clone`, but only references are copied.
impl<S> Clone for Context<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Context<'_, S> {}

impl<'a, S> Context<'a, S> {
    /// A context for handling one command of the aggregate `aggregate_id` (as its stream id
    /// renders it). The repository and the fixture make one; make your own to call a handler
    /// in a unit test of your own.
    pub fn new(services: &'a S, metadata: &'a CommandMetadata, aggregate_id: &'a str) -> Self {
        Context {
            services,
            metadata,
            aggregate_id,
        }
    }

    /// The aggregate's services, as given to `Repository::with_services` (or its `Default`).
    pub fn services(&self) -> &'a S {
        self.services
    }

    /// What the caller attached to the command (`Repository::execute_with`); empty for
    /// `Repository::execute`.
    pub fn metadata(&self) -> &'a CommandMetadata {
        self.metadata
    }

    /// The id of the aggregate handling the command, as rendered into its stream id.
    pub fn aggregate_id(&self) -> &'a str {
        self.aggregate_id
    }
}
