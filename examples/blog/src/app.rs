//! Wiring: one store, a repository per aggregate, the projection daemon that keeps the
//! read models in the store's database up to date, and the draft janitor.

use std::sync::Arc;
use std::time::Duration;

use es_core::process::{Clock, Dispatcher, ProcessConfig, ProcessRunner, SystemClock};
use es_core::{Daemon, ProjectionError, Projections, Repository, Store};

use crate::author::Author;
use crate::janitor::DraftJanitor;
use crate::post::Post;
use crate::tags::TagCounts;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// How the blog runs, beyond its store.
#[derive(Clone, Debug)]
pub struct BlogConfig {
    /// The draft janitor, with how long a draft may stay untouched.
    pub janitor: DraftJanitor,
    /// The time the janitor's deadlines come due by.
    pub clock: Arc<dyn Clock>,
}

impl Default for BlogConfig {
    fn default() -> Self {
        BlogConfig {
            janitor: DraftJanitor::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// How long a read waits for the read models to show every event committed before it.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The blog's services over one store.
#[derive(Debug)]
pub struct Blog {
    pub posts: Repository<Post>,
    pub authors: Repository<Author>,
    pub store: Arc<dyn Store>,
    pub projections: Projections,
    daemon: Daemon,
    janitor: ProcessRunner,
}

impl Blog {
    /// Opens the blog on `store` with the default configuration: see [`open_with`](Self::open_with).
    pub async fn open(store: Arc<dyn Store>) -> Result<Self, Failure> {
        Self::open_with(store, BlogConfig::default()).await
    }

    /// Opens the blog on `store`, starts the projection daemon and the draft janitor.
    /// Nothing is replayed: each read model goes on from its checkpoint (and is rebuilt
    /// beside the live one, by itself, when its code changed), the janitor from its own.
    pub async fn open_with(store: Arc<dyn Store>, config: BlogConfig) -> Result<Self, Failure> {
        // Every `#[projection]` linked into this binary, found through `inventory`; and the
        // SQL read model where the store has SQL (SQLite, PostgreSQL).
        let mut projections = Projections::discover();
        if store.sql_table_name("tags").is_some() {
            projections = projections.with_sql(TagCounts);
        }
        let daemon = Daemon::start(store.clone(), projections.clone()).await?;
        let posts = Repository::new(Arc::clone(&store));
        let janitor = ProcessRunner::start(
            store.clone(),
            Dispatcher::new().route(posts.clone()),
            config.clock,
            config.janitor,
            ProcessConfig::default(),
        )
        .await?;
        Ok(Blog {
            posts,
            // Authors' handlers read the time from their `Clock` service; `new` gives them
            // its default, the system clock (`Repository::with_services` would give another).
            authors: Repository::new(Arc::clone(&store)),
            store,
            projections,
            daemon,
            janitor,
        })
    }

    /// The draft janitor: its health, and waits for it.
    pub fn janitor(&self) -> &ProcessRunner {
        &self.janitor
    }

    /// The running daemon: health, read-your-writes waits, restarts.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Waits (at most [`SETTLE_TIMEOUT`] per step) until the janitor has answered every event
    /// committed so far (and fired the deadlines due now), and every read model shows every
    /// event, the janitor's included: a read after a write sees the write and what followed
    /// from it. Commands never wait for this; readers who want their own writes do.
    pub async fn settle(&self) -> Result<(), Failure> {
        let mut head = self.store.head_position().await?;
        // The janitor's archives are events too, which it reads in turn (and answers with
        // none): wait until the head stops moving, or stop chasing it (other processes may
        // keep writing) after one timeout's worth and settle what was seen.
        let chase_until = std::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            if !self.janitor.wait_for(head, SETTLE_TIMEOUT).await? {
                return Err(format!(
                    "the draft janitor has not answered the events up to position {head} within {SETTLE_TIMEOUT:?}; see `blog status`"
                )
                .into());
            }
            let moved = self.store.head_position().await?;
            if moved == head || std::time::Instant::now() >= chase_until {
                break;
            }
            head = moved;
        }
        self.settle_read_models(head).await?;
        Ok(())
    }

    async fn settle_read_models(&self, head: u64) -> Result<(), ProjectionError> {
        for name in self.projections.names() {
            if head > 0 && !self.daemon.wait_for(name, head, SETTLE_TIMEOUT).await? {
                let why = match self.store.read_all_blocker().await? {
                    Some(blocker) => format!("read-all is held back by a {blocker}"),
                    None => "see `blog status`".to_owned(),
                };
                return Err(ProjectionError::Stopped {
                    projection: name.to_owned(),
                    position: head,
                    error: format!(
                        "it has not reached position {head} within {SETTLE_TIMEOUT:?}; {why}"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Stops the daemon and the janitor after their current batches.
    pub async fn close(self) {
        self.janitor.shutdown().await;
        self.daemon.shutdown().await;
    }
}
