//! Talking to the server: checking out a connection, running one statement under a time
//! bound, recovering from stale cached plans, and turning driver errors into typed ones.

use std::time::Duration;

use deadpool_postgres::{ClientWrapper, Object, Pool, PoolError};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::config::Timeouts;
use crate::error::StoreError;

/// Checks a connection out of the pool, waiting at most the checkout timeout (and the
/// connect timeout when a new connection must be opened).
pub(super) async fn checkout(pool: &Pool, timeouts: &Timeouts) -> Result<Object, StoreError> {
    pool.get().await.map_err(|error| match error {
        PoolError::Timeout(deadpool_postgres::TimeoutType::Create) => StoreError::Timeout {
            what: "connecting to PostgreSQL",
            after: timeouts.connect,
        },
        PoolError::Timeout(_) => StoreError::Timeout {
            what: "waiting for a pooled PostgreSQL connection",
            after: timeouts.checkout,
        },
        // The driver's own error says why (refused, auth failed...); deadpool's wrapper adds nothing.
        PoolError::Backend(error) if is_connect_timeout(&error) => StoreError::Timeout {
            what: "connecting to PostgreSQL",
            after: timeouts.connect,
        },
        PoolError::Backend(error) => {
            StoreError::backend("connecting to PostgreSQL", DriverError::from(error))
        }
        other => StoreError::backend("getting a pooled PostgreSQL connection", other),
    })
}

/// Runs one statement on a pooled connection that cannot commit anything by itself (a
/// read, or a write whose failure leaves nothing behind).
pub(super) async fn query_pooled(
    pool: &Pool,
    timeouts: &Timeouts,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    context: &'static str,
) -> Result<Vec<Row>, StoreError> {
    let client = checkout(pool, timeouts).await?;
    match query(&client, sql, params, timeouts).await {
        Ok(rows) => Ok(rows),
        Err(error) => {
            if error.poisons_connection() {
                drop(Object::take(client));
            }
            Err(error.into_store(context, timeouts))
        }
    }
}

/// Why one statement failed.
#[derive(Debug)]
pub(super) enum QueryError {
    /// The driver or the server said why.
    Driver(tokio_postgres::Error),
    /// No reply came within the client-side bound: the server or the network stopped
    /// answering. The connection must not be reused.
    NoReply(Duration),
}

impl From<tokio_postgres::Error> for QueryError {
    fn from(error: tokio_postgres::Error) -> Self {
        QueryError::Driver(error)
    }
}

impl QueryError {
    /// The typed store error, for a statement that cannot have committed anything by itself
    /// (a read, or a write inside a transaction that is not being committed).
    pub(super) fn into_store(self, context: &'static str, timeouts: &Timeouts) -> StoreError {
        match self {
            QueryError::NoReply(after) => StoreError::Timeout {
                what: "a reply from PostgreSQL",
                after,
            },
            QueryError::Driver(error) => driver_error(context, error, timeouts),
        }
    }

    /// The typed store error for a statement that commits when it succeeds (an append outside
    /// a caller's transaction, or COMMIT): losing the connection while it ran means nobody
    /// knows whether it committed.
    pub(super) fn into_store_after_commit(
        self,
        context: &'static str,
        timeouts: &Timeouts,
    ) -> StoreError {
        match self {
            QueryError::NoReply(after) => StoreError::OutcomeUnknown {
                context,
                source: Box::new(NoReplyError(after)),
            },
            QueryError::Driver(error) if is_connection_lost(&error) => StoreError::OutcomeUnknown {
                context,
                source: Box::new(DriverError::from(error)),
            },
            QueryError::Driver(error) => driver_error(context, error, timeouts),
        }
    }

    /// Whether the connection is unusable afterwards and must leave the pool.
    pub(super) fn poisons_connection(&self) -> bool {
        match self {
            QueryError::NoReply(_) => true,
            QueryError::Driver(error) => is_connection_lost(error),
        }
    }

    pub(super) fn code(&self) -> Option<&SqlState> {
        match self {
            QueryError::Driver(error) => error.code(),
            QueryError::NoReply(_) => None,
        }
    }

    /// A unique violation: another writer committed the same stream version first.
    pub(super) fn is_unique_violation(&self) -> bool {
        self.code() == Some(&SqlState::UNIQUE_VIOLATION)
    }

    /// The server refuses to run a statement prepared before a schema change altered its
    /// result columns ("cached plan must not change result type"). Preparing it again fixes it.
    pub(super) fn is_stale_plan(&self) -> bool {
        match self {
            QueryError::Driver(error) => error.as_db_error().is_some_and(|db| {
                *db.code() == SqlState::FEATURE_NOT_SUPPORTED
                    && db
                        .message()
                        .starts_with("cached plan must not change result type")
            }),
            QueryError::NoReply(_) => false,
        }
    }

    pub(super) fn is_server_error(&self) -> bool {
        matches!(self, QueryError::Driver(error) if error.as_db_error().is_some())
    }
}

/// Runs `sql` as a cached prepared statement. A stale cached plan is dropped and the
/// statement prepared and run once more: outside a transaction, the failed run changed nothing.
pub(super) async fn query(
    client: &ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    timeouts: &Timeouts,
) -> Result<Vec<Row>, QueryError> {
    match query_once(client, sql, params, timeouts).await {
        Err(error) if error.is_stale_plan() => {
            forget_statement(client, sql);
            query_once(client, sql, params, timeouts).await
        }
        other => other,
    }
}

/// Runs `sql` as a cached prepared statement, once.
pub(super) async fn query_once(
    client: &ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    timeouts: &Timeouts,
) -> Result<Vec<Row>, QueryError> {
    bounded(timeouts, async {
        let statement = client.prepare_cached(sql).await?;
        client.query(&statement, params).await
    })
    .await
}

/// Drops a cached statement, so the next use prepares it again.
pub(super) fn forget_statement(client: &ClientWrapper, sql: &str) {
    client.statement_cache.remove(sql, &[]);
}

/// Runs simple-protocol SQL (no parameters), e.g. transaction control.
pub(super) async fn execute_batch(
    client: &ClientWrapper,
    sql: &str,
    timeouts: &Timeouts,
) -> Result<(), QueryError> {
    bounded(timeouts, client.batch_execute(sql)).await
}

/// Waits for `future` at most the reply bound.
pub(super) async fn bounded<T>(
    timeouts: &Timeouts,
    future: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, QueryError> {
    match tokio::time::timeout(timeouts.reply(), future).await {
        Ok(result) => result.map_err(QueryError::Driver),
        Err(_) => Err(QueryError::NoReply(timeouts.reply())),
    }
}

/// A typed error for a driver error: a statement the server cancelled at the statement
/// timeout is a [`StoreError::Timeout`], the rest a [`StoreError::Backend`].
pub(super) fn driver_error(
    context: &'static str,
    error: tokio_postgres::Error,
    timeouts: &Timeouts,
) -> StoreError {
    let cancelled_at_timeout = error.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::QUERY_CANCELED && db.message().contains("statement timeout")
    });
    if cancelled_at_timeout {
        return StoreError::Timeout {
            what: "a PostgreSQL statement",
            after: timeouts.statement,
        };
    }
    StoreError::backend(context, DriverError::from(error))
}

/// The connection closed or failed under the statement, or the server ended the session
/// (a FATAL error, e.g. the backend was terminated): either way the session is gone and an
/// in-flight commit may or may not have happened.
fn is_connection_lost(error: &tokio_postgres::Error) -> bool {
    match error.as_db_error() {
        Some(db) => matches!(
            db.parsed_severity(),
            Some(tokio_postgres::error::Severity::Fatal | tokio_postgres::error::Severity::Panic)
        ),
        None => error.is_closed() || source_chain_has::<std::io::Error>(error, |_| true),
    }
}

fn is_connect_timeout(error: &tokio_postgres::Error) -> bool {
    source_chain_has::<std::io::Error>(error, |io| io.kind() == std::io::ErrorKind::TimedOut)
}

fn source_chain_has<E: std::error::Error + 'static>(
    error: &(dyn std::error::Error + 'static),
    test: impl Fn(&E) -> bool,
) -> bool {
    let mut cause = Some(error);
    while let Some(inner) = cause {
        if inner.downcast_ref::<E>().is_some_and(&test) {
            return true;
        }
        cause = inner.source();
    }
    false
}

/// No reply came in time.
#[derive(Debug, thiserror::Error)]
#[error("no reply from PostgreSQL within {0:?}")]
struct NoReplyError(Duration);

/// A driver error that says why. tokio-postgres displays a server error as just "db error"
/// and a failed connection as "error connecting to server", keeping the reason (the server's
/// message, "connection refused") in its source; users print the top line, so it goes there.
#[derive(Debug)]
pub(super) struct DriverError {
    description: String,
    source: tokio_postgres::Error,
}

impl From<tokio_postgres::Error> for DriverError {
    fn from(source: tokio_postgres::Error) -> Self {
        let description = match source.as_db_error() {
            Some(db) => {
                let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
                if let Some(detail) = db.detail() {
                    text.push_str(&format!(" ({detail})"));
                }
                if let Some(hint) = db.hint() {
                    text.push_str(&format!("; hint: {hint}"));
                }
                text
            }
            None => {
                let mut text = source.to_string();
                let mut cause = std::error::Error::source(&source);
                while let Some(inner) = cause {
                    text.push_str(&format!(": {inner}"));
                    cause = inner.source();
                }
                text
            }
        };
        DriverError {
            description,
            source,
        }
    }
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
