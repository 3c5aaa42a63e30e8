//! Schema evolution and rollback in the blog, on every store: events written by the code of
//! last year still load, and a rollback is reflected by every read model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use blog::app::Blog;
use blog::post::{Post, PostError, Status};
use blog::report::{self, Moment};
use blog::scenario;
use es_core::{ExpectedVersion, Metadata, NewEvent, Payload, RepositoryError, Store, StreamId};
use es_tests::stores;

async fn on_every_store(
    case: impl Fn(Arc<dyn Store>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
) {
    case(Arc::new(es_core::MemoryStore::new())).await;
    let sqlite = stores::sqlite_store().await;
    case(Arc::new(sqlite.clone())).await;
    stores::remove_sqlite(sqlite);
    if let Some(store) = stores::postgres_store_with_prefix("blog_test_").await {
        case(Arc::new(store.clone())).await;
        store.drop_schema().await.unwrap();
    }
}

/// Appends the committed fixture rows exactly as last year's code stored them.
async fn load_fixture(store: &Arc<dyn Store>, file: &str) {
    let rows: Vec<serde_json::Value> = serde_json::from_str(file).unwrap();
    for row in rows {
        let event = NewEvent {
            event_name: row["event_name"].as_str().unwrap().into(),
            schema_version: row["schema_version"].as_u64().unwrap() as u32,
            metadata: Metadata::new(uuid::Uuid::now_v7()),
            payload: Payload::encode(&row["payload"]).unwrap(),
        };
        let stream = StreamId::new(
            row["aggregate_type"].as_str().unwrap(),
            row["aggregate_id"].as_str().unwrap(),
        )
        .unwrap();
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn version_1_events_from_the_committed_fixture_still_load() {
    on_every_store(|store| {
        Box::pin(async move {
            load_fixture(&store, include_str!("fixtures/post-events-v1.json")).await;
            let blog = Blog::open(store).await.unwrap();
            let post = blog.posts.load(&"legacy".to_owned()).await.unwrap();
            assert_eq!(
                (post.version, post.state.status, post.state.comments),
                (3, Status::Published, 1)
            );
            let page = report::post_page(&blog, "legacy", Moment::Now)
                .await
                .unwrap()
                .unwrap();
            assert!(
                page.contains("Stored as post.drafted version 1."),
                "the upcaster moved `body` to `content`: {page}"
            );
            // New commands continue the old stream.
            blog.posts
                .execute(
                    &"legacy".to_owned(),
                    blog::post::AddComment {
                        author: "ada".into(),
                        text: "Hello".into(),
                    },
                )
                .await
                .unwrap();
        })
    })
    .await;
}

#[tokio::test]
async fn an_event_newer_than_the_code_is_an_error_naming_where_it_is() {
    on_every_store(|store| {
        Box::pin(async move {
            let future = r#"[{"aggregate_id": "future", "aggregate_type": "post", "event_name": "post.drafted", "schema_version": 3, "payload": {}}]"#;
            load_fixture(&store, future).await;
            let blog = Blog::open(Arc::clone(&store)).await;
            let error = match blog {
                Err(error) => error.to_string(),
                Ok(blog) => blog.posts.load(&"future".to_owned()).await.unwrap_err().to_string(),
            };
            for part in ["post.drafted", "schema version 3", "version 1", "post/future", "newer than this code's version 2"] {
                assert!(error.contains(part), "`{part}` missing from: {error}");
            }
        })
    })
    .await;
}

#[tokio::test]
async fn a_rollback_is_reflected_by_every_read_model_and_keeps_the_history() {
    on_every_store(|store| {
        Box::pin(async move {
            let blog = Blog::open(store).await.unwrap();
            scenario::play(&blog, "").await.unwrap();
            let engines = "engines".to_owned();
            // engines: v1 drafted, v2 published, v3 comment, v4 comment, v5 edited.
            let marker = blog
                .posts
                .rollback(&engines, 3, "moderator", "spam comment and bad edit")
                .await
                .unwrap();
            assert_eq!(marker.version, 6);

            let post = blog.posts.load(&engines).await.unwrap();
            assert_eq!(
                (post.version, post.state.comments, post.state.title.as_str()),
                (6, 1, "Notes on the Analytical Engine")
            );
            let page = report::post_page(&blog, "engines", Moment::Now)
                .await
                .unwrap()
                .unwrap();
            assert!(
                page.contains("1 comment(s)") && page.contains("It weaves algebraic patterns.\n"),
                "{page}"
            );
            let list = report::published_posts(&blog).await.unwrap();
            assert!(
                list.contains("Notes on the Analytical Engine ")
                    && list.contains("by ada      1 comment(s)"),
                "{list}"
            );
            let authors = report::authors(&blog).await.unwrap();
            assert!(
                authors.contains("Ada Lovelace   posts: 1  comments received: 1"),
                "the rolled-back comment no longer counts: {authors}"
            );

            // Nothing was lost: the page at version 5 still shows the edit and both comments.
            let then = report::post_page(&blog, "engines", Moment::Version(5))
                .await
                .unwrap()
                .unwrap();
            assert!(
                then.contains("(revised)") && then.contains("2 comment(s)"),
                "{then}"
            );
            let history = report::history(&blog, "engines").await.unwrap();
            assert_eq!(history.lines().count(), 7, "header + 6 entries: {history}");
            assert!(
                history.contains(
                    "back to the state at version 3 (by moderator: spam comment and bad edit)"
                ),
                "{history}"
            );

            // The SQL read model follows a rollback too: `bugs` was archived at version 3;
            // back at version 2 it is published again, and its tag counts.
            let tags_before = report::tags(&blog).await.unwrap();
            blog.posts
                .rollback(&"bugs".to_owned(), 2, "moderator", "archived by mistake")
                .await
                .unwrap();
            let tags = report::tags(&blog).await.unwrap();
            if blog.projections.names().contains(&"tag_counts") {
                assert!(!tags_before.contains("hardware"), "{tags_before}");
                assert!(tags.contains("hardware     1"), "{tags}");
            }

            // Every read model equals what a rebuild from the first event gives.
            for name in blog.projections.names() {
                let before_tags = report::tags(&blog).await.unwrap();
                let before_pages = report::published_posts(&blog).await.unwrap();
                let before_authors = report::authors(&blog).await.unwrap();
                let before_page = report::post_page(&blog, "engines", Moment::Now)
                    .await
                    .unwrap();
                es_core::rebuild(&*blog.store, &blog.projections, name, |_| {})
                    .await
                    .unwrap();
                assert_eq!(
                    report::published_posts(&blog).await.unwrap(),
                    before_pages,
                    "{name}"
                );
                assert_eq!(
                    report::authors(&blog).await.unwrap(),
                    before_authors,
                    "{name}"
                );
                assert_eq!(report::tags(&blog).await.unwrap(), before_tags, "{name}");
                assert_eq!(
                    report::post_page(&blog, "engines", Moment::Now)
                        .await
                        .unwrap(),
                    before_page,
                    "{name}"
                );
            }

            let refused = blog
                .posts
                .rollback(&engines, 6, "moderator", "nothing to undo")
                .await
                .unwrap_err();
            assert!(
                matches!(
                    refused,
                    RepositoryError::<PostError>::RollbackBeyondCurrent {
                        to_version: 6,
                        current: 6,
                        ..
                    }
                ),
                "{refused}"
            );
        })
    })
    .await;
}

#[test]
fn the_post_stream_name_is_stable() {
    assert_eq!(
        <Post as es_core::Aggregate>::stream(&"x".to_owned())
            .unwrap()
            .as_str(),
        "post/x"
    );
}
