//! The blog's stored event shapes, guarded by a committed golden file: a change that would
//! break stored events fails here unless it comes with a version bump and an upcaster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use blog::author::{AuthorRegistered, AuthorSuspended, LoggedIn};
use blog::janitor::DraftStale;
use blog::post::{CommentAdded, PostArchived, PostDrafted, PostEdited, PostPublished};
use chrono::{TimeZone, Utc};
use es_core::testing::SchemaGuard;
use es_core::RolledBack;

#[test]
fn stored_event_shapes_only_change_with_a_version_bump_and_an_upcaster() {
    let mut guard = SchemaGuard::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/event-shapes.json"
    ));
    let text = || "text".to_owned();
    guard.check(&PostDrafted {
        author: text(),
        title: text(),
        content: text(),
        tags: vec![text()],
    });
    guard.check(&PostPublished { title: text() });
    guard.check(&PostEdited {
        title: text(),
        content: text(),
    });
    guard.check(&CommentAdded {
        number: 1,
        author: text(),
        text: text(),
    });
    guard.check(&PostArchived { reason: text() });
    guard.check(&AuthorRegistered { name: text() });
    guard.check(&LoggedIn {
        at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single().unwrap(),
    });
    guard.check(&AuthorSuspended { reason: text() });
    // Deadlines are stored too, until they fire.
    guard.check(&DraftStale {
        post: text(),
        untouched_for: text(),
    });
    guard.check(&RolledBack {
        to_version: 1,
        by: text(),
        reason: text(),
    });
    guard.finish();
}
