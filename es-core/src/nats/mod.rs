//! Events leave the service: an outbox [`Publisher`] that publishes the log to NATS JetStream,
//! and [`Subscription`]s that consume JetStream into local read models (feature `nats`).
//!
//! | part | reads | writes | guarantee |
//! |---|---|---|---|
//! | [`Publisher`] | the log, in order, from its checkpoint | JetStream, one message per chosen event | each event stored once: the checkpoint moves after JetStream's ack, and the event id as `Nats-Msg-Id` drops a republished copy inside the stream's duplicate window |
//! | [`Subscription`] | a durable pull consumer | a handler's writes through a [`ReadTx`](crate::ReadTx), with the event ids | each event applied once: ids commit with the writes, redeliveries are recognised, the ack follows the commit |
//!
//! Both run in the background on the projection runtime's machinery: the publisher's
//! checkpoint is the generation row `publisher_{name}` (moved by compare-and-set), one process
//! holds it at a time (a lease), and its lag shows in [`Publisher::health`] like a
//! projection's. Commands never wait for, fail on, or lock against either.
//!
//! Subjects are `{prefix}.{aggregate type}.{event name}`, each part one escaped token
//! ([`subject_for`]); the envelope travels as headers ([`headers`]).
//!
//! A publisher that stays down longer than the duplicate window and had published events
//! whose acks it never saw publishes those once more: at most one batch, visible as two
//! messages with one `Nats-Msg-Id`, and recognised by every [`Subscription`].

mod error;
mod message;
mod publisher;
mod subject;
mod subscription;

pub use error::{MessageFault, NatsError};
pub use publisher::{ensure_stream, publisher_health, stream_name_for, Publisher, PublisherConfig};
pub use subject::{escape_token, subject_for, EventFilter};
pub use subscription::{
    ProjectionHandler, Subscription, SubscriptionConfig, SubscriptionHandler, SubscriptionHealth,
};

/// The headers each published message carries.
pub mod headers {
    pub use super::message::{
        AGGREGATE_ID, AGGREGATE_TYPE, CAUSATION_ID, COMMAND_ID, CORRELATION_ID, EVENT_ID,
        EVENT_NAME, EXTRA, MSG_ID, POSITION, RECORDED_AT, SCHEMA_VERSION, VERSION,
    };
}

/// The event a JetStream message carries, as its publisher recorded it (for consumers that
/// read messages themselves).
pub fn decode_message(message: &async_nats::Message) -> Result<crate::RecordedEvent, MessageFault> {
    message::event_of(message.headers.as_ref(), &message.payload)
}
