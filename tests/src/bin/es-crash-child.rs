//! The child process of the crash tests: `es-crash-child append STORE STREAM` appends batches
//! and prints `ack BATCH VERSION` after each commit; `es-crash-child project STORE [HOLDER
//! [LEASE_MS]]` runs the projection daemon (as `HOLDER`, a random id by default, with leases
//! of `LEASE_MS`, 150 by default) and every 20 ms prints `checkpoint N` (the first
//! projection's) and, per projection, `projection NAME CHECKPOINT HOLDER STATE` (the lease
//! holder the store names, `-` for none, and the daemon's `HealthState` as `Debug` shows
//! it); `es-crash-child process STORE HOLDER LEASE_MS` runs the order fulfilment process
//! manager as `HOLDER` and prints `health CHECKPOINT PENDING STATE` every 20 ms. All run
//! until killed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::time::Duration;

use es_core::{Daemon, DaemonConfig, EventLog, ExpectedVersion, StreamId};
use es_tests::crash::{self};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let store = crash::open(&args[2]).await;
    match args[1].as_str() {
        "append" => {
            let stream = StreamId::new("crash", &args[3]).unwrap();
            let mut version = store.stream_version(&stream).await.unwrap();
            let mut batch = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                % 1_000_000_000;
            loop {
                batch += 1;
                let events = es_tests::crash::appended_batch(batch);
                let recorded = store
                    .append(&stream, ExpectedVersion::Exact(version), events)
                    .await
                    .unwrap();
                version = recorded.last().unwrap().version;
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "ack {batch} {version}").unwrap();
                stdout.flush().unwrap();
            }
        }
        "project" => {
            // A short lease by default, so the next child takes over soon after this one is
            // killed.
            let lease_ms = args.get(4).map_or(150, |ms| ms.parse().unwrap());
            let mut config = DaemonConfig {
                lease_ttl: Duration::from_millis(lease_ms),
                poll_interval: Duration::from_millis(10),
                retry_after: Duration::from_millis(10),
                ..DaemonConfig::default()
            };
            // A name the parent knows, so that it can tell which child a lease names.
            if let Some(holder) = args.get(3) {
                config.holder.clone_from(holder);
            }
            let daemon = Daemon::start_with(store, es_tests::crash::crash_projections(), config)
                .await
                .unwrap();
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Ok(health) = daemon.health().await {
                    let mut stdout = std::io::stdout().lock();
                    let _ = writeln!(stdout, "checkpoint {}", health[0].checkpoint);
                    for projection in &health {
                        let _ = writeln!(
                            stdout,
                            "projection {} {} {} {:?}",
                            projection.name,
                            projection.checkpoint,
                            projection.holder.as_deref().unwrap_or("-"),
                            projection.state
                        );
                    }
                    let _ = stdout.flush();
                }
            }
        }
        "process" => {
            let holder = &args[3];
            let lease_ttl = Duration::from_millis(args[4].parse().unwrap());
            let runner = es_tests::process::start(store, holder, lease_ttl).await;
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Ok(health) = runner.health().await {
                    let mut stdout = std::io::stdout().lock();
                    let _ = writeln!(
                        stdout,
                        "health {} {} {:?}",
                        health.checkpoint, health.pending_deadlines, health.state
                    );
                    let _ = stdout.flush();
                }
            }
        }
        other => panic!("unknown mode `{other}`"),
    }
}
