//! Stream identity: an aggregate type and an aggregate id, kept apart so no two pairs can meet.

use std::fmt;
use std::sync::Arc;

use crate::error::{Field, Refusal};
use crate::scratch::with_scratch;

/// The longest aggregate type name, in bytes.
pub const MAX_AGGREGATE_TYPE_BYTES: usize = 64;
/// The longest aggregate id, in bytes (as rendered by its `Display`).
pub const MAX_AGGREGATE_ID_BYTES: usize = 1024;

/// Names one stream: the aggregate type that owns it and the id of one aggregate.
///
/// The two parts never blur into each other: an aggregate type may only hold ASCII letters,
/// digits, `_`, `-` and `.`, so the stored key `"{type}/{id}"` splits at its first `/`, and
/// aggregate `order` with id `line/7` can never meet aggregate `order/line` (refused) or
/// `order-line` with id `7` (another key). The id may hold any text but NUL.
///
/// ```
/// use es_core::StreamId;
///
/// let stream = StreamId::new("post", "42")?;
/// assert_eq!((stream.aggregate_type(), stream.aggregate_id()), ("post", "42"));
/// assert_eq!(stream.to_string(), "post/42");
/// assert!(StreamId::new("post/comment", "42").is_err());
/// # Ok::<(), es_core::Refusal>(())
/// ```
///
/// Cloning shares the text: envelopes of one stream do not copy it per event.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// `"{type}/{id}"`.
    key: Arc<str>,
    /// Length of the type prefix, in bytes (at most [`MAX_AGGREGATE_TYPE_BYTES`]).
    type_len: u8,
}

impl StreamId {
    /// The stream of aggregate `aggregate_id` of type `aggregate_type`, or why it cannot be one:
    /// an empty or over-long part, a NUL, or a type with characters other than ASCII letters,
    /// digits, `_`, `-` and `.`.
    pub fn new(aggregate_type: &str, aggregate_id: &str) -> Result<Self, Refusal> {
        Self::with_id(aggregate_type, |key| key.push_str(aggregate_id))
    }

    /// The stream of the aggregate whose id `write_id` renders: writes it straight into the
    /// key, so an id that is not a string is not rendered into one first.
    pub(crate) fn with_id(
        aggregate_type: &str,
        write_id: impl FnOnce(&mut String),
    ) -> Result<Self, Refusal> {
        thread_local! {
            static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        check_aggregate_type(aggregate_type)?;
        with_scratch(&KEY, 4 * MAX_AGGREGATE_ID_BYTES, |key| {
            key.push_str(aggregate_type);
            key.push('/');
            write_id(key);
            check_aggregate_id(&key[aggregate_type.len() + 1..])?;
            Ok(StreamId {
                key: Arc::from(key.as_str()),
                // Checked above: at most MAX_AGGREGATE_TYPE_BYTES (64), so it fits.
                type_len: aggregate_type.len() as u8,
            })
        })
    }

    /// Reads back a key a store holds (`"{type}/{id}"`), checking it as [`new`](Self::new) does.
    pub fn parse(key: &str) -> Result<Self, Refusal> {
        let Some((aggregate_type, aggregate_id)) = key.split_once('/') else {
            return Err(Refusal::Empty {
                field: Field::AggregateId,
            });
        };
        Self::new(aggregate_type, aggregate_id)
    }

    /// The aggregate type, e.g. `"post"`.
    pub fn aggregate_type(&self) -> &str {
        &self.key[..usize::from(self.type_len)]
    }

    /// The aggregate id, e.g. `"42"`.
    pub fn aggregate_id(&self) -> &str {
        &self.key[usize::from(self.type_len) + 1..]
    }

    /// The key stores use: `"{type}/{id}"`, unique for each (type, id) pair.
    pub fn as_str(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:?})", &*self.key)
    }
}

/// Refuses an empty `value` of `field`, or one longer than `max` bytes.
fn check_length(field: Field, value: &str, max: usize) -> Result<(), Refusal> {
    if value.is_empty() {
        return Err(Refusal::Empty { field });
    }
    if value.len() > max {
        return Err(Refusal::TooLong {
            field,
            bytes: value.len(),
            max,
        });
    }
    Ok(())
}

fn check_aggregate_type(aggregate_type: &str) -> Result<(), Refusal> {
    let field = Field::AggregateType;
    check_length(field, aggregate_type, MAX_AGGREGATE_TYPE_BYTES)?;
    match aggregate_type
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        Some(character) => Err(Refusal::Character { field, character }),
        None => Ok(()),
    }
}

fn check_aggregate_id(aggregate_id: &str) -> Result<(), Refusal> {
    let field = Field::AggregateId;
    check_length(field, aggregate_id, MAX_AGGREGATE_ID_BYTES)?;
    if aggregate_id.contains('\0') {
        return Err(Refusal::Character {
            field,
            character: '\0',
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_that_a_dash_would_join_stay_apart() {
        let a = StreamId::new("order", "line-7").unwrap();
        let b = StreamId::new("order-line", "7").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str(), "order/line-7");
        assert_eq!(b.as_str(), "order-line/7");
    }

    #[test]
    fn an_id_may_hold_slashes_and_parses_back() {
        let stream = StreamId::new("file", "a/b/c").unwrap();
        let parsed = StreamId::parse(stream.as_str()).unwrap();
        assert_eq!(parsed, stream);
        assert_eq!(
            (parsed.aggregate_type(), parsed.aggregate_id()),
            ("file", "a/b/c")
        );
    }

    #[test]
    fn refuses_what_could_not_be_told_apart_or_stored() {
        assert!(matches!(
            StreamId::new("a/b", "c"),
            Err(Refusal::Character { character: '/', .. })
        ));
        assert!(matches!(
            StreamId::new("post", ""),
            Err(Refusal::Empty {
                field: Field::AggregateId
            })
        ));
        assert!(matches!(
            StreamId::new("post", "a\0b"),
            Err(Refusal::Character {
                character: '\0',
                ..
            })
        ));
        assert!(matches!(
            StreamId::new("post", &"x".repeat(MAX_AGGREGATE_ID_BYTES + 1)),
            Err(Refusal::TooLong { .. })
        ));
        assert!(StreamId::parse("no-separator").is_err());
    }
}
