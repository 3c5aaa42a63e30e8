//! Runs figure 1's workload for ours alone, for profiling:
//! `cargo build --release -p es-tests --example profile_memory` then `perf record` it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // shared with the benchmark, which uses all of it
#[path = "../benches/compare/ours.rs"]
mod ours;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let accounts = 10_000u64;
        let repository = es_core::Repository::<ours::Account>::new(es_core::MemoryStore::new())
            .with_cache(accounts as usize);
        let ids: Vec<String> = (0..accounts).map(|n| format!("acct-{n}")).collect();
        let started = std::time::Instant::now();
        for step in 0..10u64 {
            for id in &ids {
                let command: ours::AccountCommand = match step {
                    0 => ours::Open {
                        owner: "owner".into(),
                    }
                    .into(),
                    n if n % 3 == 0 => ours::Withdraw { amount: 5 }.into(),
                    _ => ours::Deposit { amount: 10 }.into(),
                };
                repository.execute(id, command).await.unwrap();
            }
        }
        println!(
            "{:.0} commands/s",
            100_000.0 / started.elapsed().as_secs_f64()
        );
    });
}
