//! Figure 6: figures 3 and 4 on SQLite, ours only (cqrs-es has no SQLite store).

use std::sync::Arc;
use std::time::Instant;

use es_core::sqlite::SqliteStore;
use es_core::{EventStore, Repository};

use crate::postgres::our_throughput;
use crate::report::{median, Better, Row};
use crate::{ours, Settings};

pub async fn figure_6(settings: &Settings, dir: &std::path::Path) -> Vec<Row> {
    let path = dir.join(format!("bench-{}.db", std::process::id()));
    let store = SqliteStore::open(&path).await.expect("open SQLite");
    let shared: Arc<dyn EventStore> = Arc::new(store.clone());
    let mut rows = Vec::new();
    for tasks in [1, 16] {
        let mut runs = Vec::new();
        for _ in 0..settings.rounds {
            runs.push(
                our_throughput(
                    Arc::clone(&shared),
                    settings.pg_accounts,
                    settings.pg_commands,
                    tasks,
                )
                .await,
            );
        }
        let label = if tasks == 1 {
            "sequential".to_owned()
        } else {
            format!("{tasks} tasks")
        };
        rows.push(
            Row::new(
                "6",
                format!(
                    "SQLite: deposits over {} accounts, {label}",
                    settings.pg_accounts
                ),
                "cmd/s",
                Better::Higher,
            )
            .ours(median(runs))
            .note("synchronous = FULL: every commit is fsynced"),
        );
    }
    let repository = Repository::<ours::Account>::new(Arc::clone(&shared));
    let mut append_runs = Vec::new();
    for run in 0..settings.rounds.max(3) {
        let started = Instant::now();
        repository
            .execute(&format!("many-{run}"), ours::DepositMany { count: 1000 })
            .await
            .expect("append");
        append_runs.push(started.elapsed().as_secs_f64() * 1e3);
    }
    rows.push(
        Row::new(
            "6",
            "SQLite: one command appending 1,000 events",
            "ms",
            Better::Lower,
        )
        .ours(median(append_runs)),
    );
    let length = settings.load_length;
    let plain = Repository::<ours::Account>::new(Arc::clone(&shared)).without_cache();
    let snapshotted =
        Repository::<ours::SnapshottedAccount>::new(Arc::clone(&shared)).without_cache();
    for _ in 0..length / 1000 {
        plain
            .execute(&"long".to_owned(), ours::DepositMany { count: 1000 })
            .await
            .expect("fill");
        snapshotted
            .execute(&"long-snap".to_owned(), ours::DepositMany { count: 1000 })
            .await
            .expect("fill");
    }
    let (mut plain_runs, mut snapshot_runs) = (Vec::new(), Vec::new());
    for _ in 0..settings.rounds.max(3) {
        let started = Instant::now();
        assert_eq!(
            plain
                .load(&"long".to_owned())
                .await
                .expect("load")
                .state
                .balance(),
            length
        );
        plain_runs.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        assert_eq!(
            snapshotted
                .load(&"long-snap".to_owned())
                .await
                .expect("load")
                .state
                .balance(),
            length
        );
        snapshot_runs.push(started.elapsed().as_secs_f64() * 1e3);
    }
    rows.push(
        Row::new(
            "6",
            format!("SQLite: load an aggregate of {length} events, no snapshot"),
            "ms",
            Better::Lower,
        )
        .ours(median(plain_runs)),
    );
    rows.push(
        Row::new(
            "6",
            format!("SQLite: load an aggregate of {length} events, snapshot every 100"),
            "ms",
            Better::Lower,
        )
        .ours(median(snapshot_runs)),
    );
    rows.push(command_on_a_long_stream(settings, &shared).await);
    drop((store, shared, repository, plain, snapshotted));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    rows
}

/// A command's cost on the `long` stream (`load_length` events) against the same on a stream
/// of one event, the aggregate cached in both: a ratio near 1 says the append's checks (the
/// version, the command id) do not read the stream's history.
async fn command_on_a_long_stream(settings: &Settings, store: &Arc<dyn EventStore>) -> Row {
    let repository = Repository::<ours::Account>::new(Arc::clone(store));
    let commands = settings.long_stream_commands;
    let mut per_stream = Vec::new();
    for stream in ["long", "short"] {
        let id = stream.to_owned();
        // Loads (and caches) the aggregate; not timed.
        repository
            .execute(&id, ours::DepositMany { count: 1 })
            .await
            .expect("deposit");
        let started = Instant::now();
        for _ in 0..commands {
            repository
                .execute(&id, ours::DepositMany { count: 1 })
                .await
                .expect("deposit");
        }
        per_stream.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(commands));
    }
    Row::new(
        "6",
        format!(
            "SQLite: a command on a cached aggregate of {} events",
            settings.load_length
        ),
        "µs/cmd",
        Better::Lower,
    )
    .ours(per_stream[0])
    .theirs(per_stream[1])
    .against("same, 1 event")
    .note("ratio near 1: the append's version and command-id checks do not read the history")
}
