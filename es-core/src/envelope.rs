//! The envelope: an event together with where, when and why it was recorded.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::scratch::with_scratch;
use crate::stream::StreamId;

/// The largest encoding buffer a thread keeps between payloads.
const KEEP_BUFFER_BYTES: usize = 64 * 1024;

/// A stored event's serialized payload: JSON text, cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Payload(Arc<str>);

impl Payload {
    /// Serializes a value as the payload.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        thread_local! {
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        with_scratch(&BUFFER, KEEP_BUFFER_BYTES, |buffer| {
            serde_json::to_writer(&mut *buffer, value)?;
            match std::str::from_utf8(buffer) {
                Ok(text) => Ok(Payload(Arc::from(text))),
                Err(error) => Err(<serde_json::Error as serde::ser::Error>::custom(error)),
            }
        })
    }

    /// Wraps JSON text read back from a store. It is parsed only when decoded, so a corrupt row
    /// surfaces as a decode error that names its stream and version.
    pub fn from_json_text(text: impl Into<Arc<str>>) -> Self {
        Payload(text.into())
    }

    /// Deserializes the payload.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Identity and causality of one event, plus free-form context the application attaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Unique id of this event.
    pub event_id: Uuid,
    /// Shared by every event that one request caused, across aggregates and services.
    pub correlation_id: Uuid,
    /// The command or event that directly caused this one, if known.
    pub causation_id: Option<Uuid>,
    /// The id of the command whose append recorded this event, if it carried one: every
    /// event of the command carries it. A store records it atomically with the append, and
    /// an append whose first event carries an id already recorded on the same stream appends
    /// nothing and returns what that command appended (see [`EventLog`](crate::EventLog)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<Uuid>,
    /// Free-form context, e.g. the user who issued the command.
    pub extra: BTreeMap<String, String>,
}

impl Metadata {
    /// Metadata for a new event with a fresh event id, in the given correlation.
    pub fn new(correlation_id: Uuid) -> Self {
        Metadata {
            event_id: Uuid::now_v7(),
            correlation_id,
            causation_id: None,
            command_id: None,
            extra: BTreeMap::new(),
        }
    }
}

/// An event as stored, with everything known about it.
///
/// `Envelope<Payload>` ([`RecordedEvent`]) is what stores return; `Envelope<E>` is the same
/// record with the payload decoded, as the repository returns and projections receive.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope<E = Payload> {
    /// The stream the event belongs to: aggregate type and id, e.g. `post/42`.
    pub stream: StreamId,
    /// Position in its stream: gapless, starting at 1.
    pub version: u64,
    /// Position in the whole store: strictly increasing in commit order, not necessarily dense.
    pub position: u64,
    /// When the store recorded it (UTC).
    pub recorded_at: DateTime<Utc>,
    /// The event's stored name, e.g. `"post.published"` (shared, not copied per event).
    pub event_name: Arc<str>,
    /// The schema version the payload was written with.
    pub schema_version: u32,
    /// Ids and free-form context.
    pub metadata: Metadata,
    /// The event itself.
    pub event: E,
}

/// An event as a store holds it, payload still serialized.
pub type RecordedEvent = Envelope<Payload>;

impl<E> Envelope<E> {
    /// The id of the aggregate that wrote the event, e.g. `"42"`.
    pub fn aggregate_id(&self) -> &str {
        self.stream.aggregate_id()
    }

    /// The type of the aggregate that wrote the event, e.g. `"post"`.
    pub fn aggregate_type(&self) -> &str {
        self.stream.aggregate_type()
    }

    /// The same envelope with its event replaced, e.g. after decoding.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Envelope<F> {
        let Ok(envelope) = self.try_map(|event| Ok::<_, Infallible>(f(event)));
        envelope
    }

    /// The same envelope with its event replaced, or `None` when `f` keeps nothing.
    pub(crate) fn filter_map<F>(self, f: impl FnOnce(E) -> Option<F>) -> Option<Envelope<F>> {
        self.try_map(|event| f(event).ok_or(())).ok()
    }

    /// The same envelope with its event replaced, or `f`'s error.
    fn try_map<F, X>(self, f: impl FnOnce(E) -> Result<F, X>) -> Result<Envelope<F>, X> {
        let event = f(self.event)?;
        Ok(Envelope {
            stream: self.stream,
            version: self.version,
            position: self.position,
            recorded_at: self.recorded_at,
            event_name: self.event_name,
            schema_version: self.schema_version,
            metadata: self.metadata,
            event,
        })
    }

    /// The same envelope header around a borrowed event.
    pub fn with_event<F>(&self, event: F) -> Envelope<F> {
        Envelope {
            stream: self.stream.clone(),
            version: self.version,
            position: self.position,
            recorded_at: self.recorded_at,
            event_name: self.event_name.clone(),
            schema_version: self.schema_version,
            metadata: self.metadata.clone(),
            event,
        }
    }
}

/// An event about to be appended: the store assigns version, position and time.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// The stored name.
    pub event_name: Arc<str>,
    /// The schema version of the payload.
    pub schema_version: u32,
    /// Ids and free-form context.
    pub metadata: Metadata,
    /// The serialized event.
    pub payload: Payload,
}

impl Envelope<Payload> {
    /// The event as an `E`, when it is one (its stored name is `E::NAME`), upcast from older
    /// schema versions; `None` for other events. The error names stream, version and event.
    pub fn decode_as<E: crate::event::Event>(
        &self,
    ) -> Result<Option<E>, crate::error::DecodeError> {
        if &*self.event_name != E::NAME {
            return Ok(None);
        }
        E::decode(self.schema_version, &self.event)
            .map(Some)
            .map_err(|failure| failure.at_record(self))
    }
}

#[cfg(test)]
mod tests {
    use super::Payload;

    #[test]
    fn payloads_encode_alike_around_a_large_one_that_resets_the_buffer() {
        let large = "x".repeat(100 * 1024);
        let before = Payload::encode(&("small", 1)).unwrap();
        let big = Payload::encode(&large).unwrap();
        let after = Payload::encode(&("small", 1)).unwrap();
        assert_eq!(before.as_str(), r#"["small",1]"#);
        assert_eq!(big.as_str().len(), large.len() + 2);
        assert_eq!(after, before);
    }
}
