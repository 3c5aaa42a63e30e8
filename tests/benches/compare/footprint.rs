//! Figure 7, memory: resident memory per cached aggregate, and the cache bound under load.

use es_core::sqlite::{Durability, SqliteStore};
use es_core::Repository;

use crate::report::{Better, Row};
use crate::{ours, Settings};

/// Resident memory of this process, in bytes (Linux; 0 elsewhere).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

pub async fn figure_7_memory(settings: &Settings, dir: &std::path::Path) -> Vec<Row> {
    // Events live on disk, so resident growth is the cache's, not the store's.
    let path = dir.join(format!("footprint-{}.db", std::process::id()));
    let store = SqliteStore::open_with(&path, Durability::Normal)
        .await
        .expect("open SQLite");
    let accounts = settings.cached_accounts;
    let ids: Vec<String> = (0..accounts).map(|n| format!("acct-{n}")).collect();
    let writer = Repository::<ours::Account>::new(store.clone()).without_cache();
    for id in &ids {
        writer
            .execute(
                id,
                ours::Open {
                    owner: "owner".into(),
                },
            )
            .await
            .expect("open");
    }
    let cached = Repository::<ours::Account>::new(store.clone()).with_cache(accounts as usize);
    let resident_before = resident_bytes();
    let heap = stats_alloc::Region::new(crate::HEAP);
    for id in &ids {
        cached
            .execute(id, ours::Deposit { amount: 1 })
            .await
            .expect("deposit");
    }
    let change = heap.change();
    let heap_grown = change
        .bytes_allocated
        .saturating_sub(change.bytes_deallocated) as f64;
    let resident_grown = resident_bytes().saturating_sub(resident_before) as f64;
    let per_10k = |bytes: f64| bytes / accounts as f64 * 10_000.0 / 1024.0;

    // The bound: a cache of 1,000 under commands over all accounts, several times round.
    let bounded = Repository::<ours::Account>::new(store.clone()).with_cache(1000);
    let heap = stats_alloc::Region::new(crate::HEAP);
    for _ in 0..3 {
        for id in &ids {
            bounded
                .execute(id, ours::Deposit { amount: 1 })
                .await
                .expect("deposit");
        }
    }
    let change = heap.change();
    let bounded_growth = change
        .bytes_allocated
        .saturating_sub(change.bytes_deallocated) as f64
        / 1024.0;
    let held = bounded.cache().map_or(0, |cache| cache.len());
    drop((store, writer, cached, bounded));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    vec![
        Row::new("7", "heap growth per 10,000 cached aggregates", "KiB", Better::Lower)
            .ours(per_10k(heap_grown))
            .note(format!(
                "over {accounts} accounts; resident growth {:.0} KiB per 10,000 (the allocator reuses freed pages); cqrs-es keeps no cache",
                per_10k(resident_grown)
            )),
        Row::new("7", format!("cache of 1,000 under {} commands on {accounts} accounts: entries held", accounts * 3), "entries", Better::Lower)
            .ours(held as f64)
            .note(format!("net heap growth meanwhile: {bounded_growth:.0} KiB")),
    ]
}
