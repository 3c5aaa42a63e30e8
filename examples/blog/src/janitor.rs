//! The draft janitor, a process manager: when an author is suspended, their drafts are
//! archived; a draft nobody touched for a while (by default 30 days) is archived by a
//! deadline.
//!
//! It reacts to events of two aggregates (authors and posts) by sending commands to posts,
//! with its own state in the store: which drafts are open, whose they are, and which authors
//! are suspended. Each command it sends carries a command id made from its cause, so a crash
//! between sending and committing its checkpoint never archives a post twice.
//!
//! A rollback of a post is followed: a post rolled back to a version where it was a draft is
//! watched again (or archived at once if its author was suspended meanwhile), and one rolled
//! back to a version where it was published or archived is no longer watched.

use std::time::Duration;

use es_core::process::{Deadline, Dispatch, Process};
use es_core::{process_manager, Aggregate, Envelope, Event, RolledBack};
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

/// What the janitor remembers under one key: under `post/{id}`, a post's author and when it
/// was a draft; under `author/{id}`, the author's open drafts and whether they are suspended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    /// For a post: its author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// For a post: from which versions on it was a draft (`true`) or not (`false`), oldest
    /// first. A rollback to version `n` makes it what it was at `n`, so the whole story is
    /// kept, as the post's own stream keeps it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub draft_from: Vec<(u64, bool)>,
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
        let author = event.event.author.clone();
        process.state().insert(
            &post_key(&post),
            Watch {
                author: Some(author.clone()),
                draft_from: vec![(event.version, true)],
                ..Watch::default()
            },
        );
        self.watch_draft(process, post, &author)
    }

    /// An edit touches the draft: its deadline starts again.
    #[on]
    fn edited(&self, event: &Envelope<PostEdited>, process: &mut Process<'_, Watch>) {
        let post = event.aggregate_id().to_owned();
        let open_draft = process
            .state()
            .get(&post_key(&post))
            .is_some_and(|watch| draft_at(&watch.draft_from, u64::MAX));
        if open_draft {
            self.watch_until_stale(process, post);
        }
    }

    #[on]
    fn published(&self, event: &Envelope<PostPublished>, process: &mut Process<'_, Watch>) {
        no_longer_a_draft(process, event.aggregate_id(), event.version);
    }

    #[on]
    fn archived(&self, event: &Envelope<PostArchived>, process: &mut Process<'_, Watch>) {
        no_longer_a_draft(process, event.aggregate_id(), event.version);
    }

    /// A post rolled back becomes what it was at the version it returns to: a draft again
    /// is watched again, a post published or archived again is not.
    #[on]
    fn rolled_back(
        &self,
        event: &Envelope<RolledBack>,
        process: &mut Process<'_, Watch>,
    ) -> Option<Dispatch> {
        if event.aggregate_type() != Post::NAME {
            return None;
        }
        let post = event.aggregate_id().to_owned();
        let key = post_key(&post);
        let watch = process.state().get(&key)?;
        let author = watch.author.clone()?;
        let was_draft = draft_at(&watch.draft_from, u64::MAX);
        let draft_again = draft_at(&watch.draft_from, event.event.to_version);
        process.state().update(&key, |watch| {
            watch.draft_from.push((event.version, draft_again))
        });
        match (was_draft, draft_again) {
            (false, true) => self.watch_draft(process, post, &author),
            (true, false) => {
                stop_watching(process, &post);
                None
            }
            _ => None,
        }
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
        // Each post stays known (with its author) until its archival comes back as an event.
        drafts
            .into_iter()
            .map(|post| {
                process.cancel(stale_key(&post));
                archive(post, SUSPENDED_REASON.to_owned())
            })
            .collect()
    }

    #[on]
    fn stale(&self, deadline: &Deadline<DraftStale>, process: &mut Process<'_, Watch>) -> Dispatch {
        let post = deadline.message.post.clone();
        stop_watching(process, &post);
        archive(post, stale_reason(&deadline.message.untouched_for))
    }
}

impl DraftJanitor {
    /// A post became a draft (new, or rolled back to one): archived at once if its author is
    /// suspended, else counted among the author's drafts and given a deadline.
    fn watch_draft(
        &self,
        process: &mut Process<'_, Watch>,
        post: String,
        author: &str,
    ) -> Option<Dispatch> {
        let suspended = process
            .state()
            .get(&author_key(author))
            .is_some_and(|watch| watch.suspended);
        if suspended {
            return Some(archive(post, SUSPENDED_REASON.to_owned()));
        }
        process.state().upsert(&author_key(author), |watch| {
            if !watch.drafts.contains(&post) {
                watch.drafts.push(post.clone())
            }
        });
        self.watch_until_stale(process, post);
        None
    }

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

/// Whether a post was a draft at `version`, by the story in `draft_from`. A post recorded
/// without a story (by a janitor before it kept one) was an open draft: that janitor dropped
/// the others.
fn draft_at(draft_from: &[(u64, bool)], version: u64) -> bool {
    if draft_from.is_empty() {
        return true;
    }
    draft_from
        .iter()
        .take_while(|(from, _)| *from <= version)
        .last()
        .is_some_and(|(_, draft)| *draft)
}

/// The post was published or archived at `version`: recorded, and no longer watched.
fn no_longer_a_draft(process: &mut Process<'_, Watch>, post: &str, version: u64) {
    stop_watching(process, post);
    process.state().update(&post_key(post), |watch| {
        watch.draft_from.push((version, false))
    });
}

/// The post is no longer a draft: off its author's list, its deadline dropped.
fn stop_watching(process: &mut Process<'_, Watch>, post: &str) {
    let author = process
        .state()
        .get(&post_key(post))
        .and_then(|watch| watch.author.clone());
    if let Some(author) = author {
        process.state().update(&author_key(&author), |watch| {
            watch.drafts.retain(|draft| draft != post)
        });
    }
    process.cancel(stale_key(post));
}
