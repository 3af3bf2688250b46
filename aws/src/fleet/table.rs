//! The fleet's table port: the few small records a fleet keeps besides its S3 objects — one
//! versioned record per Map Run, a listing item per Map Run, a lease and a snapshot per
//! execution. DynamoDB in AWS ([`crate::dynamo::DynamoTable`]); an in-memory, metered table
//! in the fleet simulation.
//!
//! No child is ever an item of its own: children live in S3 batch objects
//! ([`super::outcomes`], [`super::state`]).

use std::time::Duration;

use mapfleet_core::maprun::checkpoint::{CheckpointError, MapRunSummary};

#[derive(Debug, Clone, thiserror::Error)]
pub enum TableError {
    /// An error answer (or a transport failure): the service's error code and message.
    #[error("{operation}: {code}: {message}")]
    Service {
        operation: String,
        code: String,
        message: String,
    },
    /// A versioned record was written by someone else since this writer read it.
    #[error("ConditionalCheckFailed: {key} was saved by another coordinator (expected version {expected})")]
    VersionConflict { key: String, expected: String },
    /// A record past the table's item limit (DynamoDB: 400 KB).
    #[error("{key} is about {size} bytes, over the 400 KB item limit")]
    TooLarge { key: String, size: usize },
    #[error("corrupt record {key}: {message}")]
    Corrupt { key: String, message: String },
}

impl TableError {
    /// The error code, as `DynamoDB.<code>`-style names use it.
    pub fn code(&self) -> &str {
        match self {
            TableError::Service { code, .. } => code,
            TableError::VersionConflict { .. } => "ConditionalCheckFailedException",
            TableError::TooLarge { .. } => "ItemTooLarge",
            TableError::Corrupt { .. } => "Corrupt",
        }
    }
}

impl From<TableError> for CheckpointError {
    fn from(e: TableError) -> Self {
        match e {
            TableError::Corrupt { key, message } => CheckpointError::Corrupt { key, message },
            other => CheckpointError::Store(other.to_string()),
        }
    }
}

/// A versioned record as read: its version (1 for the first write) and text.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub version: u64,
    pub text: String,
}

pub trait FleetTable: Send + Sync {
    /// The Map Run record `map_run_arn`, if there is one.
    fn get_run(&self, map_run_arn: &str) -> Result<Option<Versioned>, TableError>;
    /// Writes the Map Run record if its version is still `expected` (`None`: it must not
    /// exist yet); returns the new version. A retried request whose first attempt succeeded
    /// finds its own write and succeeds.
    fn put_run(
        &self,
        map_run_arn: &str,
        text: &str,
        expected: Option<u64>,
    ) -> Result<u64, TableError>;
    /// Writes (or replaces) the listing item of a Map Run.
    fn put_listing(&self, run: &MapRunSummary) -> Result<(), TableError>;
    /// The Map Runs of an execution, oldest first.
    fn list_runs(&self, execution_arn: &str) -> Result<Vec<MapRunSummary>, TableError>;
    /// Takes (or extends) the lease `name` for `owner` for `ttl`; false when someone else
    /// holds an unexpired lease.
    fn acquire_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, TableError>;
    /// Gives the lease back if `owner` holds it.
    fn release_lease(&self, name: &str, owner: &str) -> Result<(), TableError>;
    /// Saves an execution's snapshot; a finished one expires after the table's TTL.
    fn put_execution(&self, name: &str, snapshot: &str, finished: bool) -> Result<(), TableError>;
    /// An execution's saved snapshot.
    fn get_execution(&self, name: &str) -> Result<Option<String>, TableError>;
}
