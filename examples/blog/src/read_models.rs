//! Read models: what readers see, rebuilt from events, never written to directly.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use es_core::{projection, Aggregate, Envelope};

use crate::author::{AuthorRegistered, LoggedIn};
use crate::post::{CommentAdded, Post, PostArchived, PostDrafted, PostEdited, PostPublished};

/// The id a post was created with, read back from its stream id (`post-{id}`).
pub fn post_id<E>(envelope: &Envelope<E>) -> String {
    let prefix = format!("{}-", Post::NAME);
    envelope
        .stream_id
        .strip_prefix(&prefix)
        .unwrap_or(&envelope.stream_id)
        .to_owned()
}

fn author_id<E>(envelope: &Envelope<E>) -> String {
    envelope
        .stream_id
        .strip_prefix("author-")
        .unwrap_or(&envelope.stream_id)
        .to_owned()
}

/// One line of the front page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPost {
    pub id: String,
    pub title: String,
    pub author: String,
    pub published_at: DateTime<Utc>,
}

/// The front page: published posts, newest last. Archived posts leave it.
#[projection(name = "published_posts")]
#[derive(Debug, Default)]
pub struct PublishedPosts {
    authors: BTreeMap<String, String>,
    pub posts: Vec<PublishedPost>,
}

#[projection]
impl PublishedPosts {
    #[on]
    fn drafted(&mut self, event: &Envelope<PostDrafted>) {
        self.authors
            .insert(post_id(event), event.event.author.clone());
    }

    #[on]
    fn published(&mut self, event: &Envelope<PostPublished>) {
        let id = post_id(event);
        self.posts.push(PublishedPost {
            author: self.authors.get(&id).cloned().unwrap_or_default(),
            id,
            title: event.event.title.clone(),
            published_at: event.recorded_at,
        });
    }

    #[on]
    fn edited(&mut self, event: &Envelope<PostEdited>) {
        let id = post_id(event);
        for post in self.posts.iter_mut().filter(|p| p.id == id) {
            post.title = event.event.title.clone();
        }
    }

    #[on]
    fn archived(&mut self, event: &Envelope<PostArchived>) {
        let id = post_id(event);
        self.posts.retain(|p| p.id != id);
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostPage {
    pub id: String,
    pub author: String,
    pub title: String,
    pub body: String,
    pub status: &'static str,
    pub comments: Vec<Comment>,
    pub version: u64,
}

/// Each post's page with its comments.
#[projection(name = "post_pages")]
#[derive(Debug, Default)]
pub struct PostPages {
    pub pages: BTreeMap<String, PostPage>,
}

#[projection]
impl PostPages {
    #[on]
    fn drafted(&mut self, event: &Envelope<PostDrafted>) {
        let id = post_id(event);
        self.pages.insert(
            id.clone(),
            PostPage {
                id,
                author: event.event.author.clone(),
                title: event.event.title.clone(),
                body: event.event.body.clone(),
                status: "draft",
                comments: Vec::new(),
                version: event.version,
            },
        );
    }

    #[on]
    fn published(&mut self, event: &Envelope<PostPublished>) {
        self.update(event, |page| page.status = "published");
    }

    #[on]
    fn edited(&mut self, event: &Envelope<PostEdited>) {
        self.update(event, |page| {
            page.title = event.event.title.clone();
            page.body = event.event.body.clone();
        });
    }

    #[on]
    fn commented(&mut self, event: &Envelope<CommentAdded>) {
        self.update(event, |page| {
            page.comments.push(Comment {
                author: event.event.author.clone(),
                text: event.event.text.clone(),
                at: event.recorded_at,
            });
        });
    }

    #[on]
    fn archived(&mut self, event: &Envelope<PostArchived>) {
        self.update(event, |page| page.status = "archived");
    }

    fn update<E>(&mut self, event: &Envelope<E>, change: impl FnOnce(&mut PostPage)) {
        if let Some(page) = self.pages.get_mut(&post_id(event)) {
            change(page);
            page.version = event.version;
        }
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
    post_authors: BTreeMap<String, String>,
    pub authors: BTreeMap<String, AuthorFigures>,
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
        self.post_authors.insert(post_id(event), author.clone());
        self.authors.entry(author).or_default().posts += 1;
    }

    #[on]
    fn commented(&mut self, event: &Envelope<CommentAdded>) {
        if let Some(author) = self.post_authors.get(&post_id(event)) {
            self.authors
                .entry(author.clone())
                .or_default()
                .comments_received += 1;
        }
    }
}
