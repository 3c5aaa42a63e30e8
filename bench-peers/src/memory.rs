//! Figures 1 and 2 with cqrs-es's `MemStore`: many aggregates, and one long stream.

use std::time::Instant;

use cqrs_es::mem_store::MemStore;
use cqrs_es::CqrsFramework;

use crate::account::{Account, AccountCommand};
use crate::Error;

/// While alive, the process's stdout goes to /dev/null: `MemStore` prints two lines per
/// command, which would otherwise flood the bench's pipe (their cost is still paid and
/// measured). The result is printed after it is dropped.
struct StdoutSink(#[allow(dead_code)] Option<gag::Gag>);

impl std::fmt::Debug for StdoutSink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("StdoutSink")
    }
}

impl StdoutSink {
    fn new() -> Self {
        StdoutSink(gag::Gag::stdout().ok())
    }
}

/// The command for step `step` of an account's life: open, then deposits and withdrawals
/// (the same sequence as the bench's `our_command`).
fn command(step: u64) -> AccountCommand {
    match step {
        0 => AccountCommand::Open {
            owner: "owner".into(),
        },
        n if n % 3 == 0 => AccountCommand::Withdraw { amount: 5 },
        _ => AccountCommand::Deposit { amount: 10 },
    }
}

/// Commands per second: `commands` rounds of one command on each of `accounts` accounts.
pub async fn many(accounts: u64, commands: u64) -> Result<f64, Error> {
    let cqrs = CqrsFramework::new(MemStore::<Account>::default(), vec![], ());
    let ids: Vec<String> = (0..accounts).map(|n| format!("acct-{n}")).collect();
    let _sink = StdoutSink::new();
    let started = Instant::now();
    for step in 0..commands {
        for id in &ids {
            cqrs.execute(id, command(step)).await?;
        }
    }
    Ok((accounts * commands) as f64 / started.elapsed().as_secs_f64())
}

/// µs per command on one stream already `length` events long, over `measured` deposits.
pub async fn long(length: u64, measured: u64) -> Result<f64, Error> {
    let cqrs = CqrsFramework::new(MemStore::<Account>::default(), vec![], ());
    let id = "long";
    let _sink = StdoutSink::new();
    cqrs.execute(
        id,
        AccountCommand::Open {
            owner: "owner".into(),
        },
    )
    .await?;
    cqrs.execute(
        id,
        AccountCommand::DepositMany {
            count: length.saturating_sub(1),
        },
    )
    .await?;
    let started = Instant::now();
    for _ in 0..measured {
        cqrs.execute(id, AccountCommand::Deposit { amount: 1 })
            .await?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / measured.max(1) as f64)
}
