//! The fleet's checkpoint store ([`CheckpointStore`]): a Map Run is one versioned run record
//! in the table ([`FleetTable`]) and its children are S3 batch objects ([`super::outcomes`]).
//! No child is a table item.
//!
//! - **Finished children** are in the batch objects their workers wrote (one PUT per batch).
//!   The coordinator stores only what it decides itself — children a stop aborted, a failed
//!   worker batch (see [`super::LambdaWorkers`]), the never-started children of a run that
//!   ends — as its own objects beside those batches.
//! - **The run record** is the Map Run's own record (read mark, counters, result-file state)
//!   plus, for the first attempt, the ranges of children finished at or beyond the read mark
//!   (a resumed run skips them when it reads again) and, for a redrive, the keys of the objects
//!   holding its redrive list. It stays small whatever the run's size.
//! - **Loading** reads the run record, and for a redrive its list and the listing of the
//!   attempt's batch objects (which of the list finished): never every child. A run that has
//!   ended and left children unstarted reads its objects once, for a redrive.
//! - **Writing results and redriving** stream the batch objects in index order.
//!
//! [`RecordedBatches`] is how the coordinator's workers tell this store which batches a
//! worker recorded, so a save writes nothing for them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use mapfleet_core::asl::timestamp;
use mapfleet_core::maprun::checkpoint::{CheckpointError, CheckpointStore, MapRunSummary};
use mapfleet_core::maprun::{map_run_id, BatchKey, Child, ChildStatus, MapRun, MapRunStatus};
use mapfleet_core::storage::ObjectStore;
use serde::{Deserialize, Serialize};

use super::outcomes::BatchOutcomes;
use super::table::FleetTable;
use super::FleetError;

/// The batches a worker recorded (its batch object holds their children), by Map Run.
#[derive(Debug, Default)]
pub struct RecordedBatches {
    batches: Mutex<HashMap<String, HashSet<BatchKey>>>,
}

impl RecordedBatches {
    pub fn mark(&self, map_run_arn: &str, batch: BatchKey) {
        if let Ok(mut m) = self.batches.lock() {
            m.entry(map_run_arn.to_string()).or_default().insert(batch);
        }
    }

    fn contains(&self, map_run_arn: &str, batch: BatchKey) -> bool {
        self.batches
            .lock()
            .map(|m| m.get(map_run_arn).is_some_and(|s| s.contains(&batch)))
            .unwrap_or(false)
    }

    /// Forgets the batches no save can meet again: earlier attempts', and those wholly below
    /// the read mark.
    fn prune(&self, map_run_arn: &str, attempt: u32, unit: u64, mark: u64) {
        if let Ok(mut m) = self.batches.lock() {
            if let Some(s) = m.get_mut(map_run_arn) {
                s.retain(|b| b.run_attempt >= attempt && b.first.saturating_add(unit) > mark);
            }
        }
    }
}

/// Children of the first attempt finished at or beyond the read mark, as ranges
/// `[start, end)` (finished batches merge into few ranges).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FinishedRanges(BTreeMap<u64, u64>);

impl FinishedRanges {
    pub fn insert(&mut self, index: u64) {
        let end = index + 1;
        // A range ending at or containing `index`.
        if let Some((&s, &e)) = self.0.range(..=index).next_back() {
            if e > index {
                return;
            }
            if e == index {
                let mut new_end = end;
                if let Some(next_end) = self.0.remove(&end) {
                    new_end = next_end;
                }
                self.0.insert(s, new_end);
                return;
            }
        }
        let new_end = self.0.remove(&end).unwrap_or(end);
        self.0.insert(index, new_end);
    }

    pub fn contains(&self, index: u64) -> bool {
        self.0
            .range(..=index)
            .next_back()
            .is_some_and(|(_, &e)| e > index)
    }

    /// Drops what lies below `mark`.
    pub fn remove_below(&mut self, mark: u64) {
        let below: Vec<u64> = self.0.range(..mark).map(|(s, _)| *s).collect();
        for s in below {
            if let Some(e) = self.0.remove(&s) {
                if e > mark {
                    self.0.insert(mark, e);
                }
            }
        }
    }

    pub fn indices(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flat_map(|(&s, &e)| s..e)
    }

    pub fn ranges(&self) -> usize {
        self.0.len()
    }
}

/// The run record as stored (the table holds its JSON text).
#[derive(Serialize)]
struct RecordOut<'a> {
    run: &'a MapRun,
    #[serde(skip_serializing_if = "is_empty_ranges")]
    finished: &'a FinishedRanges,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    held: &'a [String],
}

fn is_empty_ranges(r: &&FinishedRanges) -> bool {
    r.0.is_empty()
}

#[derive(Deserialize)]
struct RecordIn {
    run: MapRun,
    #[serde(default)]
    finished: FinishedRanges,
    #[serde(default)]
    held: Vec<String>,
}

/// What the store knows of a run it read or wrote.
#[derive(Debug, Clone, Default)]
struct RunMeta {
    version: Option<u64>,
    /// The stop date the listing item holds, once written (or known from a load).
    listed_stop: Option<Option<String>>,
    /// The attempt `finished` and `held` belong to.
    attempt: u32,
    finished: FinishedRanges,
    held: Vec<String>,
    /// The children in `held`'s objects.
    held_indices: HashSet<u64>,
    /// When the run record was last written, and the record a save made since and did not
    /// write (written by the next save that is due, or by [`CheckpointStore::sync`]).
    written_at: Option<std::time::Instant>,
    unwritten: Option<String>,
}

/// The fleet's checkpoint store: the run record in the table, children in S3.
pub struct FleetCheckpoints {
    pub table: Arc<dyn FleetTable>,
    pub store: Arc<dyn ObjectStore>,
    /// The state bucket (`MAPFLEET_STATE_BUCKET`).
    pub bucket: String,
    pub recorded: Arc<RecordedBatches>,
    /// How often a running Map Run's record is written at most (default [`SAVE_EVERY`]);
    /// saves in between only let go of the finished children (see [`FleetCheckpoints`]'s
    /// `save`).
    pub save_every: std::time::Duration,
    runs: Mutex<HashMap<String, RunMeta>>,
    /// Each load of a Map Run: how long it took, and how many of its children had finished.
    loads: Mutex<Vec<(std::time::Duration, u64)>>,
}

/// How often the fleet writes a running Map Run's record by default.
pub const SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

fn held_key(map_run_arn: &str, attempt: u32, seq: u64) -> String {
    format!(
        "mapfleet/held/{}/{attempt:05}/{seq:010}.jsonl",
        map_run_id(map_run_arn)
    )
}

fn ended(run: &MapRun) -> bool {
    run.stopping.is_some() || run.status != MapRunStatus::Running
}

fn store_err(e: FleetError) -> CheckpointError {
    CheckpointError::Store(e.to_string())
}

impl FleetCheckpoints {
    pub fn new(
        table: Arc<dyn FleetTable>,
        store: Arc<dyn ObjectStore>,
        bucket: impl Into<String>,
        recorded: Arc<RecordedBatches>,
    ) -> Self {
        FleetCheckpoints {
            table,
            store,
            bucket: bucket.into(),
            recorded,
            save_every: SAVE_EVERY,
            runs: Mutex::new(HashMap::new()),
            loads: Mutex::new(Vec::new()),
        }
    }

    fn outcomes(&self) -> BatchOutcomes<'_> {
        BatchOutcomes {
            store: self.store.as_ref(),
            bucket: &self.bucket,
        }
    }

    fn meta(&self, arn: &str) -> RunMeta {
        self.runs
            .lock()
            .ok()
            .and_then(|m| m.get(arn).cloned())
            .unwrap_or_default()
    }

    fn set_meta(&self, arn: &str, meta: RunMeta) {
        if let Ok(mut m) = self.runs.lock() {
            m.insert(arn.to_string(), meta);
        }
    }

    fn read_record(&self, arn: &str) -> Result<Option<(u64, RecordIn)>, CheckpointError> {
        let Some(v) = self.table.get_run(arn)? else {
            return Ok(None);
        };
        let rec: RecordIn =
            serde_json::from_str(&v.text).map_err(|e| CheckpointError::Corrupt {
                key: format!("RUN#{arn}"),
                message: e.to_string(),
            })?;
        Ok(Some((v.version, rec)))
    }

    /// How long each load of a Map Run took, with the children finished when it was saved
    /// (what a continuation pays before it goes on).
    pub fn load_timings(&self) -> Vec<(std::time::Duration, u64)> {
        self.loads.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The run record alone (DescribeMapRun, the writer): no child is read.
    pub fn load_record(&self, map_run_arn: &str) -> Result<Option<MapRun>, CheckpointError> {
        Ok(self.read_record(map_run_arn)?.map(|(_, r)| r.run))
    }

    fn save_run(&self, run: &mut MapRun) -> Result<(), CheckpointError> {
        run.settle_resume_mark();
        let arn = run.map_run_arn.clone();
        let meta = self.meta(&arn);
        let attempt = run.redrive_count;
        let unit = run.dispatch_unit.max(1);
        let ending = ended(run);
        let (mut finished, mut held_keys) = if meta.attempt == attempt && meta.version.is_some() {
            (meta.finished.clone(), meta.held.clone())
        } else {
            (FinishedRanges::default(), Vec::new())
        };
        let mut coordinator: BTreeMap<BatchKey, Vec<Child>> = BTreeMap::new();
        let mut held: Vec<Child> = Vec::new();
        let mut held_indices = if meta.attempt == attempt {
            meta.held_indices.clone()
        } else {
            HashSet::new()
        };
        for c in run.children_to_save() {
            if c.status.is_terminal() {
                let batch = BatchKey {
                    run_attempt: c.run_attempt,
                    first: c.index / unit * unit,
                };
                if c.run_attempt == attempt && attempt == 0 {
                    finished.insert(c.index);
                }
                if !self.recorded.contains(&arn, batch) {
                    coordinator.entry(batch).or_default().push(c.into_owned());
                }
            } else if ending {
                // Not finished in this attempt (never started, or running, stored as queued):
                // this attempt's record of it. A worker's record of a running one, when it
                // comes, stands over it.
                let batch = BatchKey {
                    run_attempt: attempt,
                    first: c.index / unit * unit,
                };
                coordinator.entry(batch).or_default().push(c.into_owned());
            } else if held_indices.insert(c.index) {
                // A redrive's list (a running one stored as queued): once per attempt.
                held.push(c.into_owned());
            }
        }
        let seq = meta.version.unwrap_or(0) + 1;
        let outcomes = self.outcomes();
        for (batch, children) in &coordinator {
            outcomes
                .put_coordinator(&arn, *batch, seq, children)
                .map_err(store_err)?;
        }
        if !held.is_empty() {
            let key = held_key(&arn, attempt, seq);
            let body = super::outcomes::body_of(&held).map_err(store_err)?;
            self.store
                .put(&self.bucket, &key, &body)
                .map_err(|e| CheckpointError::Store(format!("storing a redrive list: {e}")))?;
            held_keys.push(key);
        }
        let mark = run.resume_mark().index;
        finished.remove_below(mark);
        if attempt > 0 {
            finished = FinishedRanges::default();
        }
        // The listing item, when first written and when the stop date changes.
        let stop = run.stop_date.map(timestamp::format);
        let listing_changed = meta.listed_stop.as_ref() != Some(&stop);
        if listing_changed {
            self.table.put_listing(&MapRunSummary {
                map_run_arn: arn.clone(),
                execution_arn: run.execution_arn.clone(),
                state_machine_arn: run.state_machine_arn.clone(),
                start_date: timestamp::format(run.start_date),
                stop_date: stop.clone(),
            })?;
        }
        let text = serde_json::to_string(&RecordOut {
            run,
            finished: &finished,
            held: &held_keys,
        })
        .map_err(|e| CheckpointError::Store(format!("cannot serialize the run record: {e}")))?;
        // The record is written when something only it holds changed (a new run, an ending,
        // a redrive's list, the coordinator's own records, results being written), and
        // otherwise every `save_every`: the children finished in between are in their batch
        // objects already (a resumed run sends their batches again and is answered from them).
        let due = meta
            .written_at
            .is_none_or(|t| t.elapsed() >= self.save_every);
        let must = meta.version.is_none()
            || ending
            || run.writing
            || listing_changed
            || !coordinator.is_empty()
            || !held.is_empty()
            || meta.attempt != attempt;
        let (version, written_at, unwritten) = if due || must {
            let version = self.table.put_run(&arn, &text, meta.version)?;
            (Some(version), Some(std::time::Instant::now()), None)
        } else {
            (meta.version, meta.written_at, Some(text))
        };
        self.set_meta(
            &arn,
            RunMeta {
                version,
                listed_stop: Some(stop),
                attempt,
                finished,
                held: held_keys,
                held_indices,
                written_at,
                unwritten,
            },
        );
        run.evict_saved();
        self.recorded.prune(&arn, attempt, unit, mark);
        Ok(())
    }

    /// Writes the run records that saves made and did not write.
    fn write_unwritten(&self) -> Result<(), CheckpointError> {
        let pending: Vec<(String, Option<u64>, String)> = self
            .runs
            .lock()
            .map(|m| {
                m.iter()
                    .filter_map(|(arn, meta)| {
                        meta.unwritten
                            .clone()
                            .map(|text| (arn.clone(), meta.version, text))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (arn, expected, text) in pending {
            let version = self.table.put_run(&arn, &text, expected)?;
            if let Ok(mut m) = self.runs.lock() {
                if let Some(meta) = m.get_mut(&arn) {
                    if meta.version == expected {
                        meta.version = Some(version);
                        meta.written_at = Some(std::time::Instant::now());
                        meta.unwritten = None;
                    }
                }
            }
        }
        Ok(())
    }

    fn load_run(&self, arn: &str) -> Result<Option<MapRun>, CheckpointError> {
        let started = std::time::Instant::now();
        let Some((version, rec)) = self.read_record(arn)? else {
            return Ok(None);
        };
        let mut run = rec.run;
        let attempt = run.redrive_count;
        let outcomes = self.outcomes();
        let mut held_indices = HashSet::new();
        if ended(&run) {
            // Its never-started children are stored: held again, for a redrive.
            if run.executions.pending > 0 {
                outcomes
                    .for_each(arn, attempt, &mut |c| {
                        if !c.status.is_terminal() {
                            run.hold(c);
                        }
                        Ok(())
                    })
                    .map_err(store_err)?;
            }
        } else if !rec.held.is_empty() {
            // A redrive's list, less what finished in this attempt (its batch objects).
            let mut done: HashSet<u64> = HashSet::new();
            for (batch, c) in outcomes.all(arn, Some(attempt)).map_err(store_err)? {
                if batch.run_attempt == attempt && c.status.is_terminal() {
                    done.insert(c.index);
                }
            }
            let mut list: BTreeMap<u64, Child> = BTreeMap::new();
            held_indices.clear();
            for key in &rec.held {
                let children = outcomes.read(key).map_err(store_err)?.ok_or_else(|| {
                    CheckpointError::Corrupt {
                        key: key.clone(),
                        message: "the run record names a redrive list that is not there".into(),
                    }
                })?;
                for c in children {
                    held_indices.insert(c.index);
                    list.insert(c.index, c);
                }
            }
            for (i, c) in list {
                if !done.contains(&i) {
                    run.hold(c);
                }
            }
        }
        let mark = run.resume_mark().index;
        let finished: Vec<u64> = if attempt == 0 {
            rec.finished.indices().filter(|i| *i >= mark).collect()
        } else {
            Vec::new()
        };
        self.set_meta(
            arn,
            RunMeta {
                version: Some(version),
                listed_stop: Some(run.stop_date.map(timestamp::format)),
                attempt,
                finished: rec.finished,
                held: rec.held,
                held_indices,
                written_at: Some(std::time::Instant::now()),
                unwritten: None,
            },
        );
        run.resume_loaded(finished);
        let k = &run.executions;
        let done = k.succeeded + k.failed + k.timed_out + k.aborted;
        if let Ok(mut l) = self.loads.lock() {
            l.push((started.elapsed(), done));
        }
        Ok(Some(run))
    }
}

impl CheckpointStore for FleetCheckpoints {
    fn save(&self, run: &mut MapRun) -> Result<(), CheckpointError> {
        self.save_run(run)
    }

    /// Writes what the last saves left unwritten: the run as it is now is in the table.
    fn sync(&self) -> Result<(), CheckpointError> {
        self.write_unwritten()
    }

    fn load(&self, map_run_arn: &str) -> Result<Option<MapRun>, CheckpointError> {
        self.load_run(map_run_arn)
    }

    fn for_each_child(
        &self,
        map_run_arn: &str,
        f: &mut dyn FnMut(Child),
    ) -> Result<(), CheckpointError> {
        let Some(run) = self.load_record(map_run_arn)? else {
            return Ok(());
        };
        self.outcomes()
            .for_each(map_run_arn, run.redrive_count, &mut |c| {
                f(c);
                Ok(())
            })
            .map_err(store_err)
    }

    fn unsuccessful(&self, map_run_arn: &str) -> Result<Vec<Child>, CheckpointError> {
        let mut out = Vec::new();
        self.for_each_child(map_run_arn, &mut |c| {
            if matches!(
                c.status,
                ChildStatus::Failed | ChildStatus::TimedOut | ChildStatus::Aborted
            ) {
                out.push(c);
            }
        })?;
        Ok(out)
    }

    fn list(&self, execution_arn: &str) -> Result<Vec<MapRunSummary>, CheckpointError> {
        Ok(self.table.list_runs(execution_arn)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_ranges_merge_and_drop_what_is_below_the_mark() {
        let mut r = FinishedRanges::default();
        for i in [5, 7, 6, 1, 2, 3, 10] {
            r.insert(i);
        }
        r.insert(6);
        assert_eq!(r.ranges(), 3);
        assert_eq!(r.indices().collect::<Vec<_>>(), vec![1, 2, 3, 5, 6, 7, 10]);
        assert!(r.contains(6) && !r.contains(4) && !r.contains(8));
        r.insert(4);
        assert_eq!(r.ranges(), 2);
        r.remove_below(3);
        assert_eq!(r.indices().collect::<Vec<_>>(), vec![3, 4, 5, 6, 7, 10]);
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"3":8,"10":11}"#);
        assert_eq!(serde_json::from_str::<FinishedRanges>(&text).unwrap(), r);
    }
}
