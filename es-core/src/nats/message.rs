//! An event as a JetStream message: the payload as the body, the envelope as headers, and the
//! event id as `Nats-Msg-Id` so JetStream drops a republished copy inside its duplicate window.

use std::sync::Arc;

use async_nats::header::{HeaderName, IntoHeaderName};
use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::envelope::{Metadata, Payload, RecordedEvent};
use crate::nats::error::MessageFault;
use crate::stream::StreamId;

/// The header JetStream deduplicates on: the event id.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The event id again, for consumers: JetStream's header is JetStream's business, and a
/// copy republished without it is still the same event.
pub const EVENT_ID: &str = "Es-Event-Id";
/// The event's position in the publishing service's log.
pub const POSITION: &str = "Es-Position";
/// The aggregate type (percent-escaped like every free-text header).
pub const AGGREGATE_TYPE: &str = "Es-Aggregate-Type";
/// The aggregate id.
pub const AGGREGATE_ID: &str = "Es-Aggregate-Id";
/// The event's version in its stream.
pub const VERSION: &str = "Es-Version";
/// The event's stored name.
pub const EVENT_NAME: &str = "Es-Event-Name";
/// The payload's schema version.
pub const SCHEMA_VERSION: &str = "Es-Schema-Version";
/// When the publishing service recorded the event (RFC 3339).
pub const RECORDED_AT: &str = "Es-Recorded-At";
/// The correlation id.
pub const CORRELATION_ID: &str = "Es-Correlation-Id";
/// The causation id, when the event has one.
pub const CAUSATION_ID: &str = "Es-Causation-Id";
/// The free-form metadata as a JSON object, when there is any.
pub const EXTRA: &str = "Es-Extra";
/// The id of the command that appended the event, when it had one.
pub const COMMAND_ID: &str = "Es-Command-Id";

/// A header name as the client parses it off the wire: a name given as `&str` would stay
/// "custom" and never match a parsed standard one such as `Nats-Msg-Id`.
fn name(name: &'static str) -> HeaderName {
    name.parse().unwrap_or_else(|_| name.into_header_name())
}

/// Free text as a header value: printable ASCII except `%` stays, every other byte becomes
/// `%XX`, so no id or name can break the header block (a newline) or lose its edges (spaces).
fn escape_value(text: &str) -> String {
    let mut value = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_graphic() && byte != b'%' {
            value.push(char::from(byte));
        } else {
            value.push_str(&format!("%{byte:02X}"));
        }
    }
    value
}

fn unescape_value(value: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// The headers of `event`'s message.
pub(crate) fn headers_of(event: &RecordedEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let metadata = &event.metadata;
    headers.insert(name(MSG_ID), metadata.event_id.to_string());
    headers.insert(name(EVENT_ID), metadata.event_id.to_string());
    headers.insert(name(POSITION), event.position.to_string());
    headers.insert(name(AGGREGATE_TYPE), escape_value(event.aggregate_type()));
    headers.insert(name(AGGREGATE_ID), escape_value(event.aggregate_id()));
    headers.insert(name(VERSION), event.version.to_string());
    headers.insert(name(EVENT_NAME), escape_value(&event.event_name));
    headers.insert(name(SCHEMA_VERSION), event.schema_version.to_string());
    headers.insert(name(RECORDED_AT), event.recorded_at.to_rfc3339());
    headers.insert(name(CORRELATION_ID), metadata.correlation_id.to_string());
    if let Some(command_id) = metadata.command_id {
        headers.insert(name(COMMAND_ID), command_id.to_string());
    }
    if let Some(causation_id) = metadata.causation_id {
        headers.insert(name(CAUSATION_ID), causation_id.to_string());
    }
    if !metadata.extra.is_empty() {
        // A map of strings always serializes.
        let extra = serde_json::to_string(&metadata.extra).unwrap_or_default();
        headers.insert(name(EXTRA), escape_value(&extra));
    }
    headers
}

fn header<'a>(headers: &'a HeaderMap, header: &'static str) -> Result<&'a str, MessageFault> {
    headers
        .get(name(header))
        .map(|value| value.as_str())
        .ok_or(MessageFault::MissingHeader(header))
}

fn parsed<T: std::str::FromStr>(
    headers: &HeaderMap,
    name: &'static str,
) -> Result<T, MessageFault> {
    let value = header(headers, name)?;
    value.parse().map_err(|_| MessageFault::BadHeader {
        header: name,
        value: value.to_owned(),
    })
}

fn text(headers: &HeaderMap, name: &'static str) -> Result<String, MessageFault> {
    let value = header(headers, name)?;
    unescape_value(value).ok_or_else(|| MessageFault::BadHeader {
        header: name,
        value: value.to_owned(),
    })
}

/// The event a message carries, as the publishing service recorded it (its position is the
/// publisher's, not this service's).
pub(crate) fn event_of(
    headers: Option<&HeaderMap>,
    payload: &[u8],
) -> Result<RecordedEvent, MessageFault> {
    let headers = headers.ok_or(MessageFault::MissingHeader(EVENT_ID))?;
    let stream = StreamId::new(
        &text(headers, AGGREGATE_TYPE)?,
        &text(headers, AGGREGATE_ID)?,
    )
    .map_err(MessageFault::Stream)?;
    let recorded_at = header(headers, RECORDED_AT)?;
    let recorded_at = DateTime::parse_from_rfc3339(recorded_at)
        .map_err(|_| MessageFault::BadHeader {
            header: RECORDED_AT,
            value: recorded_at.to_owned(),
        })?
        .with_timezone(&Utc);
    let command_id = match headers.get(name(COMMAND_ID)) {
        Some(_) => Some(parsed::<Uuid>(headers, COMMAND_ID)?),
        None => None,
    };
    let causation_id = match headers.get(name(CAUSATION_ID)) {
        Some(_) => Some(parsed::<Uuid>(headers, CAUSATION_ID)?),
        None => None,
    };
    let extra = match headers.get(name(EXTRA)) {
        Some(_) => {
            let json = text(headers, EXTRA)?;
            serde_json::from_str(&json).map_err(|_| MessageFault::BadHeader {
                header: EXTRA,
                value: json,
            })?
        }
        None => Default::default(),
    };
    let payload = std::str::from_utf8(payload).map_err(|_| MessageFault::PayloadNotText)?;
    Ok(RecordedEvent {
        stream,
        version: parsed(headers, VERSION)?,
        position: parsed(headers, POSITION)?,
        recorded_at,
        event_name: Arc::from(text(headers, EVENT_NAME)?),
        schema_version: parsed(headers, SCHEMA_VERSION)?,
        metadata: Metadata {
            event_id: parsed(headers, EVENT_ID)?,
            correlation_id: parsed(headers, CORRELATION_ID)?,
            causation_id,
            command_id,
            extra,
        },
        event: Payload::from_json_text(payload),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_event_survives_the_trip_through_headers() {
        let mut metadata = Metadata::new(Uuid::now_v7());
        metadata.causation_id = Some(Uuid::now_v7());
        metadata
            .extra
            .insert("user".into(), "ann\r\nX-Evil: 1 é %".into());
        let event = RecordedEvent {
            stream: StreamId::new("post.v2", " 42\nand more ").unwrap(),
            version: 7,
            position: 1234,
            recorded_at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            event_name: "post.published".into(),
            schema_version: 3,
            metadata,
            event: Payload::from_json_text(r#"{"title":"hi"}"#),
        };
        let headers = headers_of(&event);
        for (_, values) in headers.iter() {
            for value in values {
                assert!(value.as_str().bytes().all(|byte| byte.is_ascii_graphic()));
            }
        }
        let back = event_of(Some(&headers), event.event.as_str().as_bytes()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn a_message_without_headers_is_refused() {
        assert_eq!(
            event_of(None, b"{}").unwrap_err(),
            MessageFault::MissingHeader(EVENT_ID)
        );
    }
}
