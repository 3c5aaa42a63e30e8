//! Wiring: one store, a repository per aggregate, and the projection daemon that keeps the
//! read models in the store's database up to date.

use std::sync::Arc;
use std::time::Duration;

use es_core::{Daemon, ProjectionError, Projections, Repository, Store};

use crate::author::Author;
use crate::post::Post;

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
}

impl Blog {
    /// Opens the blog on `store` and starts the projection daemon. Nothing is replayed: each
    /// read model goes on from its checkpoint (and is rebuilt beside the live one, by itself,
    /// when its code changed).
    pub async fn open(store: Arc<dyn Store>) -> Result<Self, ProjectionError> {
        // Every `#[projection]` linked into this binary, found through `inventory`.
        let projections = Projections::discover();
        let daemon = Daemon::start(store.clone(), projections.clone()).await?;
        Ok(Blog {
            posts: Repository::new(Arc::clone(&store)),
            // Authors' handlers read the time from their `Clock` service; `new` gives them
            // its default, the system clock (`Repository::with_services` would give another).
            authors: Repository::new(Arc::clone(&store)),
            store,
            projections,
            daemon,
        })
    }

    /// The running daemon: health, read-your-writes waits, restarts.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Waits (at most [`SETTLE_TIMEOUT`]) until every read model shows every event committed
    /// so far: a read after a write sees the write. Commands never wait for this; readers
    /// who want their own writes do.
    pub async fn settle(&self) -> Result<(), ProjectionError> {
        let head = self.store.head_position().await?;
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

    /// Stops the daemon after its current batches.
    pub async fn close(self) {
        self.daemon.shutdown().await;
    }
}
