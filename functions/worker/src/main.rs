//! The worker function: runs a batch of a Map Run's child executions and records their
//! outcomes (`docs/fleet-protocol.md`).

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use mapfleet_aws::config::Aws;
use mapfleet_aws::fleet::worker::Worker;
use mapfleet_aws::fleet::{edge, FleetError, WorkerRequest, WorkerResponse};
use serde_json::Value;

fn diagnostic(e: FleetError) -> Diagnostic {
    tracing::error!(error_type = e.name(), error = %e, "batch failed");
    Diagnostic {
        error_type: e.name().to_string(),
        error_message: e.to_string(),
    }
}

async fn handle(w: Arc<Worker>, event: LambdaEvent<Value>) -> Result<WorkerResponse, Diagnostic> {
    let req: WorkerRequest = serde_json::from_value(event.payload).map_err(|e| {
        diagnostic(FleetError::InvalidRequest(format!(
            "not a worker request: {e}"
        )))
    })?;
    tracing::info!(map_run = %req.context.map_run_arn, "batch");
    let answer = tokio::task::spawn_blocking(move || w.handle(&req))
        .await
        .map_err(|e| diagnostic(FleetError::dependency("mapfleet.Internal", e)))?;
    mapfleet_aws::metrics::log("worker");
    answer.map_err(diagnostic)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    edge::init_logs();
    let aws = Aws::load().await;
    let worker = Arc::new(edge::worker(&aws)?);
    lambda_runtime::run(service_fn(move |ev| handle(worker.clone(), ev))).await
}
