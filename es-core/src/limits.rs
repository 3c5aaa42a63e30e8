//! What every store refuses, the same way, before the database sees it.
//!
//! A store that accepted more than another would make moving between stores lose data; so
//! these limits are checked in one place, by [`check_append`], which every backend (yours
//! too) calls first. The conformance suite proves each backend refuses at exactly these limits.
//!
//! | what | limit |
//! |---|---|
//! | aggregate type | 1 to 64 bytes of ASCII letters, digits, `_`, `-`, `.` |
//! | aggregate id | 1 to 1,024 bytes, no NUL |
//! | event name | 1 to 256 bytes, no NUL |
//! | payload | at most 16 MiB of JSON text |
//! | metadata | at most 64 KiB of free-form entries, no NUL |
//! | events per append | at most 100,000 |

use crate::envelope::NewEvent;
use crate::error::{Field, Refusal, StoreError};
use crate::stream::StreamId;

pub use crate::stream::{MAX_AGGREGATE_ID_BYTES, MAX_AGGREGATE_TYPE_BYTES};

/// The longest stored event name, in bytes.
pub const MAX_EVENT_NAME_BYTES: usize = 256;
/// The largest payload, in bytes of JSON text.
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;
/// The largest free-form metadata (keys and values together), in bytes.
pub const MAX_METADATA_BYTES: usize = 64 << 10;
/// The most events one append may hold.
pub const MAX_EVENTS_PER_APPEND: usize = 100_000;

/// Refuses an append that breaks a limit above; every store calls it before writing.
pub fn check_append(stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
    check_events(events).map_err(|refusal| StoreError::Refused {
        stream: stream.clone(),
        refusal,
    })
}

fn check_events(events: &[NewEvent]) -> Result<(), Refusal> {
    if events.len() > MAX_EVENTS_PER_APPEND {
        return Err(Refusal::TooManyEvents {
            count: events.len(),
            max: MAX_EVENTS_PER_APPEND,
        });
    }
    // A batch is recorded under its first event's command id; an event claiming another
    // command would be found (or missed) by a retry of that other command.
    if let Some(first) = events.first() {
        if let Some(other) = events
            .iter()
            .find(|event| event.metadata.command_id != first.metadata.command_id)
        {
            return Err(Refusal::CommandIdsDiffer {
                first: first.metadata.command_id,
                other: other.metadata.command_id,
            });
        }
    }
    for event in events {
        check_text(Field::EventName, &event.event_name, MAX_EVENT_NAME_BYTES)?;
        if event.event_name.is_empty() {
            return Err(Refusal::Empty {
                field: Field::EventName,
            });
        }
        check_text(Field::Payload, event.payload.as_str(), MAX_PAYLOAD_BYTES)?;
        let mut metadata_bytes = 0;
        for (key, value) in &event.metadata.extra {
            metadata_bytes += key.len() + value.len();
            if key.contains('\0') || value.contains('\0') {
                return Err(Refusal::Character {
                    field: Field::Metadata,
                    character: '\0',
                });
            }
        }
        if metadata_bytes > MAX_METADATA_BYTES {
            return Err(Refusal::TooLong {
                field: Field::Metadata,
                bytes: metadata_bytes,
                max: MAX_METADATA_BYTES,
            });
        }
    }
    Ok(())
}

fn check_text(field: Field, text: &str, max: usize) -> Result<(), Refusal> {
    if text.len() > max {
        return Err(Refusal::TooLong {
            field,
            bytes: text.len(),
            max,
        });
    }
    if text.contains('\0') {
        return Err(Refusal::Character {
            field,
            character: '\0',
        });
    }
    Ok(())
}
