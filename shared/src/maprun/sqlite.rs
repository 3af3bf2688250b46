//! The embedded checkpoint store: SQLite (bundled), the `sqlite` feature.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};

use super::checkpoint::{CheckpointError, CheckpointStore, MapRunSummary, ROW_CHUNK};
use super::rows::{self, ChildRow, ChildRows};
use super::{Child, ChildStatus, MapRun};

/// SQLite (bundled): the embedded default.
///
/// Saves are committed by a thread of their own (group commit): `save` serializes the run
/// record, hands it over with the children to store (the finished ones moved out of the run)
/// and returns at once; the saver thread takes every save handed over meanwhile and commits
/// them together in one transaction. A save waits only when [`MAX_WAITING_CHILDREN`] are
/// waiting already (memory stays bounded when saves come faster than commits). Every read
/// first waits until everything handed over is committed, so it sees every save made before
/// it. After a failed commit nothing more is committed (the store stays at its last
/// consistent state) and every later call reports the failure.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    saver: Arc<Saver>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// At most this many children wait for the saver thread (besides those it commits).
pub const MAX_WAITING_CHILDREN: usize = 1 << 13;

/// What the driver and the saver thread share.
#[derive(Default)]
struct Saver {
    state: Mutex<SaverState>,
    changed: Condvar,
}

#[derive(Default)]
struct SaverState {
    /// Saves handed over and not yet taken by the saver thread, in order.
    waiting: Vec<SaveBatch>,
    /// The children in `waiting`.
    waiting_children: usize,
    /// Whether the saver thread is committing saves it took.
    committing: bool,
    /// Set when the store is dropped: the thread commits what waits, then ends.
    closed: bool,
    error: Option<String>,
}

impl Saver {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, SaverState>, CheckpointError> {
        self.state
            .lock()
            .map_err(|_| CheckpointError::Store("the saver's lock is poisoned".into()))
    }

    fn wait<'a>(
        &self,
        s: std::sync::MutexGuard<'a, SaverState>,
    ) -> Result<std::sync::MutexGuard<'a, SaverState>, CheckpointError> {
        self.changed
            .wait(s)
            .map_err(|_| CheckpointError::Store("the saver's lock is poisoned".into()))
    }
}

/// One `save`: the run record serialized, the children as they are (the saver thread
/// stores them, and frees them, off the driver's thread).
struct SaveBatch {
    arn: String,
    execution_arn: String,
    record: String,
    #[allow(clippy::vec_box)] // as the run hands them over (see `take_children_to_save`)
    children: Vec<Box<Child>>,
}

/// Commits the saves handed over, all those waiting at a time, until the store is dropped.
fn save_loop(conn: Arc<Mutex<Connection>>, saver: Arc<Saver>) {
    loop {
        let batches = {
            let Ok(mut s) = saver.lock() else { return };
            while s.waiting.is_empty() && !s.closed {
                s = match saver.wait(s) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
            if s.waiting.is_empty() {
                return;
            }
            s.waiting_children = 0;
            s.committing = true;
            let failed = s.error.is_some();
            let batches = std::mem::take(&mut s.waiting);
            drop(s);
            saver.changed.notify_all();
            if failed {
                Vec::new()
            } else {
                batches
            }
        };
        let result = match conn.lock() {
            Ok(mut c) if !batches.is_empty() => commit_retrying(&mut c, &batches),
            Ok(_) => Ok(()),
            Err(_) => Err(CheckpointError::Store(
                "the connection lock is poisoned".into(),
            )),
        };
        drop(batches);
        if let Ok(mut s) = saver.lock() {
            s.committing = false;
            if let Err(e) = result {
                s.error.get_or_insert(e.to_string());
            }
        }
        saver.changed.notify_all();
    }
}

/// How many times the saver tries a commit (a busy or locked database, a full disk that
/// frees up) before the store fails; the pause doubles from [`COMMIT_BACKOFF`].
const COMMIT_ATTEMPTS: u32 = 5;
const COMMIT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(20);

/// [`commit`], tried again after a failure (a failed transaction is rolled back, so trying
/// again writes the same saves); the last error when every attempt failed.
fn commit_retrying(conn: &mut Connection, batches: &[SaveBatch]) -> Result<(), CheckpointError> {
    let mut pause = COMMIT_BACKOFF;
    let mut attempt = 1;
    loop {
        match commit(conn, batches) {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= COMMIT_ATTEMPTS => {
                return Err(CheckpointError::Store(format!(
                    "committing {} saves failed {attempt} times: {e}",
                    batches.len()
                )))
            }
            Err(_) => {
                std::thread::sleep(pause);
                pause *= 2;
                attempt += 1;
            }
        }
    }
}

/// Writes saves in one transaction.
fn commit(conn: &mut Connection, batches: &[SaveBatch]) -> Result<(), CheckpointError> {
    let tx = conn.transaction()?;
    let mut quoting = Quoting::default();
    for b in batches {
        tx.execute(
            "INSERT INTO map_runs (arn, execution_arn, seq, record)
             VALUES (?1, ?2, (SELECT COUNT(*) FROM map_runs), ?3)
             ON CONFLICT(arn) DO UPDATE SET record = excluded.record",
            params![b.arn, b.execution_arn, b.record],
        )?;
        let run_no = run_number(&tx, &b.arn)?.ok_or_else(|| {
            CheckpointError::Store(format!("the run record of {} was not saved", b.arn))
        })?;
        let mut insert = tx.prepare_cached(INSERT_CHILD)?;
        for c in &b.children {
            insert_child(&mut insert, run_no, c, &mut quoting)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Buffers reused to quote children's inputs and outputs.
#[derive(Default)]
struct Quoting {
    scratch: Vec<u8>,
    input: Vec<u8>,
    output: Vec<u8>,
}

/// Inserts (or replaces) one child's row: the statement [`insert_child`] binds.
const INSERT_CHILD: &str = "INSERT OR REPLACE INTO map_children (key, status, name, first_item,
         items, redrive_count, run_attempt, start_ns, stop_ns, error, cause, snapshot, input,
         output)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// Inserts (or replaces) one child's row with `stmt`, prepared from [`INSERT_CHILD`] once
/// for many children.
fn insert_child(
    stmt: &mut rusqlite::Statement<'_>,
    run_no: i64,
    c: &Child,
    q: &mut Quoting,
) -> Result<(), CheckpointError> {
    rows::quoted_json(&c.input, &mut q.scratch, &mut q.input);
    if let Some(o) = &c.output {
        rows::quoted_json(o, &mut q.scratch, &mut q.output);
    }
    let date = |d: Option<chrono::DateTime<chrono::Utc>>| {
        d.map(|t| {
            rows::date_to_nanos(t).ok_or_else(|| {
                CheckpointError::Store(format!(
                    "child {} of a Map Run: the date {t} is out of the storable range",
                    c.index
                ))
            })
        })
        .transpose()
    };
    // Quoted JSON text is UTF-8: bound as TEXT without checking it again.
    fn text(t: &[u8]) -> ToSqlOutput<'_> {
        ToSqlOutput::Borrowed(ValueRef::Text(t))
    }
    stmt.execute(params![
        child_key(run_no, c.index),
        c.status.as_str(),
        c.name,
        c.first_item as i64,
        c.items as i64,
        c.redrive_count,
        c.run_attempt,
        date(c.start_date)?,
        date(c.stop_date)?,
        c.error,
        c.cause,
        c.snapshot,
        text(&q.input),
        c.output.as_ref().map(|_| text(&q.output)),
    ])?;
    Ok(())
}

/// The columns a child is read from, in [`child_row`]'s order.
const CHILD_COLUMNS: &str = "key, status, name, first_item, items, redrive_count, run_attempt,
    start_ns, stop_ns, error, cause, snapshot, input, output";

/// A `map_children` row (selected as [`CHILD_COLUMNS`], columns 0 to 13), borrowed; `lo` is its run's first key.
fn child_row<'r>(row: &'r rusqlite::Row<'_>, lo: i64) -> Result<ChildRow<'r>, CheckpointError> {
    let text = |i: usize| -> Result<Option<&'r str>, CheckpointError> {
        match row.get_ref(i)? {
            ValueRef::Null => Ok(None),
            v => Ok(Some(v.as_str().map_err(|e| {
                CheckpointError::Store(format!("a stored child's column {i}: {e}"))
            })?)),
        }
    };
    let key: i64 = row.get(0)?;
    let index = (key - lo) as u64;
    let corrupt = |message: String| CheckpointError::Corrupt {
        key: format!("child {index}"),
        message,
    };
    let status = text(1)?.unwrap_or_default();
    Ok(ChildRow {
        index,
        status: ChildStatus::parse(status)
            .ok_or_else(|| corrupt(format!("unknown status {status:?}")))?,
        name: text(2)?.unwrap_or_default(),
        first_item: row.get::<_, i64>(3)? as u64,
        items: row.get::<_, i64>(4)? as u64,
        redrive_count: row.get(5)?,
        run_attempt: row.get(6)?,
        start_ns: row.get(7)?,
        stop_ns: row.get(8)?,
        error: text(9)?,
        cause: text(10)?,
        snapshot: text(11)?,
        input: text(12)?.ok_or_else(|| corrupt("no input".into()))?,
        output: text(13)?,
    })
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing lets the saver commit what waits, and end.
        if let Ok(mut s) = self.saver.lock() {
            s.closed = true;
        }
        self.saver.changed.notify_all();
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
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
        // Children are appended a million at a time: 64 KiB pages (for a new database; one
        // made before keeps its pages) split and checksum far less often than 4 KiB ones
        // (the 1M-row bench: 0.3-0.5 s faster). The WAL is checkpointed every 64 MiB.
        conn.execute_batch(
            "PRAGMA page_size = 65536;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA wal_autocheckpoint = 1024;
             CREATE TABLE IF NOT EXISTS map_runs (
                 arn TEXT PRIMARY KEY,
                 execution_arn TEXT NOT NULL,
                 seq INTEGER NOT NULL,
                 record TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS map_runs_by_execution ON map_runs (execution_arn, seq);
             CREATE TABLE IF NOT EXISTS map_children (
                 key INTEGER PRIMARY KEY,
                 status TEXT NOT NULL,
                 name TEXT NOT NULL,
                 first_item INTEGER NOT NULL,
                 items INTEGER NOT NULL,
                 redrive_count INTEGER NOT NULL,
                 run_attempt INTEGER NOT NULL,
                 start_ns INTEGER,
                 stop_ns INTEGER,
                 error TEXT,
                 cause TEXT,
                 snapshot TEXT,
                 input TEXT NOT NULL,
                 output TEXT
             );",
        )?;
        migrate_legacy_children(&conn)?;
        let conn = Arc::new(Mutex::new(conn));
        let saver = Arc::new(Saver::default());
        let thread = std::thread::Builder::new()
            .name("mapfleet-checkpoints".into())
            .spawn({
                let (conn, saver) = (conn.clone(), saver.clone());
                move || save_loop(conn, saver)
            })
            .map_err(|e| CheckpointError::Store(format!("cannot start the saver thread: {e}")))?;
        Ok(SqliteStore {
            conn,
            saver,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Waits until every save handed over is committed; reports a failed commit.
    fn flush(&self) -> Result<(), CheckpointError> {
        let mut s = self.saver.lock()?;
        while !s.waiting.is_empty() || s.committing {
            s = self.saver.wait(s)?;
        }
        match &s.error {
            Some(e) => Err(CheckpointError::Store(e.clone())),
            None => Ok(()),
        }
    }

    /// The connection, once every queued save is committed.
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, CheckpointError> {
        self.flush()?;
        self.conn
            .lock()
            .map_err(|_| CheckpointError::Store("the connection lock is poisoned".into()))
    }

    fn children_where(
        &self,
        map_run_arn: &str,
        statuses: &str,
    ) -> Result<Vec<Child>, CheckpointError> {
        let conn = self.lock()?;
        let Some(run) = run_number(&conn, map_run_arn)? else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT {CHILD_COLUMNS} FROM map_children
             WHERE key BETWEEN ?1 AND ?2 AND status IN ({statuses}) ORDER BY key"
        );
        let mut stmt = conn.prepare(&sql)?;
        let (lo, hi) = key_range(run);
        let mut rows = stmt.query(params![lo, hi])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(to_child(map_run_arn, &child_row(row, lo)?)?);
        }
        Ok(out)
    }
}

fn to_child(map_run_arn: &str, row: &ChildRow<'_>) -> Result<Child, CheckpointError> {
    row.to_child().map_err(|e| CheckpointError::Corrupt {
        key: format!("{map_run_arn}#{}", row.index),
        message: e.to_string(),
    })
}

impl SqliteStore {
    /// The indices of a run's finished children from `from` on.
    fn finished_from(&self, map_run_arn: &str, from: u64) -> Result<Vec<u64>, CheckpointError> {
        let conn = self.lock()?;
        let Some(run) = run_number(&conn, map_run_arn)? else {
            return Ok(Vec::new());
        };
        let (lo, hi) = key_range(run);
        let mut stmt = conn.prepare(
            "SELECT key FROM map_children WHERE key BETWEEN ?1 AND ?2
             AND status IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED') ORDER BY key",
        )?;
        let rows = stmt.query_map(params![child_key(run, from), hi], |r| r.get::<_, i64>(0))?;
        rows.map(|k| Ok((k? - lo) as u64)).collect()
    }
}

/// A child's row key: its run's number (the run record's rowid) above its index.
const RUN_SHIFT: u32 = 40;

fn child_key(run: i64, index: u64) -> i64 {
    (run << RUN_SHIFT) + index as i64
}

/// The keys of a run's children, inclusive.
fn key_range(run: i64) -> (i64, i64) {
    (run << RUN_SHIFT, ((run + 1) << RUN_SHIFT) - 1)
}

fn run_number(conn: &Connection, map_run_arn: &str) -> Result<Option<i64>, CheckpointError> {
    Ok(conn
        .query_row(
            "SELECT rowid FROM map_runs WHERE arn = ?1",
            params![map_run_arn],
            |r| r.get(0),
        )
        .optional()?)
}

impl SqliteStore {
    /// A run's children, in index order, [`ROW_CHUNK`] at a time.
    fn row_chunks(
        &self,
        map_run_arn: &str,
        f: &mut dyn FnMut(ChildRows),
    ) -> Result<(), CheckpointError> {
        let conn = self.lock()?;
        let Some(run) = run_number(&conn, map_run_arn)? else {
            return Ok(());
        };
        let (lo, hi) = key_range(run);
        let mut stmt = conn.prepare(&format!(
            "SELECT {CHILD_COLUMNS} FROM map_children WHERE key BETWEEN ?1 AND ?2 ORDER BY key"
        ))?;
        let mut rows = stmt.query(params![lo, hi])?;
        let mut chunk = ChildRows::default();
        while let Some(row) = rows.next()? {
            chunk.push(&child_row(row, lo)?);
            if chunk.len() == ROW_CHUNK {
                f(std::mem::take(&mut chunk));
            }
        }
        if !chunk.is_empty() {
            f(chunk);
        }
        Ok(())
    }
}

/// Children stored by earlier versions, each as its whole JSON in `record`: keyed by
/// `(arn, idx)` in `children`, then by run number and index in `child_rows`. Their rows move
/// to `map_children`, in one transaction, and the old table goes.
fn migrate_legacy_children(conn: &Connection) -> Result<(), CheckpointError> {
    let exists = |table: &str| -> Result<bool, CheckpointError> {
        Ok(conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            params![table],
            |r| r.get(0),
        )?)
    };
    let legacy = [
        (
            "children",
            format!(
                "SELECT (m.rowid << {RUN_SHIFT}) + c.idx, c.record
                 FROM children c JOIN map_runs m ON m.arn = c.arn"
            ),
        ),
        (
            "child_rows",
            "SELECT key, record FROM child_rows".to_string(),
        ),
    ];
    for (table, select) in legacy {
        if !exists(table)? {
            continue;
        }
        let tx = conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare(&select)?;
            let mut rows = stmt.query([])?;
            let mut quoting = Quoting::default();
            let mut insert = tx.prepare(INSERT_CHILD)?;
            while let Some(row) = rows.next()? {
                let key: i64 = row.get(0)?;
                let text: String = row.get(1)?;
                let child: Child =
                    serde_json::from_str(&text).map_err(|e| CheckpointError::Corrupt {
                        key: format!("{table} row {key}"),
                        message: e.to_string(),
                    })?;
                let run_no = key >> RUN_SHIFT;
                insert_child(&mut insert, run_no, &child, &mut quoting)?;
            }
        }
        tx.execute_batch(&format!("DROP TABLE {table};"))?;
        tx.commit()?;
    }
    Ok(())
}

impl CheckpointStore for SqliteStore {
    fn save(&self, run: &mut MapRun) -> Result<(), CheckpointError> {
        run.settle_resume_mark();
        let record =
            serde_json::to_string(&*run).map_err(|e| CheckpointError::Store(e.to_string()))?;
        // Taken out of the run (finished children leave memory here); inserted and committed
        // by the saver thread.
        let batch = SaveBatch {
            arn: run.map_run_arn.clone(),
            execution_arn: run.execution_arn.clone(),
            record,
            children: run.take_children_to_save(),
        };
        let mut s = self.saver.lock()?;
        loop {
            if let Some(e) = &s.error {
                return Err(CheckpointError::Store(e.clone()));
            }
            if s.closed {
                return Err(CheckpointError::Store(
                    "the checkpoint saver stopped".into(),
                ));
            }
            if s.waiting_children < MAX_WAITING_CHILDREN {
                break;
            }
            s = self.saver.wait(s)?;
        }
        s.waiting_children += batch.children.len();
        s.waiting.push(batch);
        drop(s);
        self.saver.changed.notify_all();
        Ok(())
    }

    fn sync(&self) -> Result<(), CheckpointError> {
        self.flush()
    }

    fn load(&self, map_run_arn: &str) -> Result<Option<MapRun>, CheckpointError> {
        let record: Option<String> = {
            let conn = self.lock()?;
            conn.query_row(
                "SELECT record FROM map_runs WHERE arn = ?1",
                params![map_run_arn],
                |r| r.get(0),
            )
            .optional()?
        };
        let Some(record) = record else {
            return Ok(None);
        };
        let mut run: MapRun =
            serde_json::from_str(&record).map_err(|e| CheckpointError::Corrupt {
                key: map_run_arn.to_string(),
                message: e.to_string(),
            })?;
        for child in self.children_where(map_run_arn, "'PENDING', 'PENDING_REDRIVE', 'RUNNING'")? {
            run.hold(child);
        }
        let finished = self.finished_from(map_run_arn, run.resume_mark().index)?;
        run.resume_loaded(finished);
        Ok(Some(run))
    }

    fn for_each_child(
        &self,
        map_run_arn: &str,
        f: &mut dyn FnMut(Child),
    ) -> Result<(), CheckpointError> {
        use rayon::prelude::*;
        // Each chunk is parsed in parallel, then handed on in order.
        let mut failure = None;
        self.row_chunks(map_run_arn, &mut |rows| {
            if failure.is_some() {
                return;
            }
            let parsed: Vec<Result<Child, CheckpointError>> = (0..rows.len())
                .into_par_iter()
                .filter_map(|i| rows.get(i))
                .map(|row| to_child(map_run_arn, &row))
                .collect();
            for c in parsed {
                match c {
                    Ok(c) => f(c),
                    Err(e) => {
                        failure = Some(e);
                        return;
                    }
                }
            }
        })?;
        failure.map_or(Ok(()), Err)
    }

    fn for_each_child_row(
        &self,
        map_run_arn: &str,
        f: &mut dyn FnMut(ChildRows),
    ) -> Result<bool, CheckpointError> {
        self.row_chunks(map_run_arn, f)?;
        Ok(true)
    }

    fn unsuccessful(&self, map_run_arn: &str) -> Result<Vec<Child>, CheckpointError> {
        self.children_where(map_run_arn, "'FAILED', 'TIMED_OUT', 'ABORTED'")
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
