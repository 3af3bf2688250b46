//! The children of a fleet Map Run, as S3 objects: one object per fixed batch, written once.
//!
//! A batch is the children of one Map Run attempt in one index range
//! ([`mapfleet_core::maprun::BatchKey`]), the same however often the run is resumed, so its
//! object's key names it: `mapfleet/outcomes/<mapRunId>/<attempt>/<first index>.jsonl` in the
//! state bucket, one stored [`Child`] per line (index, name, items, input, status, output or
//! error and cause, dates, snapshot) — what the result writer and a redrive read. The worker
//! that runs the batch writes it with a conditional PUT (`If-None-Match: *`) before it
//! answers: the first writer wins, and a batch delivered again (a retried invocation, a
//! coordinator that resumed) reads the winner instead of running its children again. A
//! coordinator whose worker failed writes the failure the same way, so a late worker's
//! outcomes, if they came first, stand.
//!
//! What the coordinator decides itself (children aborted by a stop, children a failed run never
//! started) goes beside the batch's object as `<first index>.c<n>.jsonl`, `n` the run record's
//! version that stored it: those keys sort before the batch's own object, and of two records of
//! one child in one attempt the later in key order stands (the worker's, which is what ran).
//!
//! One PUT per batch replaces a DynamoDB write (and reads) per child.

use std::collections::VecDeque;
use std::io::Read;

use mapfleet_core::maprun::{map_run_id, BatchKey, Child};
use mapfleet_core::storage::{GetObject, ObjectStore, PutIfAbsent, StoreError};

use super::FleetError;

/// Where a Map Run's batch objects are.
pub fn prefix(map_run_arn: &str) -> String {
    format!("mapfleet/outcomes/{}/", map_run_id(map_run_arn))
}

/// Where one attempt's batch objects are.
pub fn attempt_prefix(map_run_arn: &str, run_attempt: u32) -> String {
    format!("{}{run_attempt:05}/", prefix(map_run_arn))
}

/// The object of one batch (indices zero-padded: keys list in index order).
pub fn key(map_run_arn: &str, batch: BatchKey) -> String {
    format!(
        "{}{:020}.jsonl",
        attempt_prefix(map_run_arn, batch.run_attempt),
        batch.first
    )
}

/// The object of the coordinator's own records of a batch's children, stored by the run
/// record's version `seq`.
pub fn coordinator_key(map_run_arn: &str, batch: BatchKey, seq: u64) -> String {
    format!(
        "{}{:020}.c{seq:010}.jsonl",
        attempt_prefix(map_run_arn, batch.run_attempt),
        batch.first
    )
}

fn s3_error(op: &str, e: StoreError) -> FleetError {
    FleetError::dependency(format!("S3.{}", e.code()), format!("{op}: {e}"))
}

/// Children as an object's body: JSON Lines.
pub fn body_of(children: &[Child]) -> Result<Vec<u8>, FleetError> {
    let mut body = Vec::new();
    for c in children {
        serde_json::to_writer(&mut body, c).map_err(|e| FleetError::States {
            error: "States.Runtime".into(),
            cause: format!("cannot serialize the record of child {}: {e}", c.index),
        })?;
        body.push(b'\n');
    }
    Ok(body)
}

/// The batch objects of one state bucket.
pub struct BatchOutcomes<'a> {
    pub store: &'a dyn ObjectStore,
    pub bucket: &'a str,
}

impl BatchOutcomes<'_> {
    /// The child records of one object of the state bucket (a batch's, the coordinator's, a
    /// redrive list), if it exists.
    pub fn read(&self, key: &str) -> Result<Option<Vec<Child>>, FleetError> {
        let mut body = match self.store.get(&GetObject {
            bucket: self.bucket,
            key,
            ..Default::default()
        }) {
            Ok(b) => b,
            Err(StoreError::NoSuchKey { .. }) => return Ok(None),
            Err(e) => return Err(s3_error("reading a batch's children", e)),
        };
        let mut bytes = Vec::new();
        body.read_to_end(&mut bytes)
            .map_err(|e| FleetError::dependency("S3.ReadError", e))?;
        parse(key, &bytes).map(Some)
    }

    /// The recorded children of a batch, if it was recorded.
    pub fn get(
        &self,
        map_run_arn: &str,
        batch: BatchKey,
    ) -> Result<Option<Vec<Child>>, FleetError> {
        self.read(&key(map_run_arn, batch))
    }

    /// Records a batch's children unless they were recorded first by someone else; returns
    /// the records that stand (ours, or the first writer's).
    pub fn record_first(
        &self,
        map_run_arn: &str,
        batch: BatchKey,
        children: Vec<Child>,
    ) -> Result<Vec<Child>, FleetError> {
        let body = body_of(&children)?;
        let key = key(map_run_arn, batch);
        match self
            .store
            .put_if_absent(self.bucket, &key, &body)
            .map_err(|e| s3_error("recording a batch's children", e))?
        {
            PutIfAbsent::Created => Ok(children),
            PutIfAbsent::Exists => self.get(map_run_arn, batch)?.ok_or_else(|| {
                FleetError::dependency(
                    "S3.NoSuchKey",
                    format!(
                        "s3://{}/{key} exists for a conditional put but not for a read",
                        self.bucket
                    ),
                )
            }),
        }
    }

    /// Stores the coordinator's own records of some of a batch's children (see the module).
    pub fn put_coordinator(
        &self,
        map_run_arn: &str,
        batch: BatchKey,
        seq: u64,
        children: &[Child],
    ) -> Result<(), FleetError> {
        let body = body_of(children)?;
        self.store
            .put(
                self.bucket,
                &coordinator_key(map_run_arn, batch, seq),
                &body,
            )
            .map_err(|e| s3_error("storing the coordinator's child records", e))
    }

    /// Calls `f` with every child of a Map Run as stored last, in index order: the record of
    /// the latest attempt that ran it. Streams: one batch per attempt in memory.
    pub fn for_each(
        &self,
        map_run_arn: &str,
        attempts: u32,
        f: &mut dyn FnMut(Child) -> Result<(), FleetError>,
    ) -> Result<(), FleetError> {
        let mut streams: Vec<AttemptStream<'_>> = (0..=attempts)
            .map(|a| AttemptStream::new(self, map_run_arn, a))
            .collect();
        loop {
            // The lowest index any attempt holds next; the latest attempt's record of it.
            let mut next: Option<(u64, usize)> = None;
            for (a, s) in streams.iter_mut().enumerate() {
                if let Some(c) = s.peek()? {
                    let better = match next {
                        None => true,
                        Some((i, _)) => c.index <= i,
                    };
                    if better {
                        next = Some((c.index, a));
                    }
                }
            }
            let Some((index, latest)) = next else {
                return Ok(());
            };
            let mut chosen = None;
            for (a, s) in streams.iter_mut().enumerate() {
                if s.peek()?.is_some_and(|c| c.index == index) {
                    let c = s.pop();
                    if a == latest {
                        chosen = c;
                    }
                }
            }
            if let Some(c) = chosen {
                f(c)?;
            }
        }
    }

    /// Every child a batch's own object records (every attempt, or one) with its batch, in
    /// key order: a full listing, for tests and audits, not for the hot path.
    pub fn all(
        &self,
        map_run_arn: &str,
        run_attempt: Option<u32>,
    ) -> Result<Vec<(BatchKey, Child)>, FleetError> {
        let prefix = prefix(map_run_arn);
        let listed = match run_attempt {
            Some(a) => attempt_prefix(map_run_arn, a),
            None => prefix.clone(),
        };
        let mut token: Option<String> = None;
        let mut out = Vec::new();
        loop {
            let page = self
                .store
                .list(self.bucket, &listed, token.as_deref(), 1000)
                .map_err(|e| s3_error("listing batch objects", e))?;
            // The batches' own objects (the worker's, or a failed worker's), not the
            // coordinator's records beside them.
            for o in page.objects.iter().filter(|o| !o.key.contains(".c")) {
                let batch = parse_key(&prefix, &o.key).ok_or_else(|| {
                    FleetError::dependency("S3.UnexpectedKey", format!("not a batch: {}", o.key))
                })?;
                for c in self.read(&o.key)?.unwrap_or_default() {
                    out.push((batch, c));
                }
            }
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }
}

/// One attempt's children in index order: its batch objects listed a page at a time, the
/// objects of one batch read together (the coordinator's records, then the worker's).
struct AttemptStream<'a> {
    outcomes: &'a BatchOutcomes<'a>,
    prefix: String,
    keys: VecDeque<(u64, String)>,
    token: Option<String>,
    listed_all: bool,
    batch: VecDeque<Child>,
}

impl<'a> AttemptStream<'a> {
    fn new(outcomes: &'a BatchOutcomes<'a>, map_run_arn: &str, attempt: u32) -> Self {
        AttemptStream {
            outcomes,
            prefix: attempt_prefix(map_run_arn, attempt),
            keys: VecDeque::new(),
            token: None,
            listed_all: false,
            batch: VecDeque::new(),
        }
    }

    fn list_more(&mut self) -> Result<(), FleetError> {
        let page = self
            .outcomes
            .store
            .list(
                self.outcomes.bucket,
                &self.prefix,
                self.token.as_deref(),
                1000,
            )
            .map_err(|e| s3_error("listing batch objects", e))?;
        for o in page.objects {
            let first = o
                .key
                .strip_prefix(&self.prefix)
                .and_then(|rest| rest.get(..20))
                .and_then(|digits| digits.parse::<u64>().ok())
                .ok_or_else(|| {
                    FleetError::dependency("S3.UnexpectedKey", format!("not a batch: {}", o.key))
                })?;
            self.keys.push_back((first, o.key));
        }
        self.token = page.next_continuation_token;
        self.listed_all = self.token.is_none();
        Ok(())
    }

    /// Loads the next batch: all its objects, records ordered by index, the last record of a
    /// child in key order kept.
    fn load_batch(&mut self) -> Result<(), FleetError> {
        while self.batch.is_empty() {
            if self.keys.is_empty() && !self.listed_all {
                self.list_more()?;
            }
            let Some((first, key)) = self.keys.pop_front() else {
                return Ok(());
            };
            let mut keys = vec![key];
            loop {
                if self.keys.is_empty() && !self.listed_all {
                    self.list_more()?;
                }
                match self.keys.front() {
                    Some((f, _)) if *f == first => {
                        if let Some((_, k)) = self.keys.pop_front() {
                            keys.push(k);
                        }
                    }
                    _ => break,
                }
            }
            let mut records: Vec<Child> = Vec::new();
            for k in &keys {
                records.extend(self.outcomes.read(k)?.unwrap_or_default());
            }
            // Stable: of equal indices the later object's record comes last, and stands.
            records.sort_by_key(|c| c.index);
            let mut out: VecDeque<Child> = VecDeque::with_capacity(records.len());
            for c in records {
                if out.back().is_some_and(|b| b.index == c.index) {
                    out.pop_back();
                }
                out.push_back(c);
            }
            self.batch = out;
        }
        Ok(())
    }

    fn peek(&mut self) -> Result<Option<&Child>, FleetError> {
        self.load_batch()?;
        Ok(self.batch.front())
    }

    fn pop(&mut self) -> Option<Child> {
        self.batch.pop_front()
    }
}

/// The batch a key under `prefix` names.
fn parse_key(prefix: &str, key: &str) -> Option<BatchKey> {
    let rest = key.strip_prefix(prefix)?.strip_suffix(".jsonl")?;
    let (attempt, name) = rest.split_once('/')?;
    Some(BatchKey {
        run_attempt: attempt.parse().ok()?,
        first: name.get(..20)?.parse().ok()?,
    })
}

/// A batch object's lines; a bad line is an error naming the object and the line.
fn parse(key: &str, bytes: &[u8]) -> Result<Vec<Child>, FleetError> {
    let mut out = Vec::new();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.push(
            serde_json::from_slice(line).map_err(|e| FleetError::States {
                error: "States.Runtime".into(),
                cause: format!("the batch object {key}, line {}: {e}", n + 1),
            })?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mapfleet_core::maprun::ChildStatus;
    use mapfleet_core::storage::LocalFolderStore;
    use std::sync::Arc;

    pub(crate) fn child(index: u64, attempt: u32, status: ChildStatus, v: i64) -> Child {
        Child {
            index,
            name: format!("c{index}"),
            first_item: index,
            items: 1,
            input: Arc::new(serde_json::json!({ "i": index })),
            status,
            output: (status == ChildStatus::Succeeded).then(|| serde_json::json!(v)),
            error: None,
            cause: None,
            start_date: None,
            stop_date: None,
            redrive_count: attempt,
            snapshot: None,
            run_attempt: attempt,
        }
    }

    fn folder(name: &str) -> (std::path::PathBuf, LocalFolderStore) {
        let root = std::env::temp_dir().join(format!("mapfleet-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("state")).unwrap();
        let store = LocalFolderStore::new(&root);
        (root, store)
    }

    #[test]
    fn the_first_record_of_a_batch_stands_and_keys_name_the_batch() {
        let (root, store) = folder("outcomes");
        let b = BatchOutcomes {
            store: &store,
            bucket: "state",
        };
        let arn = "arn:aws:states:us-east-1:1:mapRun:m/Map:run-1";
        let batch = BatchKey {
            run_attempt: 1,
            first: 200,
        };
        assert_eq!(
            key(arn, batch),
            "mapfleet/outcomes/run-1/00001/00000000000000000200.jsonl"
        );
        assert_eq!(parse_key(&prefix(arn), &key(arn, batch)), Some(batch));
        assert_eq!(
            parse_key(&prefix(arn), &coordinator_key(arn, batch, 7)),
            Some(batch)
        );
        assert!(coordinator_key(arn, batch, 7) < key(arn, batch));
        assert_eq!(b.get(arn, batch).unwrap(), None);
        let s = ChildStatus::Succeeded;
        let first = vec![child(200, 1, s, 1), child(201, 1, s, 2)];
        assert_eq!(b.record_first(arn, batch, first.clone()).unwrap(), first);
        // A second writer (a batch delivered again) gets the first one's records.
        let again = b
            .record_first(arn, batch, vec![child(200, 1, s, 9), child(201, 1, s, 9)])
            .unwrap();
        assert_eq!(again, first);
        assert_eq!(b.get(arn, batch).unwrap(), Some(first));
        b.put_coordinator(arn, batch, 3, &[child(200, 1, ChildStatus::Aborted, 0)])
            .unwrap();
        assert_eq!(b.all(arn, None).unwrap().len(), 2);
        assert_eq!(b.all(arn, Some(1)).unwrap().len(), 2);
        assert!(b.all(arn, Some(0)).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn children_stream_in_index_order_with_the_latest_attempt_standing() {
        let (root, store) = folder("outcomes-stream");
        let b = BatchOutcomes {
            store: &store,
            bucket: "state",
        };
        let arn = "arn:aws:states:us-east-1:1:mapRun:m/Map:run-2";
        let (ok, failed, pending, aborted) = (
            ChildStatus::Succeeded,
            ChildStatus::Failed,
            ChildStatus::Pending,
            ChildStatus::Aborted,
        );
        let key0 = |first| BatchKey {
            run_attempt: 0,
            first,
        };
        // Attempt 0: batches of 3; child 4 failed; the run stopped before batch 6 started, and
        // aborted batch 3, which its worker finished after all (the worker's records stand).
        b.record_first(arn, key0(0), (0..3).map(|i| child(i, 0, ok, 0)).collect())
            .unwrap();
        b.put_coordinator(
            arn,
            key0(3),
            4,
            &[child(3, 0, aborted, 0), child(4, 0, aborted, 0)],
        )
        .unwrap();
        b.record_first(
            arn,
            key0(3),
            vec![
                child(3, 0, ok, 0),
                child(4, 0, failed, 0),
                child(5, 0, ok, 0),
            ],
        )
        .unwrap();
        b.put_coordinator(arn, key0(6), 4, &[child(6, 0, pending, 0)])
            .unwrap();
        // Attempt 1 redrives 4 and 6.
        b.record_first(
            arn,
            BatchKey {
                run_attempt: 1,
                first: 3,
            },
            vec![child(4, 1, ok, 1)],
        )
        .unwrap();
        b.record_first(
            arn,
            BatchKey {
                run_attempt: 1,
                first: 6,
            },
            vec![child(6, 1, failed, 1)],
        )
        .unwrap();
        let mut seen = Vec::new();
        b.for_each(arn, 1, &mut |c| {
            seen.push((c.index, c.run_attempt, c.status));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (0, 0, ok),
                (1, 0, ok),
                (2, 0, ok),
                (3, 0, ok),
                (4, 1, ok),
                (5, 0, ok),
                (6, 1, failed)
            ]
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
