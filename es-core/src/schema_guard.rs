//! A guard against changing an event's stored shape by accident.
//!
//! ```no_run
//! # use es_core::testing::SchemaGuard;
//! # #[derive(es_core::Event, Clone, Debug, serde::Serialize, serde::Deserialize)]
//! # #[event(name = "post.published")] struct PostPublished { title: String }
//! #[test]
//! fn event_shapes_are_stable() {
//!     let mut guard = SchemaGuard::open(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/event-shapes.json"));
//!     guard.check(&PostPublished { title: "A title".into() });
//!     guard.finish();
//! }
//! ```
//!
//! For each event, the golden file keeps the serialized shape and an example of every version
//! it has seen. The guard fails when:
//! - an event's shape changed but its `version` did not: stored events would no longer
//!   deserialize (bump the version and add an upcaster);
//! - an older version's recorded example no longer decodes through the upcasters into the
//!   current type (the chain is missing or wrong);
//! - the golden file knows a version newer than the code;
//! - an event name recorded in the golden file was not checked: usually a renamed Rust type
//!   whose stored name was its type name, which orphans every event stored under the old name
//!   (keep it with `#[event(name = "OldName")]`). So check every stored event type, each
//!   time.
//!
//! New events and new versions are recorded in the file and the guard fails once, asking for
//! the file to be reviewed and committed. Give samples with every optional field set, so the
//! shape covers them.

#![allow(clippy::panic)] // a test helper: failing means panicking, like `assert!`

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{json, Map, Value};

use crate::envelope::Payload;
use crate::event::Event;

type Golden = BTreeMap<String, BTreeMap<u32, Value>>;

/// Checks events against the golden file at `path`; see the module docs.
#[derive(Debug)]
pub struct SchemaGuard {
    path: PathBuf,
    golden: Golden,
    problems: Vec<String>,
    recorded: Vec<String>,
    checked: BTreeSet<&'static str>,
}

impl SchemaGuard {
    /// Reads the golden file (a missing file is an empty one).
    pub fn open(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut problems = Vec::new();
        let golden = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|error| {
                problems.push(format!(
                    "{} is not a valid event-shape file: {error}",
                    path.display()
                ));
                Golden::new()
            }),
            Err(_) => Golden::new(),
        };
        SchemaGuard {
            path,
            golden,
            problems,
            recorded: Vec::new(),
            checked: BTreeSet::new(),
        }
    }

    /// Checks one event type, given a sample value of its current version.
    pub fn check<E: Event>(&mut self, sample: &E) {
        self.checked.insert(E::NAME);
        let example = match serde_json::to_value(sample) {
            Ok(value) => value,
            Err(error) => {
                self.problems
                    .push(format!("`{}` does not serialize: {error}", E::NAME));
                return;
            }
        };
        let shape = shape_of(&example);
        let versions = self.golden.entry(E::NAME.to_owned()).or_default();
        match versions.get(&E::VERSION) {
            Some(known) if known["shape"] != shape => self.problems.push(format!(
                "event `{}` changed its stored shape but is still `version = {}`: stored events would no longer load.\n  was: {}\n  now: {}\n  bump to `version = {}` and add `upcast(from = {}, with = ...)` turning the old shape into the new",
                E::NAME, E::VERSION, known["shape"], shape, E::VERSION + 1, E::VERSION
            )),
            Some(_) => {}
            None => {
                versions.insert(E::VERSION, json!({ "shape": shape, "example": example }));
                self.recorded.push(format!("`{}` version {}", E::NAME, E::VERSION));
            }
        }
        for (&version, known) in versions.iter() {
            if version > E::VERSION {
                self.problems.push(format!(
                    "the event-shape file knows `{}` version {version}, newer than the code's version {}",
                    E::NAME, E::VERSION
                ));
            } else if version < E::VERSION {
                let old = Payload::from_json_text(known["example"].to_string());
                if let Err(failure) = E::decode(version, &old) {
                    self.problems.push(format!(
                        "stored `{}` version {version} events no longer load into version {}: {failure}",
                        E::NAME, E::VERSION
                    ));
                }
            }
        }
    }

    /// Fails with every problem found, or, when new shapes were recorded, writes the file and
    /// fails once so that it gets reviewed and committed.
    #[track_caller]
    pub fn finish(mut self) {
        self.report_vanished_names();
        if !self.problems.is_empty() {
            panic!(
                "event schema guard ({}):\n- {}",
                self.path.display(),
                self.problems.join("\n- ")
            );
        }
        if self.recorded.is_empty() {
            return;
        }
        let text = serde_json::to_string_pretty(&self.golden).unwrap_or_default() + "\n";
        if let Err(error) = std::fs::write(&self.path, text) {
            panic!("cannot write {}: {error}", self.path.display());
        }
        panic!(
            "event schema guard: recorded {} in {}; review the file and commit it, then run again",
            self.recorded.join(", "),
            self.path.display()
        );
    }
}

impl SchemaGuard {
    /// Names in the golden file that no checked event is stored under any more.
    fn report_vanished_names(&mut self) {
        for name in self.golden.keys() {
            if self.checked.contains(name.as_str()) {
                continue;
            }
            self.problems.push(format!(
                "event `{name}` is in the event-shape file, but no checked event is stored under that name any more: events already stored as `{name}` would no longer load. If you renamed its Rust type, keep the stored name with `#[event(name = \"{name}\")]` on it, and check it here; only if no `{name}` event was ever stored, delete its entry from the file"
            ));
        }
    }
}

/// The shape of a JSON value: the type of each scalar, the fields of each object, the shape of
/// an array's first element.
fn shape_of(value: &Value) -> Value {
    match value {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(number) if number.is_f64() => json!("float"),
        Value::Number(_) => json!("integer"),
        Value::String(_) => json!("string"),
        Value::Array(items) => Value::Array(items.first().map(shape_of).into_iter().collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), shape_of(value)))
                .collect::<Map<_, _>>(),
        ),
    }
}
