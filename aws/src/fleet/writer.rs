//! The writer function's core: consolidates a finished Map Run's children, streamed in index
//! order from their S3 batch objects, into the ResultWriter layout in S3 (manifest.json,
//! SUCCEEDED_n / FAILED_n / PENDING_n with rollover, multipart uploads). Running it again
//! writes the same objects.

use mapfleet_core::maprun::driver::write_saved_results;
use mapfleet_core::storage::ObjectStore;
use mapfleet_core::writer::WriterSpec;
use serde_json::Value;

use super::state::FleetCheckpoints;
use super::{writer_answer, FleetError, WriterRequest};

pub fn handle_writer(
    req: &WriterRequest,
    store: &dyn ObjectStore,
    checkpoints: &FleetCheckpoints,
) -> Result<Value, FleetError> {
    let spec = WriterSpec::from_json(&req.writer).map_err(|e| FleetError::States {
        error: e.error_name().to_string(),
        cause: e.cause(),
    })?;
    let spec = match req.max_result_file_bytes {
        Some(n) => spec.with_max_file_bytes(n),
        None => spec,
    };
    let run = checkpoints
        .load_record(&req.map_run_arn)
        .map_err(|e| FleetError::dependency("DynamoDB", e))?
        .ok_or_else(|| FleetError::MapRunDoesNotExist(req.map_run_arn.clone()))?;
    let (records, result) = write_saved_results(&run, &spec, store, checkpoints)
        .map_err(|(error, cause)| FleetError::States { error, cause })?;
    Ok(writer_answer(records, result))
}
