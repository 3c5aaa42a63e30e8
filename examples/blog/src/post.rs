//! A blog post: drafted by an author, published, edited, commented on, archived.

use es_core::{aggregate, Command, Event};
use serde::{Deserialize, Serialize};

// ---- events: what happened to a post, stored forever under these names ----

/// An author started a post.
///
/// Version 2 renamed `body` to `content` and added `tags`; events stored as version 1 are
/// upcast on read by [`drafted_v1_to_v2`], so the log never needs rewriting.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "post.drafted", version = 2, upcast(from = 1, with = drafted_v1_to_v2))]
pub struct PostDrafted {
    pub author: String,
    pub title: String,
    pub content: String,
    pub tags: Vec<String>,
}

/// `post.drafted` v1 `{author, title, body}` to v2 `{author, title, content, tags}`.
pub fn drafted_v1_to_v2(
    mut payload: serde_json::Value,
) -> Result<serde_json::Value, es_core::UpcastError> {
    let object = payload.as_object_mut().ok_or_else(|| {
        es_core::UpcastError::Shape("post.drafted v1 is not a JSON object".into())
    })?;
    let body = object
        .remove("body")
        .ok_or_else(|| es_core::UpcastError::Shape("post.drafted v1 has no `body`".into()))?;
    object.insert("content".into(), body);
    object.insert("tags".into(), serde_json::Value::Array(Vec::new()));
    Ok(payload)
}

/// The post became visible to readers.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "post.published")]
pub struct PostPublished {
    pub title: String,
}

/// The author changed the title or content.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "post.edited")]
pub struct PostEdited {
    pub title: String,
    pub content: String,
}

/// A reader commented on a published post.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "post.commented")]
pub struct CommentAdded {
    pub number: u32,
    pub author: String,
    pub text: String,
}

/// The post was withdrawn; it keeps its history but takes no more changes.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "post.archived")]
pub struct PostArchived {
    pub reason: String,
}

// ---- commands: what a user asks for ----

/// Start a new post as a draft.
#[derive(Command, Clone, Debug)]
pub struct DraftPost {
    pub author: String,
    pub title: String,
    pub content: String,
    pub tags: Vec<String>,
}

/// Make a draft visible.
#[derive(Command, Clone, Debug)]
pub struct PublishPost;

/// Change the title and content.
#[derive(Command, Clone, Debug)]
pub struct EditPost {
    pub title: String,
    pub content: String,
}

/// Comment on a published post.
#[derive(Command, Clone, Debug)]
pub struct AddComment {
    pub author: String,
    pub text: String,
}

/// Withdraw the post.
#[derive(Command, Clone, Debug)]
pub struct ArchivePost {
    pub reason: String,
}

/// Why a post refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("this post already exists")]
    AlreadyExists,
    #[error("there is no such post")]
    NotFound,
    #[error("a post needs a title")]
    EmptyTitle,
    #[error("the post is already published")]
    AlreadyPublished,
    #[error("only published posts take comments")]
    NotPublished,
    #[error("the post is archived and takes no more changes")]
    Archived,
    #[error("a comment needs some text")]
    EmptyComment,
}

/// Where a post is in its life.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    #[default]
    Draft,
    Published,
    Archived,
}

/// The state a post needs to decide on commands; read models hold the rest.
#[aggregate(name = "post", id = String, error = PostError, snapshot_every = 50)]
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    exists: bool,
    pub author: String,
    pub title: String,
    pub status: Status,
    pub comments: u32,
}

#[aggregate]
impl Post {
    #[handle]
    fn draft(&self, command: DraftPost) -> Result<PostDrafted, PostError> {
        if self.exists {
            return Err(PostError::AlreadyExists);
        }
        if command.title.trim().is_empty() {
            return Err(PostError::EmptyTitle);
        }
        Ok(PostDrafted {
            author: command.author,
            title: command.title,
            content: command.content,
            tags: command.tags,
        })
    }

    #[handle]
    fn publish(&self, _: PublishPost) -> Result<PostPublished, PostError> {
        self.ensure_changeable()?;
        if self.status == Status::Published {
            return Err(PostError::AlreadyPublished);
        }
        Ok(PostPublished {
            title: self.title.clone(),
        })
    }

    #[handle]
    fn edit(&self, command: EditPost) -> Result<PostEdited, PostError> {
        self.ensure_changeable()?;
        if command.title.trim().is_empty() {
            return Err(PostError::EmptyTitle);
        }
        Ok(PostEdited {
            title: command.title,
            content: command.content,
        })
    }

    #[handle]
    fn comment(&self, command: AddComment) -> Result<CommentAdded, PostError> {
        self.ensure_changeable()?;
        if self.status != Status::Published {
            return Err(PostError::NotPublished);
        }
        if command.text.trim().is_empty() {
            return Err(PostError::EmptyComment);
        }
        Ok(CommentAdded {
            number: self.comments + 1,
            author: command.author,
            text: command.text,
        })
    }

    #[handle]
    fn archive(&self, command: ArchivePost) -> Result<PostArchived, PostError> {
        self.ensure_changeable()?;
        Ok(PostArchived {
            reason: command.reason,
        })
    }

    #[apply]
    fn drafted(&mut self, event: &PostDrafted) {
        self.exists = true;
        self.author = event.author.clone();
        self.title = event.title.clone();
    }

    #[apply]
    fn published(&mut self, _: &PostPublished) {
        self.status = Status::Published;
    }

    #[apply]
    fn edited(&mut self, event: &PostEdited) {
        self.title = event.title.clone();
    }

    #[apply]
    fn commented(&mut self, event: &CommentAdded) {
        self.comments = event.number;
    }

    #[apply]
    fn archived(&mut self, _: &PostArchived) {
        self.status = Status::Archived;
    }

    fn ensure_changeable(&self) -> Result<(), PostError> {
        match (self.exists, self.status) {
            (false, _) => Err(PostError::NotFound),
            (true, Status::Archived) => Err(PostError::Archived),
            _ => Ok(()),
        }
    }
}
