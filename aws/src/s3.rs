//! S3 as the core's object store ([`ObjectStore`]).
//!
//! Blocking over the async SDK: every call runs on the adapter's runtime [`Handle`] with
//! `block_on`, so it must be called from a plain thread or a `spawn_blocking` thread.
//!
//! * `get` is a ranged GetObject whose body is streamed chunk by chunk through
//!   [`std::io::Read`]; no object is held in memory whole.
//! * `writer` streams a multipart upload in 8 MiB parts (a single PutObject when the whole
//!   object is smaller than one part) and aborts the upload when dropped unfinished or on error.
//! * Throttling (`SlowDown`) and 5xx are retried by the SDK's standard retry mode
//!   ([`crate::config::Aws::load`]); there is no second retry layer here.
//! * Every request is counted ([`S3Store::requests`]).

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use mapfleet_core::storage::{
    GetObject, ListPage, ObjectMeta, ObjectStore, ObjectWriter, PutIfAbsent, StoreError,
};
use tokio::runtime::Handle;

use crate::config::Aws;

/// Size of one multipart-upload part (S3's minimum is 5 MiB, except for the last part).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// S3 through the AWS SDK.
#[derive(Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    handle: Handle,
    expected_bucket_owner: Option<String>,
    requests: Arc<AtomicU64>,
}

impl S3Store {
    pub fn new(aws: &Aws) -> Self {
        Self::from_client(aws.s3(), aws.handle.clone())
    }

    /// A store over an already configured client.
    pub fn from_client(client: aws_sdk_s3::Client, handle: Handle) -> Self {
        S3Store {
            client,
            handle,
            expected_bucket_owner: None,
            requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Sends `ExpectedBucketOwner` with every request (a `GetObject`'s own
    /// `expected_bucket_owner` takes precedence for that request).
    pub fn with_expected_bucket_owner(mut self, owner: Option<String>) -> Self {
        self.expected_bucket_owner = owner;
        self
    }

    /// S3 requests sent so far (GET, PUT, LIST, HEAD and each multipart call count one).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The shared request counter (clones of this store share it).
    pub fn request_counter(&self) -> Arc<AtomicU64> {
        self.requests.clone()
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        crate::metrics::S3_REQUESTS.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether `bucket` exists, for telling a missing key from a missing bucket after a 404
    /// without a body (HeadObject).
    fn bucket_missing(&self, bucket: &str) -> bool {
        self.count();
        let res = self.handle.block_on(
            self.client
                .head_bucket()
                .bucket(bucket)
                .set_expected_bucket_owner(self.expected_bucket_owner.clone())
                .send(),
        );
        match res {
            Ok(_) => false,
            Err(e) => {
                let m = ErrMeta::of(&e);
                m.status == Some(404) || m.code.as_deref() == Some("NoSuchBucket")
            }
        }
    }
}

/// What an SDK error says: S3 code, message and HTTP status.
struct ErrMeta {
    code: Option<String>,
    message: String,
    status: Option<u16>,
}

impl ErrMeta {
    fn of<E>(e: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().map(str::to_string);
        let message = match (e.message(), &code) {
            (Some(m), _) => m.to_string(),
            (None, Some(_)) => String::new(),
            (None, None) => DisplayErrorContext(e).to_string(),
        };
        ErrMeta {
            code,
            message,
            status,
        }
    }
}

/// What an error is about, for the error variants that name it.
#[derive(Clone, Copy)]
struct Target<'a> {
    bucket: &'a str,
    key: &'a str,
    start: u64,
}

fn map_meta(op: &str, m: ErrMeta, t: Target<'_>) -> StoreError {
    match m.code.as_deref() {
        Some("NoSuchBucket") => StoreError::NoSuchBucket {
            bucket: t.bucket.to_string(),
        },
        Some("NoSuchKey") => StoreError::NoSuchKey {
            bucket: t.bucket.to_string(),
            key: t.key.to_string(),
        },
        Some("AccessDenied") | Some("AllAccessDisabled") | Some("InvalidAccessKeyId") => {
            StoreError::AccessDenied {
                bucket: t.bucket.to_string(),
                message: m.message,
            }
        }
        Some("InvalidRange") => StoreError::InvalidRange {
            bucket: t.bucket.to_string(),
            key: t.key.to_string(),
            start: t.start,
        },
        _ if m.status == Some(403) => StoreError::AccessDenied {
            bucket: t.bucket.to_string(),
            message: m.message,
        },
        _ if m.status == Some(416) => StoreError::InvalidRange {
            bucket: t.bucket.to_string(),
            key: t.key.to_string(),
            start: t.start,
        },
        Some(code) => StoreError::Other {
            message: format!("S3 {op} s3://{}/{}: {code}: {}", t.bucket, t.key, m.message),
        },
        None => StoreError::Other {
            message: format!(
                "S3 {op} s3://{}/{}: {}{}",
                t.bucket,
                t.key,
                m.status.map(|s| format!("HTTP {s}: ")).unwrap_or_default(),
                m.message
            ),
        },
    }
}

fn map_err<E>(op: &str, e: &SdkError<E, HttpResponse>, t: Target<'_>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    map_meta(op, ErrMeta::of(e), t)
}

fn to_chrono(t: Option<&aws_sdk_s3::primitives::DateTime>) -> DateTime<Utc> {
    t.and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos()))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// S3 returns ETags quoted; keep them so (add the quotes if an endpoint left them out).
fn quoted(etag: Option<&str>) -> String {
    match etag {
        Some(e) if e.starts_with('"') => e.to_string(),
        Some(e) => format!("\"{e}\""),
        None => "\"\"".to_string(),
    }
}

/// The `Range` header of a ranged read, or none for a whole object (so an empty object can be
/// read from 0).
fn range_header(start: u64, end: Option<u64>) -> Option<String> {
    match (start, end) {
        (0, None) => None,
        (s, None) => Some(format!("bytes={s}-")),
        (s, Some(e)) => Some(format!("bytes={s}-{e}")),
    }
}

impl ObjectStore for S3Store {
    fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectMeta, StoreError> {
        let t = Target {
            bucket,
            key,
            start: 0,
        };
        self.count();
        let res = self.handle.block_on(
            self.client
                .head_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(version_id.map(str::to_string))
                .set_expected_bucket_owner(self.expected_bucket_owner.clone())
                .send(),
        );
        match res {
            Ok(out) => Ok(ObjectMeta {
                key: key.to_string(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
                etag: quoted(out.e_tag()),
                last_modified: to_chrono(out.last_modified()),
                storage_class: out
                    .storage_class()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "STANDARD".into()),
                version_id: out.version_id().map(str::to_string),
            }),
            Err(e) => {
                let m = ErrMeta::of(&e);
                // HEAD responses have no body: a 404 says "NotFound" whatever is missing.
                if m.status == Some(404)
                    || matches!(m.code.as_deref(), Some("NotFound") | Some("NoSuchKey"))
                {
                    if self.bucket_missing(bucket) {
                        return Err(StoreError::NoSuchBucket {
                            bucket: bucket.to_string(),
                        });
                    }
                    return Err(StoreError::NoSuchKey {
                        bucket: bucket.to_string(),
                        key: key.to_string(),
                    });
                }
                Err(map_meta("HeadObject", m, t))
            }
        }
    }

    fn get(&self, req: &GetObject<'_>) -> Result<Box<dyn Read + Send>, StoreError> {
        let t = Target {
            bucket: req.bucket,
            key: req.key,
            start: req.start,
        };
        let owner = req
            .expected_bucket_owner
            .map(str::to_string)
            .or_else(|| self.expected_bucket_owner.clone());
        self.count();
        let res = self.handle.block_on(
            self.client
                .get_object()
                .bucket(req.bucket)
                .key(req.key)
                .set_range(range_header(req.start, req.end))
                .set_version_id(req.version_id.map(str::to_string))
                .set_expected_bucket_owner(owner)
                .send(),
        );
        match res {
            Ok(out) => Ok(Box::new(BodyReader {
                handle: self.handle.clone(),
                body: out.body,
                chunk: Bytes::new(),
                done: false,
                what: format!("s3://{}/{}", req.bucket, req.key),
            })),
            Err(e) => Err(map_err("GetObject", &e, t)),
        }
    }

    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        continuation_token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, StoreError> {
        let t = Target {
            bucket,
            key: prefix,
            start: 0,
        };
        let max_keys = i32::try_from(max_keys.clamp(1, 1000)).unwrap_or(1000);
        self.count();
        let res = self.handle.block_on(
            self.client
                .list_objects_v2()
                .bucket(bucket)
                .set_prefix((!prefix.is_empty()).then(|| prefix.to_string()))
                .set_continuation_token(continuation_token.map(str::to_string))
                .max_keys(max_keys)
                .set_expected_bucket_owner(self.expected_bucket_owner.clone())
                .send(),
        );
        let out = res.map_err(|e| map_err("ListObjectsV2", &e, t))?;
        let objects = out
            .contents()
            .iter()
            .map(|o| ObjectMeta {
                key: o.key().unwrap_or_default().to_string(),
                size: o.size().unwrap_or(0).max(0) as u64,
                etag: quoted(o.e_tag()),
                last_modified: to_chrono(o.last_modified()),
                storage_class: o
                    .storage_class()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "STANDARD".into()),
                version_id: None,
            })
            .collect();
        let next = if out.is_truncated().unwrap_or(false) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(ListPage {
            objects,
            next_continuation_token: next,
        })
    }

    fn put(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), StoreError> {
        let t = Target {
            bucket,
            key,
            start: 0,
        };
        self.count();
        self.handle
            .block_on(
                self.client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(ByteStream::from(body.to_vec()))
                    .set_expected_bucket_owner(self.expected_bucket_owner.clone())
                    .send(),
            )
            .map_err(|e| map_err("PutObject", &e, t))?;
        Ok(())
    }

    fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
    ) -> Result<PutIfAbsent, StoreError> {
        let t = Target {
            bucket,
            key,
            start: 0,
        };
        self.count();
        let sent = self.handle.block_on(
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .if_none_match("*")
                .body(ByteStream::from(body.to_vec()))
                .set_expected_bucket_owner(self.expected_bucket_owner.clone())
                .send(),
        );
        match sent {
            Ok(_) => Ok(PutIfAbsent::Created),
            Err(e) => {
                let meta = ErrMeta::of(&e);
                // 412 PreconditionFailed: the key exists. (409 ConditionalRequestConflict:
                // a concurrent conditional write won the race.)
                if matches!(meta.status, Some(412) | Some(409))
                    || matches!(
                        meta.code.as_deref(),
                        Some("PreconditionFailed") | Some("ConditionalRequestConflict")
                    )
                {
                    Ok(PutIfAbsent::Exists)
                } else {
                    Err(map_meta("PutObject", meta, t))
                }
            }
        }
    }

    fn writer(&self, bucket: &str, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        Ok(Box::new(S3Writer {
            store: self.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            buf: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            written: 0,
            failed: None,
        }))
    }
}

/// A GetObject body read chunk by chunk.
struct BodyReader {
    handle: Handle,
    body: ByteStream,
    chunk: Bytes,
    done: bool,
    what: String,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.chunk.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.handle.block_on(self.body.next()) {
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(io::Error::other(format!(
                        "reading {}: {}",
                        self.what,
                        DisplayErrorContext(&e)
                    )));
                }
                None => self.done = true,
            }
        }
        let n = buf.len().min(self.chunk.len());
        let part = self.chunk.split_to(n);
        buf[..n].copy_from_slice(&part);
        Ok(n)
    }
}

/// A streamed upload: buffers one part, uploads it when full.
struct S3Writer {
    store: S3Store,
    bucket: String,
    key: String,
    buf: Vec<u8>,
    /// Set once the first full part starts a multipart upload.
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    written: u64,
    /// A failed part upload: the upload was aborted, later writes fail with this.
    failed: Option<StoreError>,
}

impl S3Writer {
    fn target(&self) -> Target<'_> {
        Target {
            bucket: &self.bucket,
            key: &self.key,
            start: 0,
        }
    }

    fn owner(&self) -> Option<String> {
        self.store.expected_bucket_owner.clone()
    }

    fn upload_id(&mut self) -> Result<String, StoreError> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let s = &self.store;
        s.count();
        let out = s
            .handle
            .block_on(
                s.client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .set_expected_bucket_owner(self.owner())
                    .send(),
            )
            .map_err(|e| map_err("CreateMultipartUpload", &e, self.target()))?;
        let id = out
            .upload_id()
            .ok_or_else(|| StoreError::Other {
                message: format!(
                    "S3 CreateMultipartUpload s3://{}/{}: no UploadId in the response",
                    self.bucket, self.key
                ),
            })?
            .to_string();
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    /// Uploads the buffer as the next part.
    fn upload_part(&mut self) -> Result<(), StoreError> {
        let id = self.upload_id()?;
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(PART_SIZE));
        let number = i32::try_from(self.parts.len() + 1).map_err(|_| StoreError::Other {
            message: "S3 UploadPart: too many parts".into(),
        })?;
        let s = &self.store;
        s.count();
        let out = s
            .handle
            .block_on(
                s.client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .upload_id(&id)
                    .part_number(number)
                    .body(ByteStream::from(body))
                    .set_expected_bucket_owner(self.owner())
                    .send(),
            )
            .map_err(|e| map_err("UploadPart", &e, self.target()))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }

    fn abort(&mut self) {
        let Some(id) = self.upload_id.take() else {
            return;
        };
        let s = &self.store;
        s.count();
        let res = s.handle.block_on(
            s.client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(id)
                .set_expected_bucket_owner(self.owner())
                .send(),
        );
        if let Err(e) = res {
            tracing::warn!(
                bucket = %self.bucket,
                key = %self.key,
                "aborting a multipart upload failed: {}",
                DisplayErrorContext(&e)
            );
        }
    }

    fn finish(&mut self) -> Result<u64, StoreError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(id) = self.upload_id.clone() else {
            // Smaller than one part: one PutObject.
            let body = std::mem::take(&mut self.buf);
            let s = &self.store;
            s.count();
            s.handle
                .block_on(
                    s.client
                        .put_object()
                        .bucket(&self.bucket)
                        .key(&self.key)
                        .body(ByteStream::from(body))
                        .set_expected_bucket_owner(self.owner())
                        .send(),
                )
                .map_err(|e| map_err("PutObject", &e, self.target()))?;
            return Ok(self.written);
        };
        if !self.buf.is_empty() {
            self.upload_part()?;
        }
        let parts = std::mem::take(&mut self.parts);
        let s = &self.store;
        s.count();
        s.handle
            .block_on(
                s.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .upload_id(&id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .set_expected_bucket_owner(self.owner())
                    .send(),
            )
            .map_err(|e| map_err("CompleteMultipartUpload", &e, self.target()))?;
        self.upload_id = None;
        Ok(self.written)
    }
}

impl Write for S3Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(io::Error::other(e.clone()));
        }
        if data.is_empty() {
            return Ok(0);
        }
        // Take at most what fills the current part, so parts are exactly PART_SIZE.
        let n = data.len().min(PART_SIZE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.written += n as u64;
        if self.buf.len() >= PART_SIZE {
            if let Err(e) = self.upload_part() {
                self.abort();
                self.failed = Some(e.clone());
                return Err(io::Error::other(e));
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for S3Writer {
    fn complete(mut self: Box<Self>) -> Result<u64, StoreError> {
        let res = self.finish();
        if res.is_err() {
            self.abort();
        }
        res
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        // Unfinished (dropped without `complete`): no parts are left behind.
        self.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers() {
        assert_eq!(range_header(0, None), None);
        assert_eq!(range_header(5, None).as_deref(), Some("bytes=5-"));
        assert_eq!(range_header(0, Some(9)).as_deref(), Some("bytes=0-9"));
        assert_eq!(range_header(3, Some(4)).as_deref(), Some("bytes=3-4"));
    }

    #[test]
    fn etags_keep_their_quotes() {
        assert_eq!(quoted(Some("\"abc\"")), "\"abc\"");
        assert_eq!(quoted(Some("abc")), "\"abc\"");
    }
}
