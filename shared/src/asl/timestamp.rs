//! RFC 3339 timestamps as Step Functions accepts them (uppercase `T` and `Z` or an offset).

use chrono::{DateTime, Utc};

/// Parses a timestamp the way Step Functions does, or `None`.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    if !s.contains('T') {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Formats a time as the context object does: ISO-8601, millisecond fraction unless zero.
pub fn format(t: DateTime<Utc>) -> String {
    let ms = t.timestamp_subsec_millis();
    if ms == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}
