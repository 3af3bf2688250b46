//! The worker function's core: runs a batch of child executions of one Map Run.
//!
//! The batch (JSON Lines inline, or an S3 object for large batches) is parsed with simd-json;
//! children run across the cores with rayon; the batch's outcomes are recorded as one S3
//! object before the answer (a conditional PUT: first writer wins, see [`super::outcomes`]),
//! so a retried or duplicated invocation returns the recorded outcomes instead of running a
//! child again.

use std::hash::{Hash, Hasher};
use std::io::Read;
use std::sync::{Arc, Mutex};

use mapfleet_core::asl::parse::parse_definition_str;
use mapfleet_core::asl::StateMachine;
use mapfleet_core::engine::TaskInvoker;
use mapfleet_core::maprun::driver::{ChildJob, ChildRunner};
use mapfleet_core::ports::{Clock, Entropy, OsEntropy, SystemClock};
use mapfleet_core::storage::{GetObject, ObjectStore};
use rayon::prelude::*;

use super::outcomes::BatchOutcomes;
use super::{child_record, FleetError, OutcomeRecord, WorkerRequest, WorkerResponse};
use crate::invoke::PAYLOAD_LIMIT;

/// A worker: its ports, and the last definition it parsed (a warm function reuses it).
pub struct Worker {
    pub store: Arc<dyn ObjectStore>,
    /// Where batch outcomes are recorded (`MAPFLEET_STATE_BUCKET`).
    pub state_bucket: Option<String>,
    pub invoker: Arc<dyn TaskInvoker>,
    machine: Mutex<Option<(u64, Arc<StateMachine>)>>,
}

/// Parses JSON Lines of child jobs with simd-json. A bad line is an error naming its line.
pub fn parse_children(mut bytes: Vec<u8>) -> Result<Vec<ChildJob>, FleetError> {
    let mut jobs = Vec::new();
    for (n, line) in bytes.split_mut(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let job: ChildJob = simd_json::serde::from_slice(line)
            .map_err(|e| FleetError::InvalidRequest(format!("children line {}: {e}", n + 1)))?;
        jobs.push(job);
    }
    Ok(jobs)
}

impl Worker {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        state_bucket: Option<String>,
        invoker: Arc<dyn TaskInvoker>,
    ) -> Self {
        Worker {
            store,
            state_bucket,
            invoker,
            machine: Mutex::new(None),
        }
    }

    fn machine(&self, definition: &str) -> Result<Arc<StateMachine>, FleetError> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        definition.hash(&mut h);
        let key = h.finish();
        if let Ok(guard) = self.machine.lock() {
            if let Some((k, m)) = guard.as_ref() {
                if *k == key {
                    return Ok(m.clone());
                }
            }
        }
        let m = Arc::new(parse_definition_str(definition).map_err(|diags| {
            FleetError::InvalidDefinition(
                diags
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?);
        if let Ok(mut guard) = self.machine.lock() {
            *guard = Some((key, m.clone()));
        }
        Ok(m)
    }

    fn batch_bytes(&self, req: &WorkerRequest) -> Result<Vec<u8>, FleetError> {
        match (&req.children, &req.children_ref) {
            (Some(text), _) => Ok(text.clone().into_bytes()),
            (None, Some(r)) => {
                let mut body = self
                    .store
                    .get(&GetObject {
                        bucket: &r.bucket,
                        key: &r.key,
                        ..Default::default()
                    })
                    .map_err(|e| FleetError::dependency(format!("S3.{}", e.code()), e))?;
                let mut bytes = Vec::new();
                body.read_to_end(&mut bytes)
                    .map_err(|e| FleetError::dependency("S3.ReadError", e))?;
                Ok(bytes)
            }
            (None, None) => Err(FleetError::InvalidRequest(
                "a worker request needs `children` or `childrenRef`".into(),
            )),
        }
    }

    /// Runs the batch and answers with every child's outcome, recorded first (a batch
    /// recorded already is answered from its record: nothing runs twice).
    pub fn handle(&self, req: &WorkerRequest) -> Result<WorkerResponse, FleetError> {
        let jobs = parse_children(self.batch_bytes(req)?)?;
        let batch = match jobs.first().and_then(|j| j.batch) {
            Some(b) if jobs.iter().all(|j| j.batch == Some(b)) => b,
            _ => {
                return Err(FleetError::InvalidRequest(
                    "the children of a worker request must all carry the same `batch` \
                     ({run_attempt, first})"
                        .into(),
                ))
            }
        };
        let bucket = self.state_bucket.as_deref().ok_or_else(|| {
            FleetError::InvalidRequest(
                "MAPFLEET_STATE_BUCKET is not set: workers record each batch's outcomes there"
                    .into(),
            )
        })?;
        let recorded = BatchOutcomes {
            store: self.store.as_ref(),
            bucket,
        };
        let arn = &req.context.map_run_arn;
        let outcomes = match recorded.get(arn, batch)? {
            // Delivered again: what was recorded stands.
            Some(outcomes) => outcomes,
            None => {
                let machine = self.machine(&req.definition)?;
                let entropy: &dyn Entropy = &OsEntropy;
                let clock: &dyn Clock = &SystemClock;
                let children = req
                    .context
                    .children(&machine, self.invoker.as_ref(), None, entropy, clock, false)
                    .map_err(FleetError::InvalidRequest)?;
                let ran: Vec<mapfleet_core::maprun::Child> = jobs
                    .par_iter()
                    .map(|j| {
                        let start = clock.now();
                        let outcome = children.run_child(j);
                        child_record(j, batch, outcome, start, clock.now())
                    })
                    .collect();
                // A duplicate that recorded first wins: its outcomes are the answer.
                recorded.record_first(arn, batch, ran)?
            }
        };
        let response = WorkerResponse {
            outcomes: outcomes.into_iter().map(OutcomeRecord::of).collect(),
            recorded: Vec::new(),
        };
        // Past the response limit, answer with the keys only: the outcomes are recorded.
        let size = serde_json::to_vec(&response)
            .map(|v| v.len())
            .map_err(|e| FleetError::States {
                error: "States.Runtime".into(),
                cause: format!("cannot serialize the worker's answer: {e}"),
            })?;
        if size + 64 * 1024 > PAYLOAD_LIMIT {
            return Ok(WorkerResponse {
                outcomes: Vec::new(),
                recorded: jobs.iter().map(|j| (j.index, j.attempt)).collect(),
            });
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_lines_parse_with_simd_json_and_bad_lines_are_named() {
        let text = "{\"index\":0,\"name\":\"a\",\"input\":{\"x\":1}}\n\n{\"index\":1,\"name\":\"b\",\"input\":[1,2],\"attempt\":2,\"redrive\":true}\n";
        let jobs = parse_children(text.as_bytes().to_vec()).unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[1].attempt, 2);
        assert!(jobs[1].redrive);
        assert_eq!(*jobs[0].input, serde_json::json!({"x": 1}));
        let err = parse_children(b"{\"index\":0,\"name\":\"a\",\"input\":1}\n{oops".to_vec())
            .unwrap_err();
        assert_eq!(err.name(), "mapfleet.InvalidRequest");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
