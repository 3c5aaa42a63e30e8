//! Figures 1 and 2: in memory, many aggregates and one long stream.

use std::time::Instant;

use es_core::{MemoryStore, Repository};

use crate::peers::{self, Peers};
use crate::report::{median, Better, Row};
use crate::{ours, Settings};

/// The command for step `step` of an account's life: open, then deposits and withdrawals
/// (bench-peers' `memory.rs` gives cqrs-es the same sequence).
fn our_command(step: u64) -> ours::AccountCommand {
    match step {
        0 => ours::Open {
            owner: "owner".into(),
        }
        .into(),
        n if n % 3 == 0 => ours::Withdraw { amount: 5 }.into(),
        _ => ours::Deposit { amount: 10 }.into(),
    }
}

async fn many_ours(accounts: u64, commands: u64) -> f64 {
    // Round-robin over all accounts, so the cache must hold them all: sized to the working set.
    let repository =
        Repository::<ours::Account>::new(MemoryStore::new()).with_cache(accounts as usize);
    let ids: Vec<String> = (0..accounts).map(|n| format!("acct-{n}")).collect();
    let started = Instant::now();
    for step in 0..commands {
        for id in &ids {
            repository
                .execute(id, our_command(step))
                .await
                .expect("our command");
        }
    }
    (accounts * commands) as f64 / started.elapsed().as_secs_f64()
}

/// The same commands with cqrs-es's `MemStore`, in the peers' process (`memory.rs` there).
fn many_theirs(peers: &Peers, accounts: u64, commands: u64) -> Result<f64, String> {
    peers
        .run(
            "memory-many",
            &[
                ("accounts", accounts.to_string()),
                ("commands", commands.to_string()),
            ],
        )?
        .value()
}

pub async fn figure_1(settings: &Settings, peers: &Peers) -> Vec<Row> {
    let (accounts, commands) = (settings.many_accounts, 10);
    let (mut ours_runs, mut theirs_runs) = (Vec::new(), Vec::new());
    // A round takes under a second and, on a shared machine, moves by a third between runs:
    // more rounds than the other figures, so the median says more than the noise.
    for round in 0..settings.rounds * 2 + 1 {
        if round % 2 == 0 {
            ours_runs.push(many_ours(accounts, commands).await);
            theirs_runs.push(many_theirs(peers, accounts, commands));
        } else {
            theirs_runs.push(many_theirs(peers, accounts, commands));
            ours_runs.push(many_ours(accounts, commands).await);
        }
    }
    vec![Row::new(
        "1",
        format!("in memory: {accounts} accounts × {commands} commands"),
        "cmd/s",
        Better::Higher,
    )
    .ours(median(ours_runs))
    .note(format!(
        "one task; median of {} rounds; cqrs-es MemStore's println! output sent to /dev/null",
        settings.rounds * 2 + 1
    ))
    .peer(peers::median(theirs_runs))]
}

/// µs per command on one stream already `length` events long.
async fn long_ours(length: u64, measured: u64, cached: bool) -> f64 {
    let mut repository = Repository::<ours::Account>::new(MemoryStore::new());
    if !cached {
        repository = repository.without_cache();
    }
    let id = "long".to_owned();
    repository
        .execute(
            &id,
            ours::Open {
                owner: "owner".into(),
            },
        )
        .await
        .expect("open");
    repository
        .execute(&id, ours::DepositMany { count: length - 1 })
        .await
        .expect("fill");
    let started = Instant::now();
    for _ in 0..measured {
        repository
            .execute(&id, ours::Deposit { amount: 1 })
            .await
            .expect("deposit");
    }
    started.elapsed().as_secs_f64() * 1e6 / measured as f64
}

/// The same with cqrs-es's `MemStore`, in the peers' process.
fn long_theirs(peers: &Peers, length: u64, measured: u64) -> Result<f64, String> {
    peers
        .run(
            "memory-long",
            &[
                ("length", length.to_string()),
                ("measured", measured.to_string()),
            ],
        )?
        .value()
}

/// Figure 2, and the points of the chart (length, µs) for ours and cqrs-es.
pub async fn figure_2(
    settings: &Settings,
    peers: &Peers,
) -> (Vec<Row>, Vec<(u64, f64)>, Vec<(u64, f64)>) {
    let mut rows = Vec::new();
    let (mut ours_points, mut theirs_points) = (Vec::new(), Vec::new());
    for &length in &settings.stream_lengths {
        // Keep the measured commands few next to the stream, so its length barely moves.
        let measured = (length / 10).clamp(20, 500);
        let (mut ours_runs, mut uncached_runs, mut theirs_runs) =
            (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..settings.rounds {
            ours_runs.push(long_ours(length, measured, true).await);
            theirs_runs.push(long_theirs(peers, length, measured));
            uncached_runs.push(long_ours(length, measured, false).await);
        }
        let (ours, theirs, uncached) = (
            median(ours_runs),
            peers::median(theirs_runs),
            median(uncached_runs),
        );
        ours_points.push((length, ours));
        if let Ok(theirs) = theirs {
            theirs_points.push((length, theirs));
        }
        rows.push(
            Row::new(
                "2",
                format!("in memory: one stream of {length} events"),
                "µs/cmd",
                Better::Lower,
            )
            .ours(ours)
            .note("ours with its aggregate cache (the default)")
            .peer(theirs.clone()),
        );
        rows.push(
            Row::new(
                "2",
                format!("in memory: one stream of {length} events, our cache off"),
                "µs/cmd",
                Better::Lower,
            )
            .ours(uncached)
            .note("ours replays the whole stream, like cqrs-es")
            .peer(theirs),
        );
    }
    (rows, ours_points, theirs_points)
}
