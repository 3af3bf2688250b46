//! A stored child as the embedded store keeps it: typed columns, with its input and output as
//! JSON text already quoted the way a result record embeds them ([`quote_json_text`]), so the
//! result writer copies a stored child into its record without parsing or escaping anything.

use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Child, ChildStatus};
use crate::writer::quote_json_text;

impl ChildStatus {
    /// The status [`ChildStatus::as_str`] names.
    pub fn parse(s: &str) -> Option<ChildStatus> {
        Some(match s {
            "PENDING" => ChildStatus::Pending,
            "PENDING_REDRIVE" => ChildStatus::PendingRedrive,
            "RUNNING" => ChildStatus::Running,
            "SUCCEEDED" => ChildStatus::Succeeded,
            "FAILED" => ChildStatus::Failed,
            "TIMED_OUT" => ChildStatus::TimedOut,
            "ABORTED" => ChildStatus::Aborted,
            _ => return None,
        })
    }
}

/// A date as stored: nanoseconds since the epoch (1677 to 2262). Dates come from the clock,
/// which never gives a leap second; one parsed from elsewhere would read back as the first
/// instant after it.
pub fn date_to_nanos(t: DateTime<Utc>) -> Option<i64> {
    t.timestamp_nanos_opt()
}

pub fn date_from_nanos(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

/// One stored child, borrowed (from a [`ChildRows`] chunk, or a store's row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChildRow<'a> {
    pub index: u64,
    pub status: ChildStatus,
    pub name: &'a str,
    pub first_item: u64,
    pub items: u64,
    pub redrive_count: u32,
    pub run_attempt: u32,
    /// [`date_to_nanos`].
    pub start_ns: Option<i64>,
    pub stop_ns: Option<i64>,
    pub error: Option<&'a str>,
    pub cause: Option<&'a str>,
    pub snapshot: Option<&'a str>,
    /// The input's JSON text, quoted ([`quote_json_text`]).
    pub input: &'a str,
    /// The output's JSON text, quoted; `None` when the child has no output.
    pub output: Option<&'a str>,
}

/// A child's input or output as a row keeps it: its JSON text, quoted.
pub fn quoted_json(v: &serde_json::Value, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    scratch.clear();
    out.clear();
    // Serializing a `Value` into memory cannot fail: no I/O, and its map keys are strings.
    let _ = serde_json::to_writer(&mut *scratch, v);
    quote_json_text(scratch, out);
}

/// The value whose JSON text `quoted` is, quoted ([`quote_json_text`]).
pub fn unquote_json(quoted: &str) -> Result<serde_json::Value, serde_json::Error> {
    let mut string = String::with_capacity(quoted.len() + 2);
    string.push('"');
    string.push_str(quoted);
    string.push('"');
    let text: String = serde_json::from_str(&string)?;
    serde_json::from_str(&text)
}

impl ChildRow<'_> {
    /// The child this row stores.
    pub fn to_child(&self) -> Result<Child, serde_json::Error> {
        Ok(Child {
            index: self.index,
            name: self.name.to_string(),
            first_item: self.first_item,
            items: self.items,
            input: Arc::new(unquote_json(self.input)?),
            status: self.status,
            output: self.output.map(unquote_json).transpose()?,
            error: self.error.map(str::to_string),
            cause: self.cause.map(str::to_string),
            start_date: self.start_ns.map(date_from_nanos),
            stop_date: self.stop_ns.map(date_from_nanos),
            redrive_count: self.redrive_count,
            snapshot: self.snapshot.map(str::to_string),
            run_attempt: self.run_attempt,
        })
    }
}

/// Where a row's parts lie in a [`ChildRows`] buffer.
#[derive(Debug, Clone)]
struct Spans {
    index: u64,
    status: ChildStatus,
    first_item: u64,
    items: u64,
    redrive_count: u32,
    run_attempt: u32,
    start_ns: Option<i64>,
    stop_ns: Option<i64>,
    name: Range<usize>,
    error: Option<Range<usize>>,
    cause: Option<Range<usize>>,
    snapshot: Option<Range<usize>>,
    input: Range<usize>,
    output: Option<Range<usize>>,
}

/// A chunk of stored children, in index order, their text in one buffer.
#[derive(Debug, Default)]
pub struct ChildRows {
    buf: String,
    rows: Vec<Spans>,
}

impl ChildRows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.rows.clear();
    }

    pub fn push(&mut self, row: &ChildRow<'_>) {
        let buf = &mut self.buf;
        let mut put = |t: &str| {
            let start = buf.len();
            buf.push_str(t);
            start..buf.len()
        };
        let spans = Spans {
            index: row.index,
            status: row.status,
            first_item: row.first_item,
            items: row.items,
            redrive_count: row.redrive_count,
            run_attempt: row.run_attempt,
            start_ns: row.start_ns,
            stop_ns: row.stop_ns,
            name: put(row.name),
            error: row.error.map(&mut put),
            cause: row.cause.map(&mut put),
            snapshot: row.snapshot.map(&mut put),
            input: put(row.input),
            output: row.output.map(&mut put),
        };
        self.rows.push(spans);
    }

    /// The `i`th child, if there is one.
    pub fn get(&self, i: usize) -> Option<ChildRow<'_>> {
        let s = self.rows.get(i)?;
        // The spans were cut where `push` put whole strings: always in bounds, on char
        // boundaries.
        let part = |r: &Range<usize>| self.buf.get(r.clone());
        let opt = |r: &Option<Range<usize>>| r.as_ref().and_then(part);
        Some(ChildRow {
            index: s.index,
            status: s.status,
            name: part(&s.name)?,
            first_item: s.first_item,
            items: s.items,
            redrive_count: s.redrive_count,
            run_attempt: s.run_attempt,
            start_ns: s.start_ns,
            stop_ns: s.stop_ns,
            error: opt(&s.error),
            cause: opt(&s.cause),
            snapshot: opt(&s.snapshot),
            input: part(&s.input)?,
            output: opt(&s.output),
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = ChildRow<'_>> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A child goes into a row (input and output quoted) and comes back the same.
    #[test]
    fn rows_round_trip_children() {
        let t = DateTime::from_timestamp(1_764_000_000, 123_456_789).unwrap();
        let child = Child {
            index: 7,
            name: "n-7".into(),
            first_item: 70,
            items: 10,
            input: Arc::new(json!({"s": "é \"q\" \\ \n \u{1}", "n": [1, 2.5, null]})),
            status: ChildStatus::Failed,
            output: Some(json!("out")),
            error: Some("E".into()),
            cause: Some("c \"x\"".into()),
            start_date: Some(t),
            stop_date: Some(t + chrono::Duration::milliseconds(5)),
            redrive_count: 2,
            snapshot: Some("{}".into()),
            run_attempt: 1,
        };
        let (mut scratch, mut input, mut output) = (Vec::new(), Vec::new(), Vec::new());
        quoted_json(&child.input, &mut scratch, &mut input);
        quoted_json(child.output.as_ref().unwrap(), &mut scratch, &mut output);
        let (input, output) = (
            String::from_utf8(input).unwrap(),
            String::from_utf8(output).unwrap(),
        );
        let row = ChildRow {
            index: child.index,
            status: child.status,
            name: &child.name,
            first_item: child.first_item,
            items: child.items,
            redrive_count: child.redrive_count,
            run_attempt: child.run_attempt,
            start_ns: child.start_date.and_then(date_to_nanos),
            stop_ns: child.stop_date.and_then(date_to_nanos),
            error: child.error.as_deref(),
            cause: child.cause.as_deref(),
            snapshot: child.snapshot.as_deref(),
            input: &input,
            output: Some(&output),
        };
        let mut rows = ChildRows::default();
        rows.push(&row);
        rows.push(&ChildRow {
            output: None,
            error: None,
            ..row
        });
        assert_eq!(rows.get(0), Some(row));
        assert_eq!(rows.get(0).unwrap().to_child().unwrap(), child);
        let second = rows.get(1).unwrap().to_child().unwrap();
        assert_eq!((second.output, second.error), (None, None));
        assert_eq!(rows.get(2), None);
        assert_eq!(rows.iter().count(), 2);
        assert!(ChildRow {
            input: "{\\\"unterminated",
            ..row
        }
        .to_child()
        .is_err());
    }
}
