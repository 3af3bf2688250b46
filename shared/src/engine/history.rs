//! Execution history, with AWS's event names. Event ids are always counted (causes quote
//! "entered at the event id #N"); events are only kept when a caller asked for them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    pub id: u64,
    pub previous_event_id: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Value::is_null", default)]
    pub details: Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    /// The id of the last event emitted.
    pub last_id: u64,
    /// Whether events are kept (`--trace`, tests); ids are counted either way.
    pub record: bool,
    pub events: Vec<HistoryEvent>,
}

impl History {
    pub fn new(record: bool) -> Self {
        History {
            last_id: 0,
            record,
            events: Vec::new(),
        }
    }

    /// Emits a `<state type><suffix>` event (e.g. `Pass` + `StateEntered`), building the name
    /// only when events are kept.
    pub fn emit_state(
        &mut self,
        previous: u64,
        state_type: &str,
        suffix: &str,
        now: DateTime<Utc>,
        details: impl FnOnce() -> Value,
    ) -> u64 {
        if !self.record {
            self.last_id += 1;
            return self.last_id;
        }
        self.emit(previous, &format!("{state_type}{suffix}"), now, details)
    }

    /// Emits an event and returns its id. `details` is only built when events are kept.
    pub fn emit(
        &mut self,
        previous: u64,
        kind: &str,
        now: DateTime<Utc>,
        details: impl FnOnce() -> Value,
    ) -> u64 {
        self.last_id += 1;
        if self.record {
            self.events.push(HistoryEvent {
                id: self.last_id,
                previous_event_id: previous,
                kind: kind.to_string(),
                timestamp: now,
                details: details(),
            });
        }
        self.last_id
    }
}
