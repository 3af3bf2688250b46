//! Process-wide request counters (each adapter also counts per instance): what a function
//! logs after every invocation, so a run's S3 requests and DynamoDB writes per 1,000 items can
//! be read off its logs.

use std::sync::atomic::{AtomicU64, Ordering};

pub static S3_REQUESTS: AtomicU64 = AtomicU64::new(0);
pub static DYNAMODB_WRITES: AtomicU64 = AtomicU64::new(0);
pub static DYNAMODB_READS: AtomicU64 = AtomicU64::new(0);

/// `(s3 requests, dynamodb item writes, dynamodb read requests)` since the process started.
pub fn snapshot() -> (u64, u64, u64) {
    (
        S3_REQUESTS.load(Ordering::Relaxed),
        DYNAMODB_WRITES.load(Ordering::Relaxed),
        DYNAMODB_READS.load(Ordering::Relaxed),
    )
}

/// Logs the counters (cumulative for this function instance).
pub fn log(what: &str) {
    let (s3, writes, reads) = snapshot();
    tracing::info!(
        metric = what,
        s3_requests = s3,
        dynamodb_writes = writes,
        dynamodb_reads = reads,
        "request counters"
    );
}
