//! Where an event goes: its subject, derived from aggregate type and event name, and the
//! filter that chooses which events go at all.

use std::collections::BTreeSet;

use crate::envelope::RecordedEvent;

/// One subject token from any text: ASCII letters, digits, `-` and `_` stay as they are; every
/// other byte (the `.` of `post.published`, `*`, `>`, whitespace, `~` itself, non-ASCII) becomes
/// `~` and two upper-case hex digits. Reversible, never empty, never a wildcard.
pub fn escape_token(text: &str) -> String {
    if text.is_empty() {
        return "~".to_owned();
    }
    let mut token = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            token.push(char::from(byte));
        } else {
            token.push('~');
            token.push_str(&format!("{byte:02X}"));
        }
    }
    token
}

/// The subject an event is published on: `{prefix}.{aggregate type}.{event name}`, each of the
/// last two one escaped token (see [`escape_token`]), so `post.published` of aggregate `post`
/// under prefix `es` goes to `es.post.post~2Epublished`, and a subscriber can filter on
/// `es.post.>` for every event of posts.
pub fn subject_for(prefix: &str, aggregate_type: &str, event_name: &str) -> String {
    format!(
        "{prefix}.{}.{}",
        escape_token(aggregate_type),
        escape_token(event_name)
    )
}

/// Whether `prefix` can lead subjects: dot-separated tokens of printable ASCII, none empty,
/// none a wildcard.
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && token.bytes().all(|byte| byte.is_ascii_graphic())
        })
}

/// Which events a publisher sends: all of them, or those whose event name or aggregate type
/// is listed (an event goes out when either matches).
///
/// ```
/// use es_core::nats::EventFilter;
///
/// let filter = EventFilter::none()
///     .event("post.published")
///     .aggregate_type("author");
/// assert!(filter.accepts("post", "post.published"));
/// assert!(filter.accepts("author", "author.renamed"));
/// assert!(!filter.accepts("post", "post.edited"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFilter {
    all: bool,
    event_names: BTreeSet<String>,
    aggregate_types: BTreeSet<String>,
}

impl Default for EventFilter {
    fn default() -> Self {
        Self::all()
    }
}

impl EventFilter {
    /// Every event.
    pub fn all() -> Self {
        EventFilter {
            all: true,
            event_names: BTreeSet::new(),
            aggregate_types: BTreeSet::new(),
        }
    }

    /// No event; add some with [`event`](Self::event) and [`aggregate_type`](Self::aggregate_type).
    pub fn none() -> Self {
        EventFilter {
            all: false,
            ..Self::all()
        }
    }

    /// Also events stored under this name, e.g. `"post.published"`.
    pub fn event(mut self, event_name: impl Into<String>) -> Self {
        self.all = false;
        self.event_names.insert(event_name.into());
        self
    }

    /// Also every event of aggregates of this type, e.g. `"post"`.
    pub fn aggregate_type(mut self, aggregate_type: impl Into<String>) -> Self {
        self.all = false;
        self.aggregate_types.insert(aggregate_type.into());
        self
    }

    /// Whether an event of this aggregate type and name goes out.
    pub fn accepts(&self, aggregate_type: &str, event_name: &str) -> bool {
        self.all
            || self.event_names.contains(event_name)
            || self.aggregate_types.contains(aggregate_type)
    }

    pub(crate) fn accepts_event(&self, event: &RecordedEvent) -> bool {
        self.accepts(event.aggregate_type(), &event.event_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_and_wildcards_are_escaped_into_one_token() {
        assert_eq!(
            subject_for("es", "post", "post.published"),
            "es.post.post~2Epublished"
        );
        assert_eq!(escape_token("a*b>c d~"), "a~2Ab~3Ec~20d~7E");
        assert_eq!(escape_token(""), "~");
        assert_eq!(escape_token("é"), "~C3~A9");
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(valid_prefix("es"));
        assert!(valid_prefix("acme.orders"));
        assert!(!valid_prefix(""));
        assert!(!valid_prefix("es."));
        assert!(!valid_prefix("es.>"));
        assert!(!valid_prefix("e s"));
    }
}
