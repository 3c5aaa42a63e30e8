//! Given/when/then tests for aggregates, generated as `MyAggregate::given(...)`.

#![allow(clippy::panic)] // a failed assertion in a test fixture is meant to panic

use std::fmt::Debug;

use crate::aggregate::Aggregate;

/// An aggregate with a history, ready to receive a command. Made by the generated
/// `given` function of every `#[aggregate]`:
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
/// # #[derive(Default, Debug)]
/// # pub struct Door { open: bool }
/// # #[aggregate]
/// # impl Door {
/// #     #[handle] fn open(&self, _: Open) -> Result<Opened, AlreadyOpen> {
/// #         if self.open { Err(AlreadyOpen) } else { Ok(Opened) } }
/// #     #[apply] fn opened(&mut self, _: &Opened) { self.open = true }
/// # }
/// Door::given([]).when(Open).then([Opened.into()]);
/// Door::given([Opened.into()]).when(Open).then_error(AlreadyOpen);
/// ```
#[derive(Debug)]
pub struct Given<A: Aggregate> {
    history: Vec<A::Event>,
}

impl<A: Aggregate> Given<A> {
    /// An aggregate that has already applied `history`.
    pub fn new(history: impl IntoIterator<Item = A::Event>) -> Self {
        Given {
            history: history.into_iter().collect(),
        }
    }

    /// Handles `command` against the state rebuilt from the history.
    pub fn when(self, command: impl Into<A::Command>) -> Outcome<A>
    where
        A: Debug,
    {
        let mut state = replay::<A>(&self.history);
        let before = format!("{state:?}");
        let result = state.handle(command.into());
        let after = format!("{state:?}");
        assert_eq!(
            before, after,
            "a `#[handle]` method changed the aggregate's state (through interior mutability); \
             state may only change in `#[apply]` methods, or it is lost on the next load"
        );
        if let Ok(events) = &result {
            for event in events {
                state.apply(event);
            }
            // Replaying the whole history from scratch must give the same state as applying
            // the new events on top: otherwise `apply` depends on something besides events.
            let replayed = replay::<A>(self.history.iter().chain(events));
            assert_eq!(
                format!("{state:?}"),
                format!("{replayed:?}"),
                "replaying the events did not rebuild the same state: an `#[apply]` method is not deterministic"
            );
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
#[derive(Debug)]
pub struct Outcome<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
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
