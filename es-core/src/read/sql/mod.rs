//! SQL read models, the escape hatch: a projection that writes tables of its own, in its own
//! SQL, through the batch transaction the runtime gives it (SQLite and PostgreSQL).
//!
//! ```no_run
//! use es_core::sql::{SqlProjection, SqlTx};
//! use es_core::{BoxError, Event, Projections, RecordedEvent, RolledBack};
//! # #[derive(Event, Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
//! # #[event(name = "post.published")] pub struct PostPublished { pub title: String }
//!
//! /// Published titles, in a table of our own with a full-text-friendly shape.
//! pub struct PublishedTitles;
//!
//! #[es_core::async_trait]
//! impl SqlProjection for PublishedTitles {
//!     const NAME: &'static str = "published_titles";
//!     const VERSION: &'static str = "1";
//!     const EVENTS: &'static [&'static str] = &["post.published", RolledBack::NAME];
//!     const TABLES: &'static [&'static str] = &["titles"];
//!
//!     async fn create_tables(&self, sql: &mut SqlTx<'_>) -> Result<(), BoxError> {
//!         sql.execute("CREATE TABLE {titles} (post TEXT PRIMARY KEY, title TEXT NOT NULL)", &[]).await?;
//!         Ok(())
//!     }
//!
//!     async fn apply(&self, event: &RecordedEvent, sql: &mut SqlTx<'_>) -> Result<(), BoxError> {
//!         if let Some(published) = event.decode_as::<PostPublished>()? {
//!             sql.execute(
//!                 "INSERT INTO {titles} (post, title) VALUES ($1, $2) \
//!                  ON CONFLICT (post) DO UPDATE SET title = excluded.title",
//!                 &[event.aggregate_id().into(), published.title.into()],
//!             )
//!             .await?;
//!         } else if event.decode_as::<RolledBack>()?.is_some() {
//!             sql.execute("DELETE FROM {titles} WHERE post = $1", &[event.aggregate_id().into()]).await?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let projections = Projections::discover().with_sql(PublishedTitles);
//! ```
//!
//! # How it runs
//!
//! - **Exactly once.** A batch's statements, the projection's checkpoint and its dead letters
//!   commit in one transaction, as for documents.
//! - **Tables per generation.** `{titles}` in a statement names this generation's table
//!   (`titles__g1`, schema-qualified on PostgreSQL). A rebuild (by hand, or because
//!   `VERSION` changed) creates the next generation's tables with
//!   [`create_tables`](SqlProjection::create_tables), fills them beside the live ones and
//!   swaps them in; the old generation's tables are dropped. What `create_tables` makes is
//!   committed once per generation, so it needs no `IF NOT EXISTS`: when two workers (a
//!   rebuild and a daemon, or two processes) start a generation at once, the one that loses
//!   the race finds the winner's tables and goes on.
//! - **Views under the plain names.** After each swap (and when the daemon starts) a view
//!   `titles` shows the live generation, for other tools; in code, [`query`] resolves
//!   `{titles}` to the live table directly.
//! - **Failures** follow [`ON_FAILURE`](SqlProjection::ON_FAILURE): the batch goes back to a
//!   savepoint and is applied again without the failed event, which stops the projection
//!   there (the default) or goes to the dead letters.
//! - **Other names** a database wants unique per generation (indexes) take `{gen}`, the
//!   generation's number: `CREATE INDEX titles_by_title_{gen} ON {titles} (title)`.
//! - **Placeholders** are `$1`, `$2`, ... on both databases. Write SQL both accept
//!   (`INSERT ... ON CONFLICT ... DO UPDATE` is common to both; in its `SET`, qualify the
//!   row's own columns, `count = {titles}.count + 1`, which PostgreSQL otherwise finds
//!   ambiguous), or one database's SQL if the application only ever uses that one.
//! - **Rollbacks**: the runtime cannot recompute rows it does not understand, so a SQL
//!   projection that may see a rollback marker must handle [`RolledBack`](crate::RolledBack)
//!   itself; the daemon refuses to start one that does not list it in `EVENTS`.
//! - Not on the memory store, which has no SQL: the daemon refuses to start with one there.

mod model;
mod names;
mod value;

use async_trait::async_trait;

use crate::error::{BoxError, StoreError};
use crate::read::projection::OnFailure;
use crate::read::store::ReadStore;
use crate::RecordedEvent;

pub(crate) use model::SqlModel;
pub(crate) use names::plain_identifier;
pub use names::SqlTx;
pub use value::{SqlRows, SqlValue};

/// A read model kept in tables of its own; see the [module documentation](self).
#[async_trait]
pub trait SqlProjection: Send + Sync + 'static {
    /// A stable name: its checkpoint, health and dead letters are filed under it.
    const NAME: &'static str;
    /// Change it whenever the tables or the handler change: the daemon then rebuilds the
    /// projection into new tables beside the live ones, and swaps them in once caught up.
    const VERSION: &'static str;
    /// The stored names of the events it handles (with
    /// [`RolledBack::NAME`](crate::RolledBack) if it handles rollbacks).
    const EVENTS: &'static [&'static str];
    /// Its tables' plain names (lowercase identifiers, not starting with `es_`, not `gen`):
    /// `{name}` in a statement names the generation's table, and a view `name` shows the
    /// live one.
    const TABLES: &'static [&'static str];
    /// What happens when [`apply`](Self::apply) fails on an event.
    const ON_FAILURE: OnFailure = OnFailure::Stop;

    /// Creates the tables (and their indexes) of a new generation, naming each `{name}`.
    async fn create_tables(&self, sql: &mut SqlTx<'_>) -> Result<(), BoxError>;

    /// Applies one event (one of [`EVENTS`](Self::EVENTS)). It may run again on the same
    /// event after a failure elsewhere in its batch, always in a fresh transaction state.
    async fn apply(&self, event: &RecordedEvent, sql: &mut SqlTx<'_>) -> Result<(), BoxError>;
}

/// What SQLite and PostgreSQL batch transactions offer SQL projections.
#[async_trait]
pub trait SqlExecutor: Send {
    /// `name` as the database should be told it: quoted, and schema-qualified on
    /// PostgreSQL.
    fn table_name(&self, name: &str) -> String;
    /// Runs one statement with `$1`, `$2`, ... bound to `params`.
    async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<(), StoreError>;
    /// Runs one query with `$1`, `$2`, ... bound to `params`.
    async fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<SqlRows, StoreError>;
}

/// Runs a read-only query against projection `P`'s live tables: `{name}` names the live
/// generation's table of each of `P::TABLES`. Reads never wait for a batch to commit.
pub async fn query<P: SqlProjection>(
    store: &dyn ReadStore,
    sql: &str,
    params: &[SqlValue],
) -> Result<SqlRows, crate::ProjectionError> {
    let Some(generation) = crate::read::live_generation(store, P::NAME).await? else {
        return Ok(SqlRows::default());
    };
    let resolved = names::resolve(sql, P::TABLES, generation, &|name| {
        store.sql_table_name(name)
    })
    .ok_or_else(|| unsupported::<P>())?;
    Ok(store.query_sql(&resolved, params).await?)
}

/// The error of a SQL projection on a store without SQL.
pub(crate) fn unsupported<P: SqlProjection>() -> StoreError {
    StoreError::Unsupported {
        what: format!(
            "projection `{}` keeps SQL tables, and this store has no SQL: run it on SQLite or PostgreSQL",
            P::NAME
        ),
    }
}
