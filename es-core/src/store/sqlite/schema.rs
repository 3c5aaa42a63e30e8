//! Opening a file: connection settings, and creating or checking the schema.
//!
//! Any number of threads and processes may open the same new file at the same moment. Each
//! sets its busy timeout before anything else, so every lock it meets is waited for, never a
//! "database is locked"; then it takes the write lock (`BEGIN IMMEDIATE`) *before* reading
//! the layout, so exactly one opener creates the tables and every other one, once it gets the
//! lock, finds them there.
//!
//! A file says what it is in two header fields: `application_id` marks it as an es-core store,
//! `user_version` says which layout it holds. A file of another program, of a newer es-core,
//! or of an unreleased layout is refused with a [`LayoutError`], never read as if it were ours.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::Durability;
use crate::error::StoreError;

/// `PRAGMA application_id` of an es-core store: "esco" in ASCII.
pub(super) const APPLICATION_ID: i32 = 0x6573_636F;

/// The layout this code reads and writes; stored in `PRAGMA user_version`.
pub(super) const LAYOUT_VERSION: i64 = 3;

/// The statements that create layout 1 in an empty file, one table, index or trigger each.
///
/// For maintainers: a later layout `n` adds a step (`LAYOUT_n`, listed in [`STEPS`]) that
/// upgrades `n - 1` to `n`, run in the same transaction as the check (see [`migrate`]), and
/// never edits these files: files in the field hold them.
pub(super) const LAYOUT_1: &[&str] = &[
    include_str!("schema/events.sql"),
    include_str!("schema/events_by_stream.sql"),
    include_str!("schema/events_by_aggregate_type.sql"),
    include_str!("schema/events_no_update.sql"),
    include_str!("schema/events_no_delete.sql"),
    include_str!("schema/snapshots.sql"),
];

/// Layout 2 adds the read side: projection generations with their checkpoints, dead letters
/// and leases. (Each projection's document tables are made at run time, see `read_models`.)
const LAYOUT_2: &[&str] = &[
    include_str!("schema/projection_generations.sql"),
    include_str!("schema/dead_letters.sql"),
    include_str!("schema/projection_leases.sql"),
];

/// Layout 3 makes commands idempotent: each event keeps the id of the command that appended
/// it, indexed so an append finds an earlier run of its command on its stream. Adding a
/// nullable column rewrites nothing, so upgrading a large file is instant.
const LAYOUT_3: &[&str] = &[
    include_str!("schema/events_command_id.sql"),
    include_str!("schema/events_by_command.sql"),
];

/// `STEPS[n - 1]` turns a file of layout `n - 1` (0: empty) into layout `n`.
const STEPS: &[&[&str]] = &[LAYOUT_1, LAYOUT_2, LAYOUT_3];

/// How long a connection waits for a lock another connection holds before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A file this version of es-core will not read. Reported as the source of a
/// [`StoreError::Backend`] when opening; `downcast_ref::<LayoutError>()` to tell it apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The file holds a layout newer than this code knows.
    #[error("the file holds es-core SQLite layout {found}, newer than layout {supported} that this es-core reads; upgrade es-core")]
    Newer {
        /// The file's layout version.
        found: i64,
        /// The newest layout this code reads.
        supported: i64,
    },
    /// The file is not empty, but not an es-core store of a known layout: another program's
    /// database, or one written by an unreleased es-core before layout 1.
    #[error("the file is not an es-core SQLite store (application id {application_id:#x}, layout {user_version}, {tables} schema objects): it belongs to another program or to an unreleased es-core; open a new file")]
    Foreign {
        /// The file's `PRAGMA application_id`.
        application_id: i32,
        /// The file's `PRAGMA user_version`.
        user_version: i64,
        /// How many tables, indexes and triggers it holds.
        tables: i64,
    },
}

/// A driver error together with the file it happened on.
#[derive(Debug, thiserror::Error)]
#[error("`{}`: {source}", path.display())]
struct AtPath {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

fn at_path<'a>(
    context: &'static str,
    path: &'a Path,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |source| {
        StoreError::backend(
            context,
            AtPath {
                path: path.to_path_buf(),
                source,
            },
        )
    }
}

/// Opens the writer connection: creates the file and its schema if needed, checks its layout
/// otherwise, and switches it to WAL so readers never wait for the writer.
pub(super) fn open_writer(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let mut connection = open_connection(path, OpenFlags::SQLITE_OPEN_CREATE)?;
    migrate(&mut connection).map_err(|error| match error {
        Opening::Driver(source) => at_path("creating the SQLite schema", path)(source),
        Opening::Layout(layout) => StoreError::backend("opening the SQLite store", layout),
    })?;
    switch_to_wal(&connection).map_err(at_path("switching the SQLite file to WAL", path))?;
    let synchronous = match durability {
        Durability::Full => "PRAGMA synchronous = FULL",
        Durability::Normal => "PRAGMA synchronous = NORMAL",
    };
    connection
        .execute_batch(synchronous)
        .map_err(at_path("configuring the SQLite connection", path))?;
    Ok(connection)
}

/// Puts the file in WAL mode, so readers never wait for the writer. The mode is stored in the
/// file: only the first opener changes anything, everyone after reads "wal" back.
///
/// Changing the mode takes an exclusive lock *without* calling the busy handler, so while
/// another opener holds any lock this fails at once with `SQLITE_BUSY` whatever the busy
/// timeout (eight threads opening one new file see it within a few rounds). So: retry, for
/// as long as the busy timeout would have waited.
fn switch_to_wal(connection: &Connection) -> rusqlite::Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match connection.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())) {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.code == ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            // Any other answer is final: a file system without shared memory keeps its
            // rollback journal, which is slower for readers but just as correct.
            other => return other,
        }
    }
}

/// Opens a reader connection on a file `open_writer` has already checked.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let connection = open_connection(path, OpenFlags::empty())?;
    // A reader never writes: if a bug ever tried, SQLite refuses instead of writing outside
    // the writer's transactions (which would break the position order read-all relies on).
    connection
        .execute_batch("PRAGMA query_only = ON")
        .map_err(at_path("configuring a SQLite reader", path))?;
    Ok(connection)
}

fn open_connection(path: &Path, extra: OpenFlags) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI
        | extra;
    let connection = Connection::open_with_flags(path, flags)
        .map_err(at_path("opening the SQLite file", path))?;
    // First, before any statement that may meet a lock: without it, SQLite answers "database
    // is locked" at once instead of waiting.
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(at_path("configuring the SQLite connection", path))?;
    // Without the query planner stability guarantee, a statement with `column = ?N` is parsed
    // and planned again at nearly every run: planning marks `?N` as "might change the plan"
    // (is it the integer 0 or 1?), and rusqlite's statement cache clears the bindings of a
    // statement it takes back, which SQLite answers by expiring any statement so marked. That
    // was 15% of the CPU of contended appends. The guarantee only turns off plans chosen by a
    // bound value (LIKE prefixes, ANALYZE's samples), which the store's statements never use.
    connection
        .set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(at_path("configuring the SQLite connection", path))?;
    Ok(connection)
}

enum Opening {
    Driver(rusqlite::Error),
    Layout(LayoutError),
}

impl From<rusqlite::Error> for Opening {
    fn from(error: rusqlite::Error) -> Self {
        Opening::Driver(error)
    }
}

/// Creates the current layout in an empty file, or checks a file's layout and upgrades an
/// older one, under the write lock.
fn migrate(connection: &mut Connection) -> Result<(), Opening> {
    // IMMEDIATE takes the write lock now (waiting for it via the busy timeout), so no other
    // opener can create the schema between our reading the layout and our writing it; a
    // deferred transaction would read under a shared lock and then fail to upgrade it.
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let application_id = pragma_integer(&transaction, "PRAGMA application_id")?;
    let user_version = pragma_integer(&transaction, "PRAGMA user_version")?;
    let tables = pragma_integer(&transaction, "SELECT count(*) FROM sqlite_master")?;
    let ours = application_id == i64::from(APPLICATION_ID);
    let found = if application_id == 0 && user_version == 0 && tables == 0 {
        0
    } else if ours && user_version > LAYOUT_VERSION {
        return Err(Opening::Layout(LayoutError::Newer {
            found: user_version,
            supported: LAYOUT_VERSION,
        }));
    } else if ours && user_version >= 1 {
        user_version
    } else {
        return Err(Opening::Layout(LayoutError::Foreign {
            // Both fields are 32-bit in the file header, so this only guards a driver oddity.
            application_id: i32::try_from(application_id).unwrap_or(-1),
            user_version,
            tables,
        }));
    };
    if found < LAYOUT_VERSION {
        // `found` is 0 ..= LAYOUT_VERSION - 1 here, so the slice is in range.
        let pending = STEPS
            .get(usize::try_from(found).unwrap_or(usize::MAX)..)
            .unwrap_or(&[]);
        for statement in pending.iter().copied().flatten() {
            transaction.execute_batch(statement)?;
        }
        transaction.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {LAYOUT_VERSION};"
        ))?;
    }
    transaction.commit()?;
    Ok(())
}

/// Runs a statement that returns one integer.
fn pragma_integer(connection: &Connection, sql: &str) -> rusqlite::Result<i64> {
    connection.query_row(sql, [], |row| match row.get_ref(0)? {
        ValueRef::Integer(value) => Ok(value),
        other => Err(rusqlite::Error::InvalidColumnType(
            0,
            sql.to_owned(),
            other.data_type(),
        )),
    })
}
