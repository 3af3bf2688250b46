//! `mapfleet replay RESULT_FILE --index N`: re-runs one recorded child of a Distributed Map
//! from its ResultWriter record, locally, and shows its states one by one.
//!
//! The definition is found from the record itself: `manifest.json` beside the result file
//! names the Map Run, whose checkpoint names the parent execution, whose saved copy holds the
//! definition; the Map state is the one whose label the child's state machine ARN carries.

use std::path::Path;
use std::sync::Arc;

use mapfleet_core::asl::{ExecutionType, StateKind, StateMachine};
use mapfleet_core::engine::{
    run_to_completion, Event, Execution, ExecutionInfo, RunOptions, TaskInvoker, TimeMode,
};
use mapfleet_core::maprun::checkpoint::{CheckpointStore, SqliteStore};
use mapfleet_core::ports::{Clock, OsEntropy, SystemClock, VirtualClock};
use serde_json::{json, Value};

use crate::store::StateDir;

/// Reads record `index` of a SUCCEEDED_n / FAILED_n file (JSON array or JSON lines).
pub fn read_record(file: &Path, index: usize) -> Result<Value, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let records: Vec<Value> = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(a)) => a,
        _ => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                format!(
                    "{} is neither a JSON array nor JSON lines: {e}",
                    file.display()
                )
            })?,
    };
    let n = records.len();
    records.into_iter().nth(index).ok_or_else(|| {
        format!(
            "{} holds {n} records; there is no index {index}",
            file.display()
        )
    })
}

fn find_map<'m>(m: &'m StateMachine, label: &str) -> Option<&'m StateMachine> {
    for st in &m.states {
        match &st.kind {
            StateKind::Map(map) => {
                if map.label.as_deref().unwrap_or(&st.name) == label {
                    return Some(&map.item_processor);
                }
                if let Some(found) = find_map(&map.item_processor, label) {
                    return Some(found);
                }
            }
            StateKind::Parallel(p) => {
                for b in &p.branches {
                    if let Some(found) = find_map(b, label) {
                        return Some(found);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The ItemProcessor that produced `record`, via the manifest, the Map Run and the parent.
pub fn processor_for(
    file: &Path,
    record: &Value,
    state: &StateDir,
) -> Result<(StateMachine, String), String> {
    let manifest_path = file.with_file_name("manifest.json");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(&manifest_path)
            .map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?,
    )
    .map_err(|e| format!("{} is not JSON: {e}", manifest_path.display()))?;
    let map_run_arn = manifest["MapRunArn"]
        .as_str()
        .ok_or("the manifest has no MapRunArn")?;
    let checkpoints = SqliteStore::open(&state.root().join("checkpoints.sqlite"))
        .map_err(|e| format!("checkpoint store: {e}"))?;
    let run = checkpoints
        .load(map_run_arn)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no Map Run {map_run_arn} in {}", state.root().display()))?;
    let parent = state
        .load(&run.execution_arn)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "no execution {} in {}",
                run.execution_arn,
                state.root().display()
            )
        })?;
    let machine = mapfleet_core::asl::parse::parse_definition(&parent.definition)
        .map_err(|d| format!("the parent's definition does not parse: {}", d.len()))?;
    // …:stateMachine:<name>/<label>
    let sm_arn = record["StateMachineArn"]
        .as_str()
        .unwrap_or(&run.state_machine_arn);
    let label = sm_arn.rsplit('/').next().unwrap_or_default().to_string();
    let processor =
        find_map(&machine, &label).ok_or_else(|| format!("no Map state labelled '{label}'"))?;
    Ok((processor.clone(), sm_arn.to_string()))
}

/// Re-runs the child; returns the DescribeExecution-like result and whether it matches the
/// recorded outcome.
pub fn replay(
    processor: StateMachine,
    record: &Value,
    invoker: &dyn TaskInvoker,
    fast_forward: bool,
) -> Result<(Execution, bool), String> {
    let input: Value = record["Input"]
        .as_str()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| format!("the record's Input is not JSON: {e}"))?
        .ok_or("the record has no Input")?;
    let name = record["Name"].as_str().unwrap_or("replay").to_string();
    let clock = SystemClock;
    let virt = VirtualClock::new(clock.now());
    let mut info =
        ExecutionInfo::local("replay", &name, input, clock.now(), ExecutionType::Standard);
    if let Some(arn) = record["ExecutionArn"].as_str() {
        info.execution_arn = arn.to_string();
    }
    if let Some(arn) = record["StateMachineArn"].as_str() {
        info.state_machine_arn = arn.to_string();
        info.state_machine_name = arn.rsplit(':').next().unwrap_or_default().to_string();
    }
    let mut exec = Execution::new(Arc::new(processor), Value::Null, info, true);
    let entropy = OsEntropy;
    let time = if fast_forward {
        TimeMode::Virtual(&virt)
    } else {
        TimeMode::Real(&clock)
    };
    run_to_completion(
        &mut exec,
        vec![Event::Start],
        RunOptions {
            time,
            entropy: &entropy,
            invoker,
            callbacks: None,
            on_change: None,
            map_runs: None,
            stop: None,
        },
    );
    let recorded_status = record["Status"].as_str().unwrap_or_default();
    let same = match recorded_status {
        "SUCCEEDED" => {
            let recorded: Option<Value> = record["Output"]
                .as_str()
                .and_then(|o| serde_json::from_str(o).ok());
            exec.status.as_str() == "SUCCEEDED" && recorded == exec.output
        }
        other => {
            exec.status.as_str() == other
                && record.get("Error").and_then(Value::as_str) == exec.error.as_deref()
        }
    };
    Ok((exec, same))
}

/// The replay summary printed on stdout.
pub fn summary(exec: &Execution, same: bool) -> Value {
    json!({
        "executionArn": exec.info.execution_arn,
        "status": exec.status.as_str(),
        "output": exec.output.as_ref().map(|o| o.to_string()),
        "error": exec.error,
        "cause": exec.cause,
        "matchesRecord": same,
    })
}
