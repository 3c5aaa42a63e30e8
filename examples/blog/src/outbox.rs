//! Events leave the blog: with `--nats URL`, every command's events are published to NATS
//! JetStream by the outbox publisher (subjects `{prefix}.{aggregate}.{event}`, stream named
//! after the prefix); `blog tail` prints them as they arrive.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use es_core::nats::{decode_message, ensure_stream, Publisher, PublisherConfig};
use es_core::Store;
use futures::StreamExt;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// How long a command run waits, before it exits, for its events to be published.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// The publisher the blog runs: every event, under `prefix`.
pub fn config(prefix: &str) -> PublisherConfig {
    PublisherConfig::new("blog").subject_prefix(prefix)
}

/// Connects to NATS at `url` and opens JetStream.
pub async fn connect(url: &str) -> Result<jetstream::Context, Failure> {
    let client = tokio::time::timeout(Duration::from_secs(5), async_nats::connect(url))
        .await
        .map_err(|_| format!("NATS at {url} did not answer within 5 s"))??;
    Ok(jetstream::new(client))
}

/// Starts publishing the log of `store` in the background.
pub async fn start(store: Arc<dyn Store>, url: &str, prefix: &str) -> Result<Publisher, Failure> {
    Ok(Publisher::start(store, connect(url).await?, config(prefix)).await?)
}

/// Waits (at most [`PUBLISH_TIMEOUT`]) until everything committed so far is in JetStream,
/// then stops the publisher. Commands never wait for this; a short CLI run does, so that its
/// events leave before the process does (otherwise the next run would publish them).
pub async fn finish(publisher: Publisher, store: &dyn Store) -> Result<(), Failure> {
    let head = store.head_position().await?;
    let published = publisher.wait_for(head, PUBLISH_TIMEOUT).await?;
    publisher.shutdown().await;
    if !published {
        return Err(format!(
            "the events up to position {head} were not all published within {PUBLISH_TIMEOUT:?}; the next run with --nats goes on"
        )
        .into());
    }
    Ok(())
}

/// Prints the blog's events from JetStream as they arrive: from the first one with
/// `from_start`, else only new ones; stops after `count` when given, else runs until killed.
pub async fn tail(
    url: &str,
    prefix: &str,
    from_start: bool,
    count: Option<usize>,
) -> Result<(), Failure> {
    let context = connect(url).await?;
    let stream = ensure_stream(&context, &config(prefix)).await?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: if from_start {
                consumer::DeliverPolicy::All
            } else {
                consumer::DeliverPolicy::New
            },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut printed = 0;
    while count.is_none_or(|count| printed < count) {
        let Some(message) = messages.next().await else {
            break;
        };
        let message = message?;
        let sequence = message.info().map_or(0, |info| info.stream_sequence);
        let mut line = String::new();
        match decode_message(&message) {
            Ok(event) => writeln!(
                line,
                "{sequence:>6} {:<40} {} v{} {} {}",
                message.subject.as_str(),
                event.stream,
                event.version,
                event.event_name,
                event.event.as_str()
            )?,
            Err(fault) => writeln!(
                line,
                "{sequence:>6} {:<40} (not a blog event: {fault})",
                message.subject.as_str()
            )?,
        }
        // Line by line, so a pipe sees each event as it comes.
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(line.as_bytes())?;
        stdout.flush()?;
        printed += 1;
    }
    Ok(())
}
