//! What the three functions' mains share: JSON logs, and their ports built from the
//! environment (`docs/fleet-protocol.md`).

use std::sync::Arc;

use mapfleet_core::storage::ObjectStore;

use super::coordinator::{Coordinator, CoordinatorConfig};
use super::state::{FleetCheckpoints, RecordedBatches};
use super::table::FleetTable;
use super::worker::Worker;
use super::FleetError;
use crate::config::Aws;
use crate::dynamo::DynamoTable;
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

/// What every function reads and writes: the object store (S3) and the fleet's table
/// (DynamoDB).
pub type Stores = (Arc<dyn ObjectStore>, Arc<dyn FleetTable>);

/// The object store (S3) and the fleet's table (DynamoDB).
pub fn stores(aws: &Aws) -> Result<Stores, FleetError> {
    let table = env("MAPFLEET_TABLE")
        .ok_or_else(|| FleetError::InvalidRequest("MAPFLEET_TABLE is not set".into()))?;
    let ttl_days = match env("MAPFLEET_TTL_DAYS") {
        None => 30,
        Some(v) => v.parse().map_err(|_| {
            FleetError::InvalidRequest(format!("MAPFLEET_TTL_DAYS must be a number, not '{v}'"))
        })?,
    };
    let store = S3Store::new(aws).with_expected_bucket_owner(env("MAPFLEET_EXPECTED_BUCKET_OWNER"));
    let table = DynamoTable::new(aws, table).with_ttl_days(ttl_days);
    Ok((Arc::new(store), Arc::new(table)))
}

/// The fleet's checkpoint store: run records in the table, children in the state bucket
/// (`MAPFLEET_STATE_BUCKET`).
pub fn checkpoints(
    store: Arc<dyn ObjectStore>,
    table: Arc<dyn FleetTable>,
) -> Result<FleetCheckpoints, FleetError> {
    let bucket = env("MAPFLEET_STATE_BUCKET").ok_or_else(|| {
        FleetError::InvalidRequest(
            "MAPFLEET_STATE_BUCKET is not set: the fleet keeps its Map Runs' children there".into(),
        )
    })?;
    Ok(FleetCheckpoints::new(
        table,
        store,
        bucket,
        Arc::new(RecordedBatches::default()),
    ))
}

pub fn coordinator(aws: &Aws) -> Result<Coordinator, FleetError> {
    let (store, table) = stores(aws)?;
    let checkpoints = Arc::new(checkpoints(store.clone(), table.clone())?);
    Ok(Coordinator {
        config: CoordinatorConfig::from_env()?,
        store,
        table,
        checkpoints,
        lambda: Arc::new(Invoker::new(aws.lambda(), aws.handle.clone())),
        tasks: Arc::new(AwsTaskInvoker::new(aws)),
        sfn: aws.sfn(),
        runtime: aws.handle.clone(),
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
