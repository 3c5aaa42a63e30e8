//! The draft janitor: a suspended author's drafts are archived, and so is a draft nobody
//! touched for `stale_after`; in the fixture, and on the blog over each embedded store with
//! a clock the test moves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use blog::app::{Blog, BlogConfig};
use blog::author::{Author, AuthorSuspended, RegisterAuthor, SuspendAuthor};
use blog::janitor::{stale_reason, DraftJanitor, SUSPENDED_REASON};
use blog::post::{
    ArchivePost, DraftPost, Post, PostArchived, PostDrafted, PostEdited, PostPublished,
    PublishPost, Status,
};
use es_core::process::{Dispatch, ManualClock, ProcessFixture};
use es_core::{Event, EventLogExt, MemoryStore, RolledBack, Store, StreamId};
use es_tests::stores;
use futures::TryStreamExt;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn drafted(author: &str) -> PostDrafted {
    PostDrafted {
        author: author.into(),
        title: "A draft".into(),
        content: String::new(),
        tags: Vec::new(),
    }
}

fn archive(post: &str, reason: &str) -> Dispatch {
    Dispatch::to::<Post>(
        post.into(),
        ArchivePost {
            reason: reason.into(),
        },
    )
}

fn janitor(days: u64) -> DraftJanitor {
    DraftJanitor {
        stale_after: DAY * u32::try_from(days).unwrap(),
    }
}

// ---- the fixture: given events, then these commands and deadlines ----

#[test]
fn suspending_an_author_archives_their_open_drafts_and_drops_their_deadlines() {
    ProcessFixture::new(janitor(30))
        .given::<Post>(&"p1".into(), drafted("ann"))
        .given::<Post>(&"p2".into(), drafted("ann"))
        .given::<Post>(&"p3".into(), drafted("bob"))
        .given::<Post>(
            &"p2".into(),
            PostPublished {
                title: "A draft".into(),
            },
        )
        .then_deadlines(["stale/p1", "stale/p3"])
        .when::<Author>(
            &"ann".into(),
            AuthorSuspended {
                reason: "spam".into(),
            },
        )
        .then_commands([archive("p1", SUSPENDED_REASON)])
        .then_deadlines(["stale/p3"]);
}

#[test]
fn a_suspended_authors_new_draft_is_archived_at_once() {
    ProcessFixture::new(janitor(30))
        .given::<Author>(
            &"ann".into(),
            AuthorSuspended {
                reason: "spam".into(),
            },
        )
        .when::<Post>(&"p1".into(), drafted("ann"))
        .then_commands([archive("p1", SUSPENDED_REASON)])
        .then_deadlines::<&str>([]);
}

#[test]
fn a_draft_left_alone_is_archived_when_its_deadline_comes_and_an_edit_moves_it() {
    ProcessFixture::new(janitor(30))
        .given::<Post>(&"p1".into(), drafted("ann"))
        .when_time_passes(20 * DAY)
        .then_commands([])
        .when::<Post>(
            &"p1".into(),
            PostEdited {
                title: "Better".into(),
                content: String::new(),
            },
        )
        .when_time_passes(20 * DAY)
        .then_commands([])
        .then_deadlines(["stale/p1"])
        .when_time_passes(10 * DAY)
        .then_commands([archive("p1", &stale_reason("30d"))])
        .then_deadlines::<&str>([]);
}

#[test]
fn a_published_or_archived_draft_is_no_longer_watched() {
    ProcessFixture::new(janitor(1))
        .given::<Post>(&"p1".into(), drafted("ann"))
        .given::<Post>(&"p2".into(), drafted("ann"))
        .given::<Post>(
            &"p1".into(),
            PostPublished {
                title: "A draft".into(),
            },
        )
        .given::<Post>(
            &"p2".into(),
            PostArchived {
                reason: "changed my mind".into(),
            },
        )
        .then_deadlines::<&str>([])
        .when_time_passes(2 * DAY)
        .then_commands([])
        .when::<Author>(
            &"ann".into(),
            AuthorSuspended {
                reason: "spam".into(),
            },
        )
        .then_commands([]);
}

fn published() -> PostPublished {
    PostPublished {
        title: "A draft".into(),
    }
}

fn rolled_back_to(version: u64) -> RolledBack {
    RolledBack {
        to_version: version,
        by: "editor".into(),
        reason: "too soon".into(),
    }
}

#[test]
fn a_post_rolled_back_to_a_draft_is_watched_again_and_archived_when_left_alone() {
    ProcessFixture::new(janitor(30))
        .given::<Post>(&"p1".into(), drafted("ann")) // version 1
        .given::<Post>(&"p1".into(), published()) // version 2
        .then_deadlines::<&str>([])
        .when::<Post>(&"p1".into(), rolled_back_to(1)) // version 3: a draft again
        .then_commands([])
        .then_deadlines(["stale/p1"])
        .when_time_passes(31 * DAY)
        .then_commands([archive("p1", &stale_reason("30d"))]);
}

#[test]
fn a_post_rolled_back_to_a_draft_of_a_suspended_author_is_archived_at_once() {
    ProcessFixture::new(janitor(30))
        .given::<Post>(&"p1".into(), drafted("ann"))
        .given::<Post>(&"p1".into(), published())
        .given::<Author>(
            &"ann".into(),
            AuthorSuspended {
                reason: "spam".into(),
            },
        )
        .when::<Post>(&"p1".into(), rolled_back_to(1))
        .then_commands([archive("p1", SUSPENDED_REASON)])
        .then_deadlines::<&str>([]);
}

#[test]
fn a_rollback_follows_the_posts_whole_story_including_earlier_rollbacks() {
    ProcessFixture::new(janitor(30))
        .given::<Post>(&"p1".into(), drafted("ann")) // 1: draft
        .given::<Post>(&"p1".into(), published()) // 2: published
        .given::<Post>(&"p1".into(), rolled_back_to(1)) // 3: draft
        .given::<Post>(&"p1".into(), published()) // 4: published
        .then_deadlines::<&str>([])
        // Version 3 was a rollback marker that made the post a draft.
        .when::<Post>(&"p1".into(), rolled_back_to(3)) // 5: draft
        .then_deadlines(["stale/p1"])
        // Back to version 4, where it was published: no longer watched.
        .when::<Post>(&"p1".into(), rolled_back_to(4)) // 6: published
        .then_deadlines::<&str>([])
        .when_time_passes(31 * DAY)
        .then_commands([])
        // A rollback that keeps a draft a draft changes nothing.
        .when::<Post>(&"p1".into(), rolled_back_to(5)) // 7: draft
        .then_deadlines(["stale/p1"])
        .when::<Post>(&"p1".into(), rolled_back_to(1)) // 8: draft
        .then_commands([])
        .then_deadlines(["stale/p1"]);
}

#[test]
fn editing_a_published_post_sets_no_deadline() {
    ProcessFixture::new(janitor(30))
        .given::<Post>(&"p1".into(), drafted("ann"))
        .given::<Post>(&"p1".into(), published())
        .when::<Post>(
            &"p1".into(),
            PostEdited {
                title: "Better".into(),
                content: String::new(),
            },
        )
        .then_deadlines::<&str>([]);
}

// ---- the blog, running: the janitor's commands reach the posts ----

async fn draft(blog: &Blog, post: &str, author: &str) {
    let command = DraftPost {
        author: author.into(),
        title: format!("{post} by {author}"),
        content: String::new(),
        tags: Vec::new(),
    };
    blog.posts.execute(&post.to_owned(), command).await.unwrap();
}

async fn status(blog: &Blog, post: &str) -> Status {
    blog.posts
        .load(&post.to_owned())
        .await
        .unwrap()
        .state
        .status
}

/// The reasons the post was archived with, one per `post.archived` event.
async fn archivals(blog: &Blog, post: &str) -> Vec<String> {
    let stream = StreamId::new("post", post).unwrap();
    let events: Vec<_> = blog
        .store
        .stream_events(&stream, 1)
        .try_collect()
        .await
        .unwrap();
    events
        .iter()
        .filter(|event| &*event.event_name == PostArchived::NAME)
        .map(|event| {
            assert_eq!(
                event
                    .metadata
                    .extra
                    .get("process_manager")
                    .map(String::as_str),
                Some("draft_janitor"),
                "archived by the janitor"
            );
            event.event.decode::<PostArchived>().unwrap().reason
        })
        .collect()
}

async fn the_janitor_archives_on_suspension_and_on_its_deadline(store: Arc<dyn Store>) {
    let clock = ManualClock::starting_now();
    let config = BlogConfig {
        janitor: janitor(30),
        clock: Arc::new(clock.clone()),
    };
    let blog = Blog::open_with(store, config).await.unwrap();
    for author in ["ann", "bob"] {
        blog.authors
            .execute(
                &author.to_owned(),
                RegisterAuthor {
                    name: author.to_uppercase(),
                },
            )
            .await
            .unwrap();
    }
    draft(&blog, "old", "ann").await;
    draft(&blog, "kept", "ann").await;
    draft(&blog, "published", "ann").await;
    blog.posts
        .execute(&"published".to_owned(), PublishPost)
        .await
        .unwrap();
    blog.settle().await.unwrap();

    // Deadlines are set from the time the event was recorded (the real time here) and come
    // due by the blog's clock (moved by the test). That an edit moves a deadline is shown by
    // the fixture above, where both times are the fixture's.
    clock.advance(29 * DAY);
    blog.settle().await.unwrap();
    assert_eq!(status(&blog, "old").await, Status::Draft, "not stale yet");
    clock.advance(2 * DAY);
    blog.settle().await.unwrap();
    assert_eq!(archivals(&blog, "old").await, [stale_reason("30d")]);
    assert_eq!(archivals(&blog, "kept").await, [stale_reason("30d")]);
    assert_eq!(status(&blog, "published").await, Status::Published);

    // Back to the present: bob's draft is fresh, and goes when bob is suspended.
    clock.set(chrono::Utc::now());
    draft(&blog, "bobs", "bob").await;
    blog.authors
        .execute(
            &"bob".to_owned(),
            SuspendAuthor {
                reason: "spam".into(),
            },
        )
        .await
        .unwrap();
    blog.settle().await.unwrap();
    assert_eq!(archivals(&blog, "bobs").await, [SUSPENDED_REASON]);
    draft(&blog, "bobs-next", "bob").await;
    blog.settle().await.unwrap();
    assert_eq!(archivals(&blog, "bobs-next").await, [SUSPENDED_REASON]);

    clock.advance(30 * DAY);
    blog.settle().await.unwrap();
    assert_eq!(archivals(&blog, "old").await.len(), 1, "fired once");
    assert_eq!(
        archivals(&blog, "bobs-next").await.len(),
        1,
        "archived once"
    );
    let health = blog.janitor().health().await.unwrap();
    assert_eq!(health.pending_deadlines, 0);
    assert_eq!(health.rejected_commands, 0, "nothing archived twice");
    blog.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_janitor_archives_on_suspension_and_on_its_deadline() {
    the_janitor_archives_on_suspension_and_on_its_deadline(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_janitor_archives_on_suspension_and_on_its_deadline() {
    let store = stores::sqlite_store().await;
    the_janitor_archives_on_suspension_and_on_its_deadline(Arc::new(store.clone())).await;
    stores::remove_sqlite(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_janitor_archives_on_suspension_and_on_its_deadline() {
    let Some(store) = stores::postgres_store_with_prefix("blog_janitor_").await else {
        return;
    };
    the_janitor_archives_on_suspension_and_on_its_deadline(Arc::new(store.clone())).await;
    store.drop_schema().await.unwrap();
}
