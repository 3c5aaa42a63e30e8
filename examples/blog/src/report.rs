//! Text renderings of the read models and of a stream's history, as the CLI prints them.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use es_core::{Aggregate, Change, EventLogExt, Projection, ProjectionError, RepositoryError};
use futures::TryStreamExt;

use crate::app::Blog;
use crate::post::{Post, PostError};
use crate::read_models::{AuthorStats, PostPage, PostPages, PublishedPosts};

/// Which moment of a post to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// As it is now.
    Now,
    /// Right after this version of its stream.
    Version(u64),
    /// As it was at this time.
    AsOf(DateTime<Utc>),
}

/// The front page.
pub fn published_posts(blog: &Blog) -> Result<String, ProjectionError> {
    blog.projections.query(|published: &PublishedPosts| {
        let mut out = String::from("== published posts ==\n");
        if published.posts().is_empty() {
            out.push_str("(none)\n");
        }
        for post in &published.posts() {
            let _ = writeln!(out, "{:<14} {:<44} by {}", post.id, post.title, post.author);
        }
        out
    })
}

/// One post's page at a moment, or `None` when there was no such post then.
///
/// The current page comes from the running read model. A past page is rebuilt by feeding the
/// post's own events, up to that moment, to a fresh copy of the same read model: the page is
/// exactly what readers saw then, rollbacks included.
pub async fn post_page(
    blog: &Blog,
    id: &str,
    moment: Moment,
) -> Result<Option<String>, ProjectionError> {
    let page = match moment {
        Moment::Now => blog
            .projections
            .query(|pages: &PostPages| pages.page(id).cloned())?,
        Moment::Version(_) | Moment::AsOf(_) => {
            let mut pages = PostPages::default();
            // An id that cannot name a stream names no post.
            let Ok(stream) = Post::stream(&id.to_owned()) else {
                return Ok(None);
            };
            let mut events = blog.store.stream_events(&stream, 1);
            while let Some(record) = events.try_next().await? {
                let beyond = match moment {
                    Moment::Version(version) => record.version > version,
                    Moment::AsOf(at) => record.recorded_at > at,
                    Moment::Now => false,
                };
                if beyond {
                    break;
                }
                pages.apply(&record)?;
            }
            pages.page(id).cloned()
        }
    };
    Ok(page.map(|page| render_page(&page)))
}

fn render_page(page: &PostPage) -> String {
    let mut out = format!(
        "== post `{}` ({}, version {}) ==\n",
        page.id, page.status, page.version
    );
    let _ = writeln!(
        out,
        "{}\n  by {}  tags: {}\n\n  {}\n",
        page.title,
        page.author,
        page.tags.join(", "),
        page.content
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

/// Every entry of one post's stream: version, time, name, position, user and what happened,
/// rolled-back events and rollback markers included.
pub async fn history(blog: &Blog, id: &str) -> Result<String, RepositoryError<PostError>> {
    let history = blog.posts.history(&id.to_owned()).await?;
    let mut out = format!("== history of post `{id}` ==\n");
    if history.is_empty() {
        out.push_str("(no events)\n");
    }
    for entry in &history {
        let user = entry.metadata.extra.get("user").map_or("-", String::as_str);
        let what = match &entry.event {
            Change::Event(event) => format!("{event:?}"),
            Change::RolledBack(marker) => {
                format!(
                    "back to the state at version {} (by {}: {})",
                    marker.to_version, marker.by, marker.reason
                )
            }
        };
        let _ = writeln!(
            out,
            "v{:<3} {}  {:<16} pos {:<5} user {:<6} {}",
            entry.version,
            entry.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            entry.event_name,
            entry.position,
            user,
            what
        );
    }
    Ok(out)
}
