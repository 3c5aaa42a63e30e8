//! `--nats`: each command's events leave through the outbox before the run exits, and
//! `blog tail` prints them from JetStream. Needs NATS with JetStream (skipped outside CI
//! when it is not there).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const BLOG: &str = env!("CARGO_BIN_EXE_blog");

fn blog(store: &str, prefix: &str, args: &[&str]) -> String {
    let output = Command::new(BLOG)
        .args(["--store", store, "--nats", &es_tests::nats::nats_url()])
        .args(["--nats-prefix", prefix])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "blog {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_publish_their_events_and_tail_prints_them() {
    let Some(context) = es_tests::nats::jetstream().await else {
        return;
    };
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("blog-nats-{}.db", uuid::Uuid::new_v4().simple()));
    let store = format!("sqlite:{}", path.display());
    let prefix = es_tests::nats::unique_prefix("blog");
    blog(&store, &prefix, &["register", "ann", "Ann"]);
    blog(
        &store,
        &prefix,
        &["create", "p1", "--author", "ann", "--title", "Hi"],
    );
    blog(&store, &prefix, &["publish", "p1"]);
    let status = blog(&store, &prefix, &["status"]);
    assert!(
        status.contains("publisher_blog") && status.contains("caught up"),
        "{status}"
    );
    let tail = blog(&store, &prefix, &["tail", "--from-start", "--count", "3"]);
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 3, "{tail}");
    assert!(
        lines[0].contains(&format!("{prefix}.author.author~2Eregistered")),
        "{tail}"
    );
    assert!(
        lines[0].contains("author/ann v1 author.registered"),
        "{tail}"
    );
    assert!(lines[2].contains("post/p1 v2 post.published"), "{tail}");
    context
        .delete_stream(es_core::nats::stream_name_for(&prefix))
        .await
        .unwrap();
}
