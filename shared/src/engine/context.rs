//! Execution identity and the context object (`$$`, `$states.context`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::asl::timestamp;
use crate::asl::ExecutionType;

/// Who an execution is: names, ARNs, start time, input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionInfo {
    pub execution_arn: String,
    pub name: String,
    pub state_machine_arn: String,
    pub state_machine_name: String,
    pub role_arn: String,
    pub start_time: DateTime<Utc>,
    /// Shared: every context object and sub-execution reads it without copying it.
    pub input: Arc<Value>,
    pub redrive_count: u32,
    pub redrive_time: Option<DateTime<Utc>>,
    #[serde(with = "exec_type")]
    pub execution_type: ExecutionType,
    /// Started by StartSyncExecution (Express only): its context has no `RedriveCount`.
    #[serde(default)]
    pub sync_start: bool,
}

mod exec_type {
    use crate::asl::ExecutionType;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(t: &ExecutionType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match t {
            ExecutionType::Standard => "STANDARD",
            ExecutionType::Express => "EXPRESS",
        })
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ExecutionType, D::Error> {
        let s = String::deserialize(d)?;
        Ok(if s == "EXPRESS" {
            ExecutionType::Express
        } else {
            ExecutionType::Standard
        })
    }
}

pub const DEFAULT_ACCOUNT: &str = "123456789012";
pub const DEFAULT_REGION: &str = "us-east-1";

impl ExecutionInfo {
    /// Identity for a local run of machine `machine_name`, execution `name`.
    pub fn local(
        machine_name: &str,
        name: &str,
        input: Value,
        start_time: DateTime<Utc>,
        execution_type: ExecutionType,
    ) -> Self {
        // Express execution ARNs carry a second, generated part after the name.
        let execution_arn = match execution_type {
            ExecutionType::Standard => {
                format!("arn:aws:states:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:execution:{machine_name}:{name}")
            }
            ExecutionType::Express => format!(
                "arn:aws:states:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:express:{machine_name}:{name}:{}",
                uuid::Uuid::new_v4()
            ),
        };
        ExecutionInfo {
            execution_arn,
            name: name.to_string(),
            state_machine_arn: format!(
                "arn:aws:states:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:stateMachine:{machine_name}"
            ),
            state_machine_name: machine_name.to_string(),
            role_arn: format!("arn:aws:iam::{DEFAULT_ACCOUNT}:role/mapfleet-local"),
            start_time,
            input: Arc::new(input),
            redrive_count: 0,
            redrive_time: None,
            execution_type,
            sync_start: false,
        }
    }

    /// The `Execution` and `StateMachine` parts of the context object.
    pub fn execution_object(&self) -> Value {
        let mut e = Map::new();
        e.insert("Id".into(), Value::String(self.execution_arn.clone()));
        e.insert("Input".into(), Value::clone(&self.input));
        e.insert(
            "StartTime".into(),
            Value::String(timestamp::format(self.start_time)),
        );
        e.insert("Name".into(), Value::String(self.name.clone()));
        e.insert("RoleArn".into(), Value::String(self.role_arn.clone()));
        // Executions started synchronously (StartSyncExecution) have no RedriveCount.
        if !self.sync_start {
            e.insert("RedriveCount".into(), json!(self.redrive_count));
        }
        if let Some(t) = self.redrive_time {
            e.insert("RedriveTime".into(), Value::String(timestamp::format(t)));
        }
        Value::Object(e)
    }

    pub fn state_machine_object(&self) -> Value {
        json!({"Id": self.state_machine_arn, "Name": self.state_machine_name})
    }
}

/// Per-state parts of the context object.
pub struct StateContext<'a> {
    pub name: &'a str,
    pub entered_time: DateTime<Utc>,
    /// `Some` for Task, Parallel and Map states.
    pub retry_count: Option<u32>,
    pub task_token: Option<&'a str>,
    /// `$$.Map.Item` while evaluating a Map's ItemSelector.
    pub map_item: Option<Value>,
}

/// Builds the whole context object for one state.
pub fn context_object(info: &ExecutionInfo, st: &StateContext<'_>) -> Value {
    let mut state = Map::new();
    state.insert(
        "EnteredTime".into(),
        Value::String(timestamp::format(st.entered_time)),
    );
    state.insert("Name".into(), Value::String(st.name.to_string()));
    if let Some(n) = st.retry_count {
        state.insert("RetryCount".into(), json!(n));
    }
    let mut root = Map::new();
    root.insert("Execution".into(), info.execution_object());
    root.insert("State".into(), Value::Object(state));
    root.insert("StateMachine".into(), info.state_machine_object());
    if let Some(t) = st.task_token {
        root.insert("Task".into(), json!({ "Token": t }));
    }
    if let Some(item) = &st.map_item {
        root.insert("Map".into(), json!({ "Item": item }));
    }
    Value::Object(root)
}
