//! The Map Run: a Distributed Map state's run of child executions, as a pure state machine.
//!
//! `MapRun::apply(event, now) → actions`, like the execution state machine: the edge reads
//! items, starts and stops children, writes results and checkpoints, and feeds the outcomes
//! back. Statuses and counters are exactly DescribeMapRun's (spec §4.2–§4.5).
//!
//! ```text
//! Map Run:  RUNNING ──all children done, threshold not exceeded, results written──► SUCCEEDED
//!           RUNNING ──threshold exceeded / reader or writer failure──────────────────► FAILED
//!           RUNNING ──aborted (parent stopped or timed out)────────────────────────► ABORTED
//!           FAILED | ABORTED ──redrive──► RUNNING (redriveCount + 1)
//! Child:    PENDING ─► RUNNING ─► SUCCEEDED | FAILED | TIMED_OUT | ABORTED
//!           FAILED | TIMED_OUT | ABORTED ──redrive──► PENDING_REDRIVE ─► RUNNING
//! ```

pub mod batch;
pub mod checkpoint;
pub mod driver;
pub mod rows;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::asl::timestamp;
use crate::asl::ExecutionType;

/// A Map Run may be redriven at most this many times (then `States.Runtime`).
pub const MAX_REDRIVES: u32 = 1000;
/// Children started at once when MaxConcurrency is 0 or unset.
pub const DEFAULT_MAX_CONCURRENCY: u64 = 10_000;
/// How many children's inputs are read ahead of dispatch (bounded memory).
pub const READ_AHEAD: usize = 1000;

pub const THRESHOLD_ERROR: &str = "States.ExceedToleratedFailureThreshold";
pub const THRESHOLD_CAUSE: &str = "The specified tolerated failure threshold was exceeded";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MapRunStatus {
    Running,
    Succeeded,
    Failed,
    Aborted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChildStatus {
    Pending,
    PendingRedrive,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl ChildStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ChildStatus::Succeeded
                | ChildStatus::Failed
                | ChildStatus::TimedOut
                | ChildStatus::Aborted
        )
    }
    /// PENDING or PENDING_REDRIVE: queued, not started.
    pub fn is_pending(self) -> bool {
        matches!(self, ChildStatus::Pending | ChildStatus::PendingRedrive)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ChildStatus::Pending => "PENDING",
            ChildStatus::PendingRedrive => "PENDING_REDRIVE",
            ChildStatus::Running => "RUNNING",
            ChildStatus::Succeeded => "SUCCEEDED",
            ChildStatus::Failed => "FAILED",
            ChildStatus::TimedOut => "TIMED_OUT",
            ChildStatus::Aborted => "ABORTED",
        }
    }
}

/// The run-time settings UpdateMapRun may change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    /// 0 = unbounded (10,000).
    pub max_concurrency: u64,
    pub tolerated_failure_count: Option<u64>,
    pub tolerated_failure_percentage: Option<f64>,
}

/// One child execution: one item, or one batch of items.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Child {
    pub index: u64,
    pub name: String,
    /// Index of the child's first item in the whole source, and how many items it carries.
    pub first_item: u64,
    pub items: u64,
    /// Shared with the dispatched job (see [`driver::ChildJob::input`]).
    pub input: std::sync::Arc<Value>,
    pub status: ChildStatus,
    // Absent fields are left out of the stored child: a million rows are read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, with = "stored_date", skip_serializing_if = "Option::is_none")]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(default, with = "stored_date", skip_serializing_if = "Option::is_none")]
    pub stop_date: Option<DateTime<Utc>>,
    /// How many times this child was redriven (Standard) or restarted (Express).
    pub redrive_count: u32,
    /// A failed Standard child's execution, kept so a redrive resumes it where it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The attempt of the Map Run (its redrive count) that last started this child: a
    /// redrive's result files hold only what ran in it (see [`MapRun::prior_attempt`]).
    #[serde(default)]
    pub run_attempt: u32,
}

impl Child {
    /// A copy of a RUNNING child as it was queued (see [`Child::requeue`]).
    fn requeued(c: &Child) -> Child {
        let mut queued = c.clone();
        queued.requeue();
        queued
    }

    /// A RUNNING child back in the queue it was dispatched from, as if never started: PENDING,
    /// or PENDING_REDRIVE with the redrive count it had before that dispatch. (Counters are
    /// the run's business: see [`MapRun::resume_loaded`].)
    fn requeue(&mut self) {
        if self.redrive_count > 0 {
            self.status = ChildStatus::PendingRedrive;
            self.redrive_count -= 1;
        } else {
            self.status = ChildStatus::Pending;
        }
        self.start_date = None;
    }
}

/// A child's dates as checkpoints store them: RFC 3339 with nanoseconds, written and read
/// without chrono's general formatter and parser (a million children have two dates each).
/// Any RFC 3339 date reads (rows stored by earlier versions).
mod stored_date {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&crate::writer::format_date_nanos(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<std::borrow::Cow<'de, str>>::deserialize(d)? {
            None => Ok(None),
            Some(s) => crate::writer::parse_date(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not a date: {s}"))),
        }
    }
}

/// What the edge tells the Map Run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MapRunEvent {
    Start,
    /// The reader produced these children's inputs (`(input, item count)`), in order, and is
    /// now at `position` (opaque to the core); `done` when the source is exhausted.
    ChildrenRead {
        inputs: Vec<(Value, u64)>,
        position: Value,
        done: bool,
    },
    ReaderFailed {
        error: String,
        cause: String,
    },
    ChildSucceeded {
        index: u64,
        output: Value,
    },
    ChildFailed {
        index: u64,
        status: ChildStatus,
        error: Option<String>,
        cause: Option<String>,
        /// A Standard child's execution as it stopped (a redrive resumes it in place).
        #[serde(default)]
        snapshot: Option<String>,
    },
    ResultsWritten {
        records: u64,
    },
    WriterFailed {
        error: String,
        cause: String,
    },
    Abort,
    /// Redrive the run; `unsuccessful` are its failed, timed-out and aborted children.
    /// `parent_redrive_count` is the parent execution's redrive count: a parent redrive
    /// redrives its Map Run once, so a redrive asked again for the same count (a resumed
    /// parent whose Map Run had been redriven already) goes on with that redrive instead.
    Redrive {
        unsuccessful: Vec<Child>,
        #[serde(default)]
        parent_redrive_count: u32,
    },
    Update {
        settings: Settings,
    },
}

/// What the Map Run asks the edge to do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum MapRunAction {
    /// Read up to `max_children` more children's inputs from `position` (None: the start).
    Read {
        position: Option<Value>,
        max_children: usize,
    },
    /// Start (or, with `redrive`, redrive) a child.
    StartChild {
        index: u64,
        name: String,
        input: std::sync::Arc<Value>,
        redrive: bool,
        /// The child's attempt: its redrive count (outcomes are recorded per attempt).
        attempt: u32,
        /// With `redrive`: the child's execution as it stopped, to resume in place.
        snapshot: Option<String>,
        /// The fixed batch the child goes out in (see [`MapRun::dispatch_unit`]); `None`
        /// when children go out one by one.
        batch: Option<BatchKey>,
        /// The child's first item's index in the source, and its item count.
        first_item: u64,
        items: u64,
    },
    StopChild {
        index: u64,
    },
    /// Write the ResultWriter files from the children as they are now.
    WriteResults,
    /// The run ended: report to the Map state.
    Finish {
        status: MapRunStatus,
        error: Option<String>,
        cause: Option<String>,
    },
}

/// A Map Run, serializable as its checkpoint (the run record; children are stored one row each
/// by the checkpoint store).
///
/// Memory stays bounded: only children that are unfinished, or finished but not yet saved,
/// are held (`window`); counters are kept up to date on every transition, and finished
/// children are read back from the checkpoint store when results are written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapRun {
    pub map_run_arn: String,
    pub execution_arn: String,
    /// The labelled child state machine ARN.
    pub state_machine_arn: String,
    pub child_type: ExecutionTypeTag,
    pub settings: Settings,
    pub has_writer: bool,
    /// Children go out in fixed batches of this many consecutive indices ([`BatchKey`]),
    /// never more than MaxConcurrency; 0 or 1: one by one. Fixed when the run is created.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dispatch_unit: u64,
    /// Where result files roll over, when not at AWS's 5 GB (`--result-file-bytes`): kept, so
    /// a resumed run writes the same files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_file_bytes: Option<u64>,
    pub status: MapRunStatus,
    pub start_date: DateTime<Utc>,
    pub stop_date: Option<DateTime<Utc>>,
    pub redrive_count: u32,
    pub redrive_date: Option<DateTime<Utc>>,
    /// The results of earlier attempts, as their manifest listed them when this redrive
    /// started (see [`crate::writer::PriorResults`]): kept, so that writing this attempt's
    /// results again (after a restart) does not take its own manifest for an earlier one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_results: Option<crate::writer::PriorResults>,
    /// The attempt (redrive count) whose results were last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_attempt: Option<u32>,
    /// At a redrive, the attempt whose results the earlier manifest holds ([`Self::prior_results`]):
    /// children that finished in it or before are listed there, and not written again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_attempt: Option<u32>,
    /// The parent execution's redrive count when it last redrove this run (see
    /// [`MapRunEvent::Redrive`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redriven_for: Option<u32>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub reader_position: Option<Value>,
    pub reader_done: bool,
    pub reading: bool,
    pub writing: bool,
    /// Set once the threshold was crossed (or the run aborted): nothing new is dispatched.
    pub stopping: Option<(MapRunStatus, Option<String>, Option<String>)>,
    /// `itemCounts` and `executionCounts`, kept on every transition.
    pub items: Counts,
    pub executions: Counts,
    /// Children created so far (the next child's index) and their items.
    pub children_total: u64,
    pub items_total: u64,
    pub results_written: u64,
    /// The children held in memory (see the type's doc), boxed: B-tree nodes then move
    /// pointers, not 200-byte children.
    #[serde(skip)]
    pub window: BTreeMap<u64, Box<Child>>,
    /// Indices of PENDING / PENDING_REDRIVE children, in dispatch order.
    #[serde(skip)]
    pub pending: BTreeSet<u64>,
    /// Children changed since the last checkpoint.
    #[serde(skip)]
    pub dirty: BTreeSet<u64>,
    /// Where a run resumed from this checkpoint reads again: the start of the oldest read
    /// block that still holds an unfinished child (see [`ReadMark`]). `None` in records of
    /// earlier versions, which stored every child when read: they resume where reading
    /// stopped.
    #[serde(default)]
    pub resume: Option<ReadMark>,
    /// The starts of the read blocks from `resume` on, oldest first.
    #[serde(skip)]
    blocks: VecDeque<ReadMark>,
    /// A resumed run reads its unfinished children again: children below this index were
    /// counted before the restart (as pending), and those in `replay_skip` are stored
    /// already (finished, or held as queued), so reading them again skips them. Kept in the
    /// record until they are read again (a run may stop or restart before that).
    #[serde(default, skip_serializing_if = "is_zero")]
    replay_until: u64,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    replay_skip: BTreeSet<u64>,
    /// A stopping run's children that had started and not finished when it was saved
    /// (Express children, which a stop does not abort): a resumed run starts them again
    /// instead of leaving them as never started (see [`MapRun::settle_resume_mark`]).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    restart: BTreeSet<u64>,
    /// Unfinished children from this index up to `resume` go into the next save although
    /// nothing changed them: the run is ending, and its never-started children are stored.
    #[serde(skip)]
    store_unfinished_from: Option<u64>,
}

/// A fixed batch of children: the children of one Map Run attempt (its redrive count) whose
/// indices fall in `[first, first + dispatch unit)`. The same run forms the same batches
/// however often it is resumed or redriven, so a batch dispatched again (after a crash) is
/// recognisably the one dispatched before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BatchKey {
    pub run_attempt: u32,
    pub first: u64,
}

/// Where a read block starts: its first child's index and first item's index, and the reader
/// position it was read from (`None`: the start of the source).
///
/// Children are only stored when they finish (and, for the results, when the run ends): an
/// unfinished child costs no write, because the reader can read it again. A checkpoint keeps
/// the start of the oldest block that still holds an unfinished child; a resumed run reads
/// from there and skips the children of those blocks that finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadMark {
    pub index: u64,
    pub first_item: u64,
    pub position: Option<Value>,
}

/// Serializable stand-in for [`ExecutionType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionTypeTag {
    Standard,
    Express,
}

impl From<ExecutionType> for ExecutionTypeTag {
    fn from(t: ExecutionType) -> Self {
        match t {
            ExecutionType::Standard => ExecutionTypeTag::Standard,
            ExecutionType::Express => ExecutionTypeTag::Express,
        }
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The Map Run id: the last `:` segment of its ARN.
pub fn map_run_id(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// A stable, UUID-shaped name for child `index` of a Map Run (so a retried dispatch of the same
/// child is recognisably the same execution).
pub fn child_name(map_run_arn: &str, index: u64) -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(map_run_arn.as_bytes());
    h.update(index.to_be_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    // Version 5 (name-based, SHA-1) and the RFC 4122 variant.
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

impl Counts {
    fn slot(&mut self, s: ChildStatus) -> &mut u64 {
        match s {
            ChildStatus::Pending | ChildStatus::PendingRedrive => &mut self.pending,
            ChildStatus::Running => &mut self.running,
            ChildStatus::Succeeded => &mut self.succeeded,
            ChildStatus::Failed => &mut self.failed,
            ChildStatus::TimedOut => &mut self.timed_out,
            ChildStatus::Aborted => &mut self.aborted,
        }
    }

    fn moved(&mut self, from: Option<ChildStatus>, to: ChildStatus, w: u64) {
        match from {
            Some(f) => {
                let slot = self.slot(f);
                *slot = slot.saturating_sub(w);
                if f == ChildStatus::PendingRedrive {
                    self.pending_redrive = self.pending_redrive.saturating_sub(w);
                }
            }
            None => self.total += w,
        }
        *self.slot(to) += w;
        if to == ChildStatus::PendingRedrive {
            self.pending_redrive += w;
        }
    }
}

impl MapRun {
    pub fn new(
        map_run_arn: String,
        execution_arn: String,
        state_machine_arn: String,
        child_type: ExecutionType,
        settings: Settings,
        has_writer: bool,
        now: DateTime<Utc>,
    ) -> Self {
        MapRun {
            map_run_arn,
            execution_arn,
            state_machine_arn,
            child_type: child_type.into(),
            settings,
            has_writer,
            dispatch_unit: 0,
            result_file_bytes: None,
            status: MapRunStatus::Running,
            start_date: now,
            stop_date: None,
            redrive_count: 0,
            redrive_date: None,
            prior_results: None,
            results_attempt: None,
            prior_attempt: None,
            redriven_for: None,
            error: None,
            cause: None,
            reader_position: None,
            reader_done: false,
            reading: false,
            writing: false,
            stopping: None,
            items: Counts::default(),
            executions: Counts::default(),
            children_total: 0,
            items_total: 0,
            results_written: 0,
            window: BTreeMap::new(),
            pending: BTreeSet::new(),
            dirty: BTreeSet::new(),
            resume: Some(ReadMark {
                index: 0,
                first_item: 0,
                position: None,
            }),
            blocks: VecDeque::new(),
            replay_until: 0,
            replay_skip: BTreeSet::new(),
            restart: BTreeSet::new(),
            store_unfinished_from: None,
        }
    }

    /// MaxConcurrency, 0 meaning the default (10,000).
    pub fn limit(&self) -> u64 {
        if self.settings.max_concurrency == 0 {
            DEFAULT_MAX_CONCURRENCY
        } else {
            self.settings.max_concurrency
        }
    }

    /// A child held in memory.
    pub fn child(&self, index: u64) -> Option<&Child> {
        self.window.get(&index).map(|c| &**c)
    }

    /// Moves a child to `to`, keeping the counters, the pending set and the dirty set.
    fn set_status(&mut self, index: u64, to: ChildStatus) {
        let Some(c) = self.window.get_mut(&index) else {
            return;
        };
        let from = c.status;
        c.status = to;
        let w = c.items;
        self.items.moved(Some(from), to, w);
        self.executions.moved(Some(from), to, 1);
        match to {
            ChildStatus::Pending | ChildStatus::PendingRedrive => {
                self.pending.insert(index);
            }
            _ => {
                self.pending.remove(&index);
            }
        }
        self.dirty.insert(index);
    }

    /// Adds a child (a loaded checkpoint, a redrive): its counts are already in the run's
    /// counters when `counted`.
    pub fn hold(&mut self, child: Child) {
        if matches!(
            child.status,
            ChildStatus::Pending | ChildStatus::PendingRedrive
        ) {
            self.pending.insert(child.index);
        }
        self.window.insert(child.index, Box::new(child));
    }

    /// Where reading resumes after this checkpoint (see [`ReadMark`]).
    pub fn resume_mark(&self) -> ReadMark {
        self.resume.clone().unwrap_or_else(|| self.read_end())
    }

    /// Where reading stands now.
    fn read_end(&self) -> ReadMark {
        ReadMark {
            index: self.children_total,
            first_item: self.items_total,
            position: self.reader_position.clone(),
        }
    }

    /// Makes a run just loaded from its checkpoint ready to go on: nothing is running, reading
    /// or writing any more. The store loads the record, holds ([`MapRun::hold`]) every stored
    /// unfinished child (redriven ones, and never-started ones of a run that ended), and
    /// passes the indices of the stored finished children at or beyond [`MapRun::resume_mark`].
    ///
    /// Reading goes back to the resume mark: the children read since were pending or running
    /// when saved, and are read and dispatched again, except those in `finished`. They stay
    /// counted as pending meanwhile; a run that ends before it read them all reads the rest
    /// still, so each has its PENDING record. Held children that were running are queued again (a
    /// redriven one with the redrive count it had before that dispatch).
    pub fn resume_loaded(&mut self, finished: impl IntoIterator<Item = u64>) {
        self.reading = false;
        self.writing = false;
        let mark = self.resume_mark();
        if mark.index < self.children_total {
            self.replay_until = self.replay_until.max(self.children_total);
            let until = self.replay_until;
            let held = self.window.range(mark.index..until).map(|(i, _)| *i);
            self.replay_skip.extend(
                finished
                    .into_iter()
                    .filter(|i| (mark.index..until).contains(i))
                    .chain(held),
            );
            self.children_total = mark.index;
            self.items_total = mark.first_item;
            self.reader_position = mark.position.clone();
            self.reader_done = false;
        }
        self.blocks.clear();
        self.resume = Some(mark);
        for c in self.window.values_mut() {
            if c.status == ChildStatus::Running {
                c.requeue();
                self.dirty.insert(c.index);
            }
        }
        // Everything that was running is pending again; of the held children, those queued
        // for a redrive are pending redrive.
        for k in [&mut self.items, &mut self.executions] {
            k.pending += k.running;
            k.running = 0;
            k.pending_redrive = 0;
        }
        self.pending.clear();
        for c in self.window.values() {
            let redrive = match c.status {
                ChildStatus::Pending => false,
                ChildStatus::PendingRedrive => true,
                _ => continue,
            };
            self.pending.insert(c.index);
            if redrive {
                self.items.pending_redrive += c.items;
                self.executions.pending_redrive += 1;
            }
        }
    }

    /// Moves the resume mark up to the oldest read block that still holds an unfinished child
    /// (the stores call it first thing in a save: the record they write carries it). When the
    /// run is ending, every unfinished child is stored (its PENDING record), so the mark moves
    /// to where reading stands.
    pub fn settle_resume_mark(&mut self) {
        // A save that failed left its unfinished children to store: they still are.
        let from = self
            .store_unfinished_from
            .take()
            .unwrap_or_else(|| self.resume_mark().index);
        let ending = self.stopping.is_some() || self.status != MapRunStatus::Running;
        if ending {
            if from < self.children_total {
                self.store_unfinished_from = Some(from);
            }
            // Stored as queued, but started: a resumed run starts them again.
            let restart = &self.restart;
            self.restart = self
                .window
                .values()
                .filter(|c| {
                    c.status == ChildStatus::Running
                        || (c.status.is_pending() && restart.contains(&c.index))
                })
                .map(|c| c.index)
                .collect();
            self.blocks.clear();
            self.resume = Some(self.read_end());
            return;
        }
        let oldest_unfinished = self
            .window
            .range(from..)
            .find(|(_, c)| !c.status.is_terminal())
            .map(|(i, _)| *i);
        match oldest_unfinished {
            None => {
                self.blocks.clear();
                self.resume = Some(self.read_end());
            }
            Some(u) => {
                while self.blocks.get(1).is_some_and(|b| b.index <= u) {
                    self.blocks.pop_front();
                }
                if let Some(b) = self.blocks.front() {
                    self.resume = Some(b.clone());
                }
            }
        }
    }

    /// The children the checkpoint stores now, in index order (after
    /// [`MapRun::settle_resume_mark`]): every changed child that finished, and every unfinished
    /// one below the resume mark — a redriven child (its input is not read again), or a
    /// never-started one of a run that is ending. A RUNNING child is stored as the queued
    /// child it was (a resumed run dispatches it again). Unfinished children beyond the mark
    /// are not stored: a resumed run reads them again.
    pub fn children_to_save(&self) -> Vec<std::borrow::Cow<'_, Child>> {
        use std::borrow::Cow;
        let mut out = Vec::new();
        for idx in self.indices_to_save() {
            let Some(c) = self.window.get(&idx) else {
                continue;
            };
            out.push(match c.status {
                ChildStatus::Running => Cow::Owned(Child::requeued(c)),
                _ => Cow::Borrowed(&**c),
            });
        }
        out
    }

    /// [`MapRun::children_to_save`] and [`MapRun::evict_saved`] at once, for a store that
    /// saves in the background: the finished children move out of the window in their boxes
    /// (nothing is copied), the others are copied.
    // Boxed: a save moves thousands of children, and moving a box does not copy one.
    #[allow(clippy::vec_box)]
    pub fn take_children_to_save(&mut self) -> Vec<Box<Child>> {
        let indices = self.indices_to_save();
        let mut out = Vec::with_capacity(indices.len());
        for idx in indices {
            let finished = match self.window.get(&idx) {
                None => continue,
                Some(c) if c.status.is_terminal() => true,
                Some(c) if c.status == ChildStatus::Running => {
                    out.push(Box::new(Child::requeued(c)));
                    false
                }
                Some(c) => {
                    out.push(c.clone());
                    false
                }
            };
            if finished {
                if let Some(c) = self.window.remove(&idx) {
                    out.push(c);
                }
            }
        }
        self.dirty.clear();
        self.store_unfinished_from = None;
        out
    }

    /// The indices of the children to store now, in order (see [`MapRun::children_to_save`]).
    fn indices_to_save(&self) -> Vec<u64> {
        let below = self.resume_mark().index;
        let mut indices: Vec<u64> = self.dirty.iter().copied().collect();
        if let Some(from) = self.store_unfinished_from {
            indices.extend(
                self.window
                    .range(from..below)
                    .filter(|(i, c)| !c.status.is_terminal() && !self.dirty.contains(i))
                    .map(|(i, _)| *i),
            );
            indices.sort_unstable();
        }
        indices.retain(|i| {
            self.window
                .get(i)
                .is_some_and(|c| c.status.is_terminal() || *i < below)
        });
        indices
    }

    /// Drops the finished children that are saved (called by the checkpoint store after a
    /// successful save).
    pub fn evict_saved(&mut self) {
        self.store_unfinished_from = None;
        // Only children saved just now can have become evictable.
        let mut evicted = Vec::new();
        for idx in std::mem::take(&mut self.dirty) {
            if self
                .window
                .get(&idx)
                .is_some_and(|c| c.status.is_terminal())
            {
                if let Some(c) = self.window.remove(&idx) {
                    evicted.push(c);
                }
            }
        }
        // Freeing thousands of JSON values is real work: not on the driver's thread.
        if evicted.len() > 64 {
            rayon::spawn(move || drop(evicted));
        }
    }

    /// Applies one event; returns what to do next.
    pub fn apply(&mut self, event: MapRunEvent, now: DateTime<Utc>) -> Vec<MapRunAction> {
        let mut out = Vec::new();
        self.apply_into(event, now, &mut out);
        out
    }

    /// [`MapRun::apply`], appending what to do next to `out` (a driver applying a million
    /// events reuses one vector).
    pub fn apply_into(
        &mut self,
        event: MapRunEvent,
        now: DateTime<Utc>,
        out: &mut Vec<MapRunAction>,
    ) {
        match event {
            MapRunEvent::Start => {
                if self.status != MapRunStatus::Running {
                    // Ended before (the parent did not record it): the same outcome again.
                    self.report_ended(out);
                    return;
                }
            }
            MapRunEvent::ChildrenRead {
                inputs,
                position,
                done,
            } => {
                self.reading = false;
                if !inputs.is_empty() {
                    let start = self.read_end();
                    self.blocks.push_back(start);
                }
                self.reader_position = Some(position);
                self.reader_done = done;
                // Names are SHA-1 digests: a thousand of them are worth spreading over cores.
                let first = self.children_total;
                let names: Vec<String> = {
                    use rayon::prelude::*;
                    let arn = &self.map_run_arn;
                    (0..inputs.len())
                        .into_par_iter()
                        .with_min_len(256)
                        .map(|k| child_name(arn, first + k as u64))
                        .collect()
                };
                for ((input, items), name) in inputs.into_iter().zip(names) {
                    let index = self.children_total;
                    self.children_total += 1;
                    // Read again after a restart: finished and stored already, or counted.
                    let replayed = index < self.replay_until;
                    if replayed && self.replay_skip.remove(&index) {
                        self.items_total += items;
                        continue;
                    }
                    let child = Child {
                        index,
                        name,
                        first_item: self.items_total,
                        items,
                        input: std::sync::Arc::new(input),
                        status: ChildStatus::Pending,
                        output: None,
                        error: None,
                        cause: None,
                        start_date: None,
                        stop_date: None,
                        redrive_count: 0,
                        snapshot: None,
                        run_attempt: 0,
                    };
                    self.items_total += items;
                    if !replayed {
                        self.items.moved(None, ChildStatus::Pending, items);
                        self.executions.moved(None, ChildStatus::Pending, 1);
                    }
                    self.hold(child);
                }
                if self.children_total >= self.replay_until {
                    self.replay_until = 0;
                    self.replay_skip.clear();
                }
            }
            MapRunEvent::ReaderFailed { error, cause } => {
                self.reading = false;
                self.begin_stop(MapRunStatus::Failed, Some(error), Some(cause), now, out);
            }
            MapRunEvent::ChildSucceeded { index, output } => {
                if self.is_running(index) {
                    if let Some(c) = self.window.get_mut(&index) {
                        c.output = Some(output);
                        c.error = None;
                        c.cause = None;
                        c.stop_date = Some(now);
                        c.snapshot = None;
                    }
                    self.set_status(index, ChildStatus::Succeeded);
                }
            }
            MapRunEvent::ChildFailed {
                index,
                status,
                error,
                cause,
                snapshot,
            } => {
                let status = match status {
                    ChildStatus::TimedOut | ChildStatus::Aborted => status,
                    _ => ChildStatus::Failed,
                };
                if self.is_running(index) {
                    if let Some(c) = self.window.get_mut(&index) {
                        c.output = None;
                        c.error = error;
                        c.cause = cause;
                        c.stop_date = Some(now);
                        c.snapshot = snapshot;
                    }
                    self.set_status(index, status);
                    if self.threshold_exceeded() && self.stopping.is_none() {
                        self.begin_stop(
                            MapRunStatus::Failed,
                            Some(THRESHOLD_ERROR.into()),
                            Some(THRESHOLD_CAUSE.into()),
                            now,
                            out,
                        );
                    }
                }
            }
            MapRunEvent::ResultsWritten { records } => {
                self.writing = false;
                self.results_written = records;
                self.results_attempt = Some(self.redrive_count);
                let (status, error, cause) =
                    self.stopping
                        .clone()
                        .unwrap_or((MapRunStatus::Succeeded, None, None));
                self.finish(status, error, cause, now, out);
                return;
            }
            MapRunEvent::WriterFailed { error, cause } => {
                self.writing = false;
                self.finish(MapRunStatus::Failed, Some(error), Some(cause), now, out);
                return;
            }
            MapRunEvent::Abort => {
                if self.status == MapRunStatus::Running {
                    self.begin_stop(MapRunStatus::Aborted, None, None, now, out);
                }
            }
            MapRunEvent::Redrive {
                unsuccessful,
                parent_redrive_count,
            } => {
                if !self.redrivable_for(parent_redrive_count) {
                    // Redriven for this parent attempt already (the parent resumed), or
                    // nothing to redrive: go on, or report how it ended.
                    if self.status != MapRunStatus::Running {
                        self.report_ended(out);
                        return;
                    }
                } else {
                    self.redrive(unsuccessful, parent_redrive_count, now, out);
                    return;
                }
            }
            MapRunEvent::Update { settings } => {
                if self.status == MapRunStatus::Running {
                    self.settings = settings;
                    if self.threshold_exceeded() && self.stopping.is_none() {
                        self.begin_stop(
                            MapRunStatus::Failed,
                            Some(THRESHOLD_ERROR.into()),
                            Some(THRESHOLD_CAUSE.into()),
                            now,
                            out,
                        );
                    }
                }
            }
        }
        if self.status == MapRunStatus::Running {
            self.schedule(now, out);
        }
    }

    /// Whether children counted before a restart are still to be read again.
    fn unread_replay(&self) -> bool {
        !self.reader_done && self.children_total < self.replay_until
    }

    fn is_running(&self, index: u64) -> bool {
        self.window
            .get(&index)
            .is_some_and(|c| c.status == ChildStatus::Running)
    }

    /// Failed-or-timed-out items against the thresholds (spec §4.5): an unset field does not
    /// take part; with neither set, any failure exceeds. The percentage is only judged once the
    /// total is known.
    pub fn threshold_exceeded(&self) -> bool {
        let counts = self.item_counts();
        let bad = counts.failed + counts.timed_out;
        if bad == 0 {
            return false;
        }
        let count = self.settings.tolerated_failure_count;
        let pct = self.settings.tolerated_failure_percentage;
        match (count, pct) {
            (None, None) => true,
            _ => {
                let count_exceeded = count.is_some_and(|c| bad > c);
                let pct_exceeded = pct.is_some_and(|p| {
                    self.reader_done
                        && counts.total > 0
                        && (bad as f64) * 100.0 > p * counts.total as f64
                });
                count_exceeded || pct_exceeded
            }
        }
    }

    /// Whether a parent redrive (its redrive count) redrives this run: it ended unsuccessfully
    /// and was not redriven for that parent attempt already.
    pub fn redrivable_for(&self, parent_redrive_count: u32) -> bool {
        matches!(self.status, MapRunStatus::Failed | MapRunStatus::Aborted)
            && self.redriven_for != Some(parent_redrive_count)
    }

    /// A run that ended before reports its outcome again (nothing runs).
    fn report_ended(&self, out: &mut Vec<MapRunAction>) {
        out.push(MapRunAction::Finish {
            status: self.status,
            error: self.error.clone(),
            cause: self.cause.clone(),
        });
    }

    /// What a driver reports when this run, not ended, has nothing to wait for — no child in
    /// flight, nothing being read or written, nothing to do: an internal error (it would
    /// otherwise wait forever), described with the run's counters.
    pub fn stall_report(&self) -> String {
        let k = self.executions;
        format!(
            "the Map Run '{}' cannot make progress: nothing to dispatch, nothing in flight, and \
             it has not ended (executions: {} read, {} pending, {} running, {} succeeded, {} \
             failed, {} timed out, {} aborted; {} queued, {} held in memory; reader {}{}; {})",
            self.map_run_arn,
            k.total,
            k.pending,
            k.running,
            k.succeeded,
            k.failed,
            k.timed_out,
            k.aborted,
            self.pending.len(),
            self.window.len(),
            if self.reader_done { "done" } else { "not done" },
            if self.reading { ", reading" } else { "" },
            match &self.stopping {
                Some((s, _, _)) => format!("stopping as {s:?}"),
                None if self.writing => "writing results".to_string(),
                None => "not stopping".to_string(),
            }
        )
    }

    fn begin_stop(
        &mut self,
        status: MapRunStatus,
        error: Option<String>,
        cause: Option<String>,
        now: DateTime<Utc>,
        out: &mut Vec<MapRunAction>,
    ) {
        if self.stopping.is_some() {
            return;
        }
        self.stopping = Some((status, error, cause));
        // Standard children are stopped (ABORTED); Express children cannot be: the run waits.
        if self.child_type == ExecutionTypeTag::Standard {
            let running: Vec<u64> = self
                .window
                .values()
                .filter(|c| c.status == ChildStatus::Running)
                .map(|c| c.index)
                .collect();
            for index in running {
                // Started and stopped: an ABORTED record with its dates, not a PENDING one.
                if let Some(c) = self.window.get_mut(&index) {
                    c.stop_date = Some(now);
                    c.error = None;
                    c.cause = None;
                    c.output = None;
                }
                self.set_status(index, ChildStatus::Aborted);
                out.push(MapRunAction::StopChild { index });
            }
        }
    }

    /// Dispatches, reads ahead, and ends the run when nothing is left.
    fn schedule(&mut self, now: DateTime<Utc>, out: &mut Vec<MapRunAction>) {
        if self.writing {
            return;
        }
        if self.stopping.is_none() {
            let limit = self.limit();
            let unit = self.dispatch_unit.max(1);
            while self.executions.running < limit {
                let Some(index) = self.pending.iter().next().copied() else {
                    break;
                };
                if unit == 1 {
                    self.dispatch(index, now, out);
                    continue;
                }
                if !self.dispatch_batch(index / unit * unit, limit, now, out) {
                    break;
                }
            }
            let read_below = (READ_AHEAD / 2).max(2 * unit as usize);
            if !self.reader_done && !self.reading && self.pending.len() < read_below {
                self.reading = true;
                out.push(MapRunAction::Read {
                    position: self.reader_position.clone(),
                    max_children: READ_AHEAD,
                });
            }
        } else if !self.restart.is_empty() {
            // A stopping run resumed: the children it had started (Express children, which
            // a stop lets finish) start again; never-started ones stay queued.
            let limit = self.limit();
            let again: Vec<u64> = self
                .restart
                .iter()
                .copied()
                .filter(|i| self.pending.contains(i))
                .take(limit.saturating_sub(self.executions.running) as usize)
                .collect();
            self.restart.retain(|i| self.pending.contains(i));
            for index in again {
                self.restart.remove(&index);
                self.dispatch(index, now, out);
            }
        }
        if self.stopping.is_some() && self.unread_replay() && !self.reading {
            // A resumed run that ends before it read its counted children again reads them
            // now: they are stored as never started (PENDING records), as counted.
            self.reading = true;
            out.push(MapRunAction::Read {
                position: self.reader_position.clone(),
                max_children: READ_AHEAD,
            });
        }
        let idle = self.executions.running == 0 && !self.reading;
        let exhausted = (self.stopping.is_some() && !self.unread_replay())
            || (self.reader_done && self.pending.is_empty());
        if idle && exhausted {
            if self.has_writer {
                self.writing = true;
                out.push(MapRunAction::WriteResults);
            } else {
                let (status, error, cause) =
                    self.stopping
                        .clone()
                        .unwrap_or((MapRunStatus::Succeeded, None, None));
                let k = self.items;
                self.results_written = k.succeeded + k.failed + k.timed_out + k.aborted;
                self.finish(status, error, cause, now, out);
            }
        }
    }

    /// Starts the queued children of the fixed batch from `first`, once every child of its
    /// range is read and they fit under `limit` (a batch larger than the room left waits for
    /// running children to finish; alone, it goes out). Whether it went out.
    fn dispatch_batch(
        &mut self,
        first: u64,
        limit: u64,
        now: DateTime<Utc>,
        out: &mut Vec<MapRunAction>,
    ) -> bool {
        let end = first.saturating_add(self.dispatch_unit.max(1));
        let complete = self.reader_done || self.children_total >= end;
        if !complete {
            return false;
        }
        let members: Vec<u64> = self.pending.range(first..end).copied().collect();
        let running = self.executions.running;
        if running > 0 && running + members.len() as u64 > limit {
            return false;
        }
        let batch = BatchKey {
            run_attempt: self.redrive_count,
            first,
        };
        for index in members {
            self.dispatch_in(index, Some(batch), now, out);
        }
        true
    }

    /// Starts a queued child.
    fn dispatch(&mut self, index: u64, now: DateTime<Utc>, out: &mut Vec<MapRunAction>) {
        let batch = (self.dispatch_unit > 1).then(|| BatchKey {
            run_attempt: self.redrive_count,
            first: index / self.dispatch_unit * self.dispatch_unit,
        });
        self.dispatch_in(index, batch, now, out);
    }

    fn dispatch_in(
        &mut self,
        index: u64,
        batch: Option<BatchKey>,
        now: DateTime<Utc>,
        out: &mut Vec<MapRunAction>,
    ) {
        let redrive = self
            .window
            .get(&index)
            .is_some_and(|c| c.status == ChildStatus::PendingRedrive);
        self.set_status(index, ChildStatus::Running);
        let run_attempt = self.redrive_count;
        let Some(c) = self.window.get_mut(&index) else {
            return;
        };
        c.start_date = Some(now);
        c.stop_date = None;
        c.run_attempt = run_attempt;
        if redrive {
            c.redrive_count += 1;
        }
        out.push(MapRunAction::StartChild {
            index,
            name: c.name.clone(),
            input: c.input.clone(),
            redrive,
            attempt: c.redrive_count,
            snapshot: if redrive { c.snapshot.clone() } else { None },
            batch,
            first_item: c.first_item,
            items: c.items,
        });
    }

    fn finish(
        &mut self,
        status: MapRunStatus,
        error: Option<String>,
        cause: Option<String>,
        now: DateTime<Utc>,
        out: &mut Vec<MapRunAction>,
    ) {
        self.status = status;
        self.error = error.clone();
        self.cause = cause.clone();
        self.stop_date = Some(now);
        self.stopping = None;
        out.push(MapRunAction::Finish {
            status,
            error,
            cause,
        });
    }

    /// Redrive (spec §5.4): `unsuccessful` are the children that failed, timed out or were
    /// aborted (the edge reads them back from the checkpoint store); they run again, as do
    /// never-started ones. Successful children never re-run.
    fn redrive(
        &mut self,
        unsuccessful: Vec<Child>,
        parent_redrive_count: u32,
        now: DateTime<Utc>,
        out: &mut Vec<MapRunAction>,
    ) {
        if !matches!(self.status, MapRunStatus::Failed | MapRunStatus::Aborted) {
            return;
        }
        if self.redrive_count >= MAX_REDRIVES {
            out.push(MapRunAction::Finish {
                status: self.status,
                error: Some("States.Runtime".into()),
                cause: Some(format!(
                    "The Map Run '{}' has been redriven {MAX_REDRIVES} times, the maximum.",
                    self.map_run_arn
                )),
            });
            return;
        }
        self.prior_attempt = self.results_attempt;
        self.redriven_for = Some(parent_redrive_count);
        self.restart.clear();
        self.redrive_count += 1;
        self.redrive_date = Some(now);
        self.status = MapRunStatus::Running;
        self.stop_date = None;
        self.error = None;
        self.cause = None;
        self.stopping = None;
        self.writing = false;
        self.reading = false;
        for c in unsuccessful {
            self.window.entry(c.index).or_insert_with(|| Box::new(c));
        }
        let again: Vec<u64> = self
            .window
            .values()
            .filter(|c| {
                matches!(
                    c.status,
                    ChildStatus::Failed | ChildStatus::TimedOut | ChildStatus::Aborted
                )
            })
            .map(|c| c.index)
            .collect();
        for index in again {
            self.set_status(index, ChildStatus::PendingRedrive);
        }
        self.schedule(now, out);
    }

    /// Whether this attempt's result files leave `c` out: a redrive writes only what ran in
    /// it, and a child that finished in an attempt whose results the earlier manifest holds
    /// is listed there (spec §3.2: the new manifest references every success across attempts,
    /// and only this attempt's failures and pending children).
    pub fn listed_earlier(&self, status: ChildStatus, run_attempt: u32) -> bool {
        status.is_terminal() && self.prior_attempt.is_some_and(|a| run_attempt <= a)
    }

    /// `itemCounts`.
    pub fn item_counts(&self) -> Counts {
        self.finished_view(self.items)
    }

    /// `executionCounts`.
    pub fn execution_counts(&self) -> Counts {
        self.finished_view(self.executions)
    }

    fn finished_view(&self, mut k: Counts) -> Counts {
        if self.status != MapRunStatus::Running {
            k.results_written = self.results_written.min(k.total);
            k.pending_redrive = 0;
        }
        k
    }

    /// DescribeMapRun's shape.
    pub fn describe(&self) -> Value {
        let mut d = Map::new();
        d.insert("executionArn".into(), json!(self.execution_arn));
        d.insert("executionCounts".into(), self.execution_counts().to_json());
        d.insert("itemCounts".into(), self.item_counts().to_json());
        d.insert("mapRunArn".into(), json!(self.map_run_arn));
        d.insert(
            "maxConcurrency".into(),
            json!(self.settings.max_concurrency),
        );
        if self.redrive_count > 0 {
            d.insert("redriveCount".into(), json!(self.redrive_count));
        }
        if let Some(t) = self.redrive_date {
            d.insert("redriveDate".into(), json!(timestamp::format(t)));
        }
        d.insert(
            "startDate".into(),
            json!(timestamp::format(self.start_date)),
        );
        d.insert(
            "status".into(),
            json!(match self.status {
                MapRunStatus::Running => "RUNNING",
                MapRunStatus::Succeeded => "SUCCEEDED",
                MapRunStatus::Failed => "FAILED",
                MapRunStatus::Aborted => "ABORTED",
            }),
        );
        if let Some(t) = self.stop_date {
            d.insert("stopDate".into(), json!(timestamp::format(t)));
        }
        d.insert(
            "toleratedFailureCount".into(),
            json!(self.settings.tolerated_failure_count.unwrap_or(0)),
        );
        d.insert(
            "toleratedFailurePercentage".into(),
            json!(self.settings.tolerated_failure_percentage.unwrap_or(0.0)),
        );
        Value::Object(d)
    }
}

/// `MapRunItemCounts` / `MapRunExecutionCounts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pending: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub aborted: u64,
    pub total: u64,
    pub results_written: u64,
    pub failures_not_redrivable: u64,
    pub pending_redrive: u64,
}

impl Counts {
    pub fn to_json(&self) -> Value {
        json!({
            "aborted": self.aborted,
            "failed": self.failed,
            "failuresNotRedrivable": self.failures_not_redrivable,
            "pending": self.pending,
            "pendingRedrive": self.pending_redrive,
            "resultsWritten": self.results_written,
            "running": self.running,
            "succeeded": self.succeeded,
            "timedOut": self.timed_out,
            "total": self.total,
        })
    }
}

#[cfg(test)]
mod tests;
