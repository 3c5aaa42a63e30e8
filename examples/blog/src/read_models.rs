//! Read models: what readers see, rebuilt from events, never written to directly.
//!
//! Each keeps, per post, what it showed after every version of the post's stream, so that a
//! rollback marker (`RolledBack { to_version }`) can put back exactly what was shown then.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use es_core::{projection, Aggregate, Envelope, RolledBack};

use crate::author::{AuthorRegistered, LoggedIn};
use crate::post::{CommentAdded, Post, PostArchived, PostDrafted, PostEdited, PostPublished};

/// The id a post was created with.
pub fn post_id<E>(envelope: &Envelope<E>) -> String {
    envelope.aggregate_id().to_owned()
}

fn author_id<E>(envelope: &Envelope<E>) -> String {
    envelope.aggregate_id().to_owned()
}

fn is_post<E>(envelope: &Envelope<E>) -> bool {
    envelope.aggregate_type() == Post::NAME
}

/// What one read model showed for one post after each version: `after[v - 1]` is after version v.
#[derive(Debug, Clone)]
struct PerVersion<T> {
    after: Vec<T>,
}

impl<T: Clone> PerVersion<T> {
    fn new() -> Self {
        PerVersion { after: Vec::new() }
    }

    /// Records `value` as what version `version` shows (earlier gaps repeat the last value).
    fn record(&mut self, version: u64, value: T) {
        while (self.after.len() as u64) + 1 < version {
            let Some(last) = self.after.last().cloned() else {
                break;
            };
            self.after.push(last);
        }
        self.after.push(value);
    }

    fn at(&self, version: u64) -> Option<&T> {
        version
            .checked_sub(1)
            .and_then(|index| self.after.get(index as usize))
    }

    fn latest(&self) -> Option<&T> {
        self.after.last()
    }
}

/// One line of the front page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPost {
    pub id: String,
    pub title: String,
    pub author: String,
    pub published_at: DateTime<Utc>,
}

/// Per post: its author and title so far, and its front-page line if it is on it.
#[derive(Debug, Clone, Default)]
struct FrontPageEntry {
    author: String,
    title: String,
    line: Option<PublishedPost>,
}

/// The front page: published posts, oldest first. Archived posts leave it.
#[projection(name = "published_posts")]
#[derive(Debug, Default)]
pub struct PublishedPosts {
    entries: BTreeMap<String, PerVersion<FrontPageEntry>>,
}

impl PublishedPosts {
    /// The posts on the front page, in publication order.
    pub fn posts(&self) -> Vec<PublishedPost> {
        let mut posts: Vec<PublishedPost> = self
            .entries
            .values()
            .filter_map(|v| v.latest().and_then(|entry| entry.line.clone()))
            .collect();
        posts.sort_by(|a, b| (a.published_at, &a.id).cmp(&(b.published_at, &b.id)));
        posts
    }

    fn change<E>(&mut self, event: &Envelope<E>, change: impl FnOnce(&mut FrontPageEntry)) {
        let versions = self
            .entries
            .entry(post_id(event))
            .or_insert_with(PerVersion::new);
        let mut entry = versions.latest().cloned().unwrap_or_default();
        change(&mut entry);
        versions.record(event.version, entry);
    }
}

#[projection]
impl PublishedPosts {
    #[on]
    fn drafted(&mut self, event: &Envelope<PostDrafted>) {
        self.change(event, |entry| {
            entry.author = event.event.author.clone();
            entry.title = event.event.title.clone();
        });
    }

    #[on]
    fn published(&mut self, event: &Envelope<PostPublished>) {
        let id = post_id(event);
        self.change(event, |entry| {
            entry.line = Some(PublishedPost {
                id,
                title: entry.title.clone(),
                author: entry.author.clone(),
                published_at: event.recorded_at,
            });
        });
    }

    #[on]
    fn edited(&mut self, event: &Envelope<PostEdited>) {
        self.change(event, |entry| {
            entry.title = event.event.title.clone();
            if let Some(line) = &mut entry.line {
                line.title = event.event.title.clone();
            }
        });
    }

    #[on]
    fn commented(&mut self, event: &Envelope<CommentAdded>) {
        self.change(event, |_| {});
    }

    #[on]
    fn archived(&mut self, event: &Envelope<PostArchived>) {
        self.change(event, |entry| entry.line = None);
    }

    #[on]
    fn rolled_back(&mut self, event: &Envelope<RolledBack>) {
        if !is_post(event) {
            return;
        }
        let Some(versions) = self.entries.get(&post_id(event)) else {
            return;
        };
        let then = versions
            .at(event.event.to_version)
            .cloned()
            .unwrap_or_default();
        self.change(event, |entry| *entry = then);
    }
}

/// A comment as shown under a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub author: String,
    pub text: String,
    pub at: DateTime<Utc>,
}

/// Everything shown on a post's own page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PostPage {
    pub id: String,
    pub author: String,
    pub title: String,
    pub content: String,
    pub tags: Vec<String>,
    pub status: &'static str,
    pub comments: Vec<Comment>,
    /// The stream version this page shows.
    pub version: u64,
    /// When that version was recorded.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Each post's page with its comments.
#[projection(name = "post_pages")]
#[derive(Debug, Default)]
pub struct PostPages {
    pages: BTreeMap<String, PerVersion<Option<PostPage>>>,
}

impl PostPages {
    /// The page of one post, if it exists.
    pub fn page(&self, id: &str) -> Option<&PostPage> {
        self.pages
            .get(id)
            .and_then(|versions| versions.latest())
            .and_then(Option::as_ref)
    }

    fn change<E>(&mut self, event: &Envelope<E>, change: impl FnOnce(&mut PostPage)) {
        let versions = self
            .pages
            .entry(post_id(event))
            .or_insert_with(PerVersion::new);
        let mut page = versions.latest().cloned().flatten().unwrap_or_default();
        change(&mut page);
        page.version = event.version;
        page.updated_at = Some(event.recorded_at);
        versions.record(event.version, Some(page));
    }
}

#[projection]
impl PostPages {
    #[on]
    fn drafted(&mut self, event: &Envelope<PostDrafted>) {
        let id = post_id(event);
        self.change(event, |page| {
            *page = PostPage {
                id,
                author: event.event.author.clone(),
                title: event.event.title.clone(),
                content: event.event.content.clone(),
                tags: event.event.tags.clone(),
                status: "draft",
                ..PostPage::default()
            };
        });
    }

    #[on]
    fn published(&mut self, event: &Envelope<PostPublished>) {
        self.change(event, |page| page.status = "published");
    }

    #[on]
    fn edited(&mut self, event: &Envelope<PostEdited>) {
        self.change(event, |page| {
            page.title = event.event.title.clone();
            page.content = event.event.content.clone();
        });
    }

    #[on]
    fn commented(&mut self, event: &Envelope<CommentAdded>) {
        self.change(event, |page| {
            page.comments.push(Comment {
                author: event.event.author.clone(),
                text: event.event.text.clone(),
                at: event.recorded_at,
            });
        });
    }

    #[on]
    fn archived(&mut self, event: &Envelope<PostArchived>) {
        self.change(event, |page| page.status = "archived");
    }

    #[on]
    fn rolled_back(&mut self, event: &Envelope<RolledBack>) {
        if !is_post(event) {
            return;
        }
        let Some(versions) = self.pages.get(&post_id(event)) else {
            return;
        };
        let then = versions
            .at(event.event.to_version)
            .cloned()
            .flatten()
            .unwrap_or_default();
        self.change(event, |page| *page = then);
    }
}

/// Per-author figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorFigures {
    pub name: String,
    pub posts: u32,
    pub comments_received: u32,
    pub logins: u32,
    pub last_login: Option<DateTime<Utc>>,
}

/// Statistics for each author: posts written, comments received, last login.
#[projection(name = "author_stats")]
#[derive(Debug, Default)]
pub struct AuthorStats {
    /// Per post: its author and its comment count after each version.
    posts: BTreeMap<String, (String, PerVersion<u32>)>,
    pub authors: BTreeMap<String, AuthorFigures>,
}

impl AuthorStats {
    /// Sets a post's comment count at a version, moving the difference to its author.
    fn set_comments<E>(&mut self, event: &Envelope<E>, count: impl FnOnce(u32) -> u32) {
        let Some((author, counts)) = self.posts.get_mut(&post_id(event)) else {
            return;
        };
        let before = counts.latest().copied().unwrap_or(0);
        let after = count(before);
        counts.record(event.version, after);
        let figures = self.authors.entry(author.clone()).or_default();
        figures.comments_received = (figures.comments_received + after).saturating_sub(before);
    }
}

#[projection]
impl AuthorStats {
    #[on]
    fn registered(&mut self, event: &Envelope<AuthorRegistered>) {
        self.authors.entry(author_id(event)).or_default().name = event.event.name.clone();
    }

    #[on]
    fn logged_in(&mut self, event: &Envelope<LoggedIn>) {
        let figures = self.authors.entry(author_id(event)).or_default();
        figures.logins += 1;
        figures.last_login = Some(event.event.at);
    }

    #[on]
    fn drafted(&mut self, event: &Envelope<PostDrafted>) {
        let author = event.event.author.clone();
        let mut counts = PerVersion::new();
        counts.record(event.version, 0);
        self.posts.insert(post_id(event), (author.clone(), counts));
        self.authors.entry(author).or_default().posts += 1;
    }

    #[on]
    fn commented(&mut self, event: &Envelope<CommentAdded>) {
        self.set_comments(event, |count| count + 1);
    }

    #[on]
    fn published(&mut self, event: &Envelope<PostPublished>) {
        self.set_comments(event, |count| count);
    }

    #[on]
    fn edited(&mut self, event: &Envelope<PostEdited>) {
        self.set_comments(event, |count| count);
    }

    #[on]
    fn archived(&mut self, event: &Envelope<PostArchived>) {
        self.set_comments(event, |count| count);
    }

    #[on]
    fn rolled_back(&mut self, event: &Envelope<RolledBack>) {
        if !is_post(event) {
            return;
        }
        let then = self
            .posts
            .get(&post_id(event))
            .and_then(|(_, counts)| counts.at(event.event.to_version).copied())
            .unwrap_or(0);
        self.set_comments(event, |_| then);
    }
}
