//! The draft janitor, a process manager: when an author is suspended, their drafts are
//! archived; a draft nobody touched for a while (by default 30 days) is archived by a
//! deadline.
//!
//! It reacts to events of two aggregates (authors and posts) by sending commands to posts,
//! with its own state in the store: which drafts are open, whose they are, and which authors
//! are suspended. Each command it sends carries a command id made from its cause, so a crash
//! between sending and committing its checkpoint never archives a post twice.
//!
//! A rollback of a post is not followed: a post rolled back to a draft is not watched again.

use std::time::Duration;

use es_core::process::{Deadline, Dispatch, Process};
use es_core::{process_manager, Envelope, Event};
use serde::{Deserialize, Serialize};

use crate::author::AuthorSuspended;
use crate::post::{ArchivePost, Post, PostArchived, PostDrafted, PostEdited, PostPublished};

/// How long a draft may stay untouched (not edited, not published) before it is archived.
pub const STALE_DRAFTS_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);

/// A draft's deadline came: it was left alone for the janitor's whole `stale_after`.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "janitor.draft_stale")]
pub struct DraftStale {
    pub post: String,
    /// How long it was left alone, as `30d`: the janitor's setting when it was scheduled.
    pub untouched_for: String,
}

/// What the janitor remembers under one key: under `post/{id}`, a draft it watches and its
/// author; under `author/{id}`, the author's open drafts and whether they are suspended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    /// For a draft: its author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// For an author: their drafts still open, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drafts: Vec<String>,
    /// For an author: suspended; every draft they start is archived at once.
    #[serde(default)]
    pub suspended: bool,
}

fn post_key(post: &str) -> String {
    format!("post/{post}")
}

fn author_key(author: &str) -> String {
    format!("author/{author}")
}

fn stale_key(post: &str) -> String {
    format!("stale/{post}")
}

/// The reason a stale draft is archived with.
pub fn stale_reason(untouched_for: &str) -> String {
    format!("the draft was left untouched for {untouched_for}")
}

/// The reason a suspended author's drafts are archived with.
pub const SUSPENDED_REASON: &str = "its author was suspended";

/// Archives the drafts of suspended authors and the drafts left alone too long.
#[process_manager(name = "draft_janitor")]
#[derive(Clone, Debug)]
pub struct DraftJanitor {
    /// How long a draft may stay untouched.
    pub stale_after: Duration,
}

impl Default for DraftJanitor {
    fn default() -> Self {
        DraftJanitor {
            stale_after: STALE_DRAFTS_AFTER,
        }
    }
}

#[process_manager]
impl DraftJanitor {
    #[on]
    fn drafted(
        &self,
        event: &Envelope<PostDrafted>,
        process: &mut Process<'_, Watch>,
    ) -> Option<Dispatch> {
        let post = event.aggregate_id().to_owned();
        let author = &event.event.author;
        let suspended = process
            .state()
            .get(&author_key(author))
            .is_some_and(|watch| watch.suspended);
        if suspended {
            return Some(archive(post, SUSPENDED_REASON.to_owned()));
        }
        process.state().insert(
            &post_key(&post),
            Watch {
                author: Some(author.clone()),
                ..Watch::default()
            },
        );
        process
            .state()
            .upsert(&author_key(author), |watch| watch.drafts.push(post.clone()));
        self.watch_until_stale(process, post);
        None
    }

    /// An edit touches the draft: its deadline starts again.
    #[on]
    fn edited(&self, event: &Envelope<PostEdited>, process: &mut Process<'_, Watch>) {
        let post = event.aggregate_id().to_owned();
        if process.state().contains(&post_key(&post)) {
            self.watch_until_stale(process, post);
        }
    }

    #[on]
    fn published(&self, event: &Envelope<PostPublished>, process: &mut Process<'_, Watch>) {
        forget(process, event.aggregate_id());
    }

    #[on]
    fn archived(&self, event: &Envelope<PostArchived>, process: &mut Process<'_, Watch>) {
        forget(process, event.aggregate_id());
    }

    #[on]
    fn suspended(
        &self,
        event: &Envelope<AuthorSuspended>,
        process: &mut Process<'_, Watch>,
    ) -> Vec<Dispatch> {
        let key = author_key(event.aggregate_id());
        let drafts = process
            .state()
            .get(&key)
            .map(|watch| watch.drafts.clone())
            .unwrap_or_default();
        process.state().insert(
            &key,
            Watch {
                suspended: true,
                ..Watch::default()
            },
        );
        drafts
            .into_iter()
            .map(|post| {
                process.cancel(stale_key(&post));
                process.state().delete(&post_key(&post));
                archive(post, SUSPENDED_REASON.to_owned())
            })
            .collect()
    }

    #[on]
    fn stale(&self, deadline: &Deadline<DraftStale>, process: &mut Process<'_, Watch>) -> Dispatch {
        let post = deadline.message.post.clone();
        forget(process, &post);
        archive(post, stale_reason(&deadline.message.untouched_for))
    }
}

impl DraftJanitor {
    /// Schedules (or moves) the draft's deadline to `stale_after` from now.
    fn watch_until_stale(&self, process: &mut Process<'_, Watch>, post: String) {
        let message = DraftStale {
            post: post.clone(),
            untouched_for: crate::duration::describe(self.stale_after),
        };
        process.schedule_after(stale_key(&post), self.stale_after, message);
    }
}

fn archive(post: String, reason: String) -> Dispatch {
    Dispatch::to::<Post>(post, ArchivePost { reason })
}

/// The post is no longer a draft: stop watching it.
fn forget(process: &mut Process<'_, Watch>, post: &str) {
    let key = post_key(post);
    let author = process
        .state()
        .get(&key)
        .and_then(|watch| watch.author.clone());
    if let Some(author) = author {
        process.state().update(&author_key(&author), |watch| {
            watch.drafts.retain(|draft| draft != post)
        });
        process.state().delete(&key);
    }
    process.cancel(stale_key(post));
}
