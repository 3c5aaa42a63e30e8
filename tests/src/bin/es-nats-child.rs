//! The child process of the NATS crash tests, run until killed:
//! `es-nats-child publish STORE PREFIX` runs the outbox publisher of `STORE`'s log;
//! `es-nats-child subscribe STORE STREAM` runs a subscription feeding the crash tallies into
//! `STORE`, printing `applied N duplicates M` as it goes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::time::Duration;

use es_core::nats::{ProjectionHandler, Publisher, Subscription};
use es_tests::crash::{self, Tallies};
use es_tests::nats;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let store = crash::open(&args[2]).await;
    let jetstream = nats::jetstream().await.expect("NATS");
    match args[1].as_str() {
        "publish" => {
            let _publisher = Publisher::start(store, jetstream, nats::crash_publisher(&args[3]))
                .await
                .unwrap();
            println!("started");
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
        "subscribe" => {
            let subscription = Subscription::start(
                store,
                jetstream,
                nats::crash_subscription(&args[3]),
                ProjectionHandler::new(Tallies),
            )
            .await
            .unwrap();
            println!("started");
            // What it recognised so far, for the parent's figures (the last line before the
            // kill is a lower bound).
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Ok(health) = subscription.health().await {
                    let mut stdout = std::io::stdout().lock();
                    writeln!(
                        stdout,
                        "applied {} duplicates {}",
                        health.applied, health.duplicates
                    )
                    .unwrap();
                    stdout.flush().unwrap();
                }
            }
        }
        other => panic!("unknown mode `{other}`"),
    }
}
