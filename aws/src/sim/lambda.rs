//! Lambda for the simulation: the fleet's functions run in this process, each invocation
//! counted and billed. A worker invocation runs on one thread (a one-thread rayon pool), so
//! its CPU time is what it used; its billed duration is that plus the modeled latency of the
//! requests it made. The writer is billed its wall time (it runs alone). A coordinator's
//! asynchronous self-invocation (its continuation) is queued for the simulation's loop.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

use super::meter::{take_latency, thread_cpu, Function, Meter};
use crate::fleet::state::FleetCheckpoints;
use crate::fleet::worker::Worker;
use crate::fleet::writer::handle_writer;
use crate::fleet::{FleetError, WorkerRequest, WriterRequest};
use crate::invoke::{Invoke, InvokeError, Invoked};

pub struct SimLambda {
    pub meter: Arc<Meter>,
    pub worker: Arc<Worker>,
    /// The writer's ports (its own store instance, as its own function would have).
    pub writer: Arc<FleetCheckpoints>,
    /// Queued coordinator invocations (payloads), oldest first.
    pub queued: Mutex<VecDeque<Vec<u8>>>,
}

thread_local! {
    static POOL: RefCell<Option<Arc<rayon::ThreadPool>>> = const { RefCell::new(None) };
}

/// A one-thread rayon pool per calling thread: a worker's parallel loop runs on it alone.
fn one_thread_pool() -> Result<Arc<rayon::ThreadPool>, String> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if let Some(pool) = p.as_ref() {
            return Ok(pool.clone());
        }
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .map_err(|e| e.to_string())?,
        );
        *p = Some(pool.clone());
        Ok(pool)
    })
}

fn function_error(e: FleetError) -> Invoked {
    Invoked::FunctionError {
        error_type: e.name().to_string(),
        message: e.to_string(),
    }
}

fn invalid(function: &str, e: impl std::fmt::Display) -> InvokeError {
    InvokeError::Service {
        name: "Lambda.InvalidRequestContentException".into(),
        message: e.to_string(),
        function: function.to_string(),
    }
}

impl SimLambda {
    fn run_worker(&self, payload: &[u8]) -> Result<Invoked, InvokeError> {
        let req: WorkerRequest =
            serde_json::from_slice(payload).map_err(|e| invalid("worker", e))?;
        let pool = one_thread_pool().map_err(|e| invalid("worker", e))?;
        let (answer, billed) = pool.install(|| {
            take_latency();
            let cpu = thread_cpu();
            let answer = self.worker.handle(&req);
            // The answer goes back as JSON: part of the invocation.
            let answer = answer.and_then(|r| {
                serde_json::to_value(r).map_err(|e| FleetError::States {
                    error: "States.Runtime".into(),
                    cause: e.to_string(),
                })
            });
            (answer, thread_cpu().saturating_sub(cpu) + take_latency())
        });
        self.meter.invoked(Function::Worker, billed);
        Ok(match answer {
            Ok(v) => Invoked::Ok(v),
            Err(e) => function_error(e),
        })
    }

    fn run_writer(&self, payload: &[u8]) -> Result<Invoked, InvokeError> {
        let req: WriterRequest =
            serde_json::from_slice(payload).map_err(|e| invalid("writer", e))?;
        let started = Instant::now();
        let answer = handle_writer(&req, self.writer.store.as_ref(), &self.writer);
        self.meter.invoked(Function::Writer, started.elapsed());
        Ok(match answer {
            Ok(v) => Invoked::Ok(v),
            Err(e) => function_error(e),
        })
    }

    /// The next queued coordinator invocation.
    pub fn next_queued(&self) -> Option<Value> {
        let payload = self.queued.lock().ok()?.pop_front()?;
        serde_json::from_slice(&payload).ok()
    }
}

impl Invoke for SimLambda {
    fn invoke(
        &self,
        function: &str,
        payload: Vec<u8>,
        asynchronous: bool,
    ) -> Result<Invoked, InvokeError> {
        match (function, asynchronous) {
            ("worker", false) => self.run_worker(&payload),
            ("writer", false) => self.run_writer(&payload),
            ("coordinator", true) => {
                self.queued
                    .lock()
                    .map_err(|e| invalid(function, e))?
                    .push_back(payload);
                Ok(Invoked::Queued)
            }
            _ => Err(InvokeError::Service {
                name: "Lambda.ResourceNotFoundException".into(),
                message: format!(
                    "Function not found: {function} ({})",
                    if asynchronous {
                        "Event"
                    } else {
                        "RequestResponse"
                    }
                ),
                function: function.to_string(),
            }),
        }
    }
}
