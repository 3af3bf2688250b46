//! The fleet: a Map Run's children run on worker functions and its results are written by the
//! writer function, while the coordinator function drives the Map Run (the core's pure
//! [`mapfleet_core::maprun::MapRun`] through [`mapfleet_core::maprun::driver::drive`]).
//!
//! The wire shapes are in `docs/fleet-protocol.md`. The coordinator side is [`LambdaFleet`]
//! (the core's [`Fleet`] port); the function sides are [`worker::Worker`],
//! [`writer::handle_writer`] and [`coordinator::Coordinator`].

pub mod coordinator;
pub mod edge;
pub mod outcomes;
pub mod state;
pub mod table;
pub mod worker;
pub mod writer;

use std::collections::HashMap;
use std::sync::Arc;

use mapfleet_core::engine::distributed::{ChildContext, Fleet, MapRunRequest};
use mapfleet_core::maprun::driver::{ChildJob, ChildOutcome, ChildRunner, ResultsSink};
use mapfleet_core::maprun::{BatchKey, Child, ChildStatus, MapRun};
use mapfleet_core::storage::ObjectStore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::invoke::{Invoke, Invoked, PAYLOAD_LIMIT};
use outcomes::BatchOutcomes;
use state::RecordedBatches;

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

impl From<table::TableError> for FleetError {
    fn from(e: table::TableError) -> Self {
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

impl OutcomeRecord {
    /// A stored child's outcome.
    pub fn of(c: Child) -> OutcomeRecord {
        OutcomeRecord {
            index: c.index,
            attempt: c.redrive_count,
            outcome: ChildOutcome {
                status: c.status,
                output: c.output,
                error: c.error,
                cause: c.cause,
                snapshot: c.snapshot,
            },
        }
    }
}

/// The stored record of a child that ran as `job` in `batch` with `outcome`.
pub fn child_record(
    job: &ChildJob,
    batch: BatchKey,
    outcome: ChildOutcome,
    start: chrono::DateTime<chrono::Utc>,
    stop: chrono::DateTime<chrono::Utc>,
) -> Child {
    Child {
        index: job.index,
        name: job.name.clone(),
        first_item: job.first_item,
        items: job.items,
        input: job.input.clone(),
        status: outcome.status,
        output: outcome.output,
        error: outcome.error,
        cause: outcome.cause,
        start_date: Some(start),
        stop_date: Some(stop),
        redrive_count: job.attempt,
        snapshot: outcome.snapshot,
        run_attempt: batch.run_attempt,
    }
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
    pub invoker: Arc<dyn Invoke>,
    /// Shared with the fleet's checkpoint store: the batches a worker recorded.
    pub recorded: Arc<RecordedBatches>,
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
    fn recorded(&self) -> Result<BatchOutcomes<'_>, String> {
        match &self.fleet.state_bucket {
            Some(bucket) => Ok(BatchOutcomes {
                store: self.fleet.store.as_ref(),
                bucket,
            }),
            None => Err(
                "MAPFLEET_STATE_BUCKET is not set: the fleet records batch outcomes there".into(),
            ),
        }
    }

    /// The worker request for a batch: inline, or staged in the state bucket when it passes
    /// the invoke payload limit (a fixed batch is never split: its outcomes are one record).
    fn request(&self, jobs: &[ChildJob], batch: BatchKey) -> Result<Vec<u8>, String> {
        let lines: Result<Vec<String>, serde_json::Error> =
            jobs.iter().map(serde_json::to_string).collect();
        let jsonl = lines
            .map_err(|e| format!("cannot serialize the worker batch: {e}"))?
            .join("\n");
        let mut request = WorkerRequest {
            definition: self.fleet.definition.clone(),
            context: self.context.clone(),
            children: Some(jsonl),
            children_ref: None,
        };
        let serialize = |r: &WorkerRequest| {
            serde_json::to_vec(r).map_err(|e| format!("cannot serialize the worker request: {e}"))
        };
        let payload = serialize(&request)?;
        if payload.len() + 64 * 1024 <= PAYLOAD_LIMIT {
            return Ok(payload);
        }
        let bucket = self.fleet.state_bucket.as_ref().ok_or_else(|| {
            format!(
                "The worker request for the batch from item {} is larger than Lambda's 6 MB \
                 payload limit and MAPFLEET_STATE_BUCKET is not set",
                batch.first
            )
        })?;
        let key = format!(
            "mapfleet/batches/{}/{:05}/{:020}.jsonl",
            mapfleet_core::maprun::map_run_id(&self.context.map_run_arn),
            batch.run_attempt,
            batch.first
        );
        let body = request.children.take().unwrap_or_default();
        self.fleet
            .store
            .put(bucket, &key, body.as_bytes())
            .map_err(|e| format!("cannot stage the batch in S3: {e}"))?;
        request.children_ref = Some(S3Ref {
            bucket: bucket.clone(),
            key,
        });
        serialize(&request)
    }

    /// Runs a fixed batch on a worker: the outcomes its worker recorded, or, when the worker
    /// failed, the failure recorded in its place (unless a worker's outcomes came first).
    fn run_fixed(&self, jobs: &[ChildJob], batch: BatchKey) -> Result<Vec<OutcomeRecord>, Named> {
        let runtime = |cause: String| ("States.Runtime".to_string(), cause);
        let recorded = self.recorded().map_err(runtime)?;
        let payload = self
            .request(jobs, batch)
            .map_err(|cause| ("States.DataLimitExceeded".to_string(), cause));
        let answer = match payload {
            Err(e) => Err(e),
            Ok(payload) => self.invoke_worker(payload),
        };
        let arn = &self.context.map_run_arn;
        let records = match answer {
            Ok(resp) if resp.recorded.is_empty() => resp.outcomes,
            // Too large to answer: the outcomes are in the batch's record.
            Ok(_) => recorded
                .get(arn, batch)
                .map_err(|e| (e.name().to_string(), e.to_string()))?
                .ok_or_else(|| {
                    runtime(format!(
                        "the worker recorded no outcomes for the batch from item {}",
                        batch.first
                    ))
                })?
                .into_iter()
                .map(OutcomeRecord::of)
                .collect(),
            Err((error, cause)) => {
                let now = chrono::Utc::now();
                let failures = jobs
                    .iter()
                    .map(|j| child_record(j, batch, failed(&error, cause.clone()), now, now))
                    .collect();
                recorded
                    .record_first(arn, batch, failures)
                    .map_err(|e| (e.name().to_string(), e.to_string()))?
                    .into_iter()
                    .map(OutcomeRecord::of)
                    .collect()
            }
        };
        // The batch's object holds these children: the checkpoint store writes none of them.
        self.fleet.recorded.mark(arn, batch);
        Ok(records)
    }

    /// Invokes a worker; a failed invocation (a worker that crashed, timed out, or lost a
    /// dependency) is retried: the worker answers a batch it recorded from its record.
    fn invoke_worker(&self, payload: Vec<u8>) -> Result<WorkerResponse, Named> {
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
            Ok(Invoked::Ok(v)) => serde_json::from_value::<WorkerResponse>(v).map_err(|e| {
                (
                    "States.Runtime".to_string(),
                    format!("the worker's answer is not a worker response: {e}"),
                )
            }),
            Ok(Invoked::FunctionError {
                error_type,
                message,
            }) => Err((error_type, message)),
            Ok(Invoked::Queued) => Err((
                "States.Runtime".to_string(),
                "the worker invocation was queued, not run".to_string(),
            )),
            Err(e) => Err((e.name().to_string(), e.to_string())),
        }
    }
}

/// An error name and its cause.
type Named = (String, String);

impl ChildRunner for LambdaWorkers<'_> {
    fn run_child(&self, job: &ChildJob) -> ChildOutcome {
        self.run_batch(std::slice::from_ref(job))
            .pop()
            .unwrap_or_else(|| failed("States.Runtime", "no outcome"))
    }

    /// One fixed batch per worker invocation; its outcomes by child, in order.
    fn run_batch(&self, jobs: &[ChildJob]) -> Vec<ChildOutcome> {
        let fail_all =
            |error: &str, cause: &str| jobs.iter().map(|_| failed(error, cause)).collect();
        let batch = match jobs.first().and_then(|j| j.batch) {
            Some(b) if jobs.iter().all(|j| j.batch == Some(b)) => b,
            _ => {
                return fail_all(
                    "States.Runtime",
                    "the fleet's children go out in fixed batches; these carry none",
                )
            }
        };
        let mut by_key: HashMap<(u64, u32), ChildOutcome> = match self.run_fixed(jobs, batch) {
            Ok(records) => records
                .into_iter()
                .map(|r| ((r.index, r.attempt), r.outcome))
                .collect(),
            Err((error, cause)) => return fail_all(&error, &cause),
        };
        jobs.iter()
            .map(|j| {
                by_key.remove(&(j.index, j.attempt)).unwrap_or_else(|| {
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
    /// again after a coordinator crash is the same batch, answered from its record.
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
