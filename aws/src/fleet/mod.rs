//! The fleet: a Map Run's children run on worker functions and its results are written by the
//! writer function, while the coordinator function drives the Map Run (the core's pure
//! [`mapfleet_core::maprun::MapRun`] through [`mapfleet_core::maprun::driver::drive`]).
//!
//! The wire shapes are in `docs/fleet-protocol.md`. The coordinator side is [`LambdaFleet`]
//! (the core's [`Fleet`] port); the function sides are [`worker::Worker`],
//! [`writer::handle_writer`] and [`coordinator::Coordinator`].

pub mod coordinator;
pub mod edge;
pub mod worker;
pub mod writer;

use std::collections::HashMap;
use std::sync::Arc;

use mapfleet_core::engine::distributed::{ChildContext, Fleet, MapRunRequest};
use mapfleet_core::maprun::driver::{ChildJob, ChildOutcome, ChildRunner, ResultsSink};
use mapfleet_core::maprun::{ChildStatus, MapRun};
use mapfleet_core::storage::ObjectStore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::dynamo::DynamoCheckpoints;
use crate::invoke::{Invoked, Invoker, PAYLOAD_LIMIT};

/// Errors the functions answer with: Lambda's `errorType` is [`FleetError::name`].
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The event is not a request this function serves.
    #[error("{0}")]
    InvalidRequest(String),
    /// The definition does not validate (AWS's validation codes in the message).
    #[error("{0}")]
    InvalidDefinition(String),
    #[error("Execution Does Not Exist: '{0}'")]
    ExecutionDoesNotExist(String),
    #[error("Map Run Does Not Exist: '{0}'")]
    MapRunDoesNotExist(String),
    #[error("Execution '{0}' is being run by another invocation (its lease is held)")]
    ExecutionAlreadyRunning(String),
    #[error("{0}")]
    ExecutionNotRedrivable(String),
    /// A dependency failed: the AWS error name and its message.
    #[error("{message}")]
    Dependency { name: String, message: String },
    /// A named States.* error (reader, writer, data limits).
    #[error("{cause}")]
    States { error: String, cause: String },
}

impl FleetError {
    /// The error name a Lambda caller sees as `errorType`.
    pub fn name(&self) -> &str {
        match self {
            FleetError::InvalidRequest(_) => "mapfleet.InvalidRequest",
            FleetError::InvalidDefinition(_) => "States.ValidationError",
            FleetError::ExecutionDoesNotExist(_) => "ExecutionDoesNotExist",
            FleetError::MapRunDoesNotExist(_) => "ResourceNotFound",
            FleetError::ExecutionAlreadyRunning(_) => "ExecutionAlreadyExists",
            FleetError::ExecutionNotRedrivable(_) => "ExecutionNotRedrivable",
            FleetError::Dependency { name, .. } => name,
            FleetError::States { error, .. } => error,
        }
    }

    pub fn dependency(name: impl Into<String>, message: impl std::fmt::Display) -> Self {
        FleetError::Dependency {
            name: name.into(),
            message: message.to_string(),
        }
    }
}

impl From<crate::dynamo::DynamoError> for FleetError {
    fn from(e: crate::dynamo::DynamoError) -> Self {
        FleetError::dependency("DynamoDB", e)
    }
}

/// An object in S3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3Ref {
    pub bucket: String,
    pub key: String,
}

impl S3Ref {
    /// Parses `s3://bucket/key`.
    pub fn parse(uri: &str) -> Option<S3Ref> {
        let rest = uri.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        (!bucket.is_empty() && !key.is_empty()).then(|| S3Ref {
            bucket: bucket.into(),
            key: key.into(),
        })
    }
}

/// A worker invocation: children of one Map Run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerRequest {
    /// The whole state machine definition (JSON text).
    pub definition: String,
    pub context: ChildContext,
    /// The children as JSON Lines, one [`ChildJob`] per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<String>,
    /// The same JSON Lines in S3, for batches past the invoke payload limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children_ref: Option<S3Ref>,
}

/// One child's outcome, keyed by index and attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    pub index: u64,
    pub attempt: u32,
    #[serde(flatten)]
    pub outcome: ChildOutcome,
}

/// A worker's answer: the outcomes inline, or (when they would pass the response limit) only
/// their keys, the outcomes being in DynamoDB.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerResponse {
    #[serde(default)]
    pub outcomes: Vec<OutcomeRecord>,
    #[serde(default)]
    pub recorded: Vec<(u64, u32)>,
}

/// A writer invocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriterRequest {
    pub map_run_arn: String,
    /// The ResultWriter with its Parameters/Arguments evaluated.
    pub writer: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_result_file_bytes: Option<u64>,
}

/// The coordinator's side of the fleet: worker and writer functions behind the core's
/// [`Fleet`] port.
pub struct LambdaFleet {
    pub invoker: Invoker,
    pub checkpoints: Arc<DynamoCheckpoints>,
    pub store: Arc<dyn ObjectStore>,
    pub worker_function: String,
    pub writer_function: Option<String>,
    /// The definition the children's ItemProcessor comes from (JSON text).
    pub definition: String,
    /// Where batches past the payload limit go.
    pub state_bucket: Option<String>,
    pub concurrency: usize,
    pub children_per_invoke: usize,
    pub max_result_file_bytes: Option<u64>,
}

impl Fleet for LambdaFleet {
    fn children<'s>(&'s self, req: &MapRunRequest) -> Box<dyn ChildRunner + 's> {
        Box::new(LambdaWorkers {
            fleet: self,
            context: ChildContext::of(req),
        })
    }

    fn results<'s>(&'s self, req: &MapRunRequest) -> Option<Box<dyn ResultsSink + 's>> {
        let function = self.writer_function.as_ref()?;
        let writer = req.writer.clone()?;
        Some(Box::new(LambdaWriter {
            fleet: self,
            function,
            writer,
        }))
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }
}

/// Invocations of one worker batch before its children are failed with the worker's error.
const WORKER_ATTEMPTS: u32 = 3;

struct LambdaWorkers<'a> {
    fleet: &'a LambdaFleet,
    context: ChildContext,
}

fn failed(error: &str, cause: impl Into<String>) -> ChildOutcome {
    ChildOutcome {
        status: ChildStatus::Failed,
        output: None,
        error: Some(error.to_string()),
        cause: Some(cause.into()),
        snapshot: None,
    }
}

impl LambdaWorkers<'_> {
    fn recorded(&self, keys: &[(u64, u32)]) -> HashMap<(u64, u32), ChildOutcome> {
        match self
            .fleet
            .checkpoints
            .recorded_outcomes(&self.context.map_run_arn, keys)
        {
            Ok(found) => found
                .into_iter()
                .filter_map(|(k, v)| serde_json::from_value(v).ok().map(|o| (k, o)))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read recorded outcomes");
                HashMap::new()
            }
        }
    }

    /// Invokes one worker with `jobs`; splits the batch when it passes the payload limit.
    /// A request that cannot be built fails its children with the reason (never an empty
    /// payload).
    fn dispatch(&self, jobs: &[&ChildJob], known: &mut HashMap<(u64, u32), ChildOutcome>) {
        let fail_all = |known: &mut HashMap<(u64, u32), ChildOutcome>, cause: String| {
            for j in jobs {
                known.insert(
                    (j.index, j.attempt),
                    failed("States.Runtime", cause.clone()),
                );
            }
        };
        let lines: Result<Vec<String>, serde_json::Error> =
            jobs.iter().map(serde_json::to_string).collect();
        let jsonl = match lines {
            Ok(lines) => lines.join("\n"),
            Err(e) => return fail_all(known, format!("cannot serialize the worker batch: {e}")),
        };
        let mut request = WorkerRequest {
            definition: self.fleet.definition.clone(),
            context: self.context.clone(),
            children: Some(jsonl),
            children_ref: None,
        };
        let mut payload = match serde_json::to_vec(&request) {
            Ok(p) => p,
            Err(e) => return fail_all(known, format!("cannot serialize the worker request: {e}")),
        };
        if payload.len() + 64 * 1024 > PAYLOAD_LIMIT {
            if jobs.len() > 1 {
                let (a, b) = jobs.split_at(jobs.len() / 2);
                self.dispatch(a, known);
                self.dispatch(b, known);
                return;
            }
            // One child past the limit (a large definition): pass it through S3.
            let Some(bucket) = &self.fleet.state_bucket else {
                for j in jobs {
                    known.insert(
                        (j.index, j.attempt),
                        failed(
                            "States.DataLimitExceeded",
                            format!("The worker request for item {} is larger than Lambda's 6 MB payload limit and MAPFLEET_STATE_BUCKET is not set", j.index),
                        ),
                    );
                }
                return;
            };
            let key = format!(
                "mapfleet/batches/{}/{}-{}.jsonl",
                self.context.map_run_arn.rsplit(':').next().unwrap_or("run"),
                jobs.first().map(|j| j.index).unwrap_or(0),
                jobs.first().map(|j| j.attempt).unwrap_or(0)
            );
            let body = request.children.take().unwrap_or_default();
            if let Err(e) = self.fleet.store.put(bucket, &key, body.as_bytes()) {
                for j in jobs {
                    known.insert(
                        (j.index, j.attempt),
                        failed(
                            "States.Runtime",
                            format!("cannot stage the batch in S3: {e}"),
                        ),
                    );
                }
                return;
            }
            request.children_ref = Some(S3Ref {
                bucket: bucket.clone(),
                key,
            });
            payload = match serde_json::to_vec(&request) {
                Ok(p) => p,
                Err(e) => {
                    return fail_all(known, format!("cannot serialize the worker request: {e}"))
                }
            };
        }
        let keys: Vec<(u64, u32)> = jobs.iter().map(|j| (j.index, j.attempt)).collect();
        // A failed invocation (a worker that crashed, timed out, or lost a dependency) is
        // retried: the worker skips what it already recorded, so nothing runs twice.
        let mut attempt = 0;
        let answer = loop {
            attempt += 1;
            let answer =
                self.fleet
                    .invoker
                    .invoke(&self.fleet.worker_function, payload.clone(), false);
            let failed = matches!(answer, Ok(Invoked::FunctionError { .. }) | Err(_));
            if !failed || attempt >= WORKER_ATTEMPTS {
                break answer;
            }
            tracing::warn!(map_run = %self.context.map_run_arn, attempt, ?answer, "retrying a worker batch");
            std::thread::sleep(crate::invoke::backoff(attempt));
        };
        match answer {
            Ok(Invoked::Ok(v)) => match serde_json::from_value::<WorkerResponse>(v) {
                Ok(resp) => {
                    for r in resp.outcomes {
                        known.insert((r.index, r.attempt), r.outcome);
                    }
                    if !resp.recorded.is_empty() {
                        known.extend(self.recorded(&resp.recorded));
                    }
                }
                Err(e) => {
                    for k in &keys {
                        known.insert(
                            *k,
                            failed(
                                "States.Runtime",
                                format!("the worker's answer is not a worker response: {e}"),
                            ),
                        );
                    }
                }
            },
            Ok(Invoked::FunctionError {
                error_type,
                message,
            }) => {
                // The worker may have recorded some outcomes before it failed.
                let recorded = self.recorded(&keys);
                for k in &keys {
                    let o = recorded
                        .get(k)
                        .cloned()
                        .unwrap_or_else(|| failed(&error_type, message.clone()));
                    known.insert(*k, o);
                }
            }
            Ok(Invoked::Queued) => {}
            Err(e) => {
                let recorded = self.recorded(&keys);
                for k in &keys {
                    let o = recorded
                        .get(k)
                        .cloned()
                        .unwrap_or_else(|| failed(e.name(), e.to_string()));
                    known.insert(*k, o);
                }
            }
        }
    }
}

impl ChildRunner for LambdaWorkers<'_> {
    fn run_child(&self, job: &ChildJob) -> ChildOutcome {
        self.run_batch(std::slice::from_ref(job))
            .pop()
            .unwrap_or_else(|| failed("States.Runtime", "no outcome"))
    }

    /// Children already recorded (by a worker whose answer was lost: the coordinator that
    /// dispatched them stopped) are not run again.
    fn run_batch(&self, jobs: &[ChildJob]) -> Vec<ChildOutcome> {
        let keys: Vec<(u64, u32)> = jobs.iter().map(|j| (j.index, j.attempt)).collect();
        let mut known = self.recorded(&keys);
        let todo: Vec<&ChildJob> = jobs
            .iter()
            .filter(|j| !known.contains_key(&(j.index, j.attempt)))
            .collect();
        if !todo.is_empty() {
            self.dispatch(&todo, &mut known);
        }
        jobs.iter()
            .map(|j| {
                known.remove(&(j.index, j.attempt)).unwrap_or_else(|| {
                    failed(
                        "States.Runtime",
                        format!("the worker returned no outcome for item {}", j.index),
                    )
                })
            })
            .collect()
    }

    fn batch_size(&self) -> usize {
        self.fleet.children_per_invoke.max(1)
    }

    /// A worker invocation takes one fixed batch (index range of one attempt): a batch sent
    /// again after a coordinator crash is the same batch.
    fn fixed_batches(&self) -> bool {
        true
    }
}

struct LambdaWriter<'a> {
    fleet: &'a LambdaFleet,
    function: &'a str,
    writer: Value,
}

impl ResultsSink for LambdaWriter<'_> {
    fn write(&self, run: &MapRun) -> Result<(u64, Value), (String, String)> {
        let req = WriterRequest {
            map_run_arn: run.map_run_arn.clone(),
            writer: self.writer.clone(),
            max_result_file_bytes: self.fleet.max_result_file_bytes,
        };
        let payload = serde_json::to_vec(&req).map_err(|e| {
            (
                "States.ResultWriterFailed".to_string(),
                format!("cannot serialize the writer request: {e}"),
            )
        })?;
        match self.fleet.invoker.invoke(self.function, payload, false) {
            Ok(Invoked::Ok(v)) => {
                let records = v.get("records").and_then(Value::as_u64).unwrap_or(0);
                match v.get("result") {
                    Some(result) => Ok((records, result.clone())),
                    None => Err((
                        "States.ResultWriterFailed".into(),
                        format!("the writer function answered without a result: {v}"),
                    )),
                }
            }
            Ok(Invoked::FunctionError {
                error_type,
                message,
            }) => Err((error_type, message)),
            Ok(Invoked::Queued) => Err((
                "States.ResultWriterFailed".into(),
                "the writer was queued, not run".into(),
            )),
            Err(e) => Err((e.name().to_string(), e.to_string())),
        }
    }
}

/// The answer of a writer invocation.
pub fn writer_answer(records: u64, result: Value) -> Value {
    json!({ "records": records, "result": result })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_parse() {
        assert_eq!(
            S3Ref::parse("s3://b/jobs/a.json"),
            Some(S3Ref {
                bucket: "b".into(),
                key: "jobs/a.json".into()
            })
        );
        assert_eq!(S3Ref::parse("s3://b/"), None);
        assert_eq!(S3Ref::parse("https://b/k"), None);
    }

    #[test]
    fn outcome_records_flatten_the_outcome() {
        let r = OutcomeRecord {
            index: 3,
            attempt: 1,
            outcome: failed("States.TaskFailed", "boom"),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({"index": 3, "attempt": 1, "status": "FAILED", "error": "States.TaskFailed", "cause": "boom"})
        );
        let back: OutcomeRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
