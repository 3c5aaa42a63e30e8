//! Typed queries over a projection's live documents.

use std::marker::PhantomData;

use crate::error::{ProjectionError, StoreError};
use crate::read::projection::Projection;
use crate::read::store::{DocumentRow, DocumentTable, ListQuery, Order, ReadStore};

/// A projection's documents, read from its live generation.
///
/// ```
/// # use es_core::{projection, Docs, Envelope, Event, MemoryStore, ReadStoreExt};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
/// # pub struct PostPublished { pub author: String }
/// # #[derive(Clone, Debug, Default, Serialize, Deserialize)]
/// # pub struct PostSummary { pub author: String }
/// # #[projection(index(author), per_stream)]
/// # pub struct PostSummaries;
/// # #[projection]
/// # impl PostSummaries {
/// #     #[on]
/// #     fn published(&self, e: &Envelope<PostPublished>, docs: &mut Docs<PostSummary>) {
/// #         docs.upsert(e.aggregate_id(), |s| s.author = e.event.author.clone());
/// #     }
/// # }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let first_page = store
///     .documents::<PostSummaries>()
///     .where_eq("author", "ann")
///     .limit(20)
///     .list()
///     .await?;
/// for (key, summary) in &first_page.items {
///     println!("{key}: {}", summary.author);
/// }
/// # Ok::<(), es_core::ProjectionError>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Documents<'s, P> {
    store: &'s dyn ReadStore,
    query: ListQuery,
    filter: Option<(String, String)>,
    /// The indexed field to order by, and whether largest first.
    order: Option<(String, bool)>,
    projection: PhantomData<fn() -> P>,
}

/// One page of documents in key order; pass `next` to [`Documents::after`] for the next.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<D> {
    /// The documents with their keys.
    pub items: Vec<(String, D)>,
    /// The cursor of the next page, if there may be one.
    pub next: Option<String>,
}

/// Queries for every [`ReadStore`].
pub trait ReadStoreExt: ReadStore {
    /// The documents of projection `P`.
    fn documents<P: Projection>(&self) -> Documents<'_, P>
    where
        Self: Sized,
    {
        Documents::of(self)
    }
}

impl<S: ReadStore> ReadStoreExt for S {}

impl<'s, P: Projection> Documents<'s, P> {
    /// Over a store behind a trait object.
    pub fn of(store: &'s dyn ReadStore) -> Self {
        Documents {
            store,
            query: ListQuery {
                limit: 100,
                ..ListQuery::default()
            },
            filter: None,
            order: None,
            projection: PhantomData,
        }
    }

    /// The document under `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<P::Document>, ProjectionError> {
        let table = self.live_table().await?;
        match self.store.get_document(&table, key).await? {
            Some(row) => Ok(Some(decode::<P>(row)?.1)),
            None => Ok(None),
        }
    }

    /// Only documents whose indexed field `field` equals `value` (as text).
    pub fn where_eq(mut self, field: &str, value: impl ToString) -> Self {
        self.filter = Some((field.to_owned(), value.to_string()));
        self
    }

    /// In the order of indexed field `field` (its value as text, compared byte by byte; then
    /// the key), smallest first; documents without the field are left out.
    pub fn order_by(mut self, field: &str) -> Self {
        self.order = Some((field.to_owned(), false));
        self
    }

    /// As [`order_by`](Self::order_by), largest first: e.g. the newest, ordered by a
    /// timestamp written at a fixed width.
    pub fn order_by_desc(mut self, field: &str) -> Self {
        self.order = Some((field.to_owned(), true));
        self
    }

    /// Only documents after `cursor` (the `next` of the previous page).
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.query.after = Some(cursor.into());
        self
    }

    /// At most `limit` documents per page (100 unless set).
    pub fn limit(mut self, limit: usize) -> Self {
        self.query.limit = limit.max(1);
        self
    }

    /// One page of documents, in key order unless ordered by a field.
    pub async fn list(&self) -> Result<Page<P::Document>, ProjectionError> {
        let table = self.live_table().await?;
        let mut query = self.query.clone();
        if let Some((field, value)) = &self.filter {
            query.filter = Some((index_of::<P>(field)?, value.clone()));
        }
        if let Some((field, descending)) = &self.order {
            // The cursor of an ordered listing is the last row's (value, key), as JSON.
            let after = query
                .after
                .take()
                .map(|cursor| {
                    serde_json::from_str::<(String, String)>(&cursor)
                        .map_err(|_| ProjectionError::InvalidCursor { cursor })
                })
                .transpose()?;
            query.order = Some(Order {
                index: index_of::<P>(field)?,
                descending: *descending,
                after,
            });
        }
        let rows = self.store.list_documents(&table, &query).await?;
        let next = match rows.last() {
            Some(last) if rows.len() == query.limit => Some(self.cursor_of(last)?),
            _ => None,
        };
        let items = rows
            .into_iter()
            .map(decode::<P>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next })
    }

    /// Every document, page after page (for small read models and tests).
    pub async fn all(&self) -> Result<Vec<(String, P::Document)>, ProjectionError> {
        let mut items = Vec::new();
        let mut cursor = self.query.after.clone();
        loop {
            let mut page_query = Documents::<P> {
                store: self.store,
                query: self.query.clone(),
                filter: self.filter.clone(),
                order: self.order.clone(),
                projection: PhantomData,
            };
            page_query.query.after = cursor;
            let page = page_query.list().await?;
            items.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// Where the next page starts after `row`: its key, or with an order its (value, key).
    fn cursor_of(&self, row: &DocumentRow) -> Result<String, ProjectionError> {
        let Some((field, _)) = &self.order else {
            return Ok(row.key.clone());
        };
        let body: serde_json::Value =
            row.body
                .decode()
                .map_err(|source| StoreError::CorruptDocument {
                    projection: P::NAME,
                    key: row.key.clone(),
                    source,
                })?;
        let value = crate::read::batch::index_value(&body, field).unwrap_or_default();
        serde_json::to_string(&(value, &row.key)).map_err(|source| {
            ProjectionError::Store(StoreError::CorruptDocument {
                projection: P::NAME,
                key: row.key.clone(),
                source,
            })
        })
    }

    async fn live_table(&self) -> Result<DocumentTable, StoreError> {
        let generation = crate::read::live_generation(self.store, P::NAME)
            .await?
            .unwrap_or(1);
        Ok(DocumentTable {
            projection: P::NAME.to_owned(),
            generation,
            indexes: P::INDEXES.iter().map(|index| (*index).to_owned()).collect(),
        })
    }
}

/// The index position of `field`, or an error naming the fields that are indexed.
fn index_of<P: Projection>(field: &str) -> Result<usize, ProjectionError> {
    P::INDEXES
        .iter()
        .position(|index| *index == field)
        .ok_or_else(|| ProjectionError::UnknownIndex {
            projection: P::NAME,
            field: field.to_owned(),
            indexes: P::INDEXES.join(", "),
        })
}

fn decode<P: Projection>(row: DocumentRow) -> Result<(String, P::Document), StoreError> {
    match row.body.decode() {
        Ok(doc) => Ok((row.key, doc)),
        Err(source) => Err(StoreError::CorruptDocument {
            projection: P::NAME,
            key: row.key,
            source,
        }),
    }
}
