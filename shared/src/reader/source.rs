//! Opening one object as a byte stream: ranged GETs, gzip/zstd detection, and a buffered
//! byte source that knows its absolute offset and line in the (decompressed) stream.
//!
//! Resuming: a plain object is reopened with a ranged GET at the checkpoint offset. A gzip or
//! zstd object cannot be entered in the middle, so it is fetched from its first byte,
//! decompressed, and the first `offset` decompressed bytes are skipped through a small
//! buffer (`io::copy` into `io::sink`): that costs a re-decompression, never memory.

use std::io::{self, Read};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::{s3_uri, Location, ReaderError};
use crate::storage::{GetObject, ObjectStore, StoreError};

/// External compression of a data object (spec §2.3.2: GZIP or ZSTD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Zstd,
}

/// One object to read, with the GET options that apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub expected_bucket_owner: Option<String>,
}

impl Target {
    pub fn plain(bucket: &str, key: &str) -> Self {
        Target {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: None,
            expected_bucket_owner: None,
        }
    }

    pub fn uri(&self) -> String {
        s3_uri(&self.bucket, &self.key)
    }

    fn get<'a>(&'a self, start: u64, end: Option<u64>) -> GetObject<'a> {
        GetObject {
            bucket: &self.bucket,
            key: &self.key,
            start,
            end,
            version_id: self.version_id.as_deref(),
            expected_bucket_owner: self.expected_bucket_owner.as_deref(),
        }
    }

    pub fn store_err(&self, e: StoreError) -> ReaderError {
        ReaderError::store(&self.bucket, &self.key, e)
    }

    /// Streams the raw bytes from `start` to the end (`None` when `start` is past the end).
    pub fn get_raw(
        &self,
        store: &dyn ObjectStore,
        start: u64,
    ) -> Result<Option<Box<dyn Read + Send>>, ReaderError> {
        match store.get(&self.get(start, None)) {
            Ok(r) => Ok(Some(r)),
            // A checkpoint taken after the last byte: nothing is left to read.
            Err(StoreError::InvalidRange { .. }) if start > 0 => Ok(None),
            Err(e) => Err(self.store_err(e)),
        }
    }

    /// Reads `len` bytes at `start` (a ranged GET: Parquet footers and row groups).
    #[cfg(feature = "parquet")]
    pub fn get_range(
        &self,
        store: &dyn ObjectStore,
        start: u64,
        len: u64,
    ) -> Result<Vec<u8>, ReaderError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut r = store
            .get(&self.get(start, Some(start + len - 1)))
            .map_err(|e| self.store_err(e))?;
        let mut out = Vec::with_capacity(len.min(1 << 24) as usize);
        r.by_ref()
            .take(len)
            .read_to_end(&mut out)
            .map_err(|e| ReaderError::Io {
                at: Location {
                    uri: self.uri(),
                    offset: Some(start),
                    ..Default::default()
                },
                message: e.to_string(),
            })?;
        if (out.len() as u64) != len {
            return Err(ReaderError::Io {
                at: Location {
                    uri: self.uri(),
                    offset: Some(start),
                    ..Default::default()
                },
                message: format!("expected {len} bytes, the object returned {}", out.len()),
            });
        }
        Ok(out)
    }
}

/// Recognises compression from the first bytes; `Err` names an unsupported one.
fn sniff(prefix: &[u8], key: &str) -> Result<Compression, String> {
    if prefix.starts_with(&[0x1f, 0x8b]) {
        return Ok(Compression::Gzip);
    }
    if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(Compression::Zstd);
    }
    if prefix.starts_with(b"BZh") {
        return Err("BZIP2".into());
    }
    if prefix.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Err("XZ".into());
    }
    if prefix.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        return Err("LZ4".into());
    }
    if prefix.starts_with(b"PK\x03\x04") {
        return Err("ZIP".into());
    }
    // A compression extension on data that is not compressed that way.
    let lower = key.to_ascii_lowercase();
    for (ext, name) in [
        (".bz2", "BZIP2"),
        (".xz", "XZ"),
        (".lz4", "LZ4"),
        (".zip", "ZIP"),
        (".br", "BROTLI"),
        (".snappy", "SNAPPY"),
    ] {
        if lower.ends_with(ext) {
            return Err(name.into());
        }
    }
    Ok(Compression::None)
}

fn decompress(
    raw: Box<dyn Read + Send>,
    c: Compression,
    target: &Target,
) -> Result<Box<dyn Read + Send>, ReaderError> {
    Ok(match c {
        Compression::None => raw,
        // Multi-member gzip (concatenated streams) is valid gzip: read every member.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(64 * 1024, raw),
        )),
        Compression::Zstd => {
            Box::new(
                zstd::stream::read::Decoder::new(raw).map_err(|e| ReaderError::Io {
                    at: Location {
                        uri: target.uri(),
                        offset: Some(0),
                        ..Default::default()
                    },
                    message: format!("cannot start zstd decompression: {e}"),
                })?,
            )
        }
    })
}

/// Opens a data object at decompressed offset `start`.
///
/// `known`: the compression recorded in a checkpoint (`None` on a fresh start, which sniffs the
/// first bytes). Returns the stream (or `None` when nothing is left) and the compression.
pub(crate) fn open_data(
    store: &dyn ObjectStore,
    target: &Target,
    start: u64,
    known: Option<Compression>,
) -> Result<(Option<Box<dyn Read + Send>>, Compression), ReaderError> {
    let compression = match known {
        Some(c) => c,
        None => {
            if start != 0 {
                return Err(ReaderError::BadResume {
                    message: format!(
                        "a checkpoint inside {} must record the object's compression",
                        target.uri()
                    ),
                });
            }
            let Some(mut raw) = target.get_raw(store, 0)? else {
                return Ok((None, Compression::None));
            };
            let mut prefix = Vec::with_capacity(8);
            (&mut raw)
                .take(8)
                .read_to_end(&mut prefix)
                .map_err(|e| ReaderError::Io {
                    at: Location {
                        uri: target.uri(),
                        offset: Some(0),
                        line: Some(1),
                        index: None,
                    },
                    message: e.to_string(),
                })?;
            let c = sniff(&prefix, &target.key).map_err(|kind| {
                ReaderError::UnsupportedCompression {
                    uri: target.uri(),
                    kind,
                }
            })?;
            let whole: Box<dyn Read + Send> = Box::new(io::Cursor::new(prefix).chain(raw));
            return Ok((Some(decompress(whole, c, target)?), c));
        }
    };
    match compression {
        Compression::None => Ok((target.get_raw(store, start)?, compression)),
        _ => {
            let Some(raw) = target.get_raw(store, 0)? else {
                return Ok((None, compression));
            };
            let mut r = decompress(raw, compression, target)?;
            if start > 0 {
                let skipped =
                    io::copy(&mut (&mut r).take(start), &mut io::sink()).map_err(|e| {
                        ReaderError::Io {
                            at: Location {
                                uri: target.uri(),
                                offset: Some(start),
                                ..Default::default()
                            },
                            message: format!("cannot decompress up to the checkpoint: {e}"),
                        }
                    })?;
                if skipped < start {
                    return Err(ReaderError::BadResume {
                        message: format!(
                            "{} decompresses to {skipped} bytes, fewer than the checkpoint offset {start}",
                            target.uri()
                        ),
                    });
                }
            }
            Ok((Some(r), compression))
        }
    }
}

/// A buffered byte stream that tracks the absolute offset and 1-based line of the next byte.
pub(crate) struct ByteSource {
    inner: Option<Box<dyn Read + Send>>,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    /// Offset of `buf[pos]` in the whole (decompressed) object.
    pub offset: u64,
    /// Line of `buf[pos]`.
    pub line: u64,
    pub uri: String,
}

const BUF_SIZE: usize = 64 * 1024;

impl ByteSource {
    pub fn new(inner: Option<Box<dyn Read + Send>>, offset: u64, line: u64, uri: String) -> Self {
        ByteSource {
            inner,
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            pos: 0,
            len: 0,
            offset,
            line,
            uri,
        }
    }

    pub fn io_error(&self, e: io::Error, index: Option<u64>) -> ReaderError {
        ReaderError::Io {
            at: Location {
                uri: self.uri.clone(),
                line: Some(self.line),
                offset: Some(self.offset),
                index,
            },
            message: e.to_string(),
        }
    }

    pub fn location(&self, index: Option<u64>) -> Location {
        Location {
            uri: self.uri.clone(),
            line: Some(self.line),
            offset: Some(self.offset),
            index,
        }
    }

    /// The buffered bytes not consumed yet; refills when empty. Empty ⇒ end of stream.
    pub fn available(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.len {
            self.pos = 0;
            self.len = 0;
            if let Some(r) = self.inner.as_mut() {
                loop {
                    match r.read(&mut self.buf) {
                        Ok(0) => {
                            self.inner = None;
                            break;
                        }
                        Ok(n) => {
                            self.len = n;
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(&self.buf[self.pos..self.len])
    }

    /// [`available`](Self::available) with the error located at the current position.
    pub fn fill(&mut self, index: Option<u64>) -> Result<&[u8], ReaderError> {
        if let Err(e) = self.available() {
            return Err(self.io_error(e, index));
        }
        Ok(&self.buf[self.pos..self.len])
    }

    /// Consumes `n` bytes of [`available`](Self::available), counting newlines.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len - self.pos);
        let lines = self.buf[self.pos..self.pos + n]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += lines as u64;
        self.pos += n;
        self.offset += n as u64;
    }

    pub fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.available()?.first().copied())
    }

    #[cfg(test)]
    pub fn next_byte(&mut self) -> io::Result<Option<u8>> {
        let b = self.peek()?;
        if let Some(b) = b {
            self.pos += 1;
            self.offset += 1;
            if b == b'\n' {
                self.line += 1;
            }
        }
        Ok(b)
    }

    /// Skips a UTF-8 byte order mark at the very start of an object.
    pub fn skip_bom(&mut self) -> io::Result<()> {
        if self.offset != 0 {
            return Ok(());
        }
        // A first read shorter than 3 bytes (only from a degenerate `Read`) keeps its bytes.
        if self.available()?.starts_with(&[0xef, 0xbb, 0xbf]) {
            self.consume(3);
        }
        Ok(())
    }
}

/// An in-memory store of one object, for [`open_bytes`](super::open_bytes).
pub(crate) struct BytesStore {
    pub bucket: String,
    pub key: String,
    pub data: Arc<Vec<u8>>,
}

impl ObjectStore for BytesStore {
    fn head(
        &self,
        bucket: &str,
        key: &str,
        _v: Option<&str>,
    ) -> Result<crate::storage::ObjectMeta, StoreError> {
        if bucket != self.bucket || key != self.key {
            return Err(StoreError::NoSuchKey {
                bucket: bucket.into(),
                key: key.into(),
            });
        }
        Ok(crate::storage::ObjectMeta {
            key: key.to_string(),
            size: self.data.len() as u64,
            etag: String::new(),
            last_modified: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            storage_class: "STANDARD".into(),
            version_id: None,
        })
    }

    fn get(&self, req: &GetObject<'_>) -> Result<Box<dyn Read + Send>, StoreError> {
        if req.bucket != self.bucket || req.key != self.key {
            return Err(StoreError::NoSuchKey {
                bucket: req.bucket.into(),
                key: req.key.into(),
            });
        }
        let len = self.data.len() as u64;
        if req.start > 0 && req.start >= len {
            return Err(StoreError::InvalidRange {
                bucket: req.bucket.into(),
                key: req.key.into(),
                start: req.start,
            });
        }
        let end = req.end.map(|e| e.saturating_add(1).min(len)).unwrap_or(len);
        let start = req.start.min(end);
        Ok(Box::new(io::Cursor::new(SharedSlice {
            data: self.data.clone(),
            start: start as usize,
            end: end as usize,
        })))
    }

    fn list(
        &self,
        bucket: &str,
        _p: &str,
        _c: Option<&str>,
        _m: usize,
    ) -> Result<crate::storage::ListPage, StoreError> {
        Err(StoreError::NoSuchBucket {
            bucket: bucket.into(),
        })
    }

    fn put(&self, _bucket: &str, _key: &str, _body: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::Other {
            message: "read-only".into(),
        })
    }

    fn writer(
        &self,
        _bucket: &str,
        _key: &str,
    ) -> Result<Box<dyn crate::storage::ObjectWriter>, StoreError> {
        Err(StoreError::Other {
            message: "read-only".into(),
        })
    }
}

struct SharedSlice {
    data: Arc<Vec<u8>>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for SharedSlice {
    fn as_ref(&self) -> &[u8] {
        self.data.get(self.start..self.end).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0], "x"), Ok(Compression::Gzip));
        assert_eq!(
            sniff(&[0x28, 0xb5, 0x2f, 0xfd], "x.csv"),
            Ok(Compression::Zstd)
        );
        assert_eq!(sniff(b"a,b,c", "x.csv"), Ok(Compression::None));
        assert_eq!(sniff(b"", "x.json"), Ok(Compression::None));
        assert_eq!(sniff(b"BZh91AY", "x.csv.bz2"), Err("BZIP2".into()));
        assert_eq!(sniff(b"a,b", "x.csv.snappy"), Err("SNAPPY".into()));
    }

    #[test]
    fn byte_source_tracks_offset_and_line() {
        let data = b"ab\ncd\n\nef".to_vec();
        let mut s = ByteSource::new(
            Some(Box::new(io::Cursor::new(data))),
            10,
            4,
            "s3://b/k".into(),
        );
        assert_eq!(s.next_byte().unwrap(), Some(b'a'));
        assert_eq!((s.offset, s.line), (11, 4));
        s.consume(2);
        assert_eq!((s.offset, s.line), (13, 5));
        let rest = s.available().unwrap().to_vec();
        assert_eq!(rest, b"cd\n\nef");
        s.consume(rest.len());
        assert_eq!((s.offset, s.line), (19, 7));
        assert_eq!(s.peek().unwrap(), None);
    }

    #[test]
    fn bytes_store_ranges() {
        let s = BytesStore {
            bucket: "b".into(),
            key: "k".into(),
            data: Arc::new(b"hello world".to_vec()),
        };
        let mut out = String::new();
        s.get(&GetObject {
            bucket: "b",
            key: "k",
            start: 6,
            ..Default::default()
        })
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
        assert_eq!(out, "world");
        let mut out = String::new();
        s.get(&GetObject {
            bucket: "b",
            key: "k",
            start: 0,
            end: Some(4),
            ..Default::default()
        })
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
        assert_eq!(out, "hello");
        assert!(matches!(
            s.get(&GetObject {
                bucket: "b",
                key: "k",
                start: 11,
                ..Default::default()
            }),
            Err(StoreError::InvalidRange { .. })
        ));
    }
}
