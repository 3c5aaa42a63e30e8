//! Ours against cqrs-es 0.5 (and postgres-es 0.5), and against the raw limits of the same
//! machine, in one run: `cargo bench -p es-tests --bench compare` (`-- --quick` for a
//! reduced run of under a minute). Prints a table, writes `target/bench/compare.json` and a
//! chart `target/bench/compare.svg`. `ES_BENCH_FIGURES=8,9` runs only the figures listed.
//!
//! cqrs-es and postgres-es are measured by `bench-peers/` (at the repository's root), a
//! project outside this workspace that this bench builds into `target/bench-peers` on first
//! use and runs once per measurement, alternating with ours as before (see `peers.rs`).
//!
//! PostgreSQL figures use `ES_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and are skipped, with a line saying so, when
//! the server does not answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod footprint;
mod limits;
mod memory;
mod ours;
mod peers;
mod postgres;
mod read_side;
mod report;
mod sqlite;

use std::path::{Path, PathBuf};

/// Counts heap bytes, so figure 7 measures what the cache holds rather than what the
/// allocator happens to keep resident.
#[global_allocator]
static HEAP: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Connections in each framework's PostgreSQL pool.
pub const POOL_SIZE: usize = 16;

/// How much work each figure does.
#[derive(Debug)]
pub struct Settings {
    pub rounds: usize,
    pub many_accounts: u64,
    pub stream_lengths: Vec<u64>,
    pub pg_accounts: u64,
    pub pg_commands: u64,
    pub load_length: u64,
    /// Commands timed on each stream of figure 6's long-against-short row.
    pub long_stream_commands: u32,
    pub cached_accounts: u64,
    pub catch_up_events: u64,
    pub large_blog_events: u64,
}

impl Settings {
    fn full() -> Self {
        Settings {
            rounds: 3,
            many_accounts: 10_000,
            stream_lengths: vec![100, 1_000, 3_000, 10_000],
            pg_accounts: 1_000,
            pg_commands: 4_000,
            load_length: 10_000,
            long_stream_commands: 300,
            cached_accounts: 10_000,
            catch_up_events: 200_000,
            large_blog_events: 1_000_000,
        }
    }

    fn quick() -> Self {
        Settings {
            rounds: 1,
            many_accounts: 1_000,
            stream_lengths: vec![100, 1_000],
            pg_accounts: 200,
            pg_commands: 400,
            load_length: 2_000,
            long_stream_commands: 50,
            cached_accounts: 2_000,
            catch_up_events: 20_000,
            large_blog_events: 20_000,
        }
    }
}

/// The workspace's target directory.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // es-tests lives one level below the workspace's root.
            let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
            tests.parent().unwrap_or(tests).join("target")
        })
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let settings = if quick {
        Settings::quick()
    } else {
        Settings::full()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let peers = peers::Peers::new(target_dir().join("bench-peers"));
    eprintln!(
        "running the {} comparison; this takes {}",
        if quick { "quick" } else { "full" },
        if quick {
            "under a minute"
        } else {
            "a few minutes"
        }
    );
    // `ES_BENCH_FIGURES=8,9` runs only those figures (while working on one); all by default.
    let only: Option<Vec<String>> = std::env::var("ES_BENCH_FIGURES")
        .ok()
        .map(|list| list.split(',').map(|f| f.trim().to_owned()).collect());
    let wanted = |figure: &str| {
        only.as_ref()
            .is_none_or(|only| only.iter().any(|f| f == figure))
    };
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        let (mut ours_points, mut theirs_points) = (Vec::new(), Vec::new());
        if wanted("1") {
            rows.extend(memory::figure_1(&settings, &peers).await);
            eprintln!("figure 1 done");
        }
        if wanted("2") {
            let (figure_2, ours, theirs) = memory::figure_2(&settings, &peers).await;
            (ours_points, theirs_points) = (ours, theirs);
            rows.extend(figure_2);
            eprintln!("figure 2 done");
        }
        let url = std::env::var("ES_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        if wanted("3") || wanted("4") || wanted("5") || wanted("7") {
            match postgres::Pg::connect(&url, &peers).await {
                Ok(pg) => {
                    rows.extend(postgres::figures_3_and_5(&settings, &pg).await);
                    eprintln!("figures 3 and 5 done");
                    rows.extend(postgres::figure_4(&settings, &pg).await);
                    eprintln!("figure 4 done");
                    rows.extend(postgres::figure_7_disk(&pg).await);
                    pg.drop_schemas().await;
                }
                Err(error) => println!("skipped: PostgreSQL figures (3, 4, the INSERT floor, bytes per event): cannot use {url}: {error}"),
            }
        }
        if wanted("5") || wanted("6") {
            rows.extend(limits::figure_5_decode(&settings).await);
            rows.extend(sqlite::figure_6(&settings, &dir).await);
            eprintln!("figures 5 and 6 done");
        }
        if wanted("7") {
            rows.extend(footprint::figure_7_memory(&settings, &dir).await);
        }
        if wanted("8") {
            let pg_url = postgres::answers(&url).await.then(|| url.clone());
            rows.extend(read_side::figure_8(&settings, &dir, pg_url.as_deref()).await);
            eprintln!("figure 8 done");
        }
        if wanted("9") {
            rows.extend(read_side::figure_9(&settings, &dir).await);
            eprintln!("figure 9 done");
        }
        if !ours_points.is_empty() {
            if let Err(error) = report::write_chart(&dir.join("compare.svg"), &ours_points, &theirs_points) {
                eprintln!("could not draw the chart: {error}");
            }
        }
        rows
    });
    let machine = machine();
    println!(
        "\nmachine: {machine}; {} run, medians of {} rounds\n",
        if quick { "quick" } else { "full" },
        settings.rounds
    );
    print!("{}", report::table(&rows));
    let json = dir.join("compare.json");
    match report::write_json(&json, &machine, &rows) {
        Ok(()) => println!(
            "\nwrote {} and {}",
            json.display(),
            dir.join("compare.svg").display()
        ),
        Err(error) => println!("\ncould not write {}: {error}", json.display()),
    }
}
