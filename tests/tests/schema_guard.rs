//! The schema guard fails on the changes that would break stored events, and only on those.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::testing::SchemaGuard;
use es_core::Event;
use serde::{Deserialize, Serialize};

mod v1 {
    use super::*;
    #[derive(Event, Clone, Debug, Serialize, Deserialize)]
    #[event(name = "guard.renamed")]
    pub struct Renamed {
        pub name: String,
    }
}

mod changed_without_bump {
    use super::*;
    #[derive(Event, Clone, Debug, Serialize, Deserialize)]
    #[event(name = "guard.renamed")]
    pub struct Renamed {
        pub full_name: String,
    }
}

mod bumped_without_upcaster {
    use super::*;
    #[derive(Event, Clone, Debug, Serialize, Deserialize)]
    #[event(name = "guard.renamed", version = 2)]
    pub struct Renamed {
        pub full_name: String,
    }
}

mod bumped_with_upcaster {
    use super::*;
    fn rename(mut payload: serde_json::Value) -> Result<serde_json::Value, es_core::UpcastError> {
        let name = payload["name"].take();
        Ok(serde_json::json!({ "full_name": name }))
    }
    #[derive(Event, Clone, Debug, Serialize, Deserialize)]
    #[event(name = "guard.renamed", version = 2, upcast(from = 1, with = rename))]
    pub struct Renamed {
        pub full_name: String,
    }
}

mod before_rename {
    use super::*;
    /// No `name`: stored under the type's name, `AccountOpened`.
    #[derive(Event, Clone, Debug, Serialize, Deserialize)]
    pub struct AccountOpened {
        pub owner: String,
    }
}

mod renamed_without_name {
    use super::*;
    /// The type was renamed, so its stored name changed with it.
    #[derive(Event, Clone, Debug, Serialize, Deserialize)]
    pub struct AccountCreated {
        pub owner: String,
    }
}

mod renamed_keeping_name {
    use super::*;
    /// The type was renamed, and the old stored name kept.
    #[derive(Event, Clone, Debug, Serialize, Deserialize)]
    #[event(name = "AccountOpened")]
    pub struct AccountCreated {
        pub owner: String,
    }
}

fn golden_with_v1() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("shapes-{}.json", uuid::Uuid::new_v4().simple()));
    let mut guard = SchemaGuard::open(&path);
    guard.check(&v1::Renamed { name: "Ada".into() });
    let first = std::panic::catch_unwind(move || guard.finish()).unwrap_err();
    assert!(
        panic_text(&first).contains("recorded `guard.renamed` version 1"),
        "{}",
        panic_text(&first)
    );
    let mut again = SchemaGuard::open(&path);
    again.check(&v1::Renamed { name: "Ada".into() });
    again.finish(); // recorded and unchanged: passes
    path
}

fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default()
}

fn failure(check: impl FnOnce(&mut SchemaGuard), path: &std::path::Path) -> String {
    let mut guard = SchemaGuard::open(path);
    check(&mut guard);
    panic_text(&std::panic::catch_unwind(move || guard.finish()).unwrap_err())
}

#[test]
fn a_shape_change_without_a_version_bump_fails() {
    let path = golden_with_v1();
    let message = failure(
        |guard| {
            guard.check(&changed_without_bump::Renamed {
                full_name: "Ada".into(),
            })
        },
        &path,
    );
    assert!(
        message.contains("changed its stored shape but is still `version = 1`"),
        "{message}"
    );
    assert!(
        message.contains("bump to `version = 2` and add `upcast(from = 1"),
        "{message}"
    );
}

#[test]
fn a_version_bump_without_an_upcaster_fails() {
    let path = golden_with_v1();
    let message = failure(
        |guard| {
            guard.check(&bumped_without_upcaster::Renamed {
                full_name: "Ada".into(),
            })
        },
        &path,
    );
    assert!(
        message.contains("stored `guard.renamed` version 1 events no longer load into version 2"),
        "{message}"
    );
}

#[test]
fn a_version_bump_with_an_upcaster_passes_once_recorded() {
    let path = golden_with_v1();
    let message = failure(
        |guard| {
            guard.check(&bumped_with_upcaster::Renamed {
                full_name: "Ada".into(),
            })
        },
        &path,
    );
    assert!(
        message.contains("recorded `guard.renamed` version 2"),
        "{message}"
    );
    let mut guard = SchemaGuard::open(&path);
    guard.check(&bumped_with_upcaster::Renamed {
        full_name: "Ada".into(),
    });
    guard.finish();
}

#[test]
fn renaming_an_event_type_that_has_no_stored_name_fails_and_says_how_to_keep_it() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("shapes-{}.json", uuid::Uuid::new_v4().simple()));
    let first = failure(
        |guard| {
            guard.check(&before_rename::AccountOpened {
                owner: "Ada".into(),
            })
        },
        &path,
    );
    assert!(
        first.contains("recorded `AccountOpened` version 1"),
        "{first}"
    );

    let message = failure(
        |guard| {
            guard.check(&renamed_without_name::AccountCreated {
                owner: "Ada".into(),
            })
        },
        &path,
    );
    assert!(
        message.contains("event `AccountOpened` is in the event-shape file, but no checked event is stored under that name any more"),
        "{message}"
    );
    assert!(
        message.contains("`#[event(name = \"AccountOpened\")]`"),
        "{message}"
    );

    // Keeping the stored name passes, and leaves the file as it was.
    let mut guard = SchemaGuard::open(&path);
    guard.check(&renamed_keeping_name::AccountCreated {
        owner: "Ada".into(),
    });
    guard.finish();
}
