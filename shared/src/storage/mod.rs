//! The object-store port (S3 in AWS, a local folder on one machine) and its local adapter.
//!
//! Blocking and streaming: readers consume objects through `std::io::Read` with byte ranges,
//! so a Map Run can checkpoint a byte position and resume with a ranged read; writers stream
//! large result files in parts (a multipart upload in S3).

pub mod local;

use std::io::{Read, Write};

use chrono::{DateTime, Utc};

pub use local::LocalFolderStore;

/// An object's metadata, as ListObjectsV2/HeadObject report it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// With its quotes, as S3 returns it: `"d41d8cd98f00b204e9800998ecf8427e"`.
    pub etag: String,
    pub last_modified: DateTime<Utc>,
    pub storage_class: String,
    pub version_id: Option<String>,
}

/// A GetObject request.
#[derive(Debug, Clone, Default)]
pub struct GetObject<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// First byte to read (a ranged read from here to the end).
    pub start: u64,
    /// Last byte to read, inclusive.
    pub end: Option<u64>,
    pub version_id: Option<&'a str>,
    pub expected_bucket_owner: Option<&'a str>,
}

/// One page of ListObjectsV2.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectMeta>,
    pub next_continuation_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("The specified bucket does not exist (Bucket: {bucket})")]
    NoSuchBucket { bucket: String },
    #[error("The specified key does not exist (Bucket: {bucket}, Key: {key})")]
    NoSuchKey { bucket: String, key: String },
    #[error("Access Denied (Bucket: {bucket}): {message}")]
    AccessDenied { bucket: String, message: String },
    #[error(
        "The requested range is not satisfiable (Bucket: {bucket}, Key: {key}, start {start})"
    )]
    InvalidRange {
        bucket: String,
        key: String,
        start: u64,
    },
    #[error("{message}")]
    Other { message: String },
}

impl StoreError {
    /// The S3 error code (`NoSuchKey`, …), as `S3.<code>` error names use it.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NoSuchBucket { .. } => "NoSuchBucket",
            StoreError::NoSuchKey { .. } => "NoSuchKey",
            StoreError::AccessDenied { .. } => "AccessDenied",
            StoreError::InvalidRange { .. } => "InvalidRange",
            StoreError::Other { .. } => "InternalError",
        }
    }
}

/// What a conditional put ([`ObjectStore::put_if_absent`]) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutIfAbsent {
    /// The object did not exist: it holds the body now.
    Created,
    /// An object had the key already (S3: 412 Precondition Failed): it was left as it was.
    Exists,
}

/// A streamed upload: parts are written as they come, the object appears on `complete`.
pub trait ObjectWriter: Write + Send {
    /// Finishes the upload; returns the object's size in bytes.
    fn complete(self: Box<Self>) -> Result<u64, StoreError>;
}

/// S3-like object storage.
pub trait ObjectStore: Send + Sync {
    fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectMeta, StoreError>;
    /// Streams an object's bytes from `req.start` (to `req.end`, inclusive).
    fn get(&self, req: &GetObject<'_>) -> Result<Box<dyn Read + Send>, StoreError>;
    /// ListObjectsV2: keys under `prefix` in lexicographic order, at most `max_keys` per page.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        continuation_token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, StoreError>;
    /// PutObject of a small body.
    fn put(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), StoreError>;
    /// PutObject with `If-None-Match: *`: the object is written only when no object has the
    /// key, atomically — of two writers the first wins and the other gets
    /// [`PutIfAbsent::Exists`]. Stores that cannot do it say so with an error.
    fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        _body: &[u8],
    ) -> Result<PutIfAbsent, StoreError> {
        Err(StoreError::Other {
            message: format!("conditional writes are not supported here (s3://{bucket}/{key})"),
        })
    }
    /// Starts a streamed (multipart) upload.
    fn writer(&self, bucket: &str, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError>;
}
