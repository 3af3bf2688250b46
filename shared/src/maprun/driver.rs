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
use crate::writer::{self, ChildRecord, ResultWriter, WriterSpec};

use super::batch::{BatchSpec, Batcher};
use super::checkpoint::CheckpointStore;
use super::{ChildStatus, MapRun, MapRunAction, MapRunEvent, MapRunStatus};

/// How one child ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildOutcome {
    pub status: ChildStatus,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// A Standard child that did not succeed: its execution, to redrive in place later.
    pub snapshot: Option<String>,
}

/// Runs child executions (in-process on one machine; Lambda workers in the fleet).
pub trait ChildRunner: Sync {
    /// Runs child `index` named `name` on `input` to its end. `redrive`: the child failed in
    /// an earlier attempt and is redriven.
    /// `snapshot`: a redriven Standard child's execution as it stopped, to resume in place.
    fn run_child(
        &self,
        index: u64,
        name: &str,
        input: &Value,
        redrive: bool,
        snapshot: Option<&str>,
    ) -> ChildOutcome;
}

/// Where the items come from.
pub enum Items {
    /// From the state input (ItemsPath / Items).
    Inline(Vec<Value>),
    /// From S3 (ItemReader, Parameters already evaluated).
    Reader(ReaderSpec),
}

/// Evaluates the ItemSelector for one item (`$$.Map.Item`): an engine callback.
pub type Selector<'a> = &'a (dyn Fn(&Item) -> Result<Value, AslError> + Sync);

pub struct Job<'a> {
    pub run: MapRun,
    /// Redrive the (loaded) run: its failed, timed-out and aborted children.
    pub redrive: Option<Vec<super::Child>>,
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
}

/// How the run ended: the Map state's result, or its error and cause.
pub struct Outcome {
    pub run: MapRun,
    pub result: Result<Value, (String, String)>,
}

const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

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

    /// The next item and the position just before it.
    fn next_item(
        &mut self,
        position: &Option<Value>,
    ) -> Result<Option<(Item, Value)>, (String, String)> {
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
                let before = json!({"items_read": i});
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
                let before =
                    serde_json::to_value(<dyn ItemStream as ItemStream>::position(stream.as_ref()))
                        .unwrap_or(Value::Null);
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
    #[allow(clippy::type_complexity)]
    fn read(
        &mut self,
        position: &Option<Value>,
        max: usize,
    ) -> Result<(Vec<(Value, u64)>, Value, bool), (String, String)> {
        use rayon::prelude::*;
        /// Items read, then shaped by ItemSelector in parallel, per block.
        const BLOCK: usize = 1024;
        let mut out = Vec::new();
        let mut checkpoint = position.clone().unwrap_or(Value::Null);
        loop {
            if out.len() >= max {
                return Ok((out, checkpoint, false));
            }
            let mut block: Vec<(Item, Value)> = Vec::with_capacity(BLOCK);
            let mut exhausted = false;
            while block.len() < BLOCK {
                match self.next_item(position)? {
                    Some(x) => block.push(x),
                    None => {
                        exhausted = true;
                        break;
                    }
                }
            }
            let after_block = self.position_now();
            let select = self.select;
            let inputs: Vec<Result<Value, (String, String)>> = block
                .par_iter()
                .map(|(item, _)| match select {
                    Some(f) => f(item).map_err(|e| (e.name.as_str().to_string(), e.cause)),
                    None => Ok(item.value.clone()),
                })
                .collect();
            let n = block.len();
            // Where reading resumes after item k: before item k + 1, or after the block.
            let befores: Vec<Value> = block.iter().map(|(_, b)| b.clone()).collect();
            let after = |k: usize| {
                befores
                    .get(k + 1)
                    .cloned()
                    .unwrap_or_else(|| after_block.clone())
            };
            for (k, ((item, before), input)) in block.into_iter().zip(inputs).enumerate() {
                let input = input?;
                let index = item.index;
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
                            checkpoint = if b.is_empty() { after(k) } else { before };
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
    let express = run.child_type == super::ExecutionTypeTag::Express;
    let status = writer_status(c.status);
    match (status, c.start_date, c.stop_date) {
        (writer::ChildStatus::Pending, _, _) | (_, None, _) | (_, _, None) => {
            ChildRecord::pending(c.input.clone())
        }
        (_, Some(start), Some(stop)) => {
            let exec_prefix = run
                .state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1);
            let mut r = ChildRecord::finished(
                format!("{exec_prefix}:{}", c.name),
                c.name.clone(),
                run.state_machine_arn.clone(),
                c.input.clone(),
                status,
                start,
                stop,
                c.redrive_count,
                express,
            );
            r.output = c.output.clone();
            r.error = c.error.clone();
            r.cause = c.cause.clone();
            r
        }
    }
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
    checkpoints.save(run).map_err(store_err)?;
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

fn write_results(
    run: &mut MapRun,
    spec: &WriterSpec,
    store: &dyn ObjectStore,
    checkpoints: &dyn CheckpointStore,
) -> Result<(u64, Value), (String, String)> {
    use rayon::prelude::*;
    let named = |e: writer::WriterError| (e.error_name().to_string(), e.cause());
    let mut w = ResultWriter::new(store, spec, &run.map_run_arn).map_err(named)?;
    if run.redrive_count > 0 {
        w = w.with_prior(writer::load_prior(store, spec, &run.map_run_arn).map_err(named)?);
    }
    let bucket = w.bucket().to_string();
    let t = w.transformation();
    let store_err =
        |e: super::checkpoint::CheckpointError| ("States.Runtime".to_string(), e.to_string());
    checkpoints.save(run).map_err(store_err)?;
    // Records are converted to bytes in parallel, a chunk at a time, and appended in order.
    const CHUNK: usize = 4096;
    let view: &MapRun = run;
    let mut chunk: Vec<super::Child> = Vec::with_capacity(CHUNK);
    let mut failure: Option<(String, String)> = None;
    let flush =
        |chunk: &mut Vec<super::Child>, w: &mut ResultWriter<'_>| -> Result<(), (String, String)> {
            let prepared: Vec<Result<(writer::Family, Vec<Vec<u8>>), writer::WriterError>> = chunk
                .par_iter()
                .map(|c| ResultWriter::prepare(&record(view, c), t))
                .collect();
            chunk.clear();
            for p in prepared {
                let (family, entries) = p.map_err(named)?;
                w.write_prepared(family, &entries).map_err(named)?;
            }
            Ok(())
        };
    checkpoints
        .for_each_child(&view.map_run_arn, &mut |c| {
            if failure.is_some() {
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
    if let Some(e) = failure {
        return Err(e);
    }
    flush(&mut chunk, &mut w)?;
    let outcome = w.finish().map_err(named)?;
    Ok((
        finished_items(run),
        writer::map_state_result(&run.map_run_arn, &bucket, &outcome.manifest_key),
    ))
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
    } = job;
    let mut source = Source {
        items,
        stream: None,
        store: store.clone(),
        select,
        batcher: batch.map(Batcher::new),
        next_inline: 0,
    };
    // Fail before any child runs when the results cannot be written.
    if let Some(spec) = writer.as_ref().filter(|w| w.destination.is_some()) {
        match ResultWriter::new(store.as_ref(), spec, &run.map_run_arn)
            .and_then(|w| w.check_destination())
        {
            Ok(()) => {}
            Err(e) => {
                let now = clock.now();
                run.apply(
                    MapRunEvent::WriterFailed {
                        error: e.error_name().into(),
                        cause: e.cause(),
                    },
                    now,
                );
                let _ = checkpoints.save(&mut run);
                return Outcome {
                    result: Err((e.error_name().into(), e.cause())),
                    run,
                };
            }
        }
    }
    let exports = writer.as_ref().is_some_and(|w| w.destination.is_some());
    let inline_t = WriterSpec::inline_transformation(writer.as_ref());
    let (job_tx, job_rx) = mpsc::channel::<(u64, String, Value, bool, Option<String>)>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = mpsc::channel::<(u64, ChildOutcome)>();
    let mut final_result: Option<Result<Value, (String, String)>> = None;
    let mut writer_result: Option<Value> = None;

    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            let rx = job_rx.clone();
            let tx = done_tx.clone();
            scope.spawn(move || loop {
                let next = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                let Ok((index, name, input, redrive, snapshot)) = next else {
                    return;
                };
                let outcome = runner.run_child(index, &name, &input, redrive, snapshot.as_deref());
                if tx.send((index, outcome)).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        // A run still RUNNING (its process died) just resumes.
        let first = match redrive {
            Some(unsuccessful) if run.status != MapRunStatus::Running => {
                MapRunEvent::Redrive { unsuccessful }
            }
            _ => MapRunEvent::Start,
        };
        let mut pending = run.apply(first, clock.now());
        let mut last_save = Instant::now();
        loop {
            let mut events = Vec::new();
            for action in pending.drain(..) {
                match action {
                    MapRunAction::Read {
                        position,
                        max_children,
                    } => match source.read(&position, max_children) {
                        Ok((inputs, position, done)) => events.push(MapRunEvent::ChildrenRead {
                            inputs,
                            position,
                            done,
                        }),
                        Err((error, cause)) => {
                            events.push(MapRunEvent::ReaderFailed { error, cause })
                        }
                    },
                    MapRunAction::StartChild {
                        index,
                        name,
                        input,
                        redrive,
                        snapshot,
                    } => {
                        // A closed channel means the workers are gone: the child stays RUNNING
                        // in the checkpoint and runs again on resume.
                        let _ = job_tx.send((index, name, input, redrive, snapshot));
                    }
                    MapRunAction::StopChild { .. } => {
                        // In-process children cannot be interrupted mid-state; the run no longer
                        // waits for them and ignores what they report.
                    }
                    MapRunAction::WriteResults => {
                        let _ = checkpoints.save(&mut run);
                        match writer.as_ref() {
                            Some(spec) if exports => {
                                match write_results(&mut run, spec, store.as_ref(), checkpoints) {
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
                            MapRunStatus::Succeeded => match writer_result.take() {
                                Some(r) => Ok(r),
                                None => inline_result(&mut run, checkpoints, inline_t),
                            },
                            _ => Err((
                                error.clone().unwrap_or_else(|| "States.Runtime".into()),
                                cause.clone().unwrap_or_default(),
                            )),
                        });
                    }
                }
            }
            if final_result.is_some() {
                break;
            }
            if events.is_empty() {
                match done_rx.recv_timeout(CHECKPOINT_EVERY) {
                    Ok((index, o)) => events.push(child_event(index, o)),
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
            for ev in events {
                pending.extend(run.apply(ev, now));
            }
            if finished {
                let _ = checkpoints.save(&mut run);
            }
            if last_save.elapsed() >= CHECKPOINT_EVERY {
                let _ = checkpoints.save(&mut run);
                if let Some(p) = progress {
                    p(&run);
                }
                last_save = Instant::now();
            }
        }
        drop(job_tx);
    });
    let _ = checkpoints.save(&mut run);
    if let Some(p) = progress {
        p(&run);
    }
    let result = final_result.unwrap_or_else(|| {
        Err((
            "States.Runtime".into(),
            "the Map Run ended without a result".into(),
        ))
    });
    Outcome { run, result }
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
}
