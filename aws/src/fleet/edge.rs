//! What the three functions' mains share: JSON logs, and their ports built from the
//! environment (`docs/fleet-protocol.md`).

use std::sync::Arc;

use mapfleet_core::storage::ObjectStore;

use super::coordinator::{Coordinator, CoordinatorConfig};
use super::worker::Worker;
use super::FleetError;
use crate::config::Aws;
use crate::dynamo::DynamoCheckpoints;
use crate::invoke::Invoker;
use crate::s3::S3Store;
use crate::tasks::AwsTaskInvoker;

/// Structured logs: JSON lines (what CloudWatch and Lambda's JSON log format expect), level
/// from `RUST_LOG` (default `info`).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The object store (S3) and checkpoint store (DynamoDB) every function uses.
pub fn stores(aws: &Aws) -> Result<(Arc<dyn ObjectStore>, Arc<DynamoCheckpoints>), FleetError> {
    let table = env("MAPFLEET_TABLE")
        .ok_or_else(|| FleetError::InvalidRequest("MAPFLEET_TABLE is not set".into()))?;
    let ttl_days = match env("MAPFLEET_TTL_DAYS") {
        None => 30,
        Some(v) => v.parse().map_err(|_| {
            FleetError::InvalidRequest(format!("MAPFLEET_TTL_DAYS must be a number, not '{v}'"))
        })?,
    };
    let store = S3Store::new(aws).with_expected_bucket_owner(env("MAPFLEET_EXPECTED_BUCKET_OWNER"));
    let checkpoints = DynamoCheckpoints::new(aws, table).with_ttl_days(ttl_days);
    Ok((Arc::new(store), Arc::new(checkpoints)))
}

pub fn coordinator(aws: &Aws) -> Result<Coordinator, FleetError> {
    let (store, checkpoints) = stores(aws)?;
    Ok(Coordinator {
        config: CoordinatorConfig::from_env()?,
        store,
        checkpoints,
        lambda: Invoker::new(aws.lambda(), aws.handle.clone()),
        tasks: Arc::new(AwsTaskInvoker::new(aws)),
        sfn: aws.sfn(),
    })
}

pub fn worker(aws: &Aws) -> Result<Worker, FleetError> {
    let store = S3Store::new(aws).with_expected_bucket_owner(env("MAPFLEET_EXPECTED_BUCKET_OWNER"));
    Ok(Worker::new(
        Arc::new(store),
        env("MAPFLEET_STATE_BUCKET"),
        Arc::new(AwsTaskInvoker::new(aws)),
    ))
}
