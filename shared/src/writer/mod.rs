//! The Distributed Map `ResultWriter` (spec §2.8, §3, §5): exporting child execution results
//! to the object store, and shaping the Map state's result.
//!
//! Layout of one Map Run's export (spec §3.1–§3.3):
//!
//! ```text
//! s3://<Bucket>/<Prefix>/<mapRunId>/manifest.json       written last
//!                                  /SUCCEEDED_<n>.json   successful children, n = 0, 1, …
//!                                  /FAILED_<n>.json      FAILED, TIMED_OUT and ABORTED children
//!                                  /PENDING_<n>.json     children never started
//! ```
//!
//! * A family with no records has no file; the manifest then lists `[]` for it.
//! * Each file rolls over to the next index before it would exceed the rollover size (5 GB).
//! * `JSON` files are one compact JSON array (`[r0,r1]`, no whitespace); `JSONL` files hold one
//!   compact record per line, each line ending in `\n`.
//! * The manifest is compact JSON: `{"DestinationBucket","MapRunArn","ResultFiles":{"FAILED":
//!   [{"Key","Size"}…],"PENDING":[…],"SUCCEEDED":[…]}}`; `Size` is the object's size in bytes.
//! * After a redrive the manifest lists every earlier attempt's SUCCEEDED files plus this
//!   attempt's files; this attempt's indices continue after those the previous manifest listed.
//!
//! The Map state's result is `{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}` when
//! exporting ([`map_state_result`]), else the array [`inline_result`] builds.

mod files;
mod record;
mod spec;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::storage::StoreError;

pub use files::{load_prior, write_results, PriorResults, ResultFile, ResultWriter, WriterOutcome};
pub use record::{
    format_date, format_date_nanos, parse_date, quote_json_text, ChildRecord, ChildStatus, Family,
    RecordView, RedriveStatus, SUCCEEDED_REDRIVE_REASON,
};
pub use spec::{
    map_run_id, Destination, OutputType, Transformation, WriterSpec, DEFAULT_MAX_FILE_BYTES,
};

/// Why results could not be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriterError {
    /// The evaluated ResultWriter is unusable (e.g. `Bucket` not a string).
    #[error("{message}")]
    InvalidSpec { message: String },
    /// The store refused an operation (missing bucket, access denied, …).
    #[error("Failed to write the results to s3://{bucket}/{key}: {source}")]
    Store {
        bucket: String,
        key: String,
        #[source]
        source: StoreError,
    },
    /// Streaming an object's bytes failed.
    #[error("Failed to write the results to s3://{bucket}/{key}: {message}")]
    Io {
        bucket: String,
        key: String,
        message: String,
    },
    /// A redrive found an unreadable manifest from an earlier attempt.
    #[error("Failed to read the result manifest s3://{bucket}/{key}: {message}")]
    Manifest {
        bucket: String,
        key: String,
        message: String,
    },
}

impl WriterError {
    /// The error the Map Run fails with: `States.ResultWriterFailed` for storage failures
    /// (spec §4.7), `States.Runtime` for an unusable evaluated ResultWriter.
    pub fn error_name(&self) -> &'static str {
        match self {
            WriterError::InvalidSpec { .. } => "States.Runtime",
            _ => "States.ResultWriterFailed",
        }
    }

    /// The failure's cause text (names the bucket and key).
    pub fn cause(&self) -> String {
        self.to_string()
    }
}

/// The Map state's result when exporting (spec §2.8, vector §12.2):
/// `{"MapRunArn": …, "ResultWriterDetails": {"Bucket": …, "Key": "<Prefix>/<mapRunId>/manifest.json"}}`.
pub fn map_state_result(map_run_arn: &str, bucket: &str, manifest_key: &str) -> Value {
    let mut details = Map::new();
    details.insert("Bucket".into(), Value::String(bucket.to_string()));
    details.insert("Key".into(), Value::String(manifest_key.to_string()));
    let mut m = Map::new();
    m.insert("MapRunArn".into(), Value::String(map_run_arn.to_string()));
    m.insert("ResultWriterDetails".into(), Value::Object(details));
    Value::Object(m)
}

/// The Map state's result when nothing is exported: one array over the children in the order
/// given (item order), shaped by `t` (see [`WriterSpec::inline_transformation`]: `COMPACT`
/// without a ResultWriter, the `WriterConfig`'s transformation with `WriterConfig` only).
/// Successful children contribute their output (`COMPACT`), their output's elements
/// (`FLATTEN`) or their full record (`NONE`); other children always contribute their full
/// record (spec §2.8; for tolerated failures in the classic result this is inferred,
/// unconfirmed). `OutputType` does not change the state's result.
pub fn inline_result<'r>(
    records: impl IntoIterator<Item = &'r ChildRecord>,
    t: Transformation,
) -> Value {
    let mut out = Vec::new();
    for r in records {
        let _ = r.for_each_entry(t, |v| {
            out.push(v.clone());
            Ok::<(), std::convert::Infallible>(())
        });
    }
    Value::Array(out)
}
