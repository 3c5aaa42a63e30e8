//! Given/when/then tests for aggregates: `Account::given(past_events).when(command).then(new_events)`.
//!
//! `given` comes from [`GivenExt`], implemented for every [`Aggregate`]; bring it into scope
//! with `use es_core::GivenExt;`.
//!
//! Besides the outcome you assert, `when` checks the two rules every aggregate must follow, by
//! comparing states: a `#[handle]` method leaves the state unchanged, and replaying all events
//! from scratch rebuilds the same state as applying the new ones on top (`#[apply]` depends on
//! nothing but events). States are compared with `PartialEq` ([`Given::when`]), or with a
//! comparison you pass ([`Given::when_compared_by`]) when the state does not implement it or
//! holds something that should not count, such as a cache. The comparison is by value, so a
//! `HashMap` in the state compares equal whatever its iteration order.
//!
//! Handlers that take a [`Context`] see the services and metadata given with
//! [`Given::with_services`] and [`Given::with_metadata`]: by default the services' `Default`
//! and empty metadata.

#![allow(clippy::panic)] // a failed assertion in a test fixture is meant to panic

use std::fmt::Debug;

use crate::aggregate::Aggregate;
use crate::context::Context;
use crate::repository::CommandMetadata;

/// Starts a given/when/then test of an aggregate; implemented for every [`Aggregate`].
///
/// ```
/// # use es_core::{aggregate, Command, Event};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
/// # pub struct Opened;
/// # #[derive(Command, Clone, Debug)]
/// # pub struct Open;
/// # #[derive(Debug, PartialEq, thiserror::Error)] #[error("already open")] pub struct AlreadyOpen;
/// # #[aggregate(name = "door", id = u32, error = AlreadyOpen)]
/// # #[derive(Default, Debug, PartialEq)]
/// # pub struct Door { open: bool }
/// # #[aggregate]
/// # impl Door {
/// #     #[handle] fn open(&self, _: Open) -> Result<Opened, AlreadyOpen> {
/// #         if self.open { Err(AlreadyOpen) } else { Ok(Opened) } }
/// #     #[apply] fn opened(&mut self, _: &Opened) { self.open = true }
/// # }
/// use es_core::GivenExt;
///
/// Door::given([]).when(Open).then([Opened.into()]);
/// Door::given([Opened.into()]).when(Open).then_error(AlreadyOpen);
/// ```
pub trait GivenExt: Aggregate {
    /// The aggregate after these past events, ready to receive a command. Its handlers get
    /// the `Default` services; replace them with [`Given::with_services`].
    fn given(history: impl IntoIterator<Item = Self::Event>) -> Given<Self>
    where
        Self::Services: Default,
    {
        Given::new(history)
    }

    /// Like [`GivenExt::given`], with `services` for the handlers: for an aggregate whose
    /// services have no `Default`.
    fn given_with(
        services: Self::Services,
        history: impl IntoIterator<Item = Self::Event>,
    ) -> Given<Self> {
        Given::with_history_and_services(history, services)
    }
}

impl<A: Aggregate> GivenExt for A {}

/// An aggregate with a history, ready to receive a command; made by [`GivenExt::given`].
pub struct Given<A: Aggregate> {
    history: Vec<A::Event>,
    services: A::Services,
    metadata: CommandMetadata,
    aggregate_id: String,
}

impl<A: Aggregate> Debug for Given<A> {
    // The services are left out: they need not implement `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Given")
            .field("history", &self.history)
            .field("metadata", &self.metadata)
            .field("aggregate_id", &self.aggregate_id)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate> Given<A> {
    /// An aggregate that has already applied `history`, with the `Default` services.
    pub fn new(history: impl IntoIterator<Item = A::Event>) -> Self
    where
        A::Services: Default,
    {
        Self::with_history_and_services(history, A::Services::default())
    }

    fn with_history_and_services(
        history: impl IntoIterator<Item = A::Event>,
        services: A::Services,
    ) -> Self {
        Given {
            history: history.into_iter().collect(),
            services,
            metadata: CommandMetadata::new(),
            aggregate_id: String::new(),
        }
    }

    /// The services handlers see in [`Context::services`], e.g. a clock fixed at one time.
    pub fn with_services(mut self, services: A::Services) -> Self {
        self.services = services;
        self
    }

    /// The metadata handlers see in [`Context::metadata`], as if the command were run with
    /// `Repository::execute_with(id, command, metadata)`.
    pub fn with_metadata(mut self, metadata: CommandMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// The id handlers see in [`Context::aggregate_id`]; empty unless set.
    pub fn with_id(mut self, id: &A::Id) -> Self {
        self.aggregate_id = id.to_string();
        self
    }

    /// Handles `command` against the state rebuilt from the history, and checks the
    /// aggregate's rules by comparing states with `PartialEq` (see the module docs).
    ///
    /// For a state without `PartialEq`, use [`Given::when_compared_by`].
    #[track_caller]
    pub fn when(self, command: impl Into<A::Command>) -> Outcome<A>
    where
        A: PartialEq + Debug,
    {
        self.run(command.into(), |a, b| a == b, |state| format!("{state:?}"))
    }

    /// Like [`Given::when`], comparing states with `same` instead of `PartialEq`: for a state
    /// that does not implement it, or that holds something which should not count (a cache).
    ///
    /// ```
    /// # use es_core::{aggregate, Command, Event, GivenExt};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
    /// # pub struct Opened;
    /// # #[derive(Command, Clone, Debug)]
    /// # pub struct Open;
    /// # #[derive(Debug, PartialEq, thiserror::Error)] #[error("already open")] pub struct AlreadyOpen;
    /// # #[aggregate(name = "door", id = u32, error = AlreadyOpen)]
    /// # #[derive(Default)]
    /// # pub struct Door { open: bool }
    /// # #[aggregate]
    /// # impl Door {
    /// #     #[handle] fn open(&self, _: Open) -> Result<Opened, AlreadyOpen> {
    /// #         if self.open { Err(AlreadyOpen) } else { Ok(Opened) } }
    /// #     #[apply] fn opened(&mut self, _: &Opened) { self.open = true }
    /// # }
    /// // `Door` implements neither `PartialEq` nor `Debug`.
    /// Door::given([]).when_compared_by(Open, |a, b| a.open == b.open).then([Opened.into()]);
    /// ```
    #[track_caller]
    pub fn when_compared_by(
        self,
        command: impl Into<A::Command>,
        same: impl Fn(&A, &A) -> bool,
    ) -> Outcome<A> {
        self.run(command.into(), same, |_| {
            "(not shown: the aggregate's state is compared with `when_compared_by`)".to_owned()
        })
    }

    #[track_caller]
    fn run(
        self,
        command: A::Command,
        same: impl Fn(&A, &A) -> bool,
        show: impl Fn(&A) -> String,
    ) -> Outcome<A> {
        // Two independent replays of the same history: they must agree before anything else
        // is blamed, and the first is the reference the handler must leave untouched.
        let reference = replay::<A>(&self.history);
        let mut state = replay::<A>(&self.history);
        if !same(&reference, &state) {
            panic!(
                "replaying the same events twice gave two different states: an `#[apply]` method is not deterministic (it depends on something besides the event)\n  first:  {}\n  second: {}",
                show(&reference),
                show(&state)
            );
        }
        let context = Context::new(&self.services, &self.metadata, &self.aggregate_id);
        let result = state.handle(command, &context);
        if !same(&reference, &state) {
            panic!(
                "a `#[handle]` method changed the aggregate's state (through interior mutability); state may only change in `#[apply]` methods, or it is lost on the next load\n  before: {}\n  after:  {}",
                show(&reference),
                show(&state)
            );
        }
        if let Ok(events) = &result {
            for event in events {
                state.apply(event);
            }
            // Replaying the whole history from scratch must give the same state as applying
            // the new events on top: otherwise `apply` depends on something besides events.
            let replayed = replay::<A>(self.history.iter().chain(events));
            if !same(&state, &replayed) {
                panic!(
                    "replaying the events did not rebuild the same state: an `#[apply]` method is not deterministic\n  applied on top: {}\n  replayed:       {}",
                    show(&state),
                    show(&replayed)
                );
            }
        }
        Outcome { state, result }
    }
}

fn replay<'a, A: Aggregate>(events: impl IntoIterator<Item = &'a A::Event>) -> A {
    let mut state = A::default();
    for event in events {
        state.apply(event);
    }
    state
}

/// What a command did in a given/when test; assert on it with `then*`.
pub struct Outcome<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> Debug for Outcome<A> {
    // The state is left out: it need not implement `Debug` (see `when_compared_by`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("result", &self.result)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate> Outcome<A> {
    /// Asserts the command was accepted and emitted exactly `expected`, in order.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A
    where
        A::Event: PartialEq,
    {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(
                    events, expected,
                    "the command emitted other events than expected"
                );
                self.state
            }
            Err(error) => {
                panic!("expected events {expected:?}, but the command was rejected: {error:?}")
            }
        }
    }

    /// Asserts the command was rejected with `expected`.
    #[track_caller]
    pub fn then_error(self, expected: A::Error)
    where
        A::Error: PartialEq,
    {
        match self.result {
            Ok(events) => {
                panic!("expected the error {expected:?}, but the command emitted {events:?}")
            }
            Err(error) => assert_eq!(
                error, expected,
                "the command was rejected with another error"
            ),
        }
    }

    /// Asserts the command was rejected with an error that satisfies `check`.
    #[track_caller]
    pub fn then_error_matches(self, check: impl FnOnce(&A::Error) -> bool) {
        match self.result {
            Ok(events) => panic!("expected an error, but the command emitted {events:?}"),
            Err(error) => assert!(
                check(&error),
                "the command was rejected with an unexpected error: {error:?}"
            ),
        }
    }

    /// The events emitted, or the error, for custom assertions.
    pub fn result(&self) -> &Result<Vec<A::Event>, A::Error> {
        &self.result
    }

    /// The state after applying the emitted events.
    pub fn state(&self) -> &A {
        &self.state
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    use serde::{Deserialize, Serialize};

    use crate::{aggregate, Command, Event, GivenExt};

    #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[event(name = "tally.counted")]
    pub struct Counted {
        pub word: String,
    }

    #[derive(Command, Clone, Debug)]
    pub struct Count {
        pub word: String,
    }

    #[derive(Debug, PartialEq, thiserror::Error)]
    #[error("never")]
    pub struct TallyError;

    /// A state whose `Debug` output depends on each `HashMap`'s random iteration order.
    #[aggregate(name = "tally", id = u32, error = TallyError)]
    #[derive(Default, Debug, PartialEq)]
    pub struct Tally {
        counts: HashMap<String, u64>,
    }

    #[aggregate]
    impl Tally {
        #[handle]
        fn count(&self, command: Count) -> Result<Counted, TallyError> {
            Ok(Counted { word: command.word })
        }

        #[apply]
        fn counted(&mut self, event: &Counted) {
            *self.counts.entry(event.word.clone()).or_default() += 1;
        }
    }

    fn history() -> Vec<TallyEvent> {
        (0..64)
            .map(|n| {
                Counted {
                    word: format!("word-{n}"),
                }
                .into()
            })
            .collect()
    }

    #[test]
    fn a_hash_map_in_the_state_is_compared_by_value_not_by_debug_output() {
        // With 64 keys, two maps of equal contents almost surely print in different orders.
        let state = Tally::given(history())
            .when(Count {
                word: "word-1".into(),
            })
            .then([Counted {
                word: "word-1".into(),
            }
            .into()]);
        assert_eq!(state.counts["word-1"], 2);
    }

    static APPLIED: AtomicU64 = AtomicU64::new(0);

    /// `apply` reads a global counter: replaying gives another state.
    #[aggregate(name = "clock", id = u32, error = TallyError)]
    #[derive(Default, Debug, PartialEq)]
    pub struct Clock {
        seen: u64,
    }

    #[aggregate]
    impl Clock {
        #[handle]
        fn count(&self, command: Count) -> Result<Counted, TallyError> {
            Ok(Counted { word: command.word })
        }

        #[apply]
        fn counted(&mut self, _: &Counted) {
            self.seen = APPLIED.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_non_deterministic_apply_is_still_caught() {
        let outcome = std::panic::catch_unwind(|| {
            Clock::given([]).when(Count { word: "a".into() });
        });
        let message = outcome.unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("an `#[apply]` method is not deterministic"),
            "{message}"
        );
    }

    /// No `PartialEq`, no `Debug`: compared by the caller's function.
    #[aggregate(name = "opaque", id = u32, error = TallyError)]
    #[derive(Default)]
    pub struct Opaque {
        total: usize,
    }

    #[aggregate]
    impl Opaque {
        #[handle]
        fn count(&self, command: Count) -> Result<Counted, TallyError> {
            Ok(Counted { word: command.word })
        }

        #[apply]
        fn counted(&mut self, event: &Counted) {
            self.total += event.word.len();
        }
    }

    #[test]
    fn a_state_without_partial_eq_is_compared_by_the_given_function() {
        let state = Opaque::given([])
            .when_compared_by(Count { word: "abc".into() }, |a, b| a.total == b.total)
            .then([Counted { word: "abc".into() }.into()]);
        assert_eq!(state.total, 3);
    }
}
