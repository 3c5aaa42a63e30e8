//! Schema evolution and rollback in the blog, on every store: events written by the code of
//! last year still load, and a rollback is reflected by every read model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use blog::app::Blog;
use blog::post::{Post, PostError, Status};
use blog::read_models::{AuthorStats, PublishedPosts};
use blog::report::{self, Moment};
use blog::scenario;
use es_core::postgres::{PostgresConfig, PostgresStore};
use es_core::sqlite::SqliteStore;
use es_core::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Payload, RepositoryError, StreamId,
};

async fn on_every_store(
    case: impl Fn(Arc<dyn EventStore>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
) {
    case(Arc::new(es_core::MemoryStore::new())).await;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("evolution-{}.db", unique()));
    case(Arc::new(SqliteStore::open(&path).await.unwrap())).await;
    match std::env::var("ES_TEST_POSTGRES_URL") {
        Ok(url) => {
            let store = PostgresStore::connect_with(
                PostgresConfig::new(url).schema(format!("blog_test_{}", unique())),
            )
            .await
            .unwrap();
            case(Arc::new(store.clone())).await;
            store.drop_schema().await.unwrap();
        }
        Err(_) => println!(
            "skipped: ES_TEST_POSTGRES_URL is not set, so this case did not run on PostgreSQL"
        ),
    }
}

fn unique() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Appends the committed fixture rows exactly as last year's code stored them.
async fn load_fixture(store: &Arc<dyn EventStore>, file: &str) {
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
            let titles: Vec<String> = blog
                .projections
                .query(|p: &PublishedPosts| p.posts().into_iter().map(|p| p.title).collect())
                .unwrap();
            assert!(
                titles.contains(&"Notes on the Analytical Engine".to_owned()),
                "{titles:?}"
            );
            let ada = blog
                .projections
                .query(|s: &AuthorStats| s.authors["ada"].comments_received)
                .unwrap();
            assert_eq!(ada, 1, "the rolled-back comment no longer counts");

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

            // A fresh process rebuilds the same read models from the log.
            let reopened = Blog::open(Arc::clone(&blog.store)).await.unwrap();
            assert_eq!(
                report::published_posts(&reopened).unwrap(),
                report::published_posts(&blog).unwrap()
            );
            assert_eq!(
                report::authors(&reopened).unwrap(),
                report::authors(&blog).unwrap()
            );

            let refused = blog
                .posts
                .rollback(&engines, 6, "moderator", "nothing to undo")
                .await
                .unwrap_err();
            assert!(
                matches!(refused, RepositoryError::<PostError>::Store(_)),
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
