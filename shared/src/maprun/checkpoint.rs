//! The checkpoint-store port (DynamoDB in AWS; its embedded adapter, SQLite, is in
//! [`super::sqlite`]).
//!
//! A Map Run is saved as one record for the run plus one record per child, and only the
//! children changed since the last save are written: one transaction per batch of work, not
//! one write per item.

use super::rows::ChildRows;
use super::{Child, MapRun};

#[cfg(feature = "sqlite")]
pub use super::sqlite::{SqliteStore, MAX_WAITING_CHILDREN};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint store: {0}")]
    Store(String),
    #[error("checkpoint store: corrupt record for {key}: {message}")]
    Corrupt { key: String, message: String },
}

impl CheckpointError {
    /// Whether trying again may succeed: a corrupt record stays corrupt.
    pub fn is_retriable(&self) -> bool {
        matches!(self, CheckpointError::Store(_))
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for CheckpointError {
    fn from(e: rusqlite::Error) -> Self {
        CheckpointError::Store(e.to_string())
    }
}

/// A listed Map Run (ListMapRuns item).
#[derive(Debug, Clone, PartialEq)]
pub struct MapRunSummary {
    pub map_run_arn: String,
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub start_date: String,
    pub stop_date: Option<String>,
}

pub trait CheckpointStore: Send + Sync {
    /// Saves, atomically, the run record (after [`MapRun::settle_resume_mark`]) and the
    /// children [`MapRun::children_to_save`] gives, then clears the dirty set and drops the
    /// saved finished children from memory ([`MapRun::evict_saved`]).
    fn save(&self, run: &mut MapRun) -> Result<(), CheckpointError>;
    /// Waits until every save made so far is durable, and reports a failed one (a store that
    /// saves in the background; others are durable when `save` returns).
    fn sync(&self) -> Result<(), CheckpointError> {
        Ok(())
    }
    /// Loads a run ready to go on: its stored unfinished children held, and the indices of
    /// its finished children from its resume mark on passed to [`MapRun::resume_loaded`]
    /// (finished children stay in the store).
    fn load(&self, map_run_arn: &str) -> Result<Option<MapRun>, CheckpointError>;
    /// Every saved child of a run, in index order, streamed.
    fn for_each_child(
        &self,
        map_run_arn: &str,
        f: &mut dyn FnMut(Child),
    ) -> Result<(), CheckpointError>;
    /// Every saved child as a [`ChildRow`] (its input and output as quoted JSON text), in
    /// index order, a chunk at a time (handed over, so it may go to another thread): for the result writer, which copies them into records
    /// without building values. Returns `false` without calling `f` when the store does not
    /// keep children so (the default); the caller then reads
    /// [`CheckpointStore::for_each_child`].
    fn for_each_child_row(
        &self,
        _map_run_arn: &str,
        _f: &mut dyn FnMut(ChildRows),
    ) -> Result<bool, CheckpointError> {
        Ok(false)
    }
    /// The saved children that failed, timed out or were aborted (what a redrive re-runs).
    fn unsuccessful(&self, map_run_arn: &str) -> Result<Vec<Child>, CheckpointError>;
    /// The Map Runs of an execution, oldest first.
    fn list(&self, execution_arn: &str) -> Result<Vec<MapRunSummary>, CheckpointError>;
}

/// Children handed over per call of [`CheckpointStore::for_each_child_row`]'s callback.
pub const ROW_CHUNK: usize = 4096;
