//! One child execution's outcome, and its record as AWS writes it (spec §3.3).

use chrono::{DateTime, Timelike, Utc};
use serde_json::Value;

use super::spec::Transformation;

/// A child's final status as the result files see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ChildStatus {
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    /// Never started (the Map Run failed or was aborted first).
    Pending,
}

impl ChildStatus {
    /// The record's `Status`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChildStatus::Succeeded => "SUCCEEDED",
            ChildStatus::Failed => "FAILED",
            ChildStatus::TimedOut => "TIMED_OUT",
            ChildStatus::Aborted => "ABORTED",
            ChildStatus::Pending => "PENDING",
        }
    }

    /// The file family the record goes to: timed-out and aborted children are filed with the
    /// failures (spec §3.1).
    pub fn family(self) -> Family {
        match self {
            ChildStatus::Succeeded => Family::Succeeded,
            ChildStatus::Failed | ChildStatus::TimedOut | ChildStatus::Aborted => Family::Failed,
            ChildStatus::Pending => Family::Pending,
        }
    }
}

/// A family of result files (`<FAMILY>_<n>.json`) and its key in the manifest's `ResultFiles`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Family {
    Failed,
    Pending,
    Succeeded,
}

impl Family {
    /// In the manifest's key order.
    pub const ALL: [Family; 3] = [Family::Failed, Family::Pending, Family::Succeeded];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Failed => "FAILED",
            Family::Pending => "PENDING",
            Family::Succeeded => "SUCCEEDED",
        }
    }

    pub(crate) fn slot(self) -> usize {
        match self {
            Family::Failed => 0,
            Family::Pending => 1,
            Family::Succeeded => 2,
        }
    }
}

/// `ExecutionRedriveStatus` (spec §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RedriveStatus {
    Redrivable,
    NotRedrivable,
    RedrivableByMapRun,
}

impl RedriveStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RedriveStatus::Redrivable => "REDRIVABLE",
            RedriveStatus::NotRedrivable => "NOT_REDRIVABLE",
            RedriveStatus::RedrivableByMapRun => "REDRIVABLE_BY_MAP_RUN",
        }
    }
}

/// The reason AWS gives for a succeeded execution (spec §3.3, §5.2).
pub const SUCCEEDED_REDRIVE_REASON: &str = "Execution is SUCCEEDED and cannot be redriven";

/// One child execution's outcome. Fields that are `None` are left out of the record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChildRecord {
    /// `…:execution:<stateMachineName>/<label>:<name>`; `None` for a child never started.
    pub execution_arn: Option<String>,
    pub name: Option<String>,
    /// The child's input (an item, or a batch object).
    pub input: Value,
    /// Only written for `SUCCEEDED` (a missing output is written as `null`).
    pub output: Option<Value>,
    pub status: ChildStatus,
    pub start_date: Option<DateTime<Utc>>,
    pub stop_date: Option<DateTime<Utc>>,
    /// The labelled child state machine ARN `…:stateMachine:<name>/<label>`.
    pub state_machine_arn: Option<String>,
    pub state_machine_alias_arn: Option<String>,
    pub state_machine_version_arn: Option<String>,
    pub redrive_count: Option<u32>,
    pub redrive_status: Option<RedriveStatus>,
    pub redrive_status_reason: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl ChildRecord {
    /// A child that ran: the redrive fields are AWS's defaults for its status (see
    /// [`ChildRecord::default_redrive`]).
    #[allow(clippy::too_many_arguments)]
    pub fn finished(
        execution_arn: impl Into<String>,
        name: impl Into<String>,
        state_machine_arn: impl Into<String>,
        input: Value,
        status: ChildStatus,
        start_date: DateTime<Utc>,
        stop_date: DateTime<Utc>,
        redrive_count: u32,
        express: bool,
    ) -> Self {
        let (execution_arn, name, state_machine_arn) =
            (execution_arn.into(), name.into(), state_machine_arn.into());
        RecordView::finished(
            [&execution_arn, ""],
            &name,
            &state_machine_arn,
            status,
            start_date,
            stop_date,
            redrive_count,
            express,
        )
        .to_record(input, None)
    }

    /// A child never started: `{"Input", "InputDetails", "Status": "PENDING"}` (spec §3.3,
    /// the plausible shape; unconfirmed).
    pub fn pending(input: Value) -> Self {
        RecordView::pending().to_record(input, None)
    }

    pub fn with_output(mut self, output: Value) -> Self {
        self.output = Some(output);
        self
    }

    pub fn with_error(mut self, error: Option<String>, cause: Option<String>) -> Self {
        self.error = error;
        self.cause = cause;
        self
    }

    /// AWS's redrive status for a child (spec §5.2, §5.4): a success is `NOT_REDRIVABLE`
    /// ("Execution is SUCCEEDED and cannot be redriven"); an unsuccessful Standard child is
    /// `REDRIVABLE`; a failed or timed-out Express child is `REDRIVABLE_BY_MAP_RUN`; an aborted
    /// Express child is not redriven (`NOT_REDRIVABLE`, no reason: AWS only gives one for
    /// successes with Express children). A pending child has none.
    pub fn default_redrive(
        status: ChildStatus,
        express: bool,
    ) -> (Option<RedriveStatus>, Option<&'static str>) {
        match (status, express) {
            (ChildStatus::Succeeded, _) => (
                Some(RedriveStatus::NotRedrivable),
                Some(SUCCEEDED_REDRIVE_REASON),
            ),
            (ChildStatus::Pending, _) => (None, None),
            (ChildStatus::Aborted, true) => (Some(RedriveStatus::NotRedrivable), None),
            (_, true) => (Some(RedriveStatus::RedrivableByMapRun), None),
            (_, false) => (Some(RedriveStatus::Redrivable), None),
        }
    }

    /// The full (`NONE`) record, keys in AWS's (alphabetical) order: `Cause`, `Error`,
    /// `ExecutionArn`, `Input`, `InputDetails`, `Name`, `Output`, `OutputDetails`,
    /// `RedriveCount`, `RedriveStatus`, `RedriveStatusReason`, `StartDate`,
    /// `StateMachineAliasArn`, `StateMachineArn`, `StateMachineVersionArn`, `Status`, `StopDate`.
    /// `Input` and `Output` are JSON text; dates are `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn to_record(&self) -> Value {
        let input = json_text(&self.input);
        let output = self.output.as_ref().map(json_text);
        // Serializing borrowed strings into a value cannot fail.
        serde_json::to_value(self.fields(&input, output.as_deref())).unwrap_or(Value::Null)
    }

    /// The full record's JSON text, written straight into `out`: the same bytes as
    /// serializing [`ChildRecord::to_record`], without building the intermediate map.
    pub fn write_record(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let mut text = Vec::with_capacity(256);
        let mut input = Vec::with_capacity(320);
        serde_json::to_writer(&mut text, &self.input)?;
        quote_json_text(&text, &mut input);
        let mut output = Vec::new();
        if let Some(o) = &self.output {
            text.clear();
            serde_json::to_writer(&mut text, o)?;
            quote_json_text(&text, &mut output);
        }
        let output = self.output.as_ref().map(|_| output.as_slice());
        self.write_record_quoted(&input, output, out);
        Ok(())
    }

    /// [`ChildRecord::write_record`] with the input's and output's JSON text given already
    /// quoted ([`quote_json_text`]: as a checkpoint stores them). `self.input` and
    /// `self.output` are not read; an output of `None` is `null`.
    pub fn write_record_quoted(&self, input: &[u8], output: Option<&[u8]>, out: &mut Vec<u8>) {
        RecordView {
            status: self.status,
            execution_arn: self.execution_arn.as_deref().map(|a| [a, ""]),
            name: self.name.as_deref(),
            state_machine_arn: self.state_machine_arn.as_deref(),
            state_machine_alias_arn: self.state_machine_alias_arn.as_deref(),
            state_machine_version_arn: self.state_machine_version_arn.as_deref(),
            redrive_count: self.redrive_count,
            redrive_status: self.redrive_status,
            redrive_status_reason: self.redrive_status_reason.as_deref(),
            start_date: self.start_date,
            stop_date: self.stop_date,
            error: self.error.as_deref(),
            cause: self.cause.as_deref(),
        }
        .write(input, output, out)
    }

    /// The full record's fields, in AWS's order, borrowing this record and the given JSON
    /// texts: the one definition of the record's layout, for both the value and the bytes.
    fn fields<'a>(&'a self, input: &'a str, output: Option<&'a str>) -> Record<'a> {
        let succeeded = self.status == ChildStatus::Succeeded;
        Record {
            cause: self.cause.as_deref(),
            error: self.error.as_deref(),
            execution_arn: self.execution_arn.as_deref(),
            input,
            input_details: Included { included: true },
            name: self.name.as_deref(),
            output: if succeeded {
                Some(output.unwrap_or("null"))
            } else {
                None
            },
            output_details: succeeded.then_some(Included { included: true }),
            redrive_count: self.redrive_count,
            redrive_status: self.redrive_status.map(|s| s.as_str()),
            redrive_status_reason: self.redrive_status_reason.as_deref(),
            start_date: self.start_date.map(format_date),
            state_machine_alias_arn: self.state_machine_alias_arn.as_deref(),
            state_machine_arn: self.state_machine_arn.as_deref(),
            state_machine_version_arn: self.state_machine_version_arn.as_deref(),
            status: self.status.as_str(),
            stop_date: self.stop_date.map(format_date),
        }
    }

    /// Whether this child's entry under `t` is its full record (it did not succeed, or `t` is
    /// `NONE`) rather than its output.
    pub fn is_record_entry(&self, t: Transformation) -> bool {
        self.status != ChildStatus::Succeeded || t == Transformation::None
    }

    /// What this child contributes to an array of results under `t`: its record when it did
    /// not succeed or `t` is `NONE`; its output for `COMPACT`; its output's elements (or the
    /// output itself when not an array) for `FLATTEN`.
    pub fn entries(&self, t: Transformation) -> Vec<Value> {
        let mut out = Vec::new();
        let _ = self.for_each_entry(t, |v| {
            out.push(v.clone());
            Ok::<(), std::convert::Infallible>(())
        });
        out
    }

    /// [`ChildRecord::entries`] without copying the output.
    pub fn for_each_entry<E>(
        &self,
        t: Transformation,
        mut f: impl FnMut(&Value) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.status != ChildStatus::Succeeded || t == Transformation::None {
            return f(&self.to_record());
        }
        let output = self.output.as_ref().unwrap_or(&Value::Null);
        match (t, output) {
            (Transformation::Flatten, Value::Array(items)) => items.iter().try_for_each(f),
            (_, output) => f(output),
        }
    }
}

/// A full record's fields, borrowed (see [`ChildRecord`] for each one's meaning), written
/// without building a value: what the result writer renders a stored child into.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub status: ChildStatus,
    /// Written as the two parts joined (an execution ARN prefix and a name).
    pub execution_arn: Option<[&'a str; 2]>,
    pub name: Option<&'a str>,
    pub state_machine_arn: Option<&'a str>,
    pub state_machine_alias_arn: Option<&'a str>,
    pub state_machine_version_arn: Option<&'a str>,
    pub redrive_count: Option<u32>,
    pub redrive_status: Option<RedriveStatus>,
    pub redrive_status_reason: Option<&'a str>,
    pub start_date: Option<DateTime<Utc>>,
    pub stop_date: Option<DateTime<Utc>>,
    pub error: Option<&'a str>,
    pub cause: Option<&'a str>,
}

impl<'a> RecordView<'a> {
    /// A child never started (see [`ChildRecord::pending`]).
    pub fn pending() -> Self {
        RecordView {
            status: ChildStatus::Pending,
            execution_arn: None,
            name: None,
            state_machine_arn: None,
            state_machine_alias_arn: None,
            state_machine_version_arn: None,
            redrive_count: None,
            redrive_status: None,
            redrive_status_reason: None,
            start_date: None,
            stop_date: None,
            error: None,
            cause: None,
        }
    }

    /// A child that ran (see [`ChildRecord::finished`]), without error or cause.
    #[allow(clippy::too_many_arguments)]
    pub fn finished(
        execution_arn: [&'a str; 2],
        name: &'a str,
        state_machine_arn: &'a str,
        status: ChildStatus,
        start_date: DateTime<Utc>,
        stop_date: DateTime<Utc>,
        redrive_count: u32,
        express: bool,
    ) -> Self {
        let (redrive_status, reason) = ChildRecord::default_redrive(status, express);
        RecordView {
            status,
            execution_arn: Some(execution_arn),
            name: Some(name),
            state_machine_arn: Some(state_machine_arn),
            redrive_count: Some(redrive_count),
            redrive_status,
            redrive_status_reason: reason,
            start_date: Some(start_date),
            stop_date: Some(stop_date),
            ..RecordView::pending()
        }
    }

    /// The owned record with this view's fields, and `input` and `output`.
    pub fn to_record(&self, input: Value, output: Option<Value>) -> ChildRecord {
        let owned = |s: Option<&str>| s.map(str::to_string);
        ChildRecord {
            execution_arn: self.execution_arn.map(|parts| parts.concat()),
            name: owned(self.name),
            input,
            output,
            status: self.status,
            start_date: self.start_date,
            stop_date: self.stop_date,
            state_machine_arn: owned(self.state_machine_arn),
            state_machine_alias_arn: owned(self.state_machine_alias_arn),
            state_machine_version_arn: owned(self.state_machine_version_arn),
            redrive_count: self.redrive_count,
            redrive_status: self.redrive_status,
            redrive_status_reason: owned(self.redrive_status_reason),
            error: owned(self.error),
            cause: owned(self.cause),
        }
    }

    /// The record's JSON text, appended to `out`: the bytes of serializing
    /// [`ChildRecord::to_record`], keys in AWS's order, with the input's and output's JSON
    /// text given quoted ([`quote_json_text`]) and copied in as they are. The output
    /// (`null` when `None`) is only written for a success.
    pub fn write(&self, input: &[u8], output: Option<&[u8]>, out: &mut Vec<u8>) {
        // Keys in the order of `Record` (alphabetical, as AWS writes them); the test
        // `writer::tests::written_records_are_the_record_maps_bytes` holds the two together.
        fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
            out.extend_from_slice(if *first { b"{\"" } else { b",\"" });
            *first = false;
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
        }
        fn string(out: &mut Vec<u8>, parts: &[&str]) {
            out.push(b'"');
            for p in parts {
                quote_json_text(p.as_bytes(), out);
            }
            out.push(b'"');
        }
        fn quoted(out: &mut Vec<u8>, q: &[u8]) {
            out.push(b'"');
            out.extend_from_slice(q);
            out.push(b'"');
        }
        fn date(out: &mut Vec<u8>, t: DateTime<Utc>) {
            quoted(out, format_date(t).as_bytes());
        }
        let first = &mut true;
        out.reserve(input.len() + output.map_or(0, <[u8]>::len) + 512);
        if let Some(c) = self.cause {
            key(out, first, "Cause");
            string(out, &[c]);
        }
        if let Some(e) = self.error {
            key(out, first, "Error");
            string(out, &[e]);
        }
        if let Some(a) = &self.execution_arn {
            key(out, first, "ExecutionArn");
            string(out, a);
        }
        key(out, first, "Input");
        quoted(out, input);
        key(out, first, "InputDetails");
        out.extend_from_slice(b"{\"Included\":true}");
        if let Some(n) = self.name {
            key(out, first, "Name");
            string(out, &[n]);
        }
        if self.status == ChildStatus::Succeeded {
            key(out, first, "Output");
            quoted(out, output.unwrap_or(b"null"));
            key(out, first, "OutputDetails");
            out.extend_from_slice(b"{\"Included\":true}");
        }
        if let Some(n) = self.redrive_count {
            key(out, first, "RedriveCount");
            out.extend_from_slice(n.to_string().as_bytes());
        }
        if let Some(s) = self.redrive_status {
            key(out, first, "RedriveStatus");
            quoted(out, s.as_str().as_bytes());
        }
        if let Some(r) = self.redrive_status_reason {
            key(out, first, "RedriveStatusReason");
            string(out, &[r]);
        }
        if let Some(d) = self.start_date {
            key(out, first, "StartDate");
            date(out, d);
        }
        for (k, v) in [
            ("StateMachineAliasArn", self.state_machine_alias_arn),
            ("StateMachineArn", self.state_machine_arn),
            ("StateMachineVersionArn", self.state_machine_version_arn),
        ] {
            if let Some(v) = v {
                key(out, first, k);
                string(out, &[v]);
            }
        }
        key(out, first, "Status");
        quoted(out, self.status.as_str().as_bytes());
        if let Some(d) = self.stop_date {
            key(out, first, "StopDate");
            date(out, d);
        }
        out.push(b'}');
    }
}

/// `{"Included": true}`.
#[derive(serde::Serialize)]
struct Included {
    #[serde(rename = "Included")]
    included: bool,
}

/// A full record's fields (see [`ChildRecord::to_record`]): `None` fields are left out.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Record<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_arn: Option<&'a str>,
    input: &'a str,
    input_details: Included,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_details: Option<Included>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redrive_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redrive_status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redrive_status_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_machine_alias_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_machine_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_machine_version_arn: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_date: Option<String>,
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, always with milliseconds (spec §3.3; the AWS example
/// `2025-02-04T01:49:50.099Z`).
pub fn format_date(t: DateTime<Utc>) -> String {
    // A leap second's nanoseconds run past 1e9: keep them in the 999 ms.
    date_with_fraction(t, (t.nanosecond() / 1_000_000).min(999), 3)
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: RFC 3339 with every nanosecond, as checkpoints store
/// dates ([`parse_date`] reads it back exactly).
pub fn format_date_nanos(t: DateTime<Utc>) -> String {
    if t.nanosecond() >= 1_000_000_000 {
        // A leap second: chrono's own form keeps it.
        return t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    }
    date_with_fraction(t, t.nanosecond(), 9)
}

/// Digits by hand: `write!` with padding costs more than the rest of a record.
fn date_with_fraction(t: DateTime<Utc>, fraction: u32, width: u32) -> String {
    use chrono::Datelike;
    fn digits(s: &mut String, v: u32, width: u32) {
        for k in (0..width).rev() {
            let d = (v / 10u32.pow(k)) % 10;
            s.push(char::from(b'0' + d as u8));
        }
    }
    let mut s = String::with_capacity(30);
    let year = t.year();
    if (0..=9999).contains(&year) {
        digits(&mut s, year as u32, 4);
    } else {
        s.push_str(&format!("{year:04}"));
    }
    s.push('-');
    digits(&mut s, t.month(), 2);
    s.push('-');
    digits(&mut s, t.day(), 2);
    s.push('T');
    digits(&mut s, t.hour(), 2);
    s.push(':');
    digits(&mut s, t.minute(), 2);
    s.push(':');
    digits(&mut s, t.second(), 2);
    s.push('.');
    digits(&mut s, fraction, width);
    s.push('Z');
    s
}

/// Parses an RFC 3339 UTC date as chrono writes one (`YYYY-MM-DDTHH:MM:SS[.f…]Z`) without
/// chrono's general format parser; anything else goes to that parser.
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    fn fast(s: &str) -> Option<DateTime<Utc>> {
        let b = s.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let mut v = 0u32;
            for &c in b.get(r)? {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + u32::from(c - b'0');
            }
            Some(v)
        };
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
            || b.last() != Some(&b'Z')
        {
            return None;
        }
        let nanos = match &b[19..b.len() - 1] {
            [] => 0,
            [b'.', frac @ ..] if !frac.is_empty() && frac.len() <= 9 => {
                let v = num(20..b.len() - 1)?;
                v * 10u32.pow(9 - frac.len() as u32)
            }
            _ => return None,
        };
        let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
        let time =
            chrono::NaiveTime::from_hms_nano_opt(num(11..13)?, num(14..16)?, num(17..19)?, nanos)?;
        Some(date.and_time(time).and_utc())
    }
    fast(s).or_else(|| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// Appends `text` escaped as the contents of a JSON string: the bytes serde_json writes
/// between the quotes when it serializes `text` as a string (`"` and `\` escaped, control
/// characters as `\n`-style or `\u00xx` escapes, everything else as it is). Inputs and
/// outputs go into records as their JSON text quoted so, and a checkpoint stores them quoted
/// ahead of time. JSON text has its quotes and backslashes a few bytes apart and no raw
/// control characters, so runs between them are found with `memchr2` and copied whole.
pub fn quote_json_text(text: &[u8], out: &mut Vec<u8>) {
    fn plain(run: &[u8], out: &mut Vec<u8>) {
        if run.iter().all(|&b| b >= 0x20) {
            out.extend_from_slice(run);
            return;
        }
        for &b in run {
            match b {
                0x08 => out.extend_from_slice(b"\\b"),
                0x09 => out.extend_from_slice(b"\\t"),
                0x0A => out.extend_from_slice(b"\\n"),
                0x0C => out.extend_from_slice(b"\\f"),
                0x0D => out.extend_from_slice(b"\\r"),
                b if b < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xF)]);
                }
                b => out.push(b),
            }
        }
    }
    out.reserve(text.len() + text.len() / 4);
    let mut start = 0;
    for i in memchr::memchr2_iter(b'"', b'\\', text) {
        plain(&text[start..i], out);
        out.push(b'\\');
        out.push(text[i]);
        start = i + 1;
    }
    plain(&text[start..], out);
}

/// Compact JSON text, as AWS embeds inputs and outputs.
fn json_text(v: &Value) -> String {
    // Serializing a `Value` to a String cannot fail (no non-string keys, no I/O).
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_string())
}
