//! The blog CLI. With no arguments it plays a short scenario and prints the read models and
//! one post's history; subcommands create, publish, comment on, list and show posts.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use blog::app::{Blog, BlogConfig};
use blog::author::{LogIn, RegisterAuthor, SuspendAuthor};
use blog::janitor::DraftJanitor;
use blog::post::{AddComment, ArchivePost, DraftPost, EditPost, PublishPost};
use blog::report::Moment;
use blog::{outbox, progress, report, scenario};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use es_core::postgres::PostgresStore;
use es_core::sqlite::SqliteStore;
use es_core::{rebuild, retry_dead_letter, CommandMetadata, MemoryStore, ReadStore, Store};

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug)]
#[command(about = "An event-sourced blog", long_about = None)]
struct Cli {
    /// Where events are stored: `sqlite:PATH` (a file, kept between runs), `postgres:URL`
    /// (e.g. `postgres:postgres://postgres@127.0.0.1:5432/blog`) or `memory` (gone at exit).
    #[arg(
        long,
        global = true,
        env = "BLOG_STORE",
        default_value = "sqlite:blog.db"
    )]
    store: String,
    /// Publish every event to NATS JetStream at this address (e.g. `127.0.0.1:4222`), and
    /// where `blog tail` reads them.
    #[arg(long, global = true, env = "BLOG_NATS")]
    nats: Option<String>,
    /// The subject prefix the events are published under; the stream is named after it.
    #[arg(long, global = true, env = "BLOG_NATS_PREFIX", default_value = "blog")]
    nats_prefix: String,
    /// How long a draft may stay untouched (not edited, not published) before the draft
    /// janitor archives it: `30d`, `12h`, `15m`, `90s`, `500ms`.
    #[arg(long, global = true, env = "BLOG_STALE_DRAFTS_AFTER", default_value = "30d", value_parser = blog::duration::parse)]
    stale_drafts_after: std::time::Duration,
    #[command(subcommand)]
    command: Option<Action>,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Play the demo scenario (the default).
    Demo,
    /// Write about N events of demo data (authors, posts, edits, comments) in batched
    /// appends, then wait for the read models to catch up.
    Seed {
        #[arg(long, default_value_t = 10_000)]
        events: u64,
    },
    /// Register an author.
    Register { author: String, name: String },
    /// Record a login of an author, now.
    Login { author: String },
    /// Suspend an author; the draft janitor archives their drafts.
    Suspend {
        author: String,
        #[arg(long, default_value = "no reason given")]
        reason: String,
    },
    /// Draft a new post.
    Create {
        post: String,
        #[arg(long)]
        author: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        content: String,
        /// Comma-separated tags.
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
    },
    /// Publish a draft.
    Publish { post: String },
    /// Change a post's title and content.
    Edit {
        post: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        content: String,
    },
    /// Comment on a published post.
    Comment {
        post: String,
        #[arg(long)]
        author: String,
        #[arg(long)]
        text: String,
    },
    /// Archive a post.
    Archive {
        post: String,
        #[arg(long, default_value = "no reason given")]
        reason: String,
    },
    /// List published posts, newest first, a page at a time.
    List {
        /// Posts per page.
        #[arg(long, default_value_t = blog::report::PAGE)]
        limit: usize,
        /// Where the page starts: the cursor the previous page printed.
        #[arg(long)]
        after: Option<String>,
    },
    /// Show one post's page, now or at a past moment.
    Show {
        post: String,
        /// Show the page right after this version of the post.
        #[arg(long, conflicts_with = "as_of")]
        at_version: Option<u64>,
        /// Show the page as it was at this time (RFC 3339, e.g. 2026-11-23T19:44:00Z).
        #[arg(long)]
        as_of: Option<DateTime<Utc>>,
    },
    /// Return a post to its state at an earlier version. Nothing is deleted: a marker is
    /// appended, and the history keeps every event.
    Rollback {
        post: String,
        #[arg(long)]
        to_version: u64,
        #[arg(long)]
        reason: String,
        /// Who asks for it.
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Show one post's event history.
    History { post: String },
    /// Show per-author statistics.
    Authors,
    /// Show how many published posts each tag has (a SQL read model; SQLite and PostgreSQL).
    Tags,
    /// Show each read model's checkpoint, lag, state and holder.
    Status,
    /// Rebuild a read model from the first event, beside the live one, and swap it in.
    Rebuild {
        /// `post_summaries`, `post_pages` or `author_stats`.
        projection: String,
    },
    /// List the events a read model set aside, or retry one.
    DeadLetters {
        projection: String,
        /// Retry the dead letter at this position.
        #[arg(long)]
        retry: Option<u64>,
    },
    /// Print the events published to NATS as they arrive (`--nats`, default
    /// `127.0.0.1:4222`), until killed.
    Tail {
        /// From the first event in the stream, not only new ones.
        #[arg(long)]
        from_start: bool,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `RUST_LOG=debug` shows a span per command (aggregate, id, command, outcome, attempts,
    // events) and per store call; warnings only by default. Logs go to stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(output) => write_stdout(&output),
        Err(error) => {
            // stderr is unbuffered and `eprintln!` would panic if it were closed; ignore that case.
            let _ = writeln!(std::io::stderr(), "error: {}", error);
            ExitCode::FAILURE
        }
    }
}

/// Opens the store named on the command line; the domain code is the same for all of them.
async fn open_store(spec: &str) -> Result<Arc<dyn Store>, Failure> {
    if spec == "memory" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    if let Some(path) = spec.strip_prefix("sqlite:") {
        return Ok(Arc::new(SqliteStore::open(path).await?));
    }
    if let Some(url) = spec
        .strip_prefix("postgres:")
        .filter(|url| url.contains("://"))
        .or_else(|| {
            (spec.starts_with("postgres://") || spec.starts_with("postgresql://")).then_some(spec)
        })
    {
        return Ok(Arc::new(PostgresStore::connect(url).await?));
    }
    Err(format!("unknown store `{spec}`; use `sqlite:PATH`, `postgres:URL` or `memory`").into())
}

/// Writes the output; a reader that went away (`| head`) is not an error worth a panic.
fn write_stdout(output: &str) -> ExitCode {
    match std::io::stdout().lock().write_all(output.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

async fn run(cli: Cli) -> Result<String, Failure> {
    if let Some(Action::Tail { from_start, count }) = cli.command {
        let url = cli.nats.as_deref().unwrap_or("127.0.0.1:4222");
        outbox::tail(url, &cli.nats_prefix, from_start, count).await?;
        return Ok(String::new());
    }
    let store = open_store(&cli.store).await?;
    let config = BlogConfig {
        janitor: DraftJanitor {
            stale_after: cli.stale_drafts_after,
        },
        ..BlogConfig::default()
    };
    let blog = Blog::open_with(store, config).await?;
    let publisher = match &cli.nats {
        Some(url) => Some(outbox::start(blog.store.clone(), url, &cli.nats_prefix).await?),
        None => None,
    };
    let mut out = String::new();
    let as_user = |user: &str| CommandMetadata::new().with("user", user);
    match cli.command.unwrap_or(Action::Demo) {
        Action::Demo => out = demo(&blog).await?,
        Action::Seed { events } => {
            // A prefix of its own per run, so seeding twice adds rather than conflicts.
            let prefix = format!("s{}-", &uuid::Uuid::now_v7().simple().to_string()[8..16]);
            let seeded = blog::seed::seed(&blog, events, &prefix).await?;
            writeln!(
                out,
                "seeded {} events ({} posts, ids starting `{prefix}`) in {:.1} s: {:.0} events/s",
                seeded.events,
                seeded.posts,
                seeded.elapsed.as_secs_f64(),
                seeded.rate()
            )?;
            let caught_up = blog::seed::catch_up(&blog).await?;
            writeln!(
                out,
                "the read models caught up in {:.1} s",
                caught_up.as_secs_f64()
            )?;
        }
        Action::Register { author, name } => {
            blog.authors
                .execute(&author, RegisterAuthor { name })
                .await?;
            writeln!(out, "registered author {author}")?;
        }
        Action::Login { author } => {
            blog.authors.execute(&author, LogIn).await?;
            writeln!(out, "{author} logged in")?;
        }
        Action::Suspend { author, reason } => {
            blog.authors
                .execute(&author, SuspendAuthor { reason })
                .await?;
            writeln!(
                out,
                "suspended author {author}; the draft janitor archives their drafts"
            )?;
        }
        Action::Create {
            post,
            author,
            title,
            content,
            tags,
        } => {
            let metadata = as_user(&author);
            blog.posts
                .execute_with(
                    &post,
                    DraftPost {
                        author,
                        title,
                        content,
                        tags,
                    },
                    metadata,
                )
                .await?;
            writeln!(out, "drafted post {post}")?;
        }
        Action::Publish { post } => {
            blog.posts.execute(&post, PublishPost).await?;
            writeln!(out, "published post {post}")?;
        }
        Action::Edit {
            post,
            title,
            content,
        } => {
            blog.posts
                .execute(&post, EditPost { title, content })
                .await?;
            writeln!(out, "edited post {post}")?;
        }
        Action::Comment { post, author, text } => {
            let metadata = as_user(&author);
            blog.posts
                .execute_with(&post, AddComment { author, text }, metadata)
                .await?;
            writeln!(out, "commented on post {post}")?;
        }
        Action::Archive { post, reason } => {
            blog.posts.execute(&post, ArchivePost { reason }).await?;
            writeln!(out, "archived post {post}")?;
        }
        Action::List { limit, after } => write!(
            out,
            "{}",
            report::published_posts_page(&blog, limit, after).await?
        )?,
        Action::Show {
            post,
            at_version,
            as_of,
        } => {
            let moment = match (at_version, as_of) {
                (Some(version), _) => Moment::Version(version),
                (None, Some(at)) => Moment::AsOf(at),
                (None, None) => Moment::Now,
            };
            match report::post_page(&blog, &post, moment).await? {
                Some(page) => write!(out, "{page}")?,
                None => return Err(format!("no post `{post}` at that moment").into()),
            }
        }
        Action::Rollback {
            post,
            to_version,
            reason,
            by,
        } => {
            let marker = blog.posts.rollback(&post, to_version, &by, &reason).await?;
            writeln!(
                out,
                "rolled post {post} back to version {to_version} (marker at version {})",
                marker.version
            )?;
        }
        Action::History { post } => write!(out, "{}", report::history(&blog, &post).await?)?,
        Action::Authors => write!(out, "{}", report::authors(&blog).await?)?,
        Action::Tags => write!(out, "{}", report::tags(&blog).await?)?,
        Action::Status => {
            write!(out, "{}", report::status(&blog).await?)?;
            if let Some(publisher) = &publisher {
                let health = publisher.health().await?;
                writeln!(
                    out,
                    "{:<16} checkpoint {:<6} lag {:<4} events {:.1} s  {}",
                    health.name,
                    health.checkpoint,
                    health.lag_events,
                    health.lag_seconds,
                    health.state
                )?;
            }
        }
        Action::Rebuild { projection } => {
            let mut bar = progress::Bar::new(&projection);
            let done = rebuild(&*blog.store, &blog.projections, &projection, |progress| {
                bar.show(progress)
            })
            .await?;
            bar.finish();
            writeln!(
                out,
                "rebuilt {projection}: generation {} is live ({} events in {:.1} s, {:.0} events/s)",
                done.generation,
                done.events,
                done.elapsed.as_secs_f64(),
                done.rate()
            )?;
        }
        Action::Tail { .. } => unreachable_tail()?,
        Action::DeadLetters { projection, retry } => match retry {
            Some(position) => {
                retry_dead_letter(&*blog.store, &blog.projections, &projection, position).await?;
                writeln!(
                    out,
                    "applied the dead letter at position {position} to {projection}"
                )?;
            }
            None => {
                let letters = ReadStore::dead_letters(&*blog.store, &projection).await?;
                writeln!(out, "== dead letters of {projection} ==")?;
                if letters.is_empty() {
                    writeln!(out, "(none)")?;
                }
                for letter in letters {
                    writeln!(
                        out,
                        "pos {:<6} {} v{} {}: {}",
                        letter.position,
                        letter.stream,
                        letter.version,
                        letter.event_name,
                        letter.error
                    )?;
                }
            }
        },
    }
    // Commands return once committed; wait for the read models here only so that the next
    // invocation's reads find them current, then stop the daemon.
    let _ = blog.settle().await;
    let published = match publisher {
        Some(publisher) => outbox::finish(publisher, &*blog.store).await,
        None => Ok(()),
    };
    blog.close().await;
    published?;
    Ok(out)
}

/// `tail` returns before the store is opened; this arm is never reached.
fn unreachable_tail() -> Result<(), Failure> {
    Err("`tail` runs without a store".into())
}

async fn demo(blog: &Blog) -> Result<String, Failure> {
    let mut out = String::new();
    let suffix = scenario::free_suffix(blog).await?;
    if suffix.is_empty() {
        writeln!(out, "== playing the scenario ==")?;
    } else {
        writeln!(
            out,
            "== playing the scenario again, with post ids ending in `{suffix}` =="
        )?;
    }
    let outcome = scenario::play(blog, &suffix).await?;
    match &outcome.rejected {
        Some(error) => writeln!(
            out,
            "rejected, as the domain requires: a comment on an archived post: {error}"
        ),
        None => writeln!(
            out,
            "unexpected: a comment on an archived post was accepted"
        ),
    }?;
    writeln!(out)?;
    write!(out, "{}", report::published_posts(blog).await?)?;
    writeln!(out)?;
    if let Some(page) = report::post_page(blog, &outcome.featured_post, Moment::Now).await? {
        write!(out, "{page}")?;
    }
    writeln!(out)?;
    write!(out, "{}", report::authors(blog).await?)?;
    writeln!(out)?;
    write!(out, "{}", report::tags(blog).await?)?;
    writeln!(out)?;
    write!(
        out,
        "{}",
        report::history(blog, &outcome.featured_post).await?
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "mallory was suspended; the draft janitor archived their draft:"
    )?;
    write!(out, "{}", report::history(blog, &outcome.spam_draft).await?)?;
    Ok(out)
}
