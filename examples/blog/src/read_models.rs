//! Read models: documents kept in the store's database by the projection daemon, never
//! written to directly.
//!
//! `post_summaries` and `post_pages` keep one document per post, built from that post's
//! stream only (`per_stream`): after a rollback the runtime rebuilds the post's document from
//! the events that survive it. `author_stats` adds up across streams, so it handles the
//! rollback marker itself.

use chrono::{DateTime, Utc};
use es_core::{projection, Aggregate, Docs, Envelope, RolledBack};
use serde::{Deserialize, Serialize};

use crate::author::{AuthorRegistered, LoggedIn};
use crate::post::{CommentAdded, Post, PostArchived, PostDrafted, PostEdited, PostPublished};

/// One line of the post list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostSummary {
    pub title: String,
    pub author: String,
    /// `draft`, `published` or `archived`.
    pub status: String,
    pub published_at: Option<DateTime<Utc>>,
    pub comments: u32,
    /// While published: when, at a fixed width so that text order is time order. The front
    /// page lists posts by it, newest first; drafts and archived posts have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front_page: Option<String>,
}

/// `at` as text that sorts as time does (microseconds, UTC, fixed width).
pub fn sortable_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Every post's summary, filterable by status and author, and listed newest first by
/// `front_page`.
#[projection(name = "post_summaries", index(status, author, front_page), per_stream)]
#[derive(Debug)]
pub struct PostSummaries;

#[projection]
impl PostSummaries {
    #[on]
    fn drafted(&self, event: &Envelope<PostDrafted>, docs: &mut Docs<PostSummary>) {
        docs.insert(
            event.aggregate_id(),
            PostSummary {
                title: event.event.title.clone(),
                author: event.event.author.clone(),
                status: "draft".into(),
                ..PostSummary::default()
            },
        );
    }

    #[on]
    fn published(&self, event: &Envelope<PostPublished>, docs: &mut Docs<PostSummary>) {
        docs.update(event.aggregate_id(), |summary| {
            summary.status = "published".into();
            summary.published_at = Some(event.recorded_at);
            summary.front_page = Some(sortable_time(event.recorded_at));
        });
    }

    #[on]
    fn edited(&self, event: &Envelope<PostEdited>, docs: &mut Docs<PostSummary>) {
        docs.update(event.aggregate_id(), |summary| {
            summary.title = event.event.title.clone()
        });
    }

    #[on]
    fn commented(&self, event: &Envelope<CommentAdded>, docs: &mut Docs<PostSummary>) {
        docs.update(event.aggregate_id(), |summary| summary.comments += 1);
    }

    #[on]
    fn archived(&self, event: &Envelope<PostArchived>, docs: &mut Docs<PostSummary>) {
        docs.update(event.aggregate_id(), |summary| {
            summary.status = "archived".into();
            summary.front_page = None;
        });
    }
}

/// A comment as shown under a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub author: String,
    pub text: String,
    pub at: DateTime<Utc>,
}

/// Everything shown on a post's own page.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PostPage {
    pub author: String,
    pub title: String,
    pub content: String,
    pub tags: Vec<String>,
    pub status: String,
    pub comments: Vec<Comment>,
    /// The stream version this page shows.
    pub version: u64,
    /// When that version was recorded.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Each post's page with its comments.
#[projection(name = "post_pages", per_stream)]
#[derive(Debug)]
pub struct PostPages;

impl PostPages {
    fn change<E>(
        event: &Envelope<E>,
        docs: &mut Docs<PostPage>,
        change: impl FnOnce(&mut PostPage),
    ) {
        docs.upsert(event.aggregate_id(), |page| {
            change(page);
            page.version = event.version;
            page.updated_at = Some(event.recorded_at);
        });
    }
}

#[projection]
impl PostPages {
    #[on]
    fn drafted(&self, event: &Envelope<PostDrafted>, docs: &mut Docs<PostPage>) {
        Self::change(event, docs, |page| {
            *page = PostPage {
                author: event.event.author.clone(),
                title: event.event.title.clone(),
                content: event.event.content.clone(),
                tags: event.event.tags.clone(),
                status: "draft".into(),
                ..PostPage::default()
            };
        });
    }

    #[on]
    fn published(&self, event: &Envelope<PostPublished>, docs: &mut Docs<PostPage>) {
        Self::change(event, docs, |page| page.status = "published".into());
    }

    #[on]
    fn edited(&self, event: &Envelope<PostEdited>, docs: &mut Docs<PostPage>) {
        Self::change(event, docs, |page| {
            page.title = event.event.title.clone();
            page.content = event.event.content.clone();
        });
    }

    #[on]
    fn commented(&self, event: &Envelope<CommentAdded>, docs: &mut Docs<PostPage>) {
        Self::change(event, docs, |page| {
            page.comments.push(Comment {
                author: event.event.author.clone(),
                text: event.event.text.clone(),
                at: event.recorded_at,
            });
        });
    }

    #[on]
    fn archived(&self, event: &Envelope<PostArchived>, docs: &mut Docs<PostPage>) {
        Self::change(event, docs, |page| page.status = "archived".into());
    }
}

/// Per-author figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorFigures {
    pub name: String,
    pub posts: u32,
    pub comments_received: u32,
    pub logins: u32,
    pub last_login: Option<DateTime<Utc>>,
}

/// What the author statistics keep: one entry per author (`author:{id}`), and one per post
/// (`post:{id}`) to know whose comments a comment counts for, and how many comments the post
/// had after each of its versions, so a rollback can take them back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StatsEntry {
    Author(AuthorFigures),
    Post {
        author: String,
        /// `comments_after[v - 1]`: the post's comments after its version v.
        comments_after: Vec<u32>,
    },
}

impl Default for StatsEntry {
    fn default() -> Self {
        StatsEntry::Author(AuthorFigures::default())
    }
}

/// Statistics for each author: posts written, comments received, logins.
#[projection(name = "author_stats", index(kind))]
#[derive(Debug)]
pub struct AuthorStats;

fn author_key(id: &str) -> String {
    format!("author:{id}")
}

fn post_key(id: &str) -> String {
    format!("post:{id}")
}

impl AuthorStats {
    fn author(docs: &mut Docs<StatsEntry>, id: &str, change: impl FnOnce(&mut AuthorFigures)) {
        docs.upsert(&author_key(id), |entry| {
            if let StatsEntry::Author(figures) = entry {
                change(figures);
            }
        });
    }

    /// Records the post's comment count after this event's version and moves the difference
    /// to its author.
    fn set_comments<E>(
        event: &Envelope<E>,
        docs: &mut Docs<StatsEntry>,
        count: impl FnOnce(u32) -> u32,
    ) {
        let Some(StatsEntry::Post {
            author,
            comments_after,
        }) = docs.get(&post_key(event.aggregate_id())).cloned()
        else {
            return;
        };
        let before = comments_after.last().copied().unwrap_or(0);
        let after = count(before);
        docs.upsert(&post_key(event.aggregate_id()), |entry| {
            if let StatsEntry::Post { comments_after, .. } = entry {
                // Versions without a comment change repeat the last count.
                comments_after.resize(event.version.saturating_sub(1) as usize, before);
                comments_after.push(after);
            }
        });
        Self::author(docs, &author, |figures| {
            figures.comments_received = (figures.comments_received + after).saturating_sub(before);
        });
    }
}

#[projection]
impl AuthorStats {
    #[on]
    fn registered(&self, event: &Envelope<AuthorRegistered>, docs: &mut Docs<StatsEntry>) {
        Self::author(docs, event.aggregate_id(), |figures| {
            figures.name = event.event.name.clone()
        });
    }

    #[on]
    fn logged_in(&self, event: &Envelope<LoggedIn>, docs: &mut Docs<StatsEntry>) {
        Self::author(docs, event.aggregate_id(), |figures| {
            figures.logins += 1;
            figures.last_login = Some(event.event.at);
        });
    }

    #[on]
    fn drafted(&self, event: &Envelope<PostDrafted>, docs: &mut Docs<StatsEntry>) {
        docs.insert(
            &post_key(event.aggregate_id()),
            StatsEntry::Post {
                author: event.event.author.clone(),
                comments_after: vec![0],
            },
        );
        Self::author(docs, &event.event.author, |figures| figures.posts += 1);
    }

    #[on]
    fn commented(&self, event: &Envelope<CommentAdded>, docs: &mut Docs<StatsEntry>) {
        Self::set_comments(event, docs, |count| count + 1);
    }

    #[on]
    fn rolled_back(&self, event: &Envelope<RolledBack>, docs: &mut Docs<StatsEntry>) {
        if event.aggregate_type() != Post::NAME {
            return;
        }
        let then = match docs.get(&post_key(event.aggregate_id())) {
            // The count after the last version up to `to_version` that recorded one.
            Some(StatsEntry::Post { comments_after, .. }) => comments_after
                .iter()
                .take(event.event.to_version as usize)
                .next_back()
                .copied()
                .unwrap_or(0),
            _ => return,
        };
        Self::set_comments(event, docs, |_| then);
    }
}
