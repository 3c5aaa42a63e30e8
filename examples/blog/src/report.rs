//! Text renderings of the read models and of a stream's history, as the CLI prints them.

use std::fmt::Write as _;

use es_core::{Aggregate, EventStoreExt, ProjectionError, StoreError};
use futures::TryStreamExt;

use crate::app::Blog;
use crate::post::Post;
use crate::read_models::{AuthorStats, PostPages, PublishedPosts};

/// The front page.
pub fn published_posts(blog: &Blog) -> Result<String, ProjectionError> {
    blog.projections.query(|published: &PublishedPosts| {
        let mut out = String::from("== published posts ==\n");
        if published.posts.is_empty() {
            out.push_str("(none)\n");
        }
        for post in &published.posts {
            let _ = writeln!(out, "{:<14} {:<44} by {}", post.id, post.title, post.author);
        }
        out
    })
}

/// One post's page, or `None` when there is no such post.
pub fn post_page(blog: &Blog, id: &str) -> Result<Option<String>, ProjectionError> {
    let page = blog
        .projections
        .query(|pages: &PostPages| pages.pages.get(id).cloned())?;
    Ok(page.map(|page| {
        let mut out = format!(
            "== post `{}` ({}, version {}) ==\n",
            page.id, page.status, page.version
        );
        let _ = writeln!(
            out,
            "{}\n  by {}\n\n  {}\n",
            page.title, page.author, page.body
        );
        let _ = writeln!(out, "  {} comment(s):", page.comments.len());
        for comment in &page.comments {
            let _ = writeln!(
                out,
                "  - {} ({}): {}",
                comment.author,
                comment.at.format("%H:%M:%S"),
                comment.text
            );
        }
        out
    }))
}

/// Per-author statistics.
pub fn authors(blog: &Blog) -> Result<String, ProjectionError> {
    blog.projections.query(|stats: &AuthorStats| {
        let mut out = String::from("== authors ==\n");
        for (id, figures) in &stats.authors {
            let last = figures.last_login.map_or_else(
                || "never".to_owned(),
                |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            );
            let _ = writeln!(
                out,
                "{id:<8} {:<14} posts: {}  comments received: {}  logins: {}  last login: {last}",
                figures.name, figures.posts, figures.comments_received, figures.logins
            );
        }
        out
    })
}

/// Every event of one post: version, time, name, global position, user and payload.
pub async fn history(blog: &Blog, id: &str) -> Result<String, StoreError> {
    let stream_id = Post::stream_id(&id.to_owned());
    let mut out = format!("== history of `{stream_id}` ==\n");
    let mut events = blog.store.stream_events(&stream_id, 1);
    let mut any = false;
    while let Some(event) = events.try_next().await? {
        any = true;
        let user = event.metadata.extra.get("user").map_or("-", String::as_str);
        let _ = writeln!(
            out,
            "v{:<3} {}  {:<16} pos {:<5} user {:<6} {}",
            event.version,
            event.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            event.event_name,
            event.position,
            user,
            event.event.as_str()
        );
    }
    if !any {
        out.push_str("(no events)\n");
    }
    Ok(out)
}
