//! Wiring: one store, a repository per aggregate, and the read models fed after each commit.

use std::sync::Arc;

use es_core::{EventStore, ProjectionError, Projections, Repository};

use crate::author::Author;
use crate::post::Post;

/// The blog's services over one event store.
#[derive(Debug, Clone)]
pub struct Blog {
    pub posts: Repository<Post>,
    pub authors: Repository<Author>,
    pub projections: Projections,
    pub store: Arc<dyn EventStore>,
}

impl Blog {
    /// Opens the blog on `store`, rebuilding the read models from every stored event.
    pub async fn open(store: Arc<dyn EventStore>) -> Result<Self, ProjectionError> {
        // Every `#[projection]` linked into this binary, found through `inventory`.
        let projections = Projections::discover();
        // Up to everything committed so far, even events a store still holds back behind
        // another process's running transaction.
        projections
            .catch_up_to_head(&*store, std::time::Duration::from_secs(5))
            .await?;
        Ok(Blog {
            posts: Repository::new(Arc::clone(&store)).with_projections(projections.clone()),
            authors: Repository::new(Arc::clone(&store)).with_projections(projections.clone()),
            projections,
            store,
        })
    }
}
