//! The worker function's core: runs a batch of child executions of one Map Run.
//!
//! The batch (JSON Lines inline, or an S3 object for large batches) is parsed with simd-json;
//! children run across the cores with rayon; every outcome is recorded in DynamoDB before the
//! answer (first writer wins), so a retried or duplicated invocation returns the recorded
//! outcomes instead of running a child again.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::sync::{Arc, Mutex};

use mapfleet_core::asl::parse::parse_definition_str;
use mapfleet_core::asl::StateMachine;
use mapfleet_core::engine::TaskInvoker;
use mapfleet_core::maprun::driver::{ChildJob, ChildOutcome, ChildRunner};
use mapfleet_core::ports::{Clock, Entropy, OsEntropy, SystemClock};
use mapfleet_core::storage::{GetObject, ObjectStore};
use rayon::prelude::*;

use super::{FleetError, OutcomeRecord, WorkerRequest, WorkerResponse};
use crate::dynamo::DynamoCheckpoints;
use crate::invoke::PAYLOAD_LIMIT;

/// A worker: its ports, and the last definition it parsed (a warm function reuses it).
pub struct Worker {
    pub store: Arc<dyn ObjectStore>,
    pub checkpoints: Arc<DynamoCheckpoints>,
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
        checkpoints: Arc<DynamoCheckpoints>,
        invoker: Arc<dyn TaskInvoker>,
    ) -> Self {
        Worker {
            store,
            checkpoints,
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

    /// Runs the batch and answers with every child's outcome.
    pub fn handle(&self, req: &WorkerRequest) -> Result<WorkerResponse, FleetError> {
        let jobs = parse_children(self.batch_bytes(req)?)?;
        let machine = self.machine(&req.definition)?;
        let arn = &req.context.map_run_arn;
        let keys: Vec<(u64, u32)> = jobs.iter().map(|j| (j.index, j.attempt)).collect();
        // A retried invocation: what was recorded stands.
        let mut known: HashMap<(u64, u32), ChildOutcome> = self
            .checkpoints
            .recorded_outcomes(arn, &keys)?
            .into_iter()
            .filter_map(|(k, v)| serde_json::from_value(v).ok().map(|o| (k, o)))
            .collect();
        let todo: Vec<&ChildJob> = jobs
            .iter()
            .filter(|j| !known.contains_key(&(j.index, j.attempt)))
            .collect();
        let entropy: &dyn Entropy = &OsEntropy;
        let clock: &dyn Clock = &SystemClock;
        let children = req
            .context
            .children(&machine, self.invoker.as_ref(), None, entropy, clock, false)
            .map_err(FleetError::InvalidRequest)?;
        let ran: Vec<(u64, u32, ChildOutcome)> = todo
            .par_iter()
            .map(|j| (j.index, j.attempt, children.run_child(j)))
            .collect();
        let to_record: Vec<(u64, u32, serde_json::Value)> = ran
            .iter()
            .map(|(i, a, o)| {
                serde_json::to_value(o)
                    .map(|v| (*i, *a, v))
                    .map_err(|e| FleetError::States {
                        error: "States.Runtime".into(),
                        cause: format!("cannot serialize the outcome of child {i}: {e}"),
                    })
            })
            .collect::<Result<_, _>>()?;
        self.checkpoints.record_outcomes(arn, &to_record)?;
        // First writer wins: read back what a concurrent duplicate may have recorded first.
        let recorded = self.checkpoints.recorded_outcomes(arn, &keys)?;
        for (k, v) in recorded {
            if let Ok(o) = serde_json::from_value::<ChildOutcome>(v) {
                known.insert(k, o);
            }
        }
        for (i, a, o) in ran {
            known.entry((i, a)).or_insert(o);
        }
        let outcomes: Vec<OutcomeRecord> = jobs
            .iter()
            .filter_map(|j| {
                known
                    .remove(&(j.index, j.attempt))
                    .map(|outcome| OutcomeRecord {
                        index: j.index,
                        attempt: j.attempt,
                        outcome,
                    })
            })
            .collect();
        let response = WorkerResponse {
            outcomes,
            recorded: Vec::new(),
        };
        // Past the response limit, answer with the keys only: the outcomes are in DynamoDB.
        let size = serde_json::to_vec(&response)
            .map(|v| v.len())
            .map_err(|e| FleetError::States {
                error: "States.Runtime".into(),
                cause: format!("cannot serialize the worker's answer: {e}"),
            })?;
        if size + 64 * 1024 > PAYLOAD_LIMIT {
            return Ok(WorkerResponse {
                outcomes: Vec::new(),
                recorded: keys,
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
