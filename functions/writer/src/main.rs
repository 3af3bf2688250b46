//! The writer function: writes a finished Map Run's ResultWriter files
//! (`docs/fleet-protocol.md`).

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use mapfleet_aws::config::Aws;
use mapfleet_aws::fleet::state::FleetCheckpoints;
use mapfleet_aws::fleet::writer::handle_writer;
use mapfleet_aws::fleet::{edge, FleetError, WriterRequest};
use serde_json::Value;

fn diagnostic(e: FleetError) -> Diagnostic {
    tracing::error!(error_type = e.name(), error = %e, "write failed");
    Diagnostic {
        error_type: e.name().to_string(),
        error_message: e.to_string(),
    }
}

async fn handle(
    stores: Arc<FleetCheckpoints>,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let req: WriterRequest = serde_json::from_value(event.payload).map_err(|e| {
        diagnostic(FleetError::InvalidRequest(format!(
            "not a writer request: {e}"
        )))
    })?;
    tracing::info!(map_run = %req.map_run_arn, "writing results");
    let answer =
        tokio::task::spawn_blocking(move || handle_writer(&req, stores.store.as_ref(), &stores))
            .await
            .map_err(|e| diagnostic(FleetError::dependency("mapfleet.Internal", e)))?;
    mapfleet_aws::metrics::log("writer");
    answer.map_err(diagnostic)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    edge::init_logs();
    let aws = Aws::load().await;
    let (store, table) = edge::stores(&aws)?;
    let stores = Arc::new(edge::checkpoints(store, table)?);
    lambda_runtime::run(service_fn(move |ev| handle(stores.clone(), ev))).await
}
