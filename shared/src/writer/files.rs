//! Streaming the result files and writing the manifest (spec §3.1, §3.2, §5).

use std::io::{Read, Write};

use serde_json::{Map, Value};

use super::record::{ChildRecord, Family};
use super::spec::{map_run_id, OutputType, WriterSpec, MANIFEST_NAME};
use super::WriterError;
use crate::storage::{GetObject, ObjectStore, ObjectWriter, StoreError};

/// One result file as the manifest lists it: `{"Key": …, "Size": <bytes>}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResultFile {
    pub key: String,
    pub size: u64,
}

impl ResultFile {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("Key".into(), Value::String(self.key.clone()));
        m.insert("Size".into(), Value::from(self.size));
        Value::Object(m)
    }
}

/// What earlier attempts of a redriven Map Run left for this one (spec §5: the new manifest
/// references every success across attempts, but only this attempt's failures and pending
/// children). Capture it once when the attempt starts (from the manifest then current, see
/// [`load_prior`]) and keep it in the attempt's checkpoint: re-reading the manifest after this
/// attempt wrote its own would count this attempt's successes twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PriorResults {
    /// The SUCCEEDED files of all earlier attempts, referenced again by this attempt's manifest.
    pub succeeded: Vec<ResultFile>,
    /// The first index this attempt uses per family (`FAILED`, `PENDING`, `SUCCEEDED`): one
    /// past the highest index the previous manifest lists, so no file it references is
    /// overwritten before the new manifest replaces it.
    pub next_index: [u64; 3],
}

impl PriorResults {
    /// From a manifest written by an earlier attempt (§3.2 schema).
    pub fn from_manifest(manifest: &Value) -> Result<Self, String> {
        let files = manifest
            .get("ResultFiles")
            .and_then(Value::as_object)
            .ok_or_else(|| "the manifest has no ResultFiles object".to_string())?;
        let mut prior = PriorResults::default();
        for family in Family::ALL {
            let listed = match files.get(family.as_str()) {
                None => continue,
                Some(Value::Array(a)) => a,
                Some(_) => return Err(format!("ResultFiles.{} is not an array", family.as_str())),
            };
            for f in listed {
                let key = f.get("Key").and_then(Value::as_str);
                let size = f.get("Size").and_then(Value::as_u64);
                let (Some(key), Some(size)) = (key, size) else {
                    return Err(format!(
                        "ResultFiles.{} has an entry without Key and Size: {f}",
                        family.as_str()
                    ));
                };
                if let Some(n) = file_index(key, family) {
                    let slot = &mut prior.next_index[family.slot()];
                    *slot = (*slot).max(n + 1);
                }
                if family == Family::Succeeded {
                    prior.succeeded.push(ResultFile {
                        key: key.to_string(),
                        size,
                    });
                }
            }
        }
        Ok(prior)
    }
}

/// Reads the Map Run's current manifest, if any, as the prior results of a redrive. No manifest
/// (first attempt, or earlier attempts never got to write one) ⇒ empty.
pub fn load_prior(
    store: &dyn ObjectStore,
    spec: &WriterSpec,
    map_run_arn: &str,
) -> Result<PriorResults, WriterError> {
    let (Some(d), Some(key)) = (spec.destination.as_ref(), spec.manifest_key(map_run_arn)) else {
        return Ok(PriorResults::default());
    };
    let req = GetObject {
        bucket: &d.bucket,
        key: &key,
        ..Default::default()
    };
    let mut body = String::new();
    match store.get(&req) {
        Ok(mut r) => {
            r.read_to_string(&mut body).map_err(|e| WriterError::Io {
                bucket: d.bucket.clone(),
                key: key.clone(),
                message: e.to_string(),
            })?;
        }
        Err(StoreError::NoSuchKey { .. }) => return Ok(PriorResults::default()),
        Err(source) => {
            return Err(WriterError::Store {
                bucket: d.bucket.clone(),
                key,
                source,
            })
        }
    }
    let manifest: Value = serde_json::from_str(&body).map_err(|e| WriterError::Manifest {
        bucket: d.bucket.clone(),
        key: key.clone(),
        message: e.to_string(),
    })?;
    PriorResults::from_manifest(&manifest).map_err(|message| WriterError::Manifest {
        bucket: d.bucket.clone(),
        key,
        message,
    })
}

/// `…/<FAMILY>_<n>.<ext>` ⇒ `n`.
fn file_index(key: &str, family: Family) -> Option<u64> {
    let base = key.rsplit('/').next()?;
    let rest = base.strip_prefix(family.as_str())?.strip_prefix('_')?;
    let digits = rest.split('.').next()?;
    digits.parse().ok()
}

/// What [`ResultWriter::finish`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct WriterOutcome {
    /// The manifest as written (§3.2).
    pub manifest: Value,
    pub manifest_key: String,
    /// The result files this attempt wrote, by family (`FAILED`, `PENDING`, `SUCCEEDED`) then
    /// index: key and size in bytes, as the manifest lists them.
    pub files: Vec<ResultFile>,
    /// Child records written by this attempt (a FLATTEN child counts once).
    pub records: u64,
}

struct OpenFile {
    key: String,
    out: Box<dyn ObjectWriter>,
    bytes: u64,
    entries: u64,
}

#[derive(Default)]
struct FamilyFiles {
    next_index: u64,
    open: Option<OpenFile>,
    done: Vec<ResultFile>,
}

/// Streams child records into `SUCCEEDED_n` / `FAILED_n` / `PENDING_n` files under
/// `<Prefix>/<mapRunId>/`, one open streamed upload per family, rolling over to the next index
/// before a file would exceed `max_file_bytes`; [`ResultWriter::finish`] completes the files
/// and writes `manifest.json` last.
///
/// Records are written in call order and only one record is held at a time. The output is a
/// function of the spec, the prior results and the sequence of records: feed the same records
/// in the same order (e.g. by child index) and every object is byte-identical, so a resumed or
/// repeated write is idempotent. After an error, drop the writer (uploads in flight are
/// abandoned, never completed).
pub struct ResultWriter<'a> {
    store: &'a dyn ObjectStore,
    spec: WriterSpec,
    bucket: String,
    folder: String,
    map_run_arn: String,
    prior: Vec<ResultFile>,
    families: [FamilyFiles; 3],
    records: u64,
    buf: Vec<u8>,
}

impl<'a> ResultWriter<'a> {
    /// A writer for the first attempt (no prior results). Fails when the spec does not export.
    pub fn new(
        store: &'a dyn ObjectStore,
        spec: &WriterSpec,
        map_run_arn: &str,
    ) -> Result<Self, WriterError> {
        let (Some(d), Some(folder)) = (spec.destination.as_ref(), spec.folder(map_run_arn)) else {
            return Err(WriterError::InvalidSpec {
                message: "The ResultWriter has no Resource and Parameters: nothing to export"
                    .into(),
            });
        };
        Ok(ResultWriter {
            store,
            spec: spec.clone(),
            bucket: d.bucket.clone(),
            folder,
            map_run_arn: map_run_arn.to_string(),
            prior: Vec::new(),
            families: Default::default(),
            records: 0,
            buf: Vec::new(),
        })
    }

    /// Continues after earlier attempts (a redrive): their successes stay referenced and this
    /// attempt's files start after the indices they used.
    pub fn with_prior(mut self, prior: PriorResults) -> Self {
        for family in Family::ALL {
            self.families[family.slot()].next_index = prior.next_index[family.slot()];
        }
        self.prior = prior.succeeded;
        self
    }

    /// Checks the destination bucket exists (a one-key listing), so a missing bucket can fail
    /// the Map Run before any child runs.
    pub fn check_destination(&self) -> Result<(), WriterError> {
        self.store
            .list(&self.bucket, &self.folder, None, 1)
            .map(|_| ())
            .map_err(|source| WriterError::Store {
                bucket: self.bucket.clone(),
                key: self.folder.clone(),
                source,
            })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `<Prefix>/<mapRunId>/manifest.json`.
    pub fn manifest_key(&self) -> String {
        format!("{}{MANIFEST_NAME}", self.folder)
    }

    pub fn map_run_id(&self) -> &str {
        map_run_id(&self.map_run_arn)
    }

    /// Appends one child's record (or, for a successful child under COMPACT/FLATTEN, its
    /// output) to its family's current file.
    pub fn write(&mut self, record: &ChildRecord) -> Result<(), WriterError> {
        let family = record.status.family();
        record.for_each_entry(self.spec.transformation, |entry| self.append(family, entry))?;
        self.records += 1;
        Ok(())
    }

    /// A record's entries, serialized, for [`Self::write_prepared`]: pure, so many records can
    /// be prepared in parallel while the writer appends them in order.
    pub fn prepare(
        record: &ChildRecord,
        t: super::Transformation,
    ) -> Result<(Family, Vec<Vec<u8>>), WriterError> {
        let mut entries = Vec::new();
        if record.is_record_entry(t) {
            let mut bytes = Vec::with_capacity(768);
            record
                .write_record(&mut bytes)
                .map_err(|e| WriterError::Io {
                    bucket: String::new(),
                    key: String::new(),
                    message: e.to_string(),
                })?;
            entries.push(bytes);
            return Ok((record.status.family(), entries));
        }
        record.for_each_entry(t, |entry| {
            serde_json::to_vec(entry)
                .map(|b| entries.push(b))
                .map_err(|e| WriterError::Io {
                    bucket: String::new(),
                    key: String::new(),
                    message: e.to_string(),
                })
        })?;
        Ok((record.status.family(), entries))
    }

    /// Appends a record prepared by [`Self::prepare`] (same bytes as [`Self::write`]).
    pub fn write_prepared(
        &mut self,
        family: Family,
        entries: &[Vec<u8>],
    ) -> Result<(), WriterError> {
        for e in entries {
            self.append_bytes(family, e)?;
        }
        self.records += 1;
        Ok(())
    }

    /// Appends one full record's bytes (as [`Self::write_prepared`] with one entry).
    pub fn write_record_bytes(&mut self, family: Family, bytes: &[u8]) -> Result<(), WriterError> {
        self.append_bytes(family, bytes)?;
        self.records += 1;
        Ok(())
    }

    /// The transformation this writer applies.
    pub fn transformation(&self) -> super::Transformation {
        self.spec.transformation
    }

    /// Completes every open file, then writes the manifest (last, so a reader that finds it
    /// finds every file it lists).
    pub fn finish(mut self) -> Result<WriterOutcome, WriterError> {
        for family in Family::ALL {
            self.close(family)?;
        }
        let mut files = Vec::new();
        let mut result_files = Map::new();
        for family in Family::ALL {
            let done = &self.families[family.slot()].done;
            let mut listed: Vec<Value> = Vec::new();
            if family == Family::Succeeded {
                listed.extend(self.prior.iter().map(ResultFile::to_json));
            }
            listed.extend(done.iter().map(ResultFile::to_json));
            files.extend(done.iter().cloned());
            result_files.insert(family.as_str().into(), Value::Array(listed));
        }
        let mut manifest = Map::new();
        manifest.insert(
            "DestinationBucket".into(),
            Value::String(self.bucket.clone()),
        );
        manifest.insert("MapRunArn".into(), Value::String(self.map_run_arn.clone()));
        manifest.insert("ResultFiles".into(), Value::Object(result_files));
        let manifest = Value::Object(manifest);
        let key = self.manifest_key();
        let body = serde_json::to_vec(&manifest).map_err(|e| WriterError::Io {
            bucket: self.bucket.clone(),
            key: key.clone(),
            message: e.to_string(),
        })?;
        self.store
            .put(&self.bucket, &key, &body)
            .map_err(|source| WriterError::Store {
                bucket: self.bucket.clone(),
                key: key.clone(),
                source,
            })?;
        Ok(WriterOutcome {
            manifest,
            manifest_key: key,
            files,
            records: self.records,
        })
    }

    /// JSON: `[e0,e1,…]`; JSONL: `e0\ne1\n…` (each line ends with `\n`).
    fn append(&mut self, family: Family, entry: &Value) -> Result<(), WriterError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        // Serializing a `Value` into memory cannot fail.
        let r = match serde_json::to_writer(&mut buf, entry) {
            Ok(()) => self.append_bytes(family, &buf),
            Err(e) => Err(WriterError::Io {
                bucket: self.bucket.clone(),
                key: self.folder.clone(),
                message: e.to_string(),
            }),
        };
        self.buf = buf;
        r
    }

    fn append_bytes(&mut self, family: Family, entry: &[u8]) -> Result<(), WriterError> {
        let json = self.spec.output_type == OutputType::Json;
        let len = entry.len() as u64;
        if let Some(open) = &self.families[family.slot()].open {
            // The file's size if this entry were the last: separator, entry, closing bracket
            // (JSON) or newline (JSONL). A file always takes at least one entry.
            let after = if json {
                open.bytes + 1 + len + 1
            } else {
                open.bytes + len + 1
            };
            if open.entries > 0 && after > self.spec.max_file_bytes {
                self.close(family)?;
            }
        }
        if self.families[family.slot()].open.is_none() {
            self.open(family)?;
        }
        let bucket = &self.bucket;
        let Some(open) = self.families[family.slot()].open.as_mut() else {
            return Ok(());
        };
        let io = |e: std::io::Error, key: &str| WriterError::Io {
            bucket: bucket.clone(),
            key: key.to_string(),
            message: e.to_string(),
        };
        if json && open.entries > 0 {
            open.out.write_all(b",").map_err(|e| io(e, &open.key))?;
            open.bytes += 1;
        }
        open.out.write_all(entry).map_err(|e| io(e, &open.key))?;
        open.bytes += len;
        if !json {
            open.out.write_all(b"\n").map_err(|e| io(e, &open.key))?;
            open.bytes += 1;
        }
        open.entries += 1;
        Ok(())
    }

    fn open(&mut self, family: Family) -> Result<(), WriterError> {
        let files = &mut self.families[family.slot()];
        // The documented names are `<FAMILY>_<n>.json` whatever the OutputType (spec §3.1;
        // a JSONL extension is unconfirmed).
        let key = format!(
            "{}{}_{}.json",
            self.folder,
            family.as_str(),
            files.next_index
        );
        let mut out =
            self.store
                .writer(&self.bucket, &key)
                .map_err(|source| WriterError::Store {
                    bucket: self.bucket.clone(),
                    key: key.clone(),
                    source,
                })?;
        let mut bytes = 0;
        if self.spec.output_type == OutputType::Json {
            out.write_all(b"[").map_err(|e| WriterError::Io {
                bucket: self.bucket.clone(),
                key: key.clone(),
                message: e.to_string(),
            })?;
            bytes = 1;
        }
        files.next_index += 1;
        files.open = Some(OpenFile {
            key,
            out,
            bytes,
            entries: 0,
        });
        Ok(())
    }

    fn close(&mut self, family: Family) -> Result<(), WriterError> {
        let files = &mut self.families[family.slot()];
        let Some(mut open) = files.open.take() else {
            return Ok(());
        };
        if self.spec.output_type == OutputType::Json {
            open.out.write_all(b"]").map_err(|e| WriterError::Io {
                bucket: self.bucket.clone(),
                key: open.key.clone(),
                message: e.to_string(),
            })?;
        }
        let size = open.out.complete().map_err(|source| WriterError::Store {
            bucket: self.bucket.clone(),
            key: open.key.clone(),
            source,
        })?;
        files.done.push(ResultFile {
            key: open.key,
            size,
        });
        Ok(())
    }
}

/// Writes a whole attempt in one call: `records` in order, then the manifest.
pub fn write_results<'r>(
    store: &dyn ObjectStore,
    spec: &WriterSpec,
    map_run_arn: &str,
    prior: PriorResults,
    records: impl IntoIterator<Item = &'r ChildRecord>,
) -> Result<WriterOutcome, WriterError> {
    let mut w = ResultWriter::new(store, spec, map_run_arn)?.with_prior(prior);
    for r in records {
        w.write(r)?;
    }
    w.finish()
}
