//! The API shapes of DescribeExecution and ListMapRuns (DescribeMapRun is
//! [`crate::maprun::MapRun::describe`]), shared by the CLI and the coordinator function.

use serde_json::{json, Map, Value};

use crate::asl::timestamp;
use crate::maprun::checkpoint::MapRunSummary;

use super::execution::Execution;

/// DescribeExecution's shape.
pub fn describe_execution(e: &Execution) -> Value {
    let mut d = Map::new();
    d.insert("executionArn".into(), json!(e.info.execution_arn));
    d.insert("stateMachineArn".into(), json!(e.info.state_machine_arn));
    d.insert("name".into(), json!(e.info.name));
    d.insert("status".into(), json!(e.status.as_str()));
    d.insert(
        "startDate".into(),
        json!(timestamp::format(e.info.start_time)),
    );
    if let Some(t) = e.stop_time {
        d.insert("stopDate".into(), json!(timestamp::format(t)));
    }
    d.insert("input".into(), json!(e.info.input.to_string()));
    d.insert("inputDetails".into(), json!({"included": true}));
    if let Some(o) = &e.output {
        d.insert("output".into(), json!(o.to_string()));
        d.insert("outputDetails".into(), json!({"included": true}));
    }
    if let Some(err) = &e.error {
        d.insert("error".into(), json!(err));
    }
    if let Some(c) = &e.cause {
        d.insert("cause".into(), json!(c));
    }
    if e.info.redrive_count > 0 {
        d.insert("redriveCount".into(), json!(e.info.redrive_count));
    }
    Value::Object(d)
}

/// ListMapRuns' shape.
pub fn list_map_runs(runs: &[MapRunSummary]) -> Value {
    let items: Vec<Value> = runs
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("executionArn".into(), json!(r.execution_arn));
            m.insert("mapRunArn".into(), json!(r.map_run_arn));
            m.insert("startDate".into(), json!(r.start_date));
            m.insert("stateMachineArn".into(), json!(r.state_machine_arn));
            if let Some(s) = &r.stop_date {
                m.insert("stopDate".into(), json!(s));
            }
            Value::Object(m)
        })
        .collect();
    json!({ "mapRuns": items })
}
