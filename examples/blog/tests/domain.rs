//! The blog's domain rules, through the given/when/then fixture (`es_core::GivenExt`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use blog::author::*;
use blog::post::*;
use chrono::{TimeZone, Utc};
use es_core::GivenExt;

fn drafted() -> PostEvent {
    PostDrafted {
        author: "ada".into(),
        title: "Engines".into(),
        content: "Looms".into(),
        tags: vec![],
    }
    .into()
}

#[test]
fn a_draft_needs_a_title() {
    let command = DraftPost {
        author: "ada".into(),
        title: "  ".into(),
        content: String::new(),
        tags: vec![],
    };
    Post::given([])
        .when(command)
        .then_error(PostError::EmptyTitle);
}

#[test]
fn a_post_is_drafted_once() {
    let command = DraftPost {
        author: "ada".into(),
        title: "Engines".into(),
        content: "Looms".into(),
        tags: vec![],
    };
    Post::given([]).when(command.clone()).then([drafted()]);
    Post::given([drafted()])
        .when(command)
        .then_error(PostError::AlreadyExists);
}

#[test]
fn publishing_twice_is_refused() {
    Post::given([drafted()])
        .when(PublishPost)
        .then([PostPublished {
            title: "Engines".into(),
        }
        .into()]);
    Post::given([
        drafted(),
        PostPublished {
            title: "Engines".into(),
        }
        .into(),
    ])
    .when(PublishPost)
    .then_error(PostError::AlreadyPublished);
}

#[test]
fn a_missing_post_cannot_be_published() {
    Post::given([])
        .when(PublishPost)
        .then_error(PostError::NotFound);
}

#[test]
fn comments_need_a_published_post_and_are_numbered() {
    let comment = AddComment {
        author: "grace".into(),
        text: "Nice".into(),
    };
    Post::given([drafted()])
        .when(comment.clone())
        .then_error(PostError::NotPublished);
    let published: PostEvent = PostPublished {
        title: "Engines".into(),
    }
    .into();
    let first: PostEvent = CommentAdded {
        number: 1,
        author: "grace".into(),
        text: "Nice".into(),
    }
    .into();
    Post::given([drafted(), published.clone()])
        .when(comment.clone())
        .then([first.clone()]);
    Post::given([drafted(), published, first])
        .when(comment)
        .then([CommentAdded {
            number: 2,
            author: "grace".into(),
            text: "Nice".into(),
        }
        .into()]);
}

#[test]
fn an_archived_post_takes_no_edits_or_comments() {
    let archived: PostEvent = PostArchived {
        reason: "old".into(),
    }
    .into();
    let history = || {
        [
            drafted(),
            PostPublished {
                title: "Engines".into(),
            }
            .into(),
            archived.clone(),
        ]
    };
    Post::given(history())
        .when(EditPost {
            title: "New".into(),
            content: String::new(),
        })
        .then_error(PostError::Archived);
    Post::given(history())
        .when(AddComment {
            author: "x".into(),
            text: "y".into(),
        })
        .then_error(PostError::Archived);
    Post::given(history())
        .when(ArchivePost {
            reason: "again".into(),
        })
        .then_error(PostError::Archived);
}

#[test]
fn an_edit_needs_a_title() {
    Post::given([drafted()])
        .when(EditPost {
            title: String::new(),
            content: "b".into(),
        })
        .then_error(PostError::EmptyTitle);
}

#[test]
fn each_login_is_recorded_with_its_time() {
    let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single().unwrap();
    let registered: AuthorEvent = AuthorRegistered { name: "Ada".into() }.into();
    // The time comes from the author's clock service, fixed here.
    let author = Author::given([registered])
        .with_services(Clock::Fixed(at))
        .when(LogIn)
        .then([LoggedIn { at }.into()]);
    assert_eq!((author.logins, author.last_login), (1, Some(at)));
    Author::given([])
        .when(LogIn)
        .then_error(AuthorError::NotRegistered);
}
