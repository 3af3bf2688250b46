//! Drives a [`MapRun`]: performs its actions — reading items (streamed, with positions),
//! ItemSelector and ItemBatcher, running children on a worker pool, checkpointing, writing
//! results — and feeds the outcomes back until the run finishes.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::asl::AslError;
use crate::ports::Clock;
use crate::reader::{self, Item, ItemStream, Position, ReaderSpec};
use crate::storage::ObjectStore;
use crate::writer::{self, ChildRecord, RecordView, ResultWriter, WriterSpec};

use super::batch::{BatchSpec, Batcher};
use super::checkpoint::CheckpointStore;
use super::rows::{self, ChildRow};
use super::{ChildStatus, MapRun, MapRunAction, MapRunEvent, MapRunStatus};

/// How one child ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChildOutcome {
    pub status: ChildStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// A Standard child that did not succeed: its execution, to redrive in place later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// One child execution to run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChildJob {
    pub index: u64,
    pub name: String,
    /// Shared with the Map Run's copy: handing a child out copies no JSON.
    pub input: Arc<Value>,
    /// The child failed in an earlier attempt and is redriven.
    #[serde(default)]
    pub redrive: bool,
    /// The child's redrive count: outcomes are recorded per (index, attempt).
    #[serde(default)]
    pub attempt: u32,
    /// A redriven Standard child's execution as it stopped, to resume in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The fixed batch the child went out in, when the run forms them (see
    /// [`super::MapRun::dispatch_unit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<super::BatchKey>,
    /// The child's first item's index in the source, and its item count (a worker records
    /// the child whole: [`super::Child`]).
    #[serde(default)]
    pub first_item: u64,
    #[serde(default = "one")]
    pub items: u64,
}

fn one() -> u64 {
    1
}

/// Runs child executions (in-process on one machine; Lambda workers in the fleet).
pub trait ChildRunner: Sync {
    /// Runs one child to its end.
    fn run_child(&self, job: &ChildJob) -> ChildOutcome;

    /// Runs a batch of children (one worker invocation in the fleet); one outcome per job, in
    /// order.
    fn run_batch(&self, jobs: &[ChildJob]) -> Vec<ChildOutcome> {
        jobs.iter().map(|j| self.run_child(j)).collect()
    }

    /// How many children one `run_batch` call should take at most.
    fn batch_size(&self) -> usize {
        1
    }

    /// Whether batches must be fixed: consecutive indices of one Map Run attempt, the same
    /// however often the run is resumed ([`super::BatchKey`]), so a batch sent again is known
    /// for the one sent before (the fleet's workers record outcomes per batch). Otherwise a
    /// batch is whatever is queued.
    fn fixed_batches(&self) -> bool {
        false
    }
}

/// Writes a finished Map Run's ResultWriter output somewhere other than in this process (the
/// writer function in the fleet). Returns the number of records and the Map state's result.
pub trait ResultsSink: Sync {
    fn write(&self, run: &MapRun) -> Result<(u64, Value), (String, String)>;
}

/// Asked now and then: `true` tells the run to stop dispatching, wait for the children in
/// flight, checkpoint and return [`SUSPENDED`] (a Lambda coordinator before its time limit).
pub type StopSignal<'a> = &'a (dyn Fn() -> bool + Sync);

/// The error name of a run that stopped on its [`StopSignal`]; it resumes from its checkpoint.
pub const SUSPENDED: &str = "mapfleet.Suspended";

/// Where the items come from.
pub enum Items {
    /// From the state input (ItemsPath / Items).
    Inline(Vec<Value>),
    /// From S3 (ItemReader, Parameters already evaluated).
    Reader(ReaderSpec),
}

/// Evaluates the ItemSelector (`$$.Map.Item`) for a block of items (taken, so each item's value
/// moves into its context object instead of being copied), one result per item in order: an
/// engine callback, which shares its per-item set-up across the block (and spreads it over
/// cores).
pub type Selector<'a> = &'a (dyn Fn(Vec<Item>) -> Vec<Result<Value, AslError>> + Sync);

/// A parent redrive's request to redrive its (loaded) Map Run.
pub struct Redrive {
    /// The run's failed, timed-out and aborted children, as stored.
    pub unsuccessful: Vec<super::Child>,
    /// The parent execution's redrive count (see [`MapRunEvent::Redrive`]).
    pub parent_redrive_count: u32,
}

pub struct Job<'a> {
    pub run: MapRun,
    /// Redrive the (loaded) run, unless it was redriven for this parent attempt already.
    pub redrive: Option<Redrive>,
    pub items: Items,
    pub select: Option<Selector<'a>>,
    pub batch: Option<BatchSpec>,
    pub writer: Option<WriterSpec>,
    pub store: Arc<dyn ObjectStore>,
    pub checkpoints: &'a dyn CheckpointStore,
    pub runner: &'a dyn ChildRunner,
    pub clock: &'a dyn Clock,
    /// Worker threads running children (the Map Run's MaxConcurrency still bounds them).
    pub workers: usize,
    /// Called now and then with the run (progress bars).
    pub progress: Option<&'a (dyn Fn(&MapRun) + Sync)>,
    /// Writes the results elsewhere (the fleet's writer function) instead of in-process.
    pub results: Option<&'a dyn ResultsSink>,
    pub stop: Option<StopSignal<'a>>,
}

/// How the run ended: the Map state's result, or its error and cause.
pub struct Outcome {
    pub run: MapRun,
    pub result: Result<Value, (String, String)>,
}

const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// Finished children are checkpointed at most this often: each commit rewrites the pages it
/// touches, so thousands of tiny commits a second cost more than the children. A crash loses
/// at most this much finished work (those children run again on resume).
const SAVE_FINISHED_EVERY: Duration = Duration::from_millis(20);

struct Source<'a> {
    items: Items,
    stream: Option<Box<dyn ItemStream>>,
    store: Arc<dyn ObjectStore>,
    select: Option<Selector<'a>>,
    batcher: Option<Batcher>,
    /// Inline items: index of the next one.
    next_inline: u64,
}

impl Source<'_> {
    fn source_name(&self) -> Arc<str> {
        Arc::from("STATE_DATA")
    }

    /// The next item, and with `want_before` the position just before it.
    fn next_item(
        &mut self,
        position: &Option<Value>,
        want_before: bool,
    ) -> Result<Option<(Item, Option<Value>)>, Named> {
        match &self.items {
            Items::Inline(v) => {
                if self.next_inline == 0 {
                    if let Some(p) = position
                        .as_ref()
                        .and_then(|p| p.get("items_read"))
                        .and_then(Value::as_u64)
                    {
                        self.next_inline = p;
                    }
                }
                let i = self.next_inline;
                let before = want_before.then(|| json!({ "items_read": i }));
                match v.get(i as usize) {
                    None => Ok(None),
                    Some(value) => {
                        self.next_inline += 1;
                        Ok(Some((
                            Item {
                                value: value.clone(),
                                index: i,
                                key: None,
                                source: self.source_name(),
                            },
                            before,
                        )))
                    }
                }
            }
            Items::Reader(spec) => {
                if self.stream.is_none() {
                    let resume: Option<Position> = position
                        .as_ref()
                        .and_then(|p| serde_json::from_value(p.clone()).ok());
                    let s = reader::open(self.store.clone(), spec, resume.as_ref())
                        .map_err(|e| (e.error().to_string(), e.cause()))?;
                    self.stream = Some(s);
                }
                let Some(stream) = self.stream.as_mut() else {
                    return Ok(None);
                };
                let before = want_before.then(|| {
                    serde_json::to_value(<dyn ItemStream as ItemStream>::position(stream.as_ref()))
                        .unwrap_or(Value::Null)
                });
                match stream.next() {
                    None => Ok(None),
                    Some(Err(e)) => Err((e.error().to_string(), e.cause())),
                    Some(Ok(item)) => Ok(Some((item, before))),
                }
            }
        }
    }

    fn position_now(&self) -> Value {
        self.position_now_of_stream()
    }

    fn position_now_of_stream(&self) -> Value {
        match (&self.items, &self.stream) {
            (Items::Inline(_), _) => json!({"items_read": self.next_inline}),
            (Items::Reader(_), Some(s)) => {
                serde_json::to_value(<dyn ItemStream as ItemStream>::position(s.as_ref()))
                    .unwrap_or(Value::Null)
            }
            (Items::Reader(_), None) => Value::Null,
        }
    }

    /// Reads up to `max` children's inputs. Returns them, the checkpoint position after the
    /// last whole child, and whether the source is exhausted.
    fn read(&mut self, position: &Option<Value>, max: usize) -> ReadBlock {
        /// Items read, then shaped by ItemSelector (in parallel), per block.
        const BLOCK: usize = 1024;
        let mut out = Vec::new();
        let mut checkpoint = position.clone().unwrap_or(Value::Null);
        // Positions before each item are only needed to close batches mid-block.
        let want_before = self.batcher.is_some();
        loop {
            if out.len() >= max {
                return Ok((out, checkpoint, false));
            }
            let mut items: Vec<Item> = Vec::with_capacity(BLOCK);
            let mut befores: Vec<Option<Value>> = Vec::with_capacity(BLOCK);
            let mut exhausted = false;
            while items.len() < BLOCK {
                match self.next_item(position, want_before)? {
                    Some((item, before)) => {
                        items.push(item);
                        befores.push(before);
                    }
                    None => {
                        exhausted = true;
                        break;
                    }
                }
            }
            let after_block = self.position_now();
            let n = items.len();
            let indices: Vec<u64> = items.iter().map(|i| i.index).collect();
            let inputs: Vec<Result<Value, AslError>> = match self.select {
                Some(f) => f(items),
                None => items.into_iter().map(|i| Ok(i.value)).collect(),
            };
            if inputs.len() != n {
                return Err((
                    "States.Runtime".into(),
                    format!(
                        "the ItemSelector gave {} results for {n} items",
                        inputs.len()
                    ),
                ));
            }
            // Where reading resumes after item k: before item k + 1, or after the block.
            let after = |k: usize| match befores.get(k + 1) {
                Some(Some(b)) => b.clone(),
                _ => after_block.clone(),
            };
            for (k, (index, input)) in indices.into_iter().zip(inputs).enumerate() {
                let input = input.map_err(|e| (e.name.as_str().to_string(), e.cause))?;
                match self.batcher.as_mut() {
                    None => {
                        if crate::engine::execution::exceeds_payload_limit(&input) {
                            return Err((
                                "States.DataLimitExceeded".into(),
                                format!("The item at index {index} is larger than the maximum payload size of 262144 bytes."),
                            ));
                        }
                        out.push((input, 1));
                        if k + 1 == n {
                            checkpoint = after(k);
                        }
                    }
                    Some(b) => {
                        let closed = b
                            .push(index, input)
                            .map_err(|e| (e.error_name().to_string(), e.to_string()))?;
                        if let Some(batch) = closed {
                            out.push(batch);
                            // The item that closed the batch starts the next one: resume before
                            // it, unless it was the last of a full batch (then after it; that is
                            // where the block ends when it is the block's last item).
                            checkpoint = if b.is_empty() {
                                after(k)
                            } else {
                                befores
                                    .get(k)
                                    .cloned()
                                    .flatten()
                                    .unwrap_or_else(|| after_block.clone())
                            };
                        }
                    }
                }
            }
            if exhausted {
                if let Some(b) = self.batcher.as_mut() {
                    out.extend(b.flush());
                }
                return Ok((out, self.position_now(), true));
            }
        }
    }
}

fn writer_status(s: ChildStatus) -> writer::ChildStatus {
    match s {
        ChildStatus::Succeeded => writer::ChildStatus::Succeeded,
        ChildStatus::Failed => writer::ChildStatus::Failed,
        ChildStatus::TimedOut => writer::ChildStatus::TimedOut,
        ChildStatus::Aborted => writer::ChildStatus::Aborted,
        ChildStatus::Pending | ChildStatus::PendingRedrive | ChildStatus::Running => {
            writer::ChildStatus::Pending
        }
    }
}

/// One child's ResultWriter record.
pub fn record(run: &MapRun, c: &super::Child) -> ChildRecord {
    record_owned(run, c.clone())
}

/// [`record`], taking the child (its input and output move into the record).
pub fn record_owned(run: &MapRun, c: super::Child) -> ChildRecord {
    record_with_prefix(run, &execution_prefix(run), c)
}

/// The children's execution ARNs up to their names: `…:execution:<machine>/<label>:`.
fn execution_prefix(run: &MapRun) -> String {
    crate::engine::children::child_execution_prefix(&run.state_machine_arn)
}

/// [`record_owned`] with the [`execution_prefix`] derived once for many records.
fn record_with_prefix(run: &MapRun, exec_prefix: &str, c: super::Child) -> ChildRecord {
    let view = record_view(
        run,
        exec_prefix,
        &c.name,
        c.status,
        c.start_date,
        c.stop_date,
        c.redrive_count,
        c.error.as_deref(),
        c.cause.as_deref(),
    );
    view.to_record(unshare(c.input), c.output)
}

/// A child's record fields, from its own: the one mapping for records built from parsed
/// children and copied together from stored rows. A child not started, or not stopped, is
/// PENDING.
#[allow(clippy::too_many_arguments)]
fn record_view<'a>(
    run: &'a MapRun,
    exec_prefix: &'a str,
    name: &'a str,
    status: ChildStatus,
    start: Option<chrono::DateTime<chrono::Utc>>,
    stop: Option<chrono::DateTime<chrono::Utc>>,
    redrive_count: u32,
    error: Option<&'a str>,
    cause: Option<&'a str>,
) -> RecordView<'a> {
    let express = run.child_type == super::ExecutionTypeTag::Express;
    match (writer_status(status), start, stop) {
        (writer::ChildStatus::Pending, _, _) | (_, None, _) | (_, _, None) => RecordView::pending(),
        (status, Some(start), Some(stop)) => RecordView {
            error,
            cause,
            ..RecordView::finished(
                [exec_prefix, name],
                name,
                &run.state_machine_arn,
                status,
                start,
                stop,
                redrive_count,
                express,
            )
        },
    }
}

/// The value, copied only when it is still shared.
fn unshare(v: Arc<Value>) -> Value {
    Arc::try_unwrap(v).unwrap_or_else(|shared| (*shared).clone())
}

/// Streams every child's record, in item order, from the checkpoint store (the run is saved
/// first, so the store holds every child).
fn for_each_record(
    run: &mut MapRun,
    checkpoints: &dyn CheckpointStore,
    f: &mut dyn FnMut(ChildRecord) -> Result<(), (String, String)>,
) -> Result<(), (String, String)> {
    let store_err =
        |e: super::checkpoint::CheckpointError| ("States.Runtime".to_string(), e.to_string());
    save_checkpoint(checkpoints, run)?;
    let mut failure = None;
    let view: &MapRun = run;
    checkpoints
        .for_each_child(&view.map_run_arn, &mut |c| {
            if failure.is_none() {
                if let Err(e) = f(record(view, &c)) {
                    failure = Some(e);
                }
            }
        })
        .map_err(store_err)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Writes a run's ResultWriter output from its checkpointed children, after saving the run.
/// Returns the number of records and the Map state's result.
pub fn write_results(
    run: &mut MapRun,
    spec: &WriterSpec,
    store: &dyn ObjectStore,
    checkpoints: &dyn CheckpointStore,
) -> Result<(u64, Value), (String, String)> {
    save_checkpoint(checkpoints, run)?;
    write_saved_results(run, spec, store, checkpoints)
}

/// [`write_results`] for a run whose children are all in the store already (the writer
/// function: the coordinator saved the run before invoking it). Writing again writes the
/// same objects.
pub fn write_saved_results(
    run: &MapRun,
    spec: &WriterSpec,
    store: &dyn ObjectStore,
    checkpoints: &dyn CheckpointStore,
) -> Result<(u64, Value), (String, String)> {
    use rayon::prelude::*;
    let named = |e: writer::WriterError| (e.error_name().to_string(), e.cause());
    let mut w = ResultWriter::new(store, spec, &run.map_run_arn).map_err(named)?;
    if run.redrive_count > 0 {
        // Noted when the redrive started; runs saved by earlier versions read the manifest.
        let prior = match &run.prior_results {
            Some(p) => p.clone(),
            None => writer::load_prior(store, spec, &run.map_run_arn).map_err(named)?,
        };
        w = w.with_prior(prior);
    }
    let bucket = w.bucket().to_string();
    let t = w.transformation();
    let store_err =
        |e: super::checkpoint::CheckpointError| ("States.Runtime".to_string(), e.to_string());
    let view: &MapRun = run;
    let prefix = execution_prefix(view);
    let prefix = prefix.as_str();
    let mut failure: Option<Named> = None;
    // Full records (NONE), from a store that keeps children as rows with quoted inputs and
    // outputs: copied together from those, a chunk at a time — rendered in parallel while an
    // appender thread writes the chunk before, in order.
    let from_rows = t == writer::Transformation::None && {
        let (handled, back) = std::thread::scope(|scope| {
            let (tx, rx) = mpsc::sync_channel::<Vec<RenderedRecords>>(1);
            let mut w = w;
            let appender = scope.spawn(move || {
                for chunk in rx {
                    for part in chunk {
                        for (family, bytes) in part.iter() {
                            w.write_record_bytes(family, bytes).map_err(named)?;
                        }
                    }
                }
                Ok::<_, Named>(w)
            });
            let mut appender_gone = false;
            let handled = checkpoints.for_each_child_row(&view.map_run_arn, &mut |rows| {
                if appender_gone {
                    return;
                }
                let rendered: Vec<RenderedRecords> = (0..rows.len())
                    .into_par_iter()
                    .with_min_len(256)
                    .fold(RenderedRecords::default, |mut acc, i| {
                        if let Some(row) = rows.get(i) {
                            if !view.listed_earlier(row.status, row.run_attempt) {
                                acc.push(|out| row_record(view, prefix, &row, out));
                            }
                        }
                        acc
                    })
                    .collect();
                // A closed channel: the appender failed, and says why when joined.
                appender_gone = tx.send(rendered).is_err();
            });
            drop(tx);
            let back = appender.join().unwrap_or_else(|_| {
                Err((
                    "States.ResultWriterFailed".to_string(),
                    "the result file appender stopped unexpectedly".to_string(),
                ))
            });
            (handled, back)
        });
        w = back?;
        handled.map_err(store_err)?
    };
    if !from_rows {
        // Parsed children, converted to bytes in parallel a chunk at a time, in order.
        const CHUNK: usize = 4096;
        let mut chunk: Vec<super::Child> = Vec::with_capacity(CHUNK);
        let flush =
            |chunk: &mut Vec<super::Child>, w: &mut ResultWriter<'_>| -> Result<(), Named> {
                let prepared: Vec<Result<PreparedEntries, writer::WriterError>> = chunk
                    .par_drain(..)
                    .map(|c| ResultWriter::prepare(&record_with_prefix(view, prefix, c), t))
                    .collect();
                for p in prepared {
                    let (family, entries) = p.map_err(named)?;
                    w.write_prepared(family, &entries).map_err(named)?;
                }
                Ok(())
            };
        checkpoints
            .for_each_child(&view.map_run_arn, &mut |c| {
                if failure.is_some() || view.listed_earlier(c.status, c.run_attempt) {
                    return;
                }
                chunk.push(c);
                if chunk.len() >= CHUNK {
                    if let Err(e) = flush(&mut chunk, &mut w) {
                        failure = Some(e);
                    }
                }
            })
            .map_err(store_err)?;
        if failure.is_none() {
            flush(&mut chunk, &mut w)?;
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let outcome = w.finish().map_err(named)?;
    Ok((
        finished_items(run),
        writer::map_state_result(&run.map_run_arn, &bucket, &outcome.manifest_key),
    ))
}

/// An error name and its cause.
type Named = (String, String);
/// One read of children's inputs: the inputs, the position after them, and whether the source
/// is exhausted ([`Source::read`]).
type ReadBlock = Result<(Vec<(Value, u64)>, Value, bool), Named>;
/// A record's bytes and the family of files it goes to.
/// A child's entries (several when FLATTEN spreads an output) and their family.
type PreparedEntries = (writer::Family, Vec<Vec<u8>>);

/// Records rendered into one buffer, each with its family of files.
#[derive(Default)]
struct RenderedRecords {
    bytes: Vec<u8>,
    ends: Vec<(writer::Family, usize)>,
}

impl RenderedRecords {
    /// Appends the record `render` writes.
    fn push(&mut self, render: impl FnOnce(&mut Vec<u8>) -> writer::Family) {
        let family = render(&mut self.bytes);
        self.ends.push((family, self.bytes.len()));
    }

    fn iter(&self) -> impl Iterator<Item = (writer::Family, &[u8])> {
        let mut start = 0;
        self.ends.iter().filter_map(move |&(family, end)| {
            let bytes = self.bytes.get(start..end)?;
            start = end;
            Some((family, bytes))
        })
    }
}

/// One child's full record, from its stored row, appended to `out`: the same bytes as
/// [`record`] + [`ResultWriter::prepare`] with `NONE`, its quoted input and output copied in.
fn row_record(
    run: &MapRun,
    exec_prefix: &str,
    row: &ChildRow<'_>,
    out: &mut Vec<u8>,
) -> writer::Family {
    let view = record_view(
        run,
        exec_prefix,
        row.name,
        row.status,
        row.start_ns.map(rows::date_from_nanos),
        row.stop_ns.map(rows::date_from_nanos),
        row.redrive_count,
        row.error,
        row.cause,
    );
    view.write(row.input.as_bytes(), row.output.map(str::as_bytes), out);
    view.status.family()
}

/// Whether a run's result files are in place: its manifest (written last) exists.
fn results_in_place(spec: &WriterSpec, run: &MapRun, store: &dyn ObjectStore) -> bool {
    match (
        spec.destination.as_ref(),
        spec.manifest_key(&run.map_run_arn),
    ) {
        (Some(d), Some(key)) => store.head(&d.bucket, &key, None).is_ok(),
        _ => false,
    }
}

fn finished_items(run: &MapRun) -> u64 {
    let k = run.items;
    k.succeeded + k.failed + k.timed_out + k.aborted
}

/// The Map state's result when nothing is exported, streamed from the checkpoint store.
fn inline_result(
    run: &mut MapRun,
    checkpoints: &dyn CheckpointStore,
    t: writer::Transformation,
) -> Result<Value, (String, String)> {
    let mut records = Vec::new();
    for_each_record(run, checkpoints, &mut |r| {
        records.push(r);
        Ok(())
    })?;
    Ok(writer::inline_result(records.iter(), t))
}

/// Runs the job to the end of its Map Run.
pub fn drive(job: Job<'_>) -> Outcome {
    let Job {
        redrive,
        mut run,
        items,
        select,
        batch,
        writer,
        store,
        checkpoints,
        runner,
        clock,
        workers,
        progress,
        results,
        stop,
    } = job;
    let stop_requested = || stop.is_some_and(|f| f());
    let source = Source {
        items,
        stream: None,
        store: store.clone(),
        select,
        batcher: batch.map(Batcher::new),
        next_inline: 0,
    };
    // Fail before any child runs when the results cannot be written. A redrive notes what
    // earlier attempts wrote before it writes anything. (A run that ended and is not redriven
    // only reports how it ended.)
    let redriving = redrive
        .as_ref()
        .is_some_and(|r| run.redrivable_for(r.parent_redrive_count));
    let going_on = redriving || run.status == MapRunStatus::Running;
    if let Some(spec) = writer
        .as_ref()
        .filter(|w| w.destination.is_some() && going_on)
    {
        let checked = ResultWriter::new(store.as_ref(), spec, &run.map_run_arn)
            .and_then(|w| w.check_destination())
            .and_then(|()| match redriving {
                true => writer::load_prior(store.as_ref(), spec, &run.map_run_arn).map(Some),
                false => Ok(None),
            });
        match checked {
            Ok(prior) => {
                if prior.is_some() {
                    run.prior_results = prior;
                }
            }
            Err(e) => {
                let now = clock.now();
                run.apply(
                    MapRunEvent::WriterFailed {
                        error: e.error_name().into(),
                        cause: e.cause(),
                    },
                    now,
                );
                let result = match save_checkpoint(checkpoints, &mut run) {
                    Ok(()) => Err((e.error_name().into(), e.cause())),
                    Err(saving) => Err(saving),
                };
                return Outcome { result, run };
            }
        }
    }
    let exports = writer.as_ref().is_some_and(|w| w.destination.is_some());
    let inline_t = WriterSpec::inline_transformation(writer.as_ref());
    // A run driven in fixed batches keeps its unit for good (batches stay the same); a run
    // saved before it had one takes it now.
    if runner.fixed_batches() && run.dispatch_unit == 0 {
        run.dispatch_unit = (runner.batch_size().max(1) as u64).min(run.limit());
    }
    // Each message is one fixed batch, or one child.
    let (job_tx, job_rx) = mpsc::channel::<Jobs>();
    let mut job_tx = Some(job_tx);
    // Set when the run is stopping: queued children are left for the resumed run.
    let stopping = std::sync::atomic::AtomicBool::new(false);
    let stopping = &stopping;
    let batch_size = runner.batch_size().max(1);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = mpsc::channel::<(u64, ChildOutcome)>();
    let mut final_result: Option<Result<Value, (String, String)>> = None;
    let mut writer_result: Option<Value> = None;

    std::thread::scope(|scope| {
        // Reading runs ahead on a thread of its own: the next block of children is parsed and
        // shaped while the driver dispatches and checkpoints the one before. The Map Run reads
        // strictly in sequence (each Read starts where the last ended), so the reader follows
        // the first Read's position and then simply keeps going.
        let (read_tx, read_rx) = mpsc::sync_channel::<ReadBlock>(1);
        let mut reader = Some((source, read_tx));
        for _ in 0..workers.max(1) {
            let rx = job_rx.clone();
            let tx = done_tx.clone();
            scope.spawn(move || loop {
                // A fixed batch as it is; a child, with whatever else is queued up to a batch.
                let jobs: Vec<ChildJob> = match rx.lock() {
                    Ok(guard) => match guard.recv() {
                        Err(_) => return,
                        Ok(Jobs::Fixed(jobs)) => jobs,
                        Ok(Jobs::One(first)) => {
                            let mut jobs = vec![first];
                            while jobs.len() < batch_size {
                                match guard.try_recv() {
                                    Ok(Jobs::One(j)) => jobs.push(j),
                                    Ok(Jobs::Fixed(more)) => jobs.extend(more),
                                    Err(_) => break,
                                }
                            }
                            jobs
                        }
                    },
                    Err(_) => return,
                };
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    // Not started: they stay RUNNING in the checkpoint and run on resume.
                    continue;
                }
                let outcomes = if jobs.len() == 1 {
                    jobs.iter().map(|j| runner.run_child(j)).collect()
                } else {
                    runner.run_batch(&jobs)
                };
                let mut outcomes = outcomes.into_iter();
                for j in &jobs {
                    let o = outcomes.next().unwrap_or_else(|| ChildOutcome {
                        status: ChildStatus::Failed,
                        output: None,
                        error: Some("States.Runtime".into()),
                        cause: Some("the worker returned no outcome for this child".into()),
                        snapshot: None,
                    });
                    if tx.send((j.index, o)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        // A run still RUNNING (its process died) just resumes; one that ended reports how.
        let first = match redrive {
            Some(r) if redriving => MapRunEvent::Redrive {
                unsuccessful: r.unsuccessful,
                parent_redrive_count: r.parent_redrive_count,
            },
            _ => MapRunEvent::Start,
        };
        let mut pending = run.apply(first, clock.now());
        let mut last_save = Instant::now();
        let mut last_finished_save = Instant::now();
        let mut unsaved_finished = false;
        let mut children_done = 0u64;
        // Children handed to the workers whose outcome has not come back.
        let mut in_flight = 0u64;
        // The fixed batch being gathered from this round's StartChild actions.
        let mut gathering: Vec<ChildJob> = Vec::new();
        // Reused round after round: thousands of events may come in at once.
        let mut events = Vec::new();
        let mut actions = Vec::new();
        loop {
            events.clear();
            std::mem::swap(&mut pending, &mut actions);
            for action in actions.drain(..) {
                match action {
                    MapRunAction::Read {
                        position,
                        max_children,
                    } => {
                        if let Some((source, tx)) = reader.take() {
                            scope.spawn(move || read_ahead(source, tx, position, max_children));
                        }
                        let block = read_rx.recv().unwrap_or_else(|_| {
                            Err((
                                "States.Runtime".into(),
                                "the item reader stopped before the source was exhausted".into(),
                            ))
                        });
                        match block {
                            Ok((inputs, position, done)) => {
                                events.push(MapRunEvent::ChildrenRead {
                                    inputs,
                                    position,
                                    done,
                                })
                            }
                            Err((error, cause)) => {
                                events.push(MapRunEvent::ReaderFailed { error, cause })
                            }
                        }
                    }
                    MapRunAction::StartChild {
                        index,
                        name,
                        input,
                        redrive,
                        attempt,
                        snapshot,
                        batch,
                        first_item,
                        items,
                    } => {
                        let job = ChildJob {
                            index,
                            name,
                            input,
                            redrive,
                            attempt,
                            snapshot,
                            batch,
                            first_item,
                            items,
                        };
                        // A fixed batch's children come one after another: sent together.
                        let next_batch = gathering.first().is_some_and(|j| j.batch != batch);
                        if next_batch || batch.is_none() {
                            let jobs = Jobs::Fixed(std::mem::take(&mut gathering));
                            if let Err(e) = send_jobs(job_tx.as_ref(), jobs, &mut in_flight) {
                                final_result = Some(Err(e));
                                break;
                            }
                        }
                        if batch.is_some() {
                            gathering.push(job);
                        } else if let Err(e) =
                            send_jobs(job_tx.as_ref(), Jobs::One(job), &mut in_flight)
                        {
                            final_result = Some(Err(e));
                            break;
                        }
                    }
                    MapRunAction::StopChild { .. } => {
                        // In-process children cannot be interrupted mid-state; the run no longer
                        // waits for them and ignores what they report.
                    }
                    MapRunAction::WriteResults => {
                        // Every child is in the store before its records are written (once).
                        if let Err(e) = save_checkpoint(checkpoints, &mut run) {
                            final_result = Some(Err(e));
                            break;
                        }
                        match writer.as_ref() {
                            Some(spec) if exports => {
                                let written = match results {
                                    Some(sink) => sink.write(&run),
                                    None => {
                                        write_saved_results(&run, spec, store.as_ref(), checkpoints)
                                    }
                                };
                                match written {
                                    Ok((records, result)) => {
                                        writer_result = Some(result);
                                        events.push(MapRunEvent::ResultsWritten { records });
                                    }
                                    Err((error, cause)) => {
                                        events.push(MapRunEvent::WriterFailed { error, cause })
                                    }
                                }
                            }
                            _ => {
                                events.push(MapRunEvent::ResultsWritten {
                                    records: finished_items(&run),
                                });
                            }
                        }
                    }
                    MapRunAction::Finish {
                        status,
                        error,
                        cause,
                    } => {
                        final_result = Some(match status {
                            MapRunStatus::Succeeded => {
                                match (writer_result.take(), writer.as_ref()) {
                                    (Some(r), _) => Ok(r),
                                    // The run had ended before (its parent did not record it) with
                                    // this attempt's results written, and its manifest is there:
                                    // the result names them.
                                    (None, Some(spec))
                                        if exports
                                            && run.results_attempt == Some(run.redrive_count)
                                            && results_in_place(spec, &run, store.as_ref()) =>
                                    {
                                        spec.state_result(&run.map_run_arn).ok_or_else(|| {
                                            (
                                                "States.Runtime".to_string(),
                                                "the ResultWriter names no destination".to_string(),
                                            )
                                        })
                                    }
                                    // Otherwise its results are written again, the same objects,
                                    // for its result.
                                    (None, Some(spec)) if exports => match results {
                                        Some(sink) => sink.write(&run),
                                        None => write_saved_results(
                                            &run,
                                            spec,
                                            store.as_ref(),
                                            checkpoints,
                                        ),
                                    }
                                    .map(|(_, result)| result),
                                    (None, _) => inline_result(&mut run, checkpoints, inline_t),
                                }
                            }
                            _ => Err((
                                error.clone().unwrap_or_else(|| "States.Runtime".into()),
                                cause.clone().unwrap_or_default(),
                            )),
                        });
                    }
                }
            }
            let gathered = Jobs::Fixed(std::mem::take(&mut gathering));
            if let Err(e) = send_jobs(job_tx.as_ref(), gathered, &mut in_flight) {
                final_result.get_or_insert(Err(e));
            }
            if final_result.is_some() {
                break;
            }
            // Nothing in flight, nothing to do, and not ended: nothing would ever come.
            if job_tx.is_some() && in_flight == 0 && events.is_empty() && pending.is_empty() {
                final_result = Some(Err(("States.Runtime".into(), run.stall_report())));
                break;
            }
            // Stop only after a child finished here, so each resumed run moves on.
            if job_tx.is_some() && children_done > 0 && stop_requested() {
                // Stop dispatching; the children in flight finish and are checkpointed.
                stopping.store(true, std::sync::atomic::Ordering::SeqCst);
                job_tx = None;
            }
            if job_tx.is_none() && events.is_empty() {
                match done_rx.recv() {
                    Ok((index, o)) => {
                        in_flight = in_flight.saturating_sub(1);
                        events.push(child_event(index, o))
                    }
                    Err(_) => {
                        final_result = Some(Err((
                            SUSPENDED.into(),
                            "the Map Run stopped to continue in a new invocation".into(),
                        )));
                        break;
                    }
                }
            }
            if events.is_empty() {
                let wait = if unsaved_finished {
                    SAVE_FINISHED_EVERY
                } else {
                    CHECKPOINT_EVERY
                };
                match done_rx.recv_timeout(wait) {
                    Ok((index, o)) => {
                        in_flight = in_flight.saturating_sub(1);
                        events.push(child_event(index, o))
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        final_result = Some(Err((
                            "States.Runtime".into(),
                            "the Map Run's workers stopped".into(),
                        )));
                        break;
                    }
                }
                // Take everything else that finished meanwhile: one checkpoint per batch.
                while let Ok((index, o)) = done_rx.try_recv() {
                    in_flight = in_flight.saturating_sub(1);
                    events.push(child_event(index, o));
                }
            }
            let now = clock.now();
            // One checkpoint per batch of finished children (everything that finished since the
            // last one): a child that finished is never run again after a crash.
            let finished = events.iter().any(|e| {
                matches!(
                    e,
                    MapRunEvent::ChildSucceeded { .. } | MapRunEvent::ChildFailed { .. }
                )
            });
            for ev in events.drain(..) {
                if matches!(
                    ev,
                    MapRunEvent::ChildSucceeded { .. } | MapRunEvent::ChildFailed { .. }
                ) {
                    children_done += 1;
                }
                run.apply_into(ev, now, &mut pending);
            }
            if finished {
                unsaved_finished = true;
            }
            let finished_due =
                unsaved_finished && last_finished_save.elapsed() >= SAVE_FINISHED_EVERY;
            let record_due = last_save.elapsed() >= CHECKPOINT_EVERY;
            if finished_due || record_due {
                // A run that cannot checkpoint does not go on as if it had.
                if let Err(e) = save_checkpoint(checkpoints, &mut run) {
                    final_result = Some(Err(e));
                    break;
                }
                unsaved_finished = false;
                last_finished_save = Instant::now();
            }
            if record_due {
                if let Some(p) = progress {
                    p(&run);
                }
                last_save = Instant::now();
            }
        }
        drop(job_tx.take());
        // A reader still running ahead stops at its next block.
        drop(read_rx);
    });
    // The run as it ended is committed before the parent hears of it: a parent that goes on
    // never finds its Map Run still running after a crash.
    let saved = save_checkpoint(checkpoints, &mut run).and_then(|()| {
        checkpoints
            .sync()
            .map_err(|e| saving_failed(&run.map_run_arn, 1, &e))
    });
    if let Some(p) = progress {
        p(&run);
    }
    let result = match (final_result, saved) {
        // The first failure is the cause (a failed save that stopped the run fails here too).
        (Some(Err(e)), _) => Err(e),
        (_, Err(e)) => Err(e),
        (Some(ok), Ok(())) => ok,
        (None, Ok(())) => Err((
            "States.Runtime".into(),
            "the Map Run ended without a result".into(),
        )),
    };
    Outcome { run, result }
}

/// Hands children to the workers (nothing when there are none). Without a job channel the
/// run is stopping: the children stay RUNNING in the checkpoint and run again on resume.
/// What the workers take: a child (grouped with others queued, up to a batch), or a fixed
/// batch (run as it is).
enum Jobs {
    One(ChildJob),
    Fixed(Vec<ChildJob>),
}

fn send_jobs(
    tx: Option<&mpsc::Sender<Jobs>>,
    jobs: Jobs,
    in_flight: &mut u64,
) -> Result<(), Named> {
    let (index, n) = match &jobs {
        Jobs::One(j) => (j.index, 1),
        Jobs::Fixed(v) => match v.first() {
            Some(j) => (j.index, v.len() as u64),
            None => return Ok(()),
        },
    };
    let Some(tx) = tx else {
        return Ok(());
    };
    tx.send(jobs).map_err(|_| {
        (
            "States.Runtime".to_string(),
            format!("the Map Run's workers stopped before child {index} could start"),
        )
    })?;
    *in_flight += n;
    Ok(())
}

/// How many times a checkpoint save is tried before the run fails.
const SAVE_ATTEMPTS: u32 = 4;
/// The pause before the second attempt; each later one waits four times longer.
const SAVE_BACKOFF: Duration = Duration::from_millis(50);

/// Saves the run, retrying with back-off; a save that keeps failing fails the Map Run with
/// `States.Runtime` and a cause naming what failed (nothing goes on as if it were saved).
fn save_checkpoint(checkpoints: &dyn CheckpointStore, run: &mut MapRun) -> Result<(), Named> {
    let mut pause = SAVE_BACKOFF;
    let mut attempt = 1;
    loop {
        match checkpoints.save(run) {
            Ok(()) => return Ok(()),
            Err(e) if attempt < SAVE_ATTEMPTS && e.is_retriable() => {
                std::thread::sleep(pause);
                pause *= 4;
                attempt += 1;
            }
            Err(e) => return Err(saving_failed(&run.map_run_arn, attempt, &e)),
        }
    }
}

fn saving_failed(
    map_run_arn: &str,
    attempts: u32,
    e: &super::checkpoint::CheckpointError,
) -> Named {
    (
        "States.Runtime".into(),
        format!(
            "the checkpoint of the Map Run '{map_run_arn}' could not be saved \
             ({attempts} attempt{}): {e}",
            if attempts == 1 { "" } else { "s" }
        ),
    )
}

/// The reader thread: reads blocks of children from `position` on, in sequence, each sent as
/// soon as it is read (one waits in the channel), until the source is exhausted or fails, or
/// the run hangs up.
fn read_ahead(
    mut source: Source<'_>,
    tx: mpsc::SyncSender<ReadBlock>,
    mut position: Option<Value>,
    max_children: usize,
) {
    loop {
        let block = source.read(&position, max_children);
        let next = match &block {
            Ok((_, p, false)) => Some(p.clone()),
            _ => None,
        };
        if tx.send(block).is_err() {
            return;
        }
        match next {
            Some(p) => position = Some(p),
            None => return,
        }
    }
}

fn child_event(index: u64, o: ChildOutcome) -> MapRunEvent {
    match o.status {
        ChildStatus::Succeeded => MapRunEvent::ChildSucceeded {
            index,
            output: o.output.unwrap_or(Value::Null),
        },
        status => MapRunEvent::ChildFailed {
            index,
            status,
            error: o.error,
            cause: o.cause,
            snapshot: o.snapshot,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(items: Vec<Value>, batch: Option<BatchSpec>) -> Source<'static> {
        Source {
            items: Items::Inline(items),
            stream: None,
            store: Arc::new(crate::storage::LocalFolderStore::new(std::env::temp_dir())),
            select: None,
            batcher: batch.map(Batcher::new),
            next_inline: 0,
        }
    }

    /// Reading in pieces, each piece from a fresh source resumed at the previous checkpoint,
    /// gives exactly the children of one read.
    #[test]
    fn reads_resume_at_their_checkpoints_with_and_without_batching() {
        let items: Vec<Value> = (0..2500).map(|i| json!({ "i": i })).collect();
        for batch in [
            None,
            Some(BatchSpec {
                max_items: Some(7),
                max_bytes: None,
                batch_input: None,
            }),
        ] {
            let (all, _, done) = source(items.clone(), batch.clone())
                .read(&None, usize::MAX)
                .unwrap();
            assert!(done);
            let mut pieces = Vec::new();
            let mut position: Option<Value> = None;
            loop {
                let (children, checkpoint, done) = source(items.clone(), batch.clone())
                    .read(&position, 5)
                    .unwrap();
                pieces.extend(children);
                position = Some(checkpoint);
                if done {
                    break;
                }
            }
            assert_eq!(pieces, all, "batching {batch:?}");
        }
    }

    use crate::maprun::checkpoint::SqliteStore;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts every child it runs and every batch it is given.
    struct Counting {
        runs: Mutex<Vec<u64>>,
        batches: Mutex<Vec<usize>>,
        batch: usize,
    }

    impl ChildRunner for Counting {
        fn run_child(&self, job: &ChildJob) -> ChildOutcome {
            if let Ok(mut r) = self.runs.lock() {
                r.push(job.index);
            }
            ChildOutcome {
                status: ChildStatus::Succeeded,
                output: Some((*job.input).clone()),
                error: None,
                cause: None,
                snapshot: None,
            }
        }
        fn run_batch(&self, jobs: &[ChildJob]) -> Vec<ChildOutcome> {
            if let Ok(mut b) = self.batches.lock() {
                b.push(jobs.len());
            }
            jobs.iter().map(|j| self.run_child(j)).collect()
        }
        fn batch_size(&self) -> usize {
            self.batch
        }
    }

    fn job<'a>(
        run: MapRun,
        n: usize,
        checkpoints: &'a dyn CheckpointStore,
        runner: &'a dyn ChildRunner,
        stop: Option<StopSignal<'a>>,
    ) -> Job<'a> {
        Job {
            run,
            redrive: None,
            items: Items::Inline((0..n).map(|i| json!({ "i": i })).collect()),
            select: None,
            batch: None,
            writer: None,
            store: Arc::new(crate::storage::LocalFolderStore::new(std::env::temp_dir())),
            checkpoints,
            runner,
            clock: &crate::ports::SystemClock,
            workers: 2,
            progress: None,
            results: None,
            stop,
        }
    }

    fn new_run() -> MapRun {
        MapRun::new(
            "arn:aws:states:us-east-1:123456789012:mapRun:m/l:r".into(),
            "arn:aws:states:us-east-1:123456789012:execution:m:e".into(),
            "arn:aws:states:us-east-1:123456789012:stateMachine:m/l".into(),
            crate::asl::ExecutionType::Standard,
            super::super::Settings {
                max_concurrency: 50,
                tolerated_failure_count: None,
                tolerated_failure_percentage: None,
            },
            false,
            chrono::Utc::now(),
        )
    }

    /// Results written from stored rows (read, rendered and appended in stages, chunk by
    /// chunk) are the records of every child, in index order, and equal those written from
    /// parsed children (COMPACT reads those: compared on their outputs).
    #[test]
    fn results_from_rows_keep_index_order_across_chunks() {
        let dir = std::env::temp_dir().join(format!("mapfleet-rows-order-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bkt")).unwrap();
        let objects = crate::storage::LocalFolderStore::new(&dir);
        let store = SqliteStore::in_memory().unwrap();
        let mut run = new_run();
        let t0 = chrono::Utc::now();
        run.apply(super::super::MapRunEvent::Start, t0);
        let n = super::super::checkpoint::ROW_CHUNK as u64 * 2 + 77;
        let mut read = 0;
        while read < n {
            let k = 1000.min(n - read);
            run.apply(
                super::super::MapRunEvent::ChildrenRead {
                    inputs: (read..read + k).map(|i| (json!({"i": i}), 1)).collect(),
                    position: json!(read + k),
                    done: read + k == n,
                },
                t0,
            );
            while let Some(index) = run
                .window
                .values()
                .find(|c| c.status == ChildStatus::Running)
                .map(|c| c.index)
            {
                run.apply(
                    super::super::MapRunEvent::ChildSucceeded {
                        index,
                        output: json!({"o": index}),
                    },
                    t0,
                );
            }
            read += k;
        }
        let spec = |t: &str| {
            WriterSpec::from_json(&json!({
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": "bkt", "Prefix": t},
                "WriterConfig": {"OutputType": "JSON", "Transformation": t}
            }))
            .unwrap()
        };
        let (records, _) = write_results(&mut run, &spec("NONE"), &objects, &store).unwrap();
        assert_eq!(records, n);
        write_results(&mut run, &spec("COMPACT"), &objects, &store).unwrap();
        let file = |t: &str| -> Vec<Value> {
            let dir = dir.join("bkt").join(t).join("r");
            serde_json::from_slice(&std::fs::read(dir.join("SUCCEEDED_0.json")).unwrap()).unwrap()
        };
        let full = file("NONE");
        let compact = file("COMPACT");
        assert_eq!(full.len() as u64, n);
        for (i, (r, o)) in full.iter().zip(&compact).enumerate() {
            assert_eq!(r["Input"], json!(format!("{{\"i\":{i}}}")));
            assert_eq!(r["Output"], json!(o.to_string()));
            assert_eq!(o, &json!({"o": i}));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Records copied together from stored rows are byte for byte those built from parsed
    /// children.
    #[test]
    fn records_from_stored_rows_match_records_from_children() {
        let store = SqliteStore::in_memory().unwrap();
        let mut run = new_run();
        let t0 = chrono::Utc::now();
        run.apply(super::super::MapRunEvent::Start, t0);
        run.apply(
            super::super::MapRunEvent::ChildrenRead {
                inputs: vec![
                    (
                        json!({"s": "é \"q\" \n \u{1}", "f": 1.5, "big": 18446744073709551615u64}),
                        1,
                    ),
                    (json!([1, -2, 3.25e-10, null, true]), 1),
                    (json!("plain"), 1),
                    (json!({}), 1),
                ],
                position: json!(4),
                done: true,
            },
            t0,
        );
        run.apply(
            super::super::MapRunEvent::ChildSucceeded {
                index: 0,
                output: json!({"out": "ü\t", "n": 0.1}),
            },
            t0,
        );
        run.apply(
            super::super::MapRunEvent::ChildSucceeded {
                index: 3,
                output: Value::Null,
            },
            t0,
        );
        run.apply(
            super::super::MapRunEvent::ChildFailed {
                index: 1,
                status: ChildStatus::Failed,
                error: Some("States.TaskFailed".into()),
                cause: Some("a \"cause\"".into()),
                snapshot: None,
            },
            t0,
        );
        store.save(&mut run).unwrap();
        let mut expected = Vec::new();
        store
            .for_each_child(&run.map_run_arn, &mut |c| {
                let (family, entries) =
                    ResultWriter::prepare(&record(&run, &c), writer::Transformation::None).unwrap();
                expected.push((family, entries.concat()));
            })
            .unwrap();
        let mut got = Vec::new();
        store
            .for_each_child_row(&run.map_run_arn, &mut |rows| {
                for row in rows.iter() {
                    let mut bytes = Vec::new();
                    let family = row_record(&run, &execution_prefix(&run), &row, &mut bytes);
                    got.push((family, bytes));
                }
            })
            .unwrap();
        assert!(store
            .for_each_child_row(&run.map_run_arn, &mut |_| {})
            .unwrap());
        assert_eq!(expected.len(), 4);
        assert_eq!(got, expected);
    }

    /// A runner that takes batches is handed several children at once.
    #[test]
    fn batching_runners_get_several_children_per_call() {
        let store = SqliteStore::in_memory().unwrap();
        let runner = Counting {
            runs: Mutex::new(Vec::new()),
            batches: Mutex::new(Vec::new()),
            batch: 10,
        };
        let out = drive(job(new_run(), 500, &store, &runner, None));
        assert_eq!(out.run.status, MapRunStatus::Succeeded);
        let mut runs = runner.runs.into_inner().unwrap();
        runs.sort();
        assert_eq!(runs, (0..500).collect::<Vec<u64>>());
        let batches = runner.batches.into_inner().unwrap();
        assert!(batches.iter().all(|&b| b <= 10), "{batches:?}");
        assert!(batches.iter().any(|&b| b > 1), "{batches:?}");
    }

    /// Fails child 1 unless it is redriven.
    struct FailsFirst;

    impl ChildRunner for FailsFirst {
        fn run_child(&self, job: &ChildJob) -> ChildOutcome {
            let fail = job.index == 1 && !job.redrive;
            ChildOutcome {
                status: if fail {
                    ChildStatus::Failed
                } else {
                    ChildStatus::Succeeded
                },
                output: (!fail).then(|| (*job.input).clone()),
                error: fail.then(|| "E".to_string()),
                cause: None,
                snapshot: None,
            }
        }
    }

    /// A redrive notes the earlier attempt's results when it starts: writing its results
    /// again (as after a restart) lists the earlier successes once, not its own files twice.
    #[test]
    fn writing_a_redrive_again_lists_earlier_successes_once() {
        let dir = std::env::temp_dir().join(format!("mapfleet-prior-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bkt")).unwrap();
        let objects: Arc<dyn ObjectStore> = Arc::new(crate::storage::LocalFolderStore::new(&dir));
        let spec = WriterSpec::from_json(&json!({
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "bkt", "Prefix": "out"}
        }))
        .unwrap();
        let store = SqliteStore::in_memory().unwrap();
        let job = |run: MapRun, redrive: Option<Vec<super::super::Child>>| Job {
            redrive: redrive.map(|unsuccessful| Redrive {
                unsuccessful,
                parent_redrive_count: 1,
            }),
            writer: Some(spec.clone()),
            store: objects.clone(),
            // One worker: child 0 succeeds before child 1 fails (with two, child 0 may still
            // run when the run stops, and be aborted).
            workers: 1,
            ..job(run, 3, &store, &FailsFirst, None)
        };
        let mut run = new_run();
        run.has_writer = true;
        let first = drive(job(run, None));
        assert_eq!(first.run.status, MapRunStatus::Failed);
        let arn = first.run.map_run_arn.clone();
        let loaded = store.load(&arn).unwrap().unwrap();
        let second = drive(job(loaded, Some(store.unsuccessful(&arn).unwrap())));
        assert_eq!(second.run.status, MapRunStatus::Succeeded);
        let manifest = || -> Value {
            serde_json::from_slice(&std::fs::read(dir.join("bkt/out/r/manifest.json")).unwrap())
                .unwrap()
        };
        let after_redrive = manifest();
        let keys = |m: &Value| -> Vec<String> {
            m["ResultFiles"]["SUCCEEDED"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["Key"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            keys(&after_redrive),
            ["out/r/SUCCEEDED_0.json", "out/r/SUCCEEDED_1.json"]
        );
        // Each success once across the files: the first attempt's in its file, the
        // redrive's (the child that failed, and those never started) in its own.
        let mut inputs: Vec<String> = keys(&after_redrive)
            .iter()
            .flat_map(|k| {
                let f: Value =
                    serde_json::from_slice(&std::fs::read(dir.join("bkt").join(k)).unwrap())
                        .unwrap();
                f.as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["Input"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        inputs.sort();
        assert_eq!(inputs, [r#"{"i":0}"#, r#"{"i":1}"#, r#"{"i":2}"#]);
        write_saved_results(&second.run, &spec, objects.as_ref(), &store).unwrap();
        assert_eq!(manifest(), after_redrive);
        // The parent resumed after the redrive ended (it had not recorded the end): the same
        // redrive asked again reports how it ended, writes the same files, runs nothing.
        let loaded = store.load(&arn).unwrap().unwrap();
        let again = drive(job(loaded, Some(store.unsuccessful(&arn).unwrap())));
        assert_eq!(again.run.status, MapRunStatus::Succeeded);
        assert_eq!(again.run.redrive_count, 1);
        assert_eq!(again.result.unwrap(), second.result.unwrap());
        assert_eq!(manifest(), after_redrive);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A run told to stop checkpoints and reports SUSPENDED; resumed from its checkpoint it
    /// runs every remaining child exactly once.
    #[test]
    fn a_stopped_run_resumes_without_running_a_child_twice() {
        let store = SqliteStore::in_memory().unwrap();
        let runner = Counting {
            runs: Mutex::new(Vec::new()),
            batches: Mutex::new(Vec::new()),
            batch: 4,
        };
        let seen = AtomicUsize::new(0);
        let stop = || {
            seen.fetch_add(1, Ordering::SeqCst);
            runner.runs.lock().map(|r| r.len() >= 30).unwrap_or(true)
        };
        let first = drive(job(new_run(), 300, &store, &runner, Some(&stop)));
        assert_eq!(first.result.unwrap_err().0, SUSPENDED);
        assert_eq!(first.run.status, MapRunStatus::Running);
        let done_first = runner.runs.lock().unwrap().len();
        assert!((30..300).contains(&done_first), "{done_first}");
        let loaded = store.load(&first.run.map_run_arn).unwrap().unwrap();
        let second = drive(job(loaded, 300, &store, &runner, None));
        assert_eq!(second.run.status, MapRunStatus::Succeeded);
        assert_eq!(second.run.items.succeeded, 300);
        let mut runs = runner.runs.into_inner().unwrap();
        runs.sort();
        assert_eq!(runs, (0..300).collect::<Vec<u64>>(), "every child once");
    }

    /// A checkpoint store whose saves fail: the first `fail_first` saves, or every save
    /// from `fail_from` on (fault injection around the real SQLite store).
    struct FlakySaves {
        inner: SqliteStore,
        saves: AtomicUsize,
        fail_first: usize,
        fail_from: usize,
    }

    impl CheckpointStore for FlakySaves {
        fn save(&self, run: &mut MapRun) -> Result<(), super::super::checkpoint::CheckpointError> {
            let n = self.saves.fetch_add(1, Ordering::SeqCst);
            if n < self.fail_first || n >= self.fail_from {
                return Err(super::super::checkpoint::CheckpointError::Store(
                    "disk I/O error (injected)".into(),
                ));
            }
            self.inner.save(run)
        }
        fn load(
            &self,
            arn: &str,
        ) -> Result<Option<MapRun>, super::super::checkpoint::CheckpointError> {
            self.inner.load(arn)
        }
        fn for_each_child(
            &self,
            arn: &str,
            f: &mut dyn FnMut(super::super::Child),
        ) -> Result<(), super::super::checkpoint::CheckpointError> {
            self.inner.for_each_child(arn, f)
        }
        fn unsuccessful(
            &self,
            arn: &str,
        ) -> Result<Vec<super::super::Child>, super::super::checkpoint::CheckpointError> {
            self.inner.unsuccessful(arn)
        }
        fn list(
            &self,
            arn: &str,
        ) -> Result<
            Vec<super::super::checkpoint::MapRunSummary>,
            super::super::checkpoint::CheckpointError,
        > {
            self.inner.list(arn)
        }
    }

    fn counting(batch: usize) -> Counting {
        Counting {
            runs: Mutex::new(Vec::new()),
            batches: Mutex::new(Vec::new()),
            batch,
        }
    }

    /// A save that fails now and then is tried again: the run goes on and ends as if
    /// nothing happened. A save that keeps failing fails the run with `States.Runtime` and
    /// a cause naming the checkpoint, and the run does not go on as if it were saved.
    #[test]
    fn failed_saves_are_retried_then_fail_the_run_with_a_named_cause() {
        let runner = counting(1);
        let flaky = FlakySaves {
            inner: SqliteStore::in_memory().unwrap(),
            saves: AtomicUsize::new(0),
            fail_first: 2,
            fail_from: usize::MAX,
        };
        let out = drive(job(new_run(), 200, &flaky, &runner, None));
        assert!(out.result.is_ok(), "{:?}", out.result);
        assert_eq!(out.run.status, MapRunStatus::Succeeded);
        assert_eq!(
            flaky
                .inner
                .load(&out.run.map_run_arn)
                .unwrap()
                .unwrap()
                .status,
            MapRunStatus::Succeeded
        );

        let runner = counting(1);
        let broken = FlakySaves {
            inner: SqliteStore::in_memory().unwrap(),
            saves: AtomicUsize::new(0),
            fail_first: 0,
            fail_from: 0,
        };
        let out = drive(job(new_run(), 200, &broken, &runner, None));
        let (error, cause) = out.result.unwrap_err();
        assert_eq!(error, "States.Runtime");
        assert!(
            cause.contains("checkpoint of the Map Run")
                && cause.contains("4 attempts")
                && cause.contains("disk I/O error (injected)"),
            "{cause}"
        );
        // Every attempt counted: the first save and its retries, then the last save's.
        assert!(broken.saves.load(Ordering::SeqCst) >= SAVE_ATTEMPTS as usize);
    }

    /// A run that is not ended, has nothing in flight and nothing to do (here: its counters
    /// say a child runs that no worker has) fails at once with its counters, instead of
    /// waiting forever.
    #[test]
    fn a_run_that_cannot_make_progress_says_so_with_its_counters() {
        let store = SqliteStore::in_memory().unwrap();
        let runner = counting(1);
        let mut run = new_run();
        run.reader_done = true;
        run.executions.running = 1;
        run.executions.total = 1;
        let started = Instant::now();
        let out = drive(job(run, 0, &store, &runner, None));
        let (error, cause) = out.result.unwrap_err();
        assert_eq!(error, "States.Runtime");
        assert!(
            cause.contains("cannot make progress") && cause.contains("1 running"),
            "{cause}"
        );
        assert!(runner.runs.lock().unwrap().is_empty());
        // Reported, not waited out (generous: this is not a timing test).
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
