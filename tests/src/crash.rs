//! What the crash tests' child process runs, and what the parent checks it against.
//!
//! The child (`es-crash-child`) appends batches, or runs the projection daemon (or the
//! process manager of [`crate::process`]), until it is killed with SIGKILL; the parent kills it at random moments and checks the log and the
//! read models afterwards.

use std::sync::Arc;

use es_core::postgres::{PostgresConfig, PostgresStore};
use es_core::sqlite::SqliteStore;
use es_core::{projection, Docs, Documents, Envelope, Event, EventLogExt, Store, StreamId};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

/// One event of a crash-test batch: its batch number, the batch's size and its index in it.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "crash.appended")]
pub struct Appended {
    /// The batch it belongs to.
    pub batch: u64,
    /// How many events that batch has.
    pub size: u64,
    /// Its index in the batch.
    pub index: u64,
}

/// Batch number `batch` of a crash appender: `batch % 5 + 1` events, each saying its batch,
/// the batch's size and its index in it.
pub fn appended_batch(batch: u64) -> Vec<es_core::NewEvent> {
    let size = batch % 5 + 1;
    (0..size)
        .map(|index| es_core::NewEvent {
            event_name: Appended::NAME.into(),
            schema_version: 1,
            metadata: es_core::Metadata::new(uuid::Uuid::now_v7()),
            payload: es_core::Payload::encode(&Appended { batch, size, index })
                .expect("a crash event serializes"),
        })
        .collect()
}

/// Per stream: how many `crash.appended` events, and the sum of their batch numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Events applied.
    pub events: u64,
    /// Sum of their batch numbers: a duplicate or a loss changes it.
    pub batch_sum: u64,
}

/// Counts what the appender wrote, per stream.
#[projection(name = "crash_tallies", per_stream)]
#[derive(Debug)]
pub struct Tallies;

#[projection]
impl Tallies {
    #[on]
    fn appended(&self, event: &Envelope<Appended>, docs: &mut Docs<Tally>) {
        docs.upsert(event.aggregate_id(), |tally| {
            tally.events += 1;
            tally.batch_sum += event.event.batch;
        });
    }
}

/// The same count as [`Tallies`], in a SQL table of its own: exactly once for SQL
/// projections too.
#[derive(Debug)]
pub struct SqlTallies;

#[async_trait::async_trait]
impl es_core::sql::SqlProjection for SqlTallies {
    const NAME: &'static str = "crash_sql_tallies";
    const VERSION: &'static str = "1";
    const EVENTS: &'static [&'static str] = &[Appended::NAME, es_core::RolledBack::NAME];
    const TABLES: &'static [&'static str] = &["tallies"];

    async fn create_tables(
        &self,
        sql: &mut es_core::sql::SqlTx<'_>,
    ) -> Result<(), es_core::BoxError> {
        sql.execute(
            "CREATE TABLE {tallies} (stream TEXT PRIMARY KEY, events BIGINT NOT NULL, batch_sum BIGINT NOT NULL)",
            &[],
        )
        .await?;
        Ok(())
    }

    async fn apply(
        &self,
        event: &es_core::RecordedEvent,
        sql: &mut es_core::sql::SqlTx<'_>,
    ) -> Result<(), es_core::BoxError> {
        let Some(appended) = event.decode_as::<Appended>()? else {
            return Err("the crash tallies never see a rollback".into());
        };
        sql.execute(
            "INSERT INTO {tallies} (stream, events, batch_sum) VALUES ($1, 1, $2) \
             ON CONFLICT (stream) DO UPDATE SET events = {tallies}.events + 1, batch_sum = {tallies}.batch_sum + $2",
            &[
                event.aggregate_id().into(),
                es_core::sql::SqlValue::try_from(appended.batch)?,
            ],
        )
        .await?;
        Ok(())
    }
}

/// The projections the crash tests run: the same count as documents and as SQL.
pub fn crash_projections() -> es_core::Projections {
    es_core::Projections::new()
        .with(Tallies)
        .with_sql(SqlTallies)
}

/// What a single process applying the whole log once would count for the `crash` stream
/// `stream_id`: its events in the log, and the sum of their batch numbers.
pub async fn logged_tally(store: &dyn Store, stream_id: &str) -> Tally {
    let stream = StreamId::new("crash", stream_id).expect("a crash stream id");
    let events: Vec<_> = store
        .stream_events(&stream, 1)
        .try_collect()
        .await
        .expect("read the crash stream");
    Tally {
        events: events.len() as u64,
        batch_sum: events
            .iter()
            .map(|event| {
                event
                    .event
                    .decode::<Appended>()
                    .expect("a crash.appended event")
                    .batch
            })
            .sum(),
    }
}

/// What the read models hold for the `crash` stream `stream_id`: the [`Tallies`] document
/// and the [`SqlTallies`] row (zero when missing).
pub async fn projected_tallies(store: &dyn Store, stream_id: &str) -> (Tally, Tally) {
    let document = Documents::<Tallies>::of(store)
        .get(stream_id)
        .await
        .expect("read the tally document")
        .unwrap_or_default();
    let rows = es_core::sql::query::<SqlTallies>(
        store,
        "SELECT events, batch_sum FROM {tallies} WHERE stream = $1",
        &[stream_id.into()],
    )
    .await
    .expect("read the tally row");
    let column = |name| rows.get(0, name).and_then(|v| v.as_i64()).unwrap_or(0) as u64;
    let sql = Tally {
        events: column("events"),
        batch_sum: column("batch_sum"),
    };
    (document, sql)
}

/// Opens `sqlite:PATH` or `postgres:URL#SCHEMA`.
pub async fn open(spec: &str) -> Arc<dyn Store> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        return Arc::new(SqliteStore::open(path).await.expect("open SQLite"));
    }
    if let Some(rest) = spec.strip_prefix("postgres:") {
        let (url, schema) = rest.split_once('#').expect("postgres:URL#SCHEMA");
        return Arc::new(
            PostgresStore::connect_with(PostgresConfig::new(url).schema(schema))
                .await
                .expect("connect to PostgreSQL"),
        );
    }
    panic!("unknown store spec `{spec}`")
}

/// The head position once no write is still landing: polled until it stays the same for
/// half a second (at most 30 s).
///
/// A killed child's last append can commit after the child is gone: PostgreSQL runs a
/// statement it has fully received, and commits it, before it notices the client left. A
/// test that takes the head right after the kill may miss that event, and then find it in
/// the log it compares against.
pub async fn settled_head(store: &dyn Store) -> u64 {
    const QUIET: std::time::Duration = std::time::Duration::from_millis(500);
    const STEP: std::time::Duration = std::time::Duration::from_millis(50);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut head = store.head_position().await.expect("the head position");
    let mut quiet_since = std::time::Instant::now();
    while quiet_since.elapsed() < QUIET {
        assert!(
            std::time::Instant::now() < deadline,
            "the head kept moving for 30 s after the writers were killed"
        );
        tokio::time::sleep(STEP).await;
        let now = store.head_position().await.expect("the head position");
        if now != head {
            head = now;
            quiet_since = std::time::Instant::now();
        }
    }
    head
}
