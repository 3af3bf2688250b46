//! The checkpoint-store port (DynamoDB in AWS) and its embedded adapter, SQLite.
//!
//! A Map Run is saved as one record for the run plus one record per child, and only the
//! children changed since the last save are written: one transaction per batch of work, not
//! one write per item.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Child, MapRun};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint store: {0}")]
    Store(String),
    #[error("checkpoint store: corrupt record for {key}: {message}")]
    Corrupt { key: String, message: String },
}

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
    /// Saves the run record and the children in `run.dirty` (then clears it), atomically.
    fn save(&self, run: &mut MapRun) -> Result<(), CheckpointError>;
    fn load(&self, map_run_arn: &str) -> Result<Option<MapRun>, CheckpointError>;
    /// The Map Runs of an execution, oldest first.
    fn list(&self, execution_arn: &str) -> Result<Vec<MapRunSummary>, CheckpointError>;
}

/// SQLite (bundled): the embedded default.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| CheckpointError::Store(format!("{}: {e}", dir.display())))?;
        }
        Self::init(Connection::open(path)?)
    }

    pub fn in_memory() -> Result<Self, CheckpointError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, CheckpointError> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS map_runs (
                 arn TEXT PRIMARY KEY,
                 execution_arn TEXT NOT NULL,
                 seq INTEGER NOT NULL,
                 record TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS map_runs_by_execution ON map_runs (execution_arn, seq);
             CREATE TABLE IF NOT EXISTS children (
                 arn TEXT NOT NULL,
                 idx INTEGER NOT NULL,
                 record TEXT NOT NULL,
                 PRIMARY KEY (arn, idx)
             );",
        )?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, CheckpointError> {
        self.conn
            .lock()
            .map_err(|_| CheckpointError::Store("the connection lock is poisoned".into()))
    }
}

impl CheckpointStore for SqliteStore {
    fn save(&self, run: &mut MapRun) -> Result<(), CheckpointError> {
        let record =
            serde_json::to_string(&*run).map_err(|e| CheckpointError::Store(e.to_string()))?;
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO map_runs (arn, execution_arn, seq, record)
             VALUES (?1, ?2, (SELECT COUNT(*) FROM map_runs), ?3)
             ON CONFLICT(arn) DO UPDATE SET record = excluded.record",
            params![run.map_run_arn, run.execution_arn, record],
        )?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO children (arn, idx, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT(arn, idx) DO UPDATE SET record = excluded.record",
            )?;
            for idx in &run.dirty {
                if let Some(c) = run.children.get(*idx as usize) {
                    let text = serde_json::to_string(c)
                        .map_err(|e| CheckpointError::Store(e.to_string()))?;
                    stmt.execute(params![run.map_run_arn, *idx as i64, text])?;
                }
            }
        }
        tx.commit()?;
        run.dirty.clear();
        Ok(())
    }

    fn load(&self, map_run_arn: &str) -> Result<Option<MapRun>, CheckpointError> {
        let conn = self.lock()?;
        let record: Option<String> = conn
            .query_row(
                "SELECT record FROM map_runs WHERE arn = ?1",
                params![map_run_arn],
                |r| r.get(0),
            )
            .optional()?;
        let Some(record) = record else {
            return Ok(None);
        };
        let mut run: MapRun =
            serde_json::from_str(&record).map_err(|e| CheckpointError::Corrupt {
                key: map_run_arn.to_string(),
                message: e.to_string(),
            })?;
        let mut stmt =
            conn.prepare("SELECT idx, record FROM children WHERE arn = ?1 ORDER BY idx")?;
        let rows = stmt.query_map(params![map_run_arn], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (idx, text) = row?;
            let child: Child =
                serde_json::from_str(&text).map_err(|e| CheckpointError::Corrupt {
                    key: format!("{map_run_arn}#{idx}"),
                    message: e.to_string(),
                })?;
            run.children.push(child);
        }
        // Children that were running when the process died are dispatched again (a child
        // is re-run, never duplicated: its record is keyed by index).
        run.running = 0;
        run.next_pending = 0;
        run.reading = false;
        run.writing = false;
        for c in &mut run.children {
            if c.status == super::ChildStatus::Running {
                c.status = if c.redrive_count > 0 {
                    super::ChildStatus::PendingRedrive
                } else {
                    super::ChildStatus::Pending
                };
            }
        }
        Ok(Some(run))
    }

    fn list(&self, execution_arn: &str) -> Result<Vec<MapRunSummary>, CheckpointError> {
        let conn = self.lock()?;
        let mut stmt =
            conn.prepare("SELECT record FROM map_runs WHERE execution_arn = ?1 ORDER BY seq")?;
        let rows = stmt.query_map(params![execution_arn], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            let text = row?;
            let run: MapRun =
                serde_json::from_str(&text).map_err(|e| CheckpointError::Corrupt {
                    key: execution_arn.to_string(),
                    message: e.to_string(),
                })?;
            out.push(MapRunSummary {
                map_run_arn: run.map_run_arn.clone(),
                execution_arn: run.execution_arn.clone(),
                state_machine_arn: run.state_machine_arn.clone(),
                start_date: crate::asl::timestamp::format(run.start_date),
                stop_date: run.stop_date.map(crate::asl::timestamp::format),
            });
        }
        Ok(out)
    }
}
