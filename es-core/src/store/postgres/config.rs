//! How to reach the database: the URL, the schema, the pool and its three timeouts.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::connection::DriverError;
use super::SetupError;
use crate::error::StoreError;

/// How to reach the database, where to keep the tables, and how long to wait.
///
/// ```
/// use std::time::Duration;
/// use es_core::postgres::PostgresConfig;
///
/// let config = PostgresConfig::new("postgres://postgres@127.0.0.1:5432/app")
///     .schema("billing")
///     .pool_size(32)
///     .statement_timeout(Duration::from_secs(10));
/// assert_eq!(config.checkout_timeout, Duration::from_secs(5));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// e.g. `postgres://postgres@127.0.0.1:5432/app`.
    pub url: String,
    /// The PostgreSQL schema (namespace) holding the tables; created if missing. Lowercase
    /// ASCII letters, digits and `_`, starting with a letter or `_`.
    pub schema: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// How long opening one connection may take (default 5 s).
    pub connect_timeout: Duration,
    /// How long an operation may wait for a pooled connection when all are busy (default 5 s).
    pub checkout_timeout: Duration,
    /// How long one statement may run before the server cancels it (default 30 s).
    pub statement_timeout: Duration,
}

impl PostgresConfig {
    /// The tables in schema `public`, a pool of 16 connections, and the default timeouts:
    /// connect 5 s, checkout 5 s, statement 30 s.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            schema: "public".into(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            checkout_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }

    /// Keeps the tables in another schema (e.g. one per test, or per tenant).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the pool size (at least 1).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Sets how long opening one connection may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long an operation may wait for a pooled connection.
    pub fn checkout_timeout(mut self, timeout: Duration) -> Self {
        self.checkout_timeout = timeout;
        self
    }

    /// Sets how long one statement may run before the server cancels it.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }
}

/// The waits every operation is bounded by.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    pub(super) connect: Duration,
    pub(super) checkout: Duration,
    pub(super) statement: Duration,
}

impl Timeouts {
    /// How long the client waits for any reply. The server cancels a statement at `statement`
    /// and says so; this longer bound only fires when the server or the network stopped
    /// answering altogether.
    pub(super) fn reply(&self) -> Duration {
        self.statement + self.connect
    }
}

/// Schema names are put into SQL text, so only plain identifiers are accepted.
fn valid_schema(schema: &str) -> bool {
    let mut chars = schema.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63
}

/// Checks the configuration and builds the pool; no connection is opened yet. Also returns
/// the driver configuration, for the connection that listens for appends.
pub(super) fn build_pool(
    config: &PostgresConfig,
) -> Result<(Pool, Timeouts, tokio_postgres::Config), StoreError> {
    if !valid_schema(&config.schema) {
        return Err(StoreError::backend(
            "checking the PostgreSQL configuration",
            SetupError::InvalidSchemaName {
                schema: config.schema.clone(),
            },
        ));
    }
    let mut pg_config: tokio_postgres::Config = config.url.parse().map_err(|error| {
        StoreError::backend(
            "parsing the PostgreSQL URL",
            DriverError::from(error as tokio_postgres::Error),
        )
    })?;
    pg_config.connect_timeout(config.connect_timeout);
    // Every statement here is prepared once per connection and its best plan does not depend
    // on the parameters (index lookups by stream id or position). Without
    // force_generic_plan, PostgreSQL re-plans the first executions, and planning the append
    // costs more than executing it. statement_timeout makes the server cancel a statement
    // and roll it back, so a timed-out append is known not to have been written.
    let options = pg_config
        .get_options()
        .map(str::to_owned)
        .unwrap_or_default();
    let statement_ms = config.statement_timeout.as_millis().max(1);
    pg_config.options(
        format!(
            "{options} -c plan_cache_mode=force_generic_plan -c statement_timeout={statement_ms}"
        )
        .trim(),
    );
    if pg_config.get_application_name().is_none() {
        pg_config.application_name("es-core");
    }
    let listener_config = pg_config.clone();
    let manager = Manager::from_config(
        pg_config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(config.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(config.connect_timeout))
        .wait_timeout(Some(config.checkout_timeout))
        .recycle_timeout(Some(config.checkout_timeout))
        .build()
        .map_err(|error| StoreError::backend("building the PostgreSQL pool", error))?;
    let timeouts = Timeouts {
        connect: config.connect_timeout,
        checkout: config.checkout_timeout,
        statement: config.statement_timeout,
    };
    Ok((pool, timeouts, listener_config))
}
