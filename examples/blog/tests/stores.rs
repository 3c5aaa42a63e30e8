//! The same blog on durable stores: what one run writes, the next run sees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use blog::app::Blog;
use blog::{report, scenario};
use es_core::postgres::{PostgresConfig, PostgresStore};
use es_core::sqlite::SqliteStore;
use es_core::Store;
use es_tests::stores;

async fn two_runs(
    open: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn Store>>>>,
) {
    let first = Blog::open(open().await).await.unwrap();
    assert_eq!(scenario::free_suffix(&first).await.unwrap(), "");
    scenario::play(&first, "").await.unwrap();
    first.close().await;

    let second = Blog::open(open().await).await.unwrap();
    let front = report::published_posts(&second).await.unwrap();
    assert!(
        front.contains("engines ") && front.contains("compilers "),
        "the read models are kept in the store: {front}"
    );
    assert_eq!(scenario::free_suffix(&second).await.unwrap(), "-2");
    scenario::play(&second, "-2").await.unwrap();
    let authors = report::authors(&second).await.unwrap();
    assert!(
        authors.contains("Ada Lovelace   posts: 2  comments received: 4  logins: 2"),
        "{authors}"
    );
}

#[tokio::test]
async fn a_second_run_on_the_sqlite_file_sees_the_first() {
    let path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("blog-{}.db", uuid_like()));
    two_runs(|| {
        let path = path.clone();
        Box::pin(async move { Arc::new(SqliteStore::open(&path).await.unwrap()) as Arc<dyn Store> })
    })
    .await;
}

#[tokio::test]
async fn a_second_run_on_postgres_sees_the_first() {
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    let schema = format!("blog_test_{}", uuid_like());
    two_runs(|| {
        let config = PostgresConfig::new(url.clone()).schema(schema.clone());
        Box::pin(async move {
            Arc::new(PostgresStore::connect_with(config).await.unwrap()) as Arc<dyn Store>
        })
    })
    .await;
    PostgresStore::connect_with(PostgresConfig::new(url).schema(schema))
        .await
        .unwrap()
        .drop_schema()
        .await
        .unwrap();
}

fn uuid_like() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
