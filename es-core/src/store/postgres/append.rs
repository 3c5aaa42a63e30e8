//! Appending: one statement on one connection, alone or inside a [`PgTransaction`].
//!
//! The statement reads the stream's version, looks for an earlier run of the batch's command
//! (its command id on the same stream), checks the expectation and inserts the batch in one
//! round trip; an earlier run's events are then read back on the same connection. A concurrent writer that committed the same version first makes the
//! insert fail with a unique violation; the actual version is then read on the same
//! connection, so an append never holds more than one pooled connection (a second checkout
//! per writer starves the pool once writers outnumber connections).

use std::sync::Arc;

use deadpool_postgres::{ClientWrapper, Object};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};
use uuid::Uuid;

use super::config::Timeouts;
use super::connection::{self, QueryError};
use super::decode::{self, metadata_column, Names, RowReader, EVENT_COLUMNS};
use super::Shared;
use crate::envelope::{NewEvent, RecordedEvent};
use crate::error::{Refusal, StoreError};
use crate::store::{self, conflict, ExpectedVersion};
use crate::stream::StreamId;

/// Bits of a position that number the events of one transaction.
pub(super) const INDEX_BITS: u32 = 20;
/// The most events one transaction may append, across all its appends.
pub(super) const MAX_EVENTS_PER_TRANSACTION: u64 = (1 << INDEX_BITS) - 1;

/// How many times an append expecting [`ExpectedVersion::Any`] retries after losing the
/// race for the next version; each loss means another writer made progress.
const ANY_ATTEMPTS: u32 = 100;

/// The SQL of the append statements, with the schema filled in.
#[derive(Debug)]
pub(super) struct Sql {
    /// A batch, as column arrays unnested.
    many: String,
    /// Exactly one event, with scalar parameters: no arrays to encode and unnest.
    one: String,
    stream_version: String,
    /// The events a command appended to a stream, in order.
    command_events: String,
    /// Tells listeners (daemons in any process) that events were appended. Sent right after
    /// the appending transaction commits, as a transaction of its own, never inside it:
    /// PostgreSQL serializes the commits of notifying transactions on one database-wide
    /// lock held through the commit's WAL flush, which halved the throughput of concurrent
    /// writers. On its own it writes no WAL and holds the lock for microseconds.
    notify: String,
}

impl Sql {
    pub(super) fn new(schema: &str) -> Self {
        let events = format!("\"{schema}\".es_events");
        // $1 stream, $2..$6 the events, $7 the expected version (NULL: any), $8 the number
        // of events this transaction appended before, $9 the command id (NULL: none). Every
        // part reads the same snapshot, so an earlier run of the command that this statement
        // cannot see has not committed: if it commits, one of the two inserts of the stream's
        // next version fails on the primary key, and the loser reads the winner back.
        let statement = |source: &str| {
            format!(
                "WITH current AS (
                    SELECT coalesce(max(version), 0)::bigint AS version FROM {events} WHERE stream_id = $1::text
                 ), earlier AS (
                    SELECT count(*)::bigint AS events FROM {events}
                    WHERE command_id = $9::uuid AND stream_id = $1::text
                 ), inserted AS (
                    INSERT INTO {events} (position, version, schema_version, event_id, command_id, stream_id, event_name, payload, metadata)
                    SELECT (pg_current_xact_id()::text::bigint << {INDEX_BITS}) + $8::bigint + batch.ord,
                           current.version + batch.ord, batch.schema_version, batch.event_id, $9, $1,
                           batch.event_name, batch.payload::json, batch.metadata::json
                    FROM current, earlier, {source}
                    WHERE earlier.events = 0 AND ($7::bigint IS NULL OR current.version = $7::bigint)
                    RETURNING position, version, recorded_at
                 )
                 SELECT current.version AS current_version, earlier.events AS earlier_events,
                        inserted.position, inserted.version, inserted.recorded_at
                 FROM current CROSS JOIN earlier LEFT JOIN inserted ON true
                 ORDER BY inserted.version"
            )
        };
        Sql {
            many: statement(
                "unnest($2::text[], $3::int[], $4::uuid[], $5::text[], $6::text[])
                    WITH ORDINALITY AS batch(event_name, schema_version, event_id, metadata, payload, ord)",
            ),
            one: statement(
                "(SELECT $2::text AS event_name, $3::int AS schema_version, $4::uuid AS event_id,
                         $5::text AS metadata, $6::text AS payload, 1::bigint AS ord) AS batch",
            ),
            // The payload is the head (at least this append's last position): one step down
            // the position index.
            notify: format!(
                "SELECT pg_notify('{}', (SELECT coalesce(max(position), 0) FROM {events})::text)",
                super::listener::channel(schema)
            ),
            stream_version: format!(
                "SELECT coalesce(max(version), 0)::bigint AS version FROM {events} WHERE stream_id = $1::text"
            ),
            command_events: format!(
                "SELECT {EVENT_COLUMNS} FROM {events}
                 WHERE command_id = $2::uuid AND stream_id = $1::text ORDER BY version"
            ),
        }
    }

    pub(super) fn stream_version(&self) -> &str {
        &self.stream_version
    }
}

/// Where an append runs.
#[derive(Clone, Copy)]
enum Mode {
    /// Alone: the statement commits by itself.
    Alone,
    /// Inside a caller's transaction, which already appended this many events.
    InTransaction { appended: u64 },
}

/// Appends on its own pooled connection, committing by itself.
pub(super) async fn append_alone(
    shared: &Shared,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    crate::limits::check_append(stream, &events)?;
    if events.is_empty() && expected == ExpectedVersion::Any {
        return Ok(Vec::new());
    }
    let client = connection::checkout(&shared.pool, &shared.timeouts).await?;
    let result = append_on(&client, shared, stream, expected, events, Mode::Alone).await;
    let recorded = release(client, result)?;
    if let Some(last) = recorded.last() {
        // Wakes this process's daemons now; others hear the notification.
        shared.listener.appended(last.position);
    }
    Ok(recorded)
}

/// Returns a connection to the pool, or drops it when the failure left it unusable.
fn release<T>(client: Object, result: Result<T, Failed>) -> Result<T, StoreError> {
    match result {
        Ok(value) => Ok(value),
        Err(Failed { error, poisoned }) => {
            if poisoned {
                drop(Object::take(client));
            }
            Err(error)
        }
    }
}

/// A failed append, and whether its connection must leave the pool.
struct Failed {
    error: StoreError,
    poisoned: bool,
}

impl From<StoreError> for Failed {
    fn from(error: StoreError) -> Self {
        Failed {
            error,
            poisoned: false,
        }
    }
}

/// The events as parameters of one statement.
struct Columns<'a> {
    names: Vec<&'a str>,
    schema_versions: Vec<i32>,
    event_ids: Vec<Uuid>,
    metadata: Vec<String>,
    payloads: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn new(events: &'a [NewEvent]) -> Result<Self, StoreError> {
        let schema_versions = events
            .iter()
            .map(|event| {
                i32::try_from(event.schema_version)
                    .map_err(|_| SchemaVersionTooLarge(event.schema_version))
            })
            .collect::<Result<_, _>>()
            .map_err(|error| StoreError::backend("appending to PostgreSQL", error))?;
        Ok(Columns {
            names: events.iter().map(|event| &*event.event_name).collect(),
            schema_versions,
            event_ids: events.iter().map(|event| event.metadata.event_id).collect(),
            metadata: events
                .iter()
                .map(|event| metadata_column(&event.metadata))
                .collect(),
            payloads: events.iter().map(|event| event.payload.as_str()).collect(),
        })
    }
}

/// An event schema version the `int` column cannot hold. Stored as `int` rather than
/// `bigint` because on a typical row the 4 bytes cost 8 (alignment); no real schema
/// reaches 2^31 versions.
#[derive(Debug, thiserror::Error)]
#[error("event schema version {0} is larger than the PostgreSQL store keeps ({max}); nothing was written", max = i32::MAX)]
struct SchemaVersionTooLarge(u32);

/// What one run of the append statement found.
enum Attempt {
    Appended(Inserted),
    /// The command had already appended to the stream; nothing was inserted.
    AlreadyRecorded,
    /// The stream was at another version; nothing was inserted.
    WrongVersion(u64),
}

/// The append on `client`. In a transaction, each run is wrapped in a savepoint, so a lost
/// race or a stale plan leaves the caller's transaction as it was and can be retried.
async fn append_on(
    client: &ClientWrapper,
    shared: &Shared,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    mode: Mode,
) -> Result<Vec<RecordedEvent>, Failed> {
    let timeouts = &shared.timeouts;
    let expected_version: Option<i64> = match expected {
        ExpectedVersion::Any => None,
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::Exact(version) => match i64::try_from(version) {
            Ok(version) => Some(version),
            // No stream reaches a version past i64::MAX here: the expectation is wrong.
            Err(_) => {
                let actual = stream_version_on(client, shared, stream).await?;
                return Err(conflict(stream, expected, actual).into());
            }
        },
    };
    if events.is_empty() {
        let actual = stream_version_on(client, shared, stream).await?;
        expected.check(stream, actual)?;
        return Ok(Vec::new());
    }
    let appended_before = match mode {
        Mode::Alone => 0,
        Mode::InTransaction { appended } => appended,
    };
    let count = events.len() as u64;
    if appended_before + count > MAX_EVENTS_PER_TRANSACTION {
        return Err(StoreError::Refused {
            stream: stream.clone(),
            refusal: Refusal::TooManyEvents {
                count: usize::try_from(appended_before + count).unwrap_or(usize::MAX),
                max: MAX_EVENTS_PER_TRANSACTION as usize,
            },
        }
        .into());
    }
    // Below 2^20, checked above.
    let offset = appended_before as i64;
    let columns = Columns::new(&events)?;
    let sql = if events.len() == 1 {
        &shared.sql.append.one
    } else {
        &shared.sql.append.many
    };
    let key = stream.as_str();
    let command_id = events.first().and_then(|event| event.metadata.command_id);
    let params: [&(dyn ToSql + Sync); 9] = if events.len() == 1 {
        [
            &key,
            &columns.names[0],
            &columns.schema_versions[0],
            &columns.event_ids[0],
            &columns.metadata[0],
            &columns.payloads[0],
            &expected_version,
            &offset,
            &command_id,
        ]
    } else {
        [
            &key,
            &columns.names,
            &columns.schema_versions,
            &columns.event_ids,
            &columns.metadata,
            &columns.payloads,
            &expected_version,
            &offset,
            &command_id,
        ]
    };
    let mut lost_races = 0;
    let mut replanned = false;
    loop {
        let result = run_statement(client, sql, &params, shared, mode).await;
        let error = match result {
            Ok(rows) => match attempt(&rows, stream, events.len())? {
                Attempt::Appended(inserted) => return Ok(recorded(stream, inserted, events)),
                Attempt::AlreadyRecorded => {
                    if let Some(command_id) = command_id {
                        let first_run =
                            command_events_on(client, shared, stream, command_id).await?;
                        if !first_run.is_empty() {
                            return Ok(first_run);
                        }
                    }
                    return Err(StoreError::backend(
                        "appending to PostgreSQL",
                        Unexpected("an earlier run of the command was found, then not read back"),
                    )
                    .into());
                }
                Attempt::WrongVersion(actual) => {
                    return Err(conflict(stream, expected, actual).into())
                }
            },
            Err(error) => error,
        };
        if error.is_stale_plan() && !replanned {
            // A schema change altered the statement's result columns; prepare it again.
            replanned = true;
            connection::forget_statement(client, sql);
            continue;
        }
        if error.is_unique_violation() {
            // Another run of this command may have won the race: then its events are the
            // answer, not an error.
            if let Some(command_id) = command_id {
                let first_run = command_events_on(client, shared, stream, command_id).await?;
                if !first_run.is_empty() {
                    return Ok(first_run);
                }
            }
            lost_races += 1;
            if expected == ExpectedVersion::Any && lost_races < ANY_ATTEMPTS {
                // `Any` promised to append whatever the version: try again.
                continue;
            }
            let actual = stream_version_on(client, shared, stream).await?;
            return Err(conflict(stream, expected, actual).into());
        }
        let poisoned = error.poisons_connection();
        let error = match mode {
            Mode::Alone => error.into_store_after_commit("appending to PostgreSQL", timeouts),
            // Nothing commits until the caller commits.
            Mode::InTransaction { .. } => error.into_store("appending to PostgreSQL", timeouts),
        };
        return Err(Failed { error, poisoned });
    }
}

/// Version, position and time of each inserted event, in order.
type Inserted = Vec<(u64, u64, chrono::DateTime<chrono::Utc>)>;

/// Reads the append statement's rows: the stream's version, and what was inserted.
fn attempt(rows: &[Row], stream: &StreamId, count: usize) -> Result<Attempt, StoreError> {
    let Some(first) = rows.first() else {
        return Err(StoreError::backend(
            "appending to PostgreSQL",
            Unexpected("the append statement returned no row"),
        ));
    };
    let current = decode::count(first, Some(stream), "current_version")?;
    if decode::count(first, Some(stream), "earlier_events")? > 0 {
        return Ok(Attempt::AlreadyRecorded);
    }
    if matches!(first.try_get::<_, Option<i64>>("position"), Ok(None)) {
        return Ok(Attempt::WrongVersion(current));
    }
    let mut inserted: Inserted = Vec::with_capacity(count);
    for row in rows {
        let mut reader = RowReader::of_stream(row, stream);
        let version = reader.version()?;
        inserted.push((version, reader.position()?, reader.time("recorded_at")?));
    }
    if inserted.len() != count {
        return Err(StoreError::backend(
            "appending to PostgreSQL",
            Unexpected("the append statement returned another number of rows than it inserted"),
        ));
    }
    Ok(Attempt::Appended(inserted))
}

/// The recorded events: what the statement assigned, and what the caller sent (moved).
fn recorded(stream: &StreamId, inserted: Inserted, events: Vec<NewEvent>) -> Vec<RecordedEvent> {
    inserted
        .into_iter()
        .zip(events)
        .map(|((version, position, recorded_at), event)| {
            store::recorded(event, stream, (version, position), recorded_at)
        })
        .collect()
}

/// Runs the append statement the way `mode` needs: by itself with its notification, or in
/// a savepoint of the caller's transaction.
async fn run_statement(
    client: &ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    shared: &Shared,
    mode: Mode,
) -> Result<Vec<Row>, QueryError> {
    let timeouts = &shared.timeouts;
    let run = Run {
        client,
        statement: connection::bounded(timeouts, client.prepare_cached(sql)).await?,
        params,
        timeouts,
    };
    match mode {
        Mode::Alone => run.then_notify(&shared.sql.append.notify).await,
        Mode::InTransaction { .. } => run.in_savepoint().await,
    }
}

/// One run of the prepared append statement, on the connection the append holds.
struct Run<'a> {
    client: &'a ClientWrapper,
    statement: Statement,
    params: &'a [&'a (dyn ToSql + Sync)],
    timeouts: &'a Timeouts,
}

impl Run<'_> {
    /// Runs the append inside a savepoint, pipelined: SAVEPOINT, the statement and RELEASE
    /// are sent together, one round trip. When the statement fails, the transaction is
    /// rolled back to the savepoint, so it stays usable.
    async fn in_savepoint(&self) -> Result<Vec<Row>, QueryError> {
        let client = self.client;
        // `join!` polls in order, and each call queues its request on its first poll, so the
        // server receives them in this order.
        let (savepoint, rows, release) = connection::bounded(self.timeouts, async {
            let (savepoint, rows, release) = futures::join!(
                client.batch_execute("SAVEPOINT es_append"),
                client.query(&self.statement, self.params),
                client.batch_execute("RELEASE SAVEPOINT es_append"),
            );
            Ok((savepoint, rows, release))
        })
        .await?;
        savepoint?;
        match rows {
            Ok(rows) => {
                release?;
                Ok(rows)
            }
            Err(error) => {
                let error = QueryError::Driver(error);
                if error.is_server_error() {
                    connection::execute_batch(
                        client,
                        "ROLLBACK TO SAVEPOINT es_append; RELEASE SAVEPOINT es_append",
                        self.timeouts,
                    )
                    .await?;
                }
                Err(error)
            }
        }
    }

    /// Runs the append by itself, pipelined with the notification (`notify_sql`) that
    /// follows its commit: one round trip. A notification after a failed append only wakes a
    /// daemon for nothing; a lost one leaves daemons of other processes to their polling.
    async fn then_notify(&self, notify_sql: &str) -> Result<Vec<Row>, QueryError> {
        let client = self.client;
        let notify = connection::bounded(self.timeouts, client.prepare_cached(notify_sql)).await?;
        // `join!` polls in order, so the server receives the append first.
        let (rows, _notified) = connection::bounded(self.timeouts, async {
            Ok(futures::join!(
                client.query(&self.statement, self.params),
                client.query(&notify, &[]),
            ))
        })
        .await?;
        Ok(rows?)
    }
}

/// The stream's version, read on the connection the append holds.
async fn stream_version_on(
    client: &ClientWrapper,
    shared: &Shared,
    stream: &StreamId,
) -> Result<u64, Failed> {
    let key = stream.as_str();
    match connection::query(
        client,
        shared.sql.append.stream_version(),
        &[&key],
        &shared.timeouts,
    )
    .await
    {
        Ok(rows) => match rows.first() {
            Some(row) => Ok(decode::count(row, Some(stream), "version")?),
            None => Ok(0),
        },
        Err(error) => Err(Failed {
            poisoned: error.poisons_connection(),
            error: error.into_store("reading a PostgreSQL stream version", &shared.timeouts),
        }),
    }
}

/// The events an earlier run of a command appended to `stream`, read on the connection the
/// append holds (in a transaction, its own appends included).
async fn command_events_on(
    client: &ClientWrapper,
    shared: &Shared,
    stream: &StreamId,
    command_id: Uuid,
) -> Result<Vec<RecordedEvent>, Failed> {
    let key = stream.as_str();
    let rows = connection::query(
        client,
        &shared.sql.append.command_events,
        &[&key, &command_id],
        &shared.timeouts,
    )
    .await
    .map_err(|error| Failed {
        poisoned: error.poisons_connection(),
        error: error.into_store(
            "reading back a command's PostgreSQL events",
            &shared.timeouts,
        ),
    })?;
    let mut names = Names::default();
    Ok(rows
        .iter()
        .map(|row| decode::recorded_event(row, Some(stream), &mut names))
        .collect::<Result<_, _>>()?)
}

/// The server answered in a way this code does not expect.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unexpected(&'static str);

/// Appends to one or several streams in one PostgreSQL transaction, committed (or rolled
/// back) together with whatever else the caller writes on [`client`](Self::client), e.g. a
/// read model in the same database.
///
/// Positions continue across the appends of the transaction, so all of them can commit.
/// A failed append (a conflict, a timeout) is rolled back to just before it; the
/// transaction stays usable. Dropping it without [`commit`](Self::commit) rolls it back.
///
/// ```no_run
/// # async fn demo(store: &es_core::postgres::PostgresStore, order: &es_core::StreamId,
/// #     stock: &es_core::StreamId, placed: Vec<es_core::NewEvent>, reserved: Vec<es_core::NewEvent>)
/// #     -> Result<(), es_core::StoreError> {
/// use es_core::ExpectedVersion;
///
/// let mut transaction = store.transaction().await?;
/// transaction.append(order, ExpectedVersion::NoStream, placed).await?;
/// transaction.append(stock, ExpectedVersion::Exact(7), reserved).await?;
/// transaction.commit().await?; // both, or neither
/// # Ok(()) }
/// ```
pub struct PgTransaction {
    /// `None` once committed or rolled back.
    client: Option<Object>,
    shared: Arc<Shared>,
    /// Events appended so far; the next append numbers its positions after them.
    appended: u64,
    /// The position of the last event appended, to wake this process's daemons at commit.
    last_position: Option<u64>,
}

impl std::fmt::Debug for PgTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTransaction")
            .field("schema", &self.shared.schema)
            .field("appended", &self.appended)
            .finish_non_exhaustive()
    }
}

impl PgTransaction {
    /// Checks out a connection and starts a transaction on it.
    pub(super) async fn begin(shared: Arc<Shared>) -> Result<Self, StoreError> {
        let client = connection::checkout(&shared.pool, &shared.timeouts).await?;
        match connection::execute_batch(&client, "BEGIN", &shared.timeouts).await {
            Ok(()) => Ok(PgTransaction {
                client: Some(client),
                shared,
                appended: 0,
                last_position: None,
            }),
            Err(error) => {
                drop(Object::take(client));
                Err(error.into_store("starting a PostgreSQL transaction", &shared.timeouts))
            }
        }
    }

    /// Closes the connection (the server rolls the transaction back) after a failure that
    /// left it unusable; later statements fail, and a commit is an error.
    pub(super) fn discard_connection(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }

    pub(super) fn open_client(&self) -> Result<&Object, StoreError> {
        self.client.as_ref().ok_or_else(|| {
            StoreError::backend(
                "using a PostgreSQL transaction",
                Unexpected("the transaction has lost its connection"),
            )
        })
    }

    /// Appends to `stream` within the transaction, like [`EventLog::append`]; nothing is
    /// visible to others until [`commit`](Self::commit).
    ///
    /// [`EventLog::append`]: crate::EventLog::append
    pub async fn append(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        crate::limits::check_append(stream, &events)?;
        let client = self.open_client()?;
        let count = events.len() as u64;
        let mode = Mode::InTransaction {
            appended: self.appended,
        };
        match append_on(client, &self.shared, stream, expected, events, mode).await {
            Ok(recorded) => {
                self.appended += count;
                if let Some(last) = recorded.last() {
                    self.last_position = Some(last.position);
                }
                Ok(recorded)
            }
            Err(Failed { error, poisoned }) => {
                if poisoned {
                    if let Some(client) = self.client.take() {
                        drop(Object::take(client));
                    }
                }
                Err(error)
            }
        }
    }

    /// The connection, to run the caller's own statements inside the transaction.
    pub fn client(&self) -> Result<&tokio_postgres::Client, StoreError> {
        self.open_client().map(|client| &***client)
    }

    /// Commits every append and every statement of the transaction, or none.
    ///
    /// A transaction in which a statement failed (and was not rolled back to a savepoint) is
    /// rolled back and the commit is an error: PostgreSQL would answer such a COMMIT with a
    /// silent ROLLBACK. If the connection is lost after the COMMIT was sent, the result is
    /// [`StoreError::OutcomeUnknown`].
    pub async fn commit(mut self) -> Result<(), StoreError> {
        let client = self.client.take().ok_or_else(|| {
            StoreError::backend(
                "committing a PostgreSQL transaction",
                Unexpected("the transaction has lost its connection; nothing was committed"),
            )
        })?;
        let timeouts = self.shared.timeouts;
        // `SELECT 1` fails in an aborted transaction, and then the rest of the batch is
        // skipped: COMMIT only runs in a healthy transaction. When events were appended, the
        // notification follows as its own statement (see `Sql::notify`), in the same round
        // trip; its outcome does not change the commit's.
        let committed = if self.last_position.is_some() {
            let notify = &self.shared.sql.append.notify;
            connection::bounded(&timeouts, async {
                let (committed, _notified) = futures::join!(
                    client.batch_execute("SELECT 1; COMMIT"),
                    client.batch_execute(notify),
                );
                committed
            })
            .await
        } else {
            connection::execute_batch(&client, "SELECT 1; COMMIT", &timeouts).await
        };
        match committed {
            Ok(()) => {
                if let Some(last) = self.last_position {
                    self.shared.listener.appended(last);
                }
                Ok(())
            }
            Err(error)
                if error.code()
                    == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION) =>
            {
                let rolled_back = connection::execute_batch(&client, "ROLLBACK", &timeouts).await;
                if rolled_back.is_err() {
                    drop(Object::take(client));
                }
                Err(StoreError::backend(
                    "cannot commit: a statement of this PostgreSQL transaction failed, so it was rolled back",
                    connection::DriverError::from(match error {
                        QueryError::Driver(error) => error,
                        // Only a driver error carries a code.
                        QueryError::NoReply(_) => return Err(StoreError::backend("committing a PostgreSQL transaction", Unexpected("no reply"))),
                    }),
                ))
            }
            Err(error) => {
                let poisoned = error.poisons_connection();
                let error =
                    error.into_store_after_commit("committing a PostgreSQL transaction", &timeouts);
                if poisoned {
                    drop(Object::take(client));
                } else {
                    // A server error ended the transaction; make sure the connection is clean.
                    if connection::execute_batch(&client, "ROLLBACK", &timeouts)
                        .await
                        .is_err()
                    {
                        drop(Object::take(client));
                    }
                }
                Err(error)
            }
        }
    }

    /// Rolls back every append and statement of the transaction.
    pub async fn rollback(mut self) -> Result<(), StoreError> {
        let Some(client) = self.client.take() else {
            // The connection was lost: the server rolled the transaction back.
            return Ok(());
        };
        let timeouts = self.shared.timeouts;
        match connection::execute_batch(&client, "ROLLBACK", &timeouts).await {
            Ok(()) => Ok(()),
            Err(error) => {
                drop(Object::take(client));
                Err(error.into_store("rolling back a PostgreSQL transaction", &timeouts))
            }
        }
    }
}

impl Drop for PgTransaction {
    fn drop(&mut self) {
        // Still open: closing the connection makes the server roll the transaction back; the
        // connection must not go back to the pool mid-transaction.
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}
