//! The demo scenario: two authors, a few posts, comments, an edit, an archive, and one
//! command the domain rejects.

use es_core::{CommandMetadata, RepositoryError};

use crate::app::Blog;
use crate::author::{AuthorError, LogIn, RegisterAuthor, SuspendAuthor};
use crate::post::{AddComment, ArchivePost, DraftPost, EditPost, PostError, PublishPost};

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// What the scenario did, for printing.
#[derive(Debug)]
pub struct ScenarioOutcome {
    /// The post whose history is worth showing.
    pub featured_post: String,
    /// The command the domain refused, with its error.
    pub rejected: Option<RepositoryError<PostError>>,
    /// The draft of a suspended author, which the draft janitor archives.
    pub spam_draft: String,
}

fn as_user(user: &str) -> CommandMetadata {
    CommandMetadata::new().with("user", user)
}

/// A suffix for post ids that no earlier run used: `""` on a fresh store, then `-2`, `-3`...
pub async fn free_suffix(blog: &Blog) -> Result<String, Failure> {
    let mut run = 1;
    loop {
        let suffix = if run == 1 {
            String::new()
        } else {
            format!("-{run}")
        };
        let stream = es_core::StreamId::new(
            <crate::post::Post as es_core::Aggregate>::NAME,
            &format!("engines{suffix}"),
        )
        .map_err(|refusal| es_core::RepositoryError::<PostError>::InvalidId {
            aggregate_type: <crate::post::Post as es_core::Aggregate>::NAME,
            refusal,
        })?;
        if blog.store.stream_version(&stream).await? == 0 {
            return Ok(suffix);
        }
        run += 1;
    }
}

/// Plays the scenario. Ids get `suffix` appended so it can run again on a store that keeps
/// what earlier runs wrote.
pub async fn play(blog: &Blog, suffix: &str) -> Result<ScenarioOutcome, Failure> {
    let id = |base: &str| format!("{base}{suffix}");
    for (author, name) in [
        ("ada", "Ada Lovelace"),
        ("grace", "Grace Hopper"),
        ("mallory", "Mallory"),
    ] {
        let registered = blog
            .authors
            .execute(&author.to_owned(), RegisterAuthor { name: name.into() })
            .await;
        match registered {
            // A second run finds the authors already registered: that is fine.
            Ok(_) | Err(RepositoryError::Rejected(AuthorError::AlreadyRegistered)) => {}
            Err(other) => return Err(other.into()),
        }
        blog.authors
            .execute_with(&author.to_owned(), LogIn, as_user(author))
            .await?;
    }
    let posts = [
        (
            "engines",
            "ada",
            "Notes on the Analytical Engine",
            "It weaves algebraic patterns.",
            "math",
        ),
        (
            "compilers",
            "grace",
            "The first compiler",
            "Programs can write programs.",
            "languages",
        ),
        (
            "bugs",
            "grace",
            "A moth in the relay",
            "We found the first actual bug.",
            "hardware",
        ),
    ];
    for (post, author, title, content, tag) in posts {
        let draft = DraftPost {
            author: author.into(),
            title: title.into(),
            content: content.into(),
            tags: vec![tag.into()],
        };
        blog.posts
            .execute_with(&id(post), draft, as_user(author))
            .await?;
        blog.posts
            .execute_with(&id(post), PublishPost, as_user(author))
            .await?;
    }
    let comments = [
        ("engines", "grace", "Beautiful idea."),
        ("compilers", "ada", "Bold. I approve."),
        ("engines", "grace", "When can we build one?"),
    ];
    for (post, author, text) in comments {
        let command = AddComment {
            author: author.into(),
            text: text.into(),
        };
        blog.posts
            .execute_with(&id(post), command, as_user(author))
            .await?;
    }
    let edit = EditPost {
        title: "Notes on the Analytical Engine (revised)".into(),
        content: "It weaves algebraic patterns, as the loom weaves flowers.".into(),
    };
    blog.posts
        .execute_with(&id("engines"), edit, as_user("ada"))
        .await?;
    let archive = ArchivePost {
        reason: "moved to the museum".into(),
    };
    blog.posts
        .execute_with(&id("bugs"), archive, as_user("grace"))
        .await?;
    let late_comment = AddComment {
        author: "ada".into(),
        text: "Poor moth.".into(),
    };
    let rejected = blog
        .posts
        .execute_with(&id("bugs"), late_comment, as_user("ada"))
        .await
        .err();
    // A spammer drafts a post and is suspended: the draft janitor archives the draft (on a
    // second run they are suspended already, and it archives the new draft at once).
    let spam = DraftPost {
        author: "mallory".into(),
        title: "Cheap watches".into(),
        content: "Click here.".into(),
        tags: vec!["offers".into()],
    };
    blog.posts
        .execute_with(&id("offers"), spam, as_user("mallory"))
        .await?;
    let suspension = SuspendAuthor {
        reason: "spam".into(),
    };
    match blog
        .authors
        .execute_with(&"mallory".to_owned(), suspension, as_user("admin"))
        .await
    {
        Ok(_) | Err(RepositoryError::Rejected(AuthorError::AlreadySuspended)) => {}
        Err(other) => return Err(other.into()),
    }
    Ok(ScenarioOutcome {
        featured_post: id("engines"),
        rejected,
        spam_draft: id("offers"),
    })
}
