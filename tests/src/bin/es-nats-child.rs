//! The child process of the NATS crash tests, run until killed:
//! `es-nats-child publish STORE PREFIX` runs the outbox publisher of `STORE`'s log;
//! `es-nats-child subscribe STORE STREAM` runs a subscription feeding the crash tallies into
//! `STORE`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::nats::{ProjectionHandler, Publisher, Subscription};
use es_tests::crash::{self, Tallies};
use es_tests::nats;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let store = crash::open(&args[2]).await;
    let jetstream = nats::jetstream().await.expect("NATS");
    // Kept alive until the process is killed.
    let _running: Box<dyn std::any::Any> = match args[1].as_str() {
        "publish" => Box::new(
            Publisher::start(store, jetstream, nats::crash_publisher(&args[3]))
                .await
                .unwrap(),
        ),
        "subscribe" => Box::new(
            Subscription::start(
                store,
                jetstream,
                nats::crash_subscription(&args[3]),
                ProjectionHandler::new(Tallies),
            )
            .await
            .unwrap(),
        ),
        other => panic!("unknown mode `{other}`"),
    };
    println!("started");
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
