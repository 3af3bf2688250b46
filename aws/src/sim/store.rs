//! S3 for the simulation: any object store (a local folder) with every request counted at
//! its S3 price class, modeled latency, and injected faults.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mapfleet_core::storage::{
    GetObject, ListPage, ObjectMeta, ObjectStore, ObjectWriter, PutIfAbsent, StoreError,
};
use rand::{Rng, SeedableRng};

use super::meter::{spend, Meter};
use crate::s3::PART_SIZE;

/// Latency a simulated service adds to each request (to billed durations; slept as well when
/// `sleep` is set).
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub get: Duration,
    pub put: Duration,
    pub list: Duration,
    pub sleep: bool,
}

impl Latency {
    /// Typical same-region S3 request times.
    pub fn s3() -> Self {
        Latency {
            get: Duration::from_millis(15),
            put: Duration::from_millis(25),
            list: Duration::from_millis(30),
            sleep: false,
        }
    }

    fn spend(&self, d: Duration) {
        spend(d);
        if self.sleep {
            std::thread::sleep(d);
        }
    }
}

/// Faults injected at a rate: a share of requests fail (S3 `SlowDown`, 503) before they
/// reach the store.
pub struct Faults {
    pub rate: f64,
    rng: Mutex<rand::rngs::StdRng>,
}

impl Faults {
    pub fn new(rate: f64, seed: u64) -> Self {
        Faults {
            rate,
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
        }
    }

    pub fn none() -> Self {
        Self::new(0.0, 0)
    }

    /// Whether this request fails.
    pub fn strike(&self) -> bool {
        self.rate > 0.0
            && self
                .rng
                .lock()
                .map(|mut r| r.gen::<f64>() < self.rate)
                .unwrap_or(false)
    }
}

pub struct MeteredStore {
    pub inner: Arc<dyn ObjectStore>,
    pub meter: Arc<Meter>,
    pub latency: Latency,
    pub faults: Faults,
}

impl MeteredStore {
    fn fault(&self, op: &str, bucket: &str, key: &str) -> Result<(), StoreError> {
        if self.faults.strike() {
            self.meter
                .faults
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(StoreError::Other {
                message: format!(
                    "SlowDown: Please reduce your request rate (injected; {op} s3://{bucket}/{key})"
                ),
            });
        }
        Ok(())
    }
}

impl ObjectStore for MeteredStore {
    fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectMeta, StoreError> {
        self.meter.s3_get();
        self.latency.spend(self.latency.get);
        self.fault("HeadObject", bucket, key)?;
        self.inner.head(bucket, key, version_id)
    }

    fn get(&self, req: &GetObject<'_>) -> Result<Box<dyn Read + Send>, StoreError> {
        self.meter.s3_get();
        self.latency.spend(self.latency.get);
        self.fault("GetObject", req.bucket, req.key)?;
        self.inner.get(req)
    }

    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        continuation_token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, StoreError> {
        self.meter.s3_list();
        self.latency.spend(self.latency.list);
        self.fault("ListObjectsV2", bucket, prefix)?;
        self.inner
            .list(bucket, prefix, continuation_token, max_keys.clamp(1, 1000))
    }

    fn put(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), StoreError> {
        self.meter.s3_put(body.len());
        self.latency.spend(self.latency.put);
        self.fault("PutObject", bucket, key)?;
        self.inner.put(bucket, key, body)
    }

    fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
    ) -> Result<PutIfAbsent, StoreError> {
        self.meter.s3_put(body.len());
        self.latency.spend(self.latency.put);
        self.fault("PutObject", bucket, key)?;
        self.inner.put_if_absent(bucket, key, body)
    }

    fn writer(&self, bucket: &str, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        self.fault("CreateMultipartUpload", bucket, key)?;
        Ok(Box::new(MeteredWriter {
            inner: self.inner.writer(bucket, key)?,
            meter: self.meter.clone(),
            latency: self.latency,
            written: 0,
        }))
    }
}

/// A streamed upload, billed as S3Store sends it: one PutObject up to a part, else a
/// multipart upload (create, a part per 8 MiB, complete).
struct MeteredWriter {
    inner: Box<dyn ObjectWriter>,
    meter: Arc<Meter>,
    latency: Latency,
    written: usize,
}

impl Write for MeteredWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl ObjectWriter for MeteredWriter {
    fn complete(self: Box<Self>) -> Result<u64, StoreError> {
        let parts = self.written.div_ceil(PART_SIZE).max(1);
        let requests = if parts > 1 { parts + 2 } else { 1 };
        for _ in 0..requests {
            self.meter.s3_put(0);
            self.latency.spend(self.latency.put);
        }
        self.meter
            .s3_bytes_written
            .fetch_add(self.written as u64, std::sync::atomic::Ordering::Relaxed);
        self.inner.complete()
    }
}
