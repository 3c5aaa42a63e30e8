//! What can go wrong between the log and NATS.

use crate::error::{Refusal, StoreError};

/// Why a message could not be read back as an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageFault {
    /// A header the publisher always writes is missing (or the message has no headers).
    #[error("header `{0}` is missing")]
    MissingHeader(&'static str),
    /// A header does not parse.
    #[error("header `{header}` holds `{value}`, which does not parse")]
    BadHeader {
        /// The header.
        header: &'static str,
        /// What it holds.
        value: String,
    },
    /// Aggregate type and id do not make a stream id.
    #[error("aggregate type and id do not make a stream id: {0}")]
    Stream(Refusal),
    /// The body is not UTF-8 text (payloads are JSON).
    #[error("the body is not UTF-8 JSON text")]
    PayloadNotText,
}

/// An error of a [`Publisher`](super::Publisher) or a [`Subscription`](super::Subscription).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A name that must be an identifier is not one.
    #[error("`{name}` cannot name a {what}: use lowercase ASCII letters, digits and `_`, starting with a letter, at most 40 bytes")]
    BadName {
        /// What it names: publisher or subscription.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A subject prefix that cannot lead subjects.
    #[error("`{0}` cannot prefix subjects: use dot-separated tokens of printable ASCII, no wildcards, e.g. `es` or `acme.orders`")]
    BadPrefix(String),
    /// The JetStream stream could not be found or created.
    #[error("JetStream stream `{stream}` could not be found or created")]
    Stream {
        /// The stream.
        stream: String,
        /// Why.
        #[source]
        source: async_nats::Error,
    },
    /// The durable consumer could not be found or created, or asked for messages.
    #[error("JetStream consumer `{consumer}` of stream `{stream}` failed")]
    Consumer {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
        /// Why.
        #[source]
        source: async_nats::Error,
    },
    /// A publish was not acknowledged by JetStream (it may or may not be stored: it is
    /// published again, and its message id makes a stored copy vanish).
    #[error("publishing event {event_id} on `{subject}` was not acknowledged")]
    Publish {
        /// The subject.
        subject: String,
        /// The event.
        event_id: uuid::Uuid,
        /// Why.
        #[source]
        source: async_nats::Error,
    },
    /// A message's acknowledgement could not be sent (it is redelivered, and recognised).
    #[error("acknowledging message {stream_sequence} failed")]
    Ack {
        /// Its sequence in the stream.
        stream_sequence: u64,
        /// Why.
        #[source]
        source: async_nats::Error,
    },
    /// A message does not carry an event as a publisher writes it.
    #[error("message {stream_sequence} on `{subject}` is not an event: {fault}")]
    Message {
        /// Its subject.
        subject: String,
        /// Its sequence in the stream.
        stream_sequence: u64,
        /// What is wrong with it.
        fault: MessageFault,
    },
    /// The subscription's handler failed; the messages were not acknowledged and come again.
    #[error("subscription `{subscription}` failed on event {event_id} (`{event_name}`): {source}")]
    Handler {
        /// The subscription.
        subscription: String,
        /// The event.
        event_id: uuid::Uuid,
        /// Its name.
        event_name: String,
        /// Why.
        #[source]
        source: crate::error::BoxError,
    },
}

/// Whether `name` is a short identifier, so `publisher_{name}` and `inbox_{name}` make table
/// names and consumer names on every store.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), NatsError> {
    let mut bytes = name.bytes();
    let starts_with_letter = bytes.next().is_some_and(|byte| byte.is_ascii_lowercase());
    let rest_ok = name
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    if starts_with_letter && rest_ok && name.len() <= 40 {
        Ok(())
    } else {
        Err(NatsError::BadName {
            what,
            name: name.to_owned(),
        })
    }
}
