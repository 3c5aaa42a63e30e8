//! The demo scenario end to end on the memory store: read models and history.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use blog::app::Blog;
use blog::{report, scenario};
use es_core::{MemoryStore, RepositoryError};

#[tokio::test]
async fn the_scenario_builds_the_read_models_and_keeps_the_history() {
    let blog = Blog::open(Arc::new(MemoryStore::new())).await.unwrap();
    let outcome = scenario::play(&blog, "").await.unwrap();
    assert!(matches!(
        outcome.rejected,
        Some(RepositoryError::Rejected(blog::post::PostError::Archived))
    ));

    let front = report::published_posts(&blog).await.unwrap();
    assert!(
        front.contains("Notes on the Analytical Engine (revised)"),
        "{front}"
    );
    assert!(front.contains("The first compiler"), "{front}");
    assert!(
        !front.contains("A moth in the relay"),
        "archived posts leave the front page: {front}"
    );

    let page = report::post_page(&blog, "engines", report::Moment::Now)
        .await
        .unwrap()
        .unwrap();
    assert!(
        page.contains("(published, version 5)") && page.contains("2 comment(s)"),
        "{page}"
    );

    let authors = report::authors(&blog).await.unwrap();
    assert!(
        authors.contains("Grace Hopper   posts: 2  comments received: 1  logins: 1"),
        "{authors}"
    );

    let history = report::history(&blog, "engines").await.unwrap();
    let names: Vec<&str> = history
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "post.drafted",
            "post.published",
            "post.commented",
            "post.commented",
            "post.edited"
        ]
    );
}

#[tokio::test]
async fn read_models_are_rebuilt_when_the_blog_reopens_on_the_same_store() {
    let store = Arc::new(MemoryStore::new());
    let first = Blog::open(store.clone()).await.unwrap();
    scenario::play(&first, "").await.unwrap();
    let reopened = Blog::open(store).await.unwrap();
    assert_eq!(
        report::published_posts(&first).await.unwrap(),
        report::published_posts(&reopened).await.unwrap()
    );
}

#[tokio::test]
async fn the_post_list_is_paged_newest_first_with_a_cursor() {
    let blog = Blog::open(Arc::new(MemoryStore::new())).await.unwrap();
    scenario::play(&blog, "").await.unwrap();
    // Published: engines, then compilers (bugs was archived since).
    let first = report::published_posts_page(&blog, 1, None).await.unwrap();
    assert!(
        first.contains("compilers") && !first.contains("engines"),
        "{first}"
    );
    let cursor = first
        .lines()
        .find_map(|line| line.strip_prefix("next page: blog list --after '"))
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or_else(|| panic!("a cursor for the next page: {first}"))
        .to_owned();
    let second = report::published_posts_page(&blog, 1, Some(cursor))
        .await
        .unwrap();
    assert!(
        second.contains("engines") && !second.contains("compilers"),
        "{second}"
    );
    let rest = second
        .lines()
        .find_map(|line| line.strip_prefix("next page: blog list --after '"))
        .and_then(|rest| rest.strip_suffix('\''))
        .map(str::to_owned);
    if let Some(cursor) = rest {
        // A full page may end exactly at the last post: the page after it is empty.
        let third = report::published_posts_page(&blog, 1, Some(cursor))
            .await
            .unwrap();
        assert!(third.contains("(none)"), "{third}");
    }
    let bad = report::published_posts_page(&blog, 1, Some("nonsense".into()))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("is not a cursor"), "{bad}");
    blog.close().await;
}
