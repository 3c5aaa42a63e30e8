//! NATS for tests: a JetStream context on the test server, what the NATS crash tests' child
//! process runs, and reading a whole JetStream stream back.
//!
//! NATS is looked for at `ES_TEST_NATS_URL`, else at `127.0.0.1:4222`. When it cannot be
//! reached, a test under CI fails; elsewhere it prints a line saying it was skipped.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use es_core::nats::{EventFilter, PublisherConfig, SubscriptionConfig};
use es_core::{DaemonConfig, RecordedEvent};
use futures::StreamExt;

use crate::crash::Appended;
use crate::stores::services_required;

/// The variable that names the test server.
pub const NATS_URL_VARIABLE: &str = "ES_TEST_NATS_URL";

/// The NATS URL tests use.
pub fn nats_url() -> String {
    std::env::var(NATS_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "127.0.0.1:4222".to_owned())
}

/// A JetStream context on the test server, or `None` after printing why the test is skipped.
/// Under CI an unreachable server is a failure, never a skip.
pub async fn jetstream() -> Option<jetstream::Context> {
    let url = nats_url();
    let probe = tokio::time::timeout(Duration::from_secs(5), async_nats::connect(&url)).await;
    let client = match probe {
        Ok(Ok(client)) => client,
        Ok(Err(error)) if !services_required() => {
            println!(
                "skipped: NATS at {url} cannot be reached ({error}), so this NATS test did not run"
            );
            return None;
        }
        Err(_) if !services_required() => {
            println!(
                "skipped: NATS at {url} did not answer within 5 s, so this NATS test did not run"
            );
            return None;
        }
        Ok(Err(error)) => {
            panic!("CI needs NATS with JetStream at {url}, but it cannot be reached: {error}")
        }
        Err(_) => panic!("CI needs NATS with JetStream at {url}, but it did not answer within 5 s"),
    };
    // The account info request, read as plain JSON: servers differ in its fields.
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        client.request("$JS.API.INFO", Vec::new().into()),
    )
    .await;
    let problem = match answer {
        Ok(Ok(reply)) => match serde_json::from_slice::<serde_json::Value>(&reply.payload) {
            Ok(info) if info.get("error").is_none() => None,
            Ok(info) => Some(info["error"].to_string()),
            Err(error) => Some(error.to_string()),
        },
        Ok(Err(error)) => Some(error.to_string()),
        Err(_) => Some("no answer within 5 s".to_owned()),
    };
    match problem {
        None => Some(jetstream::new(client)),
        Some(problem) if !services_required() => {
            println!("skipped: NATS at {url} has no JetStream ({problem}), so this NATS test did not run");
            None
        }
        Some(problem) => panic!("CI needs JetStream on NATS at {url}: {problem}"),
    }
}

/// A subject prefix no other test run uses.
pub fn unique_prefix(label: &str) -> String {
    format!(
        "estest_{label}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A holder id that survives the process, as a restarted service instance keeps its name:
/// the next child takes the lease at once instead of waiting for a dead one's to expire.
pub const CHILD_HOLDER: &str = "nats-crash-child";

/// The publisher the crash tests run: `crash.appended` events only, under `prefix`.
pub fn crash_publisher(prefix: &str) -> PublisherConfig {
    let mut config = PublisherConfig::new("crash")
        .subject_prefix(prefix)
        .filter(EventFilter::none().event(<Appended as es_core::Event>::NAME));
    config.batch_size = 200;
    config.pacing = DaemonConfig {
        holder: CHILD_HOLDER.to_owned(),
        poll_interval: Duration::from_millis(50),
        retry_after: Duration::from_millis(100),
        ..DaemonConfig::default()
    };
    config
}

/// The subscription the crash tests run: every message of `stream`, acks expected within a
/// second, so what a killed child left unacknowledged comes back soon.
pub fn crash_subscription(stream: &str) -> SubscriptionConfig {
    let mut config = SubscriptionConfig::new("crash_tallies_in", stream);
    config.batch_size = 50;
    config.ack_wait = Duration::from_secs(1);
    config.poll_interval = Duration::from_millis(200);
    config.retry_after = Duration::from_millis(100);
    config.holder = CHILD_HOLDER.to_owned();
    config
}

/// Every message of `stream` in stream order, decoded, with its stream sequence.
pub async fn read_stream(context: &jetstream::Context, stream: &str) -> Vec<(u64, RecordedEvent)> {
    let mut stream = context.get_stream(stream).await.expect("the stream exists");
    let count = stream.info().await.expect("stream info").state.messages;
    let ordered = stream
        .create_consumer(consumer::pull::OrderedConfig::default())
        .await
        .expect("an ordered consumer");
    let mut messages = ordered.messages().await.expect("messages");
    let mut events = Vec::new();
    while (events.len() as u64) < count {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the stream's messages arrive")
            .expect("more messages")
            .expect("a message");
        let sequence = message.info().expect("message info").stream_sequence;
        let event = es_core::nats::decode_message(&message).expect("a message decodes");
        events.push((sequence, event));
    }
    events
}
