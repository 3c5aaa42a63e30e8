//! Demo data at scale: `blog seed --events N` writes about N events (authors, posts, edits,
//! comments) in batched appends, one post's events per append, so anyone can try the read
//! side with a large log; then waits, with progress, for the read models to catch up.

use std::time::{Duration, Instant};

use es_core::{Aggregate, Event, EventLog, ExpectedVersion, Metadata, NewEvent, Payload, StreamId};

use crate::app::Blog;
use crate::author::{AuthorRegistered, LoggedIn};
use crate::post::{CommentAdded, Post, PostDrafted, PostEdited, PostPublished};
use crate::progress::{Bar, Counts};

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Events per seeded post: drafted, published, edited, and comments.
pub const EVENTS_PER_POST: u64 = 100;
/// The authors seeded posts are spread over.
const AUTHORS: u64 = 10;
/// How long catching up may go without any progress before it is reported as stuck.
const STALL: Duration = Duration::from_secs(30);

/// What a seed run wrote.
#[derive(Debug)]
pub struct Seeded {
    pub events: u64,
    pub posts: u64,
    pub elapsed: Duration,
}

impl Seeded {
    /// Events written per second.
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

fn event<E: Event>(event: &E) -> Result<NewEvent, Failure> {
    let mut metadata = Metadata::new(uuid::Uuid::now_v7());
    metadata.extra.insert("user".into(), "seed".into());
    Ok(NewEvent {
        event_name: E::NAME.into(),
        schema_version: E::VERSION,
        metadata,
        payload: Payload::encode(event)?,
    })
}

/// One post's life: drafted, published, edited, then comments up to [`EVENTS_PER_POST`].
fn post_events(post: u64, author: &str) -> Result<Vec<NewEvent>, Failure> {
    let title = format!("Seeded post {post}");
    let mut events = vec![
        event(&PostDrafted {
            author: author.to_owned(),
            title: title.clone(),
            content: "Lorem ipsum.".into(),
            tags: vec![format!("topic-{}", post % 7)],
        })?,
        event(&PostPublished {
            title: title.clone(),
        })?,
        event(&PostEdited {
            title: format!("{title} (revised)"),
            content: "Lorem ipsum, revised.".into(),
        })?,
    ];
    for number in 1..=EVENTS_PER_POST - 3 {
        events.push(event(&CommentAdded {
            number: u32::try_from(number)?,
            author: format!("reader-{}", number % 13),
            text: "Nice.".into(),
        })?);
    }
    Ok(events)
}

/// Writes about `events` events under ids starting with `prefix`, showing progress.
pub async fn seed(blog: &Blog, events: u64, prefix: &str) -> Result<Seeded, Failure> {
    let started = Instant::now();
    let store: &dyn EventLog = &*blog.store;
    let mut written = 0;
    let mut authors = Vec::new();
    for n in 0..AUTHORS {
        let id = format!("{prefix}author-{n}");
        let stream = StreamId::new(crate::author::Author::NAME, &id)?;
        let life = vec![
            event(&AuthorRegistered {
                name: format!("Seeded Author {n}"),
            })?,
            event(&LoggedIn {
                at: chrono::Utc::now(),
            })?,
        ];
        written += life.len() as u64;
        store
            .append(&stream, ExpectedVersion::NoStream, life)
            .await?;
        authors.push(id);
    }
    let posts = events
        .saturating_sub(written)
        .div_ceil(EVENTS_PER_POST)
        .max(1);
    let mut bar = Bar::new("seeding");
    for post in 0..posts {
        let author = &authors[usize::try_from(post % AUTHORS)?];
        let stream = StreamId::new(Post::NAME, &format!("{prefix}post-{post}"))?;
        let batch = post_events(post, author)?;
        written += batch.len() as u64;
        store
            .append(&stream, ExpectedVersion::NoStream, batch)
            .await?;
        bar.show_counts(Counts::since(written, events.max(written), started));
    }
    bar.finish();
    Ok(Seeded {
        events: written,
        posts,
        elapsed: started.elapsed(),
    })
}

/// Waits, with progress, until every read model and the draft janitor have caught up with
/// the log; fails when none moves for [`STALL`].
pub async fn catch_up(blog: &Blog) -> Result<Duration, Failure> {
    let started = Instant::now();
    let head = blog.store.head_position().await?;
    let mut bar = Bar::new("catching up read models and the janitor");
    let (mut last, mut moved_at) = (None, Instant::now());
    let mut first = None;
    loop {
        let health = blog.daemon().health().await?;
        let janitor = blog.janitor().health().await?.checkpoint.saturating_sub(1);
        let slowest = health
            .iter()
            .map(|projection| projection.checkpoint.saturating_sub(1))
            .chain([janitor])
            .min()
            .unwrap_or(head);
        // The rate counts what was done since this began, not what the daemon did before.
        let from = *first.get_or_insert(slowest);
        let mut counts = Counts::since(slowest - from, head - from.min(head), started);
        (counts.done, counts.total) = (slowest, head);
        bar.show_counts(counts);
        if slowest >= head {
            bar.finish();
            return Ok(started.elapsed());
        }
        if last.is_none_or(|last| slowest > last) {
            (last, moved_at) = (Some(slowest), Instant::now());
        } else if moved_at.elapsed() > STALL {
            bar.finish();
            return Err(format!(
                "the read models have not moved past position {slowest} for {STALL:?}; see `blog status`"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
