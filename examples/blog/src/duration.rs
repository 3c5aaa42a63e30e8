//! Durations as people write them on a command line: `30d`, `12h`, `15m`, `90s`, `500ms`.

use std::time::Duration;

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Reads `30d`, `12h`, `15m`, `90s` or `500ms` (a whole number and a unit).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let explain = || {
        format!("`{text}` is not a duration; write a whole number and a unit, as in 30d, 12h, 15m, 90s or 500ms")
    };
    let number: u64 = number.parse().map_err(|_| explain())?;
    let millis = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, millis)| *millis)
        .ok_or_else(explain)?;
    number
        .checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long a duration"))
}

/// Writes `duration` in the largest unit that states it exactly: `30d`, `90s`, `1500ms`.
pub fn describe(duration: Duration) -> String {
    let millis = duration.as_millis();
    for (name, size) in UNITS {
        let size = u128::from(size);
        if millis >= size && millis.is_multiple_of(size) {
            return format!("{}{name}", millis / size);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes() {
        for text in ["30d", "12h", "15m", "90s", "1500ms", "0ms"] {
            assert_eq!(describe(parse(text).unwrap()), text);
        }
        assert_eq!(parse("2h").unwrap(), Duration::from_secs(7200));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for text in ["", "d", "30", "30 days", "-1s", "1.5h"] {
            let error = parse(text).unwrap_err();
            assert!(error.contains("30d, 12h"), "{text}: {error}");
        }
    }
}
