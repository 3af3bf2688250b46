//! A fixed batch's outcomes: one S3 object per batch, written once.
//!
//! A batch is the children of one Map Run attempt in one index range
//! ([`mapfleet_core::maprun::BatchKey`]), the same however often the run is resumed, so its
//! object's key names it: `mapfleet/outcomes/<mapRunId>/<attempt>/<first index>.jsonl` in the
//! state bucket, one [`OutcomeRecord`] per line. The worker that runs the batch writes it with
//! a conditional PUT (`If-None-Match: *`) before it answers: the first writer wins, and a
//! batch delivered again (a retried invocation, a coordinator that resumed) reads the winner
//! instead of running its children again. A coordinator whose worker failed writes the
//! failure the same way, so a late worker's outcomes, if they came first, stand.
//!
//! One PUT per batch replaces a DynamoDB write (and reads) per child.

use std::io::Read;

use mapfleet_core::maprun::{map_run_id, BatchKey};
use mapfleet_core::storage::{GetObject, ObjectStore, PutIfAbsent, StoreError};

use super::{FleetError, OutcomeRecord};

/// Where a Map Run's batch outcomes are.
pub fn prefix(map_run_arn: &str) -> String {
    format!("mapfleet/outcomes/{}/", map_run_id(map_run_arn))
}

/// The object of one batch (indices zero-padded: keys list in index order).
pub fn key(map_run_arn: &str, batch: BatchKey) -> String {
    format!(
        "{}{:05}/{:020}.jsonl",
        prefix(map_run_arn),
        batch.run_attempt,
        batch.first
    )
}

fn s3_error(op: &str, e: StoreError) -> FleetError {
    FleetError::dependency(format!("S3.{}", e.code()), format!("{op}: {e}"))
}

/// The batch objects of one state bucket.
pub struct BatchOutcomes<'a> {
    pub store: &'a dyn ObjectStore,
    pub bucket: &'a str,
}

impl BatchOutcomes<'_> {
    /// The recorded outcomes of a batch, if it was recorded.
    pub fn get(
        &self,
        map_run_arn: &str,
        batch: BatchKey,
    ) -> Result<Option<Vec<OutcomeRecord>>, FleetError> {
        let key = key(map_run_arn, batch);
        let mut body = match self.store.get(&GetObject {
            bucket: self.bucket,
            key: &key,
            ..Default::default()
        }) {
            Ok(b) => b,
            Err(StoreError::NoSuchKey { .. }) => return Ok(None),
            Err(e) => return Err(s3_error("reading a batch's outcomes", e)),
        };
        let mut bytes = Vec::new();
        body.read_to_end(&mut bytes)
            .map_err(|e| FleetError::dependency("S3.ReadError", e))?;
        parse(&key, &bytes).map(Some)
    }

    /// Records a batch's outcomes unless they were recorded first by someone else; returns
    /// the outcomes that stand (ours, or the first writer's).
    pub fn record_first(
        &self,
        map_run_arn: &str,
        batch: BatchKey,
        outcomes: Vec<OutcomeRecord>,
    ) -> Result<Vec<OutcomeRecord>, FleetError> {
        let mut body = Vec::new();
        for o in &outcomes {
            serde_json::to_writer(&mut body, o).map_err(|e| FleetError::States {
                error: "States.Runtime".into(),
                cause: format!("cannot serialize the outcome of child {}: {e}", o.index),
            })?;
            body.push(b'\n');
        }
        let key = key(map_run_arn, batch);
        match self
            .store
            .put_if_absent(self.bucket, &key, &body)
            .map_err(|e| s3_error("recording a batch's outcomes", e))?
        {
            PutIfAbsent::Created => Ok(outcomes),
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

    /// Every recorded outcome of a Map Run (every attempt, or one), in key order: a full
    /// listing, for tests and audits, not for the hot path.
    pub fn all(
        &self,
        map_run_arn: &str,
        run_attempt: Option<u32>,
    ) -> Result<Vec<(BatchKey, OutcomeRecord)>, FleetError> {
        let prefix = prefix(map_run_arn);
        let listed = match run_attempt {
            Some(a) => format!("{prefix}{a:05}/"),
            None => prefix.clone(),
        };
        let mut token: Option<String> = None;
        let mut out = Vec::new();
        loop {
            let page = self
                .store
                .list(self.bucket, &listed, token.as_deref(), 1000)
                .map_err(|e| s3_error("listing batch outcomes", e))?;
            for o in &page.objects {
                let batch = parse_key(&prefix, &o.key).ok_or_else(|| {
                    FleetError::dependency("S3.UnexpectedKey", format!("not a batch: {}", o.key))
                })?;
                for r in self.get(map_run_arn, batch)?.unwrap_or_default() {
                    out.push((batch, r));
                }
            }
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }
}

/// The batch a key under `prefix` names.
fn parse_key(prefix: &str, key: &str) -> Option<BatchKey> {
    let rest = key.strip_prefix(prefix)?.strip_suffix(".jsonl")?;
    let (attempt, first) = rest.split_once('/')?;
    Some(BatchKey {
        run_attempt: attempt.parse().ok()?,
        first: first.parse().ok()?,
    })
}

/// A batch object's lines; a bad line is an error naming the object and the line.
fn parse(key: &str, bytes: &[u8]) -> Result<Vec<OutcomeRecord>, FleetError> {
    let mut out = Vec::new();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.push(
            serde_json::from_slice(line).map_err(|e| FleetError::States {
                error: "States.Runtime".into(),
                cause: format!("the batch outcomes {key}, line {}: {e}", n + 1),
            })?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mapfleet_core::maprun::driver::ChildOutcome;
    use mapfleet_core::maprun::ChildStatus;
    use mapfleet_core::storage::LocalFolderStore;

    fn outcome(index: u64, v: i64) -> OutcomeRecord {
        OutcomeRecord {
            index,
            attempt: 0,
            outcome: ChildOutcome {
                status: ChildStatus::Succeeded,
                output: Some(serde_json::json!(v)),
                error: None,
                cause: None,
                snapshot: None,
            },
        }
    }

    #[test]
    fn the_first_record_of_a_batch_stands_and_keys_name_the_batch() {
        let root = std::env::temp_dir().join(format!("mapfleet-outcomes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("state")).unwrap();
        let store = LocalFolderStore::new(&root);
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
        assert_eq!(b.get(arn, batch).unwrap(), None);
        let first = vec![outcome(200, 1), outcome(201, 2)];
        assert_eq!(b.record_first(arn, batch, first.clone()).unwrap(), first);
        // A second writer (a batch delivered again) gets the first one's outcomes.
        let again = b
            .record_first(arn, batch, vec![outcome(200, 9), outcome(201, 9)])
            .unwrap();
        assert_eq!(again, first);
        assert_eq!(b.get(arn, batch).unwrap(), Some(first));
        assert_eq!(b.all(arn, None).unwrap().len(), 2);
        assert_eq!(b.all(arn, Some(1)).unwrap().len(), 2);
        assert!(b.all(arn, Some(0)).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&root);
    }
}
