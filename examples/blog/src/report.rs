//! Text renderings of the read models and of a stream's history, as the CLI prints them.
//! Every read waits for the read models to show what was committed before it.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use es_core::{project_in_memory, Aggregate, Change, Documents, EventLogExt, RepositoryError};
use futures::TryStreamExt;

use crate::app::Blog;

type Failure = Box<dyn std::error::Error + Send + Sync>;
use crate::post::{Post, PostError};
use crate::read_models::{AuthorStats, PostPage, PostPages, PostSummaries, StatsEntry};

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

/// How many posts `blog list` shows unless told.
pub const PAGE: usize = 20;

/// One page of the published posts, newest first, read from the `post_summaries`
/// documents in the order of their `front_page` index (no scan, no sort): `limit` of them,
/// after `cursor` (the previous page's last), with the next page's cursor when there is one.
pub async fn published_posts_page(
    blog: &Blog,
    limit: usize,
    cursor: Option<String>,
) -> Result<String, Failure> {
    blog.settle().await?;
    let mut query = Documents::<PostSummaries>::of(&*blog.store)
        .order_by_desc("front_page")
        .limit(limit);
    if let Some(cursor) = cursor {
        query = query.after(cursor);
    }
    let page = query.list().await?;
    let mut out = String::from("== published posts, newest first ==\n");
    if page.items.is_empty() {
        out.push_str("(none)\n");
    }
    for (id, post) in &page.items {
        let _ = writeln!(
            out,
            "{id:<14} {:<44} by {:<8} {} comment(s)",
            post.title, post.author, post.comments
        );
    }
    if let Some(next) = page.next {
        let _ = writeln!(out, "next page: blog list --after '{next}'");
    }
    Ok(out)
}

/// The first page of the published posts, newest first.
pub async fn published_posts(blog: &Blog) -> Result<String, Failure> {
    published_posts_page(blog, PAGE, None).await
}

/// One post's page at a moment, or `None` when there was no such post then.
///
/// The current page is the `post_pages` document. A past page is the same projection applied
/// in memory to the post's own events up to that moment: exactly what readers saw then,
/// rollbacks included.
pub async fn post_page(blog: &Blog, id: &str, moment: Moment) -> Result<Option<String>, Failure> {
    let page = match moment {
        Moment::Now => {
            blog.settle().await?;
            Documents::<PostPages>::of(&*blog.store).get(id).await?
        }
        Moment::Version(_) | Moment::AsOf(_) => {
            // An id that cannot name a stream names no post.
            let Ok(stream) = Post::stream(&id.to_owned()) else {
                return Ok(None);
            };
            let events: Vec<_> = blog
                .store
                .stream_events(&stream, 1)
                .try_take_while(|record| {
                    std::future::ready(Ok(match moment {
                        Moment::Version(version) => record.version <= version,
                        Moment::AsOf(at) => record.recorded_at <= at,
                        Moment::Now => true,
                    }))
                })
                .try_collect()
                .await?;
            project_in_memory(&PostPages, &events)?.remove(id)
        }
    };
    Ok(page.map(|page| render_page(id, &page)))
}

fn render_page(id: &str, page: &PostPage) -> String {
    let mut out = format!(
        "== post `{id}` ({}, version {}) ==\n",
        page.status, page.version
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

/// Per-author statistics, read through the `kind` index of `author_stats`.
pub async fn authors(blog: &Blog) -> Result<String, Failure> {
    blog.settle().await?;
    let entries = Documents::<AuthorStats>::of(&*blog.store)
        .where_eq("kind", "author")
        .all()
        .await?;
    let mut out = String::from("== authors ==\n");
    for (key, entry) in &entries {
        let StatsEntry::Author(figures) = entry else {
            continue;
        };
        let id = key.strip_prefix("author:").unwrap_or(key);
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
    Ok(out)
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
        // Who asked: a user, or a process manager reacting to an event.
        let user = ["user", "process_manager"]
            .iter()
            .find_map(|key| entry.metadata.extra.get(*key))
            .map_or("-", String::as_str);
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

/// Published posts per tag, from the `tag_counts` SQL read model.
pub async fn tags(blog: &Blog) -> Result<String, Failure> {
    let mut out = String::from("== published posts per tag ==\n");
    if !blog
        .projections
        .names()
        .contains(&<crate::tags::TagCounts as es_core::sql::SqlProjection>::NAME)
    {
        out.push_str("(a SQL read model: run the blog on SQLite or PostgreSQL to have it)\n");
        return Ok(out);
    }
    blog.settle().await?;
    for (tag, posts) in crate::tags::published_per_tag(&*blog.store).await? {
        let _ = writeln!(out, "{tag:<12} {posts}");
    }
    Ok(out)
}

/// Each projection's checkpoint, lag, state and holder.
pub async fn status(blog: &Blog) -> Result<String, Failure> {
    let mut out = String::from("== projections ==\n");
    let _ = writeln!(
        out,
        "{:<16} {:>4} {:>10} {:>10} {:>8} {:>8}  {:<10} state",
        "name", "gen", "checkpoint", "head", "lag", "lag (s)", "holder"
    );
    for health in blog.daemon().health().await? {
        let _ = writeln!(
            out,
            "{:<16} {:>4} {:>10} {:>10} {:>8} {:>8.1}  {:<10} {}{}",
            health.name,
            health.generation,
            health.checkpoint,
            health.head,
            health.lag_events,
            health.lag_seconds,
            health.holder.as_deref().unwrap_or("-"),
            health.state,
            if health.dead_letters > 0 {
                format!(" ({} dead letter(s))", health.dead_letters)
            } else {
                String::new()
            }
        );
    }
    let janitor = blog.janitor().health().await?;
    let _ = writeln!(out, "\n== process managers ==");
    let _ = writeln!(
        out,
        "{:<16} checkpoint {}  deadlines pending {}  commands rejected {}  {}",
        janitor.name,
        janitor.checkpoint,
        janitor.pending_deadlines,
        janitor.rejected_commands,
        janitor.state
    );
    Ok(out)
}
