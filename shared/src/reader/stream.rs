//! The item streams: one object, a listing (metadata or LOAD_AND_FLATTEN), Athena and S3
//! Inventory manifests — and their checkpoints.
//!
//! Every data source is a sequence of objects ([`ObjectSeq`]) read one after the other by an
//! [`OpenObject`]. A checkpoint names the sequence position of the object of the last item
//! returned (listing page token and key, or manifest line) plus the place inside that object.
//! Readers only move their checkpoint state when an item has been returned, so after a
//! failed `next()` the position still points just after the last good item.

use std::io::Read;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::csv::CsvObject;
use super::error::{s3_uri, Format, Location, ReaderError};
use super::json::{JsonObject, JsonlObject};
use super::parquet::ParquetObject;
use super::source::{open_data, ByteSource, Compression, Target};
use super::spec::{CsvHeader, CsvOptions, FileFormat, ObjectRef};
use super::{Item, ItemStream, ListingCursor, ManifestCursor, ObjectCursor, Position};
use crate::storage::{ObjectMeta, ObjectStore};

/// ListObjectsV2's default (and maximum) page size; 3 in unit tests, to exercise paging.
pub(crate) const LIST_PAGE: usize = if cfg!(test) { 3 } else { 1000 };
/// The largest S3 Inventory `manifest.json` read (it lists data files, not objects).
const MAX_INVENTORY_MANIFEST: u64 = 64 * 1024 * 1024;
/// The longest line of an Athena manifest (one S3 URI).
const MAX_MANIFEST_LINE: usize = 64 * 1024;

impl ObjectRef {
    pub(crate) fn target(&self) -> Target {
        Target {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version_id: self.version_id.clone(),
            expected_bucket_owner: self.expected_bucket_owner.clone(),
        }
    }
}

enum Reader {
    Csv(CsvObject),
    Json(JsonObject),
    Jsonl(JsonlObject),
    Parquet(ParquetObject),
    /// A checkpoint at the very end of a plain object: nothing left.
    Empty {
        offset: u64,
        line: u64,
    },
}

/// One object being read.
pub(crate) struct OpenObject {
    target: Target,
    compression: Compression,
    reader: Reader,
    /// Items returned from this object (including before a resume).
    items: u64,
    /// Checkpoint state as of the last item returned: offset, line, header / container.
    good_offset: u64,
    good_line: u64,
    good_header: Option<Arc<Vec<String>>>,
    good_container: Option<super::json::JsonContainer>,
    source: Arc<str>,
}

impl OpenObject {
    pub fn open(
        store: &Arc<dyn ObjectStore>,
        target: Target,
        size: Option<u64>,
        format: &FileFormat,
        resume: Option<&ObjectCursor>,
    ) -> Result<Self, ReaderError> {
        let uri = target.uri();
        let source: Arc<str> = Arc::from(format!("S3://{}/{}", target.bucket, target.key));
        let items = resume.map(|c| c.items_read).unwrap_or(0);
        if let FileFormat::Parquet = format {
            let cursor = resume.and_then(|c| c.parquet).unwrap_or_default();
            let p = ParquetObject::open(store.clone(), target.clone(), size, cursor)?;
            return Ok(OpenObject {
                target,
                compression: Compression::None,
                reader: Reader::Parquet(p),
                items,
                good_offset: 0,
                good_line: 0,
                good_header: None,
                good_container: None,
                source,
            });
        }
        let (offset, line) = resume.map(|c| (c.offset, c.line.max(1))).unwrap_or((0, 1));
        let (stream, compression) = open_data(
            store.as_ref(),
            &target,
            offset,
            resume.map(|c| c.compression),
        )?;
        let header = resume.and_then(|c| c.csv_header.clone());
        let container = resume.and_then(|c| c.json_container);
        let reader = match stream {
            None => Reader::Empty { offset, line },
            Some(s) => {
                let src = ByteSource::new(Some(s), offset, line, uri);
                match format {
                    FileFormat::Csv(o) => {
                        if offset > 0 && o.header == CsvHeader::FirstRow && header.is_none() {
                            return Err(ReaderError::BadResume {
                                message: format!(
                                    "the checkpoint inside {} has no CSV header",
                                    target.uri()
                                ),
                            });
                        }
                        Reader::Csv(CsvObject::new(
                            src,
                            o.header.clone(),
                            o.delimiter,
                            header.clone(),
                        )?)
                    }
                    FileFormat::Json { items_pointer } => {
                        if offset > 0 && container.is_none() {
                            return Err(ReaderError::BadResume {
                                message: format!(
                                    "the checkpoint inside {} does not say what it iterates",
                                    target.uri()
                                ),
                            });
                        }
                        Reader::Json(JsonObject::new(src, items_pointer.clone(), container))
                    }
                    FileFormat::Jsonl => Reader::Jsonl(JsonlObject::new(src)),
                    FileFormat::Parquet => {
                        return Err(ReaderError::BadResume {
                            message: "unreachable".into(),
                        })
                    }
                }
            }
        };
        let good_header = match (&reader, header) {
            (Reader::Csv(c), Some(h)) if c.first_row() => Some(Arc::new(h)),
            _ => None,
        };
        Ok(OpenObject {
            target,
            compression,
            reader,
            items,
            good_offset: offset,
            good_line: line,
            good_header,
            good_container: container,
            source,
        })
    }

    pub fn next(&mut self, index: u64) -> Result<Option<(Value, Option<String>)>, ReaderError> {
        let got = match &mut self.reader {
            Reader::Csv(c) => c.next_value(index)?.map(|v| (v, None)),
            Reader::Json(j) => j.next_entry(index)?,
            Reader::Jsonl(j) => j.next_value(index)?.map(|v| (v, None)),
            Reader::Parquet(p) => p.next_value(index)?.map(|v| (v, None)),
            Reader::Empty { .. } => None,
        };
        if got.is_some() {
            self.items += 1;
            match &self.reader {
                Reader::Csv(c) => {
                    self.good_offset = c.src.offset;
                    self.good_line = c.src.line;
                    if c.first_row() {
                        self.good_header = c.header.clone();
                    }
                }
                Reader::Json(j) => {
                    self.good_offset = j.src.offset;
                    self.good_line = j.src.line;
                    self.good_container = j.container;
                }
                Reader::Jsonl(j) => {
                    self.good_offset = j.src.offset;
                    self.good_line = j.src.line;
                }
                Reader::Parquet(_) | Reader::Empty { .. } => {}
            }
        }
        Ok(got)
    }

    pub fn cursor(&self) -> ObjectCursor {
        let (offset, line, parquet) = match &self.reader {
            Reader::Parquet(p) => (p.offset(), 0, Some(p.cursor())),
            Reader::Empty { offset, line } => (*offset, *line, None),
            _ => (self.good_offset, self.good_line, None),
        };
        ObjectCursor {
            bucket: self.target.bucket.clone(),
            key: self.target.key.clone(),
            offset,
            line,
            items_read: self.items,
            compression: self.compression,
            csv_header: self.good_header.as_ref().map(|h| h.as_ref().clone()),
            json_container: self.good_container,
            parquet,
        }
    }
}

/// Where a sequence of objects stands (describes the object last handed out).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum SeqCursor {
    #[default]
    None,
    Listing(ListingCursor),
    Manifest(ManifestCursor),
}

pub(crate) trait ObjectSeq: Send {
    /// The next object to read and its size when known.
    fn next_object(
        &mut self,
        store: &dyn ObjectStore,
    ) -> Result<Option<(Target, Option<u64>)>, ReaderError>;
    fn cursor(&self) -> SeqCursor;
}

/// A single `getObject`.
pub(crate) struct SingleSeq(pub Option<Target>);

impl ObjectSeq for SingleSeq {
    fn next_object(
        &mut self,
        _store: &dyn ObjectStore,
    ) -> Result<Option<(Target, Option<u64>)>, ReaderError> {
        Ok(self.0.take().map(|t| (t, None)))
    }
    fn cursor(&self) -> SeqCursor {
        SeqCursor::None
    }
}

/// ListObjectsV2 pages, in key order.
pub(crate) struct ListingPager {
    bucket: String,
    prefix: String,
    page: Vec<ObjectMeta>,
    idx: usize,
    /// The token that fetched `page` (`None`: the first page).
    page_token: Option<String>,
    next_token: Option<String>,
    loaded: bool,
    /// Resume: skip the keys before this one, and this one too when the flag is set.
    skip: Option<(String, bool)>,
}

impl ListingPager {
    pub fn new(
        bucket: &str,
        prefix: &str,
        resume: Option<&ListingCursor>,
        skip_checkpoint_key: bool,
    ) -> Self {
        ListingPager {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            page: Vec::new(),
            idx: 0,
            page_token: resume.and_then(|c| c.page_token.clone()),
            next_token: None,
            loaded: false,
            skip: resume
                .and_then(|c| c.last_key.clone())
                .map(|k| (k, skip_checkpoint_key)),
        }
    }

    /// The next listed object (cloned out of the page).
    pub fn next_meta(
        &mut self,
        store: &dyn ObjectStore,
    ) -> Result<Option<&ObjectMeta>, ReaderError> {
        loop {
            if !self.loaded {
                let page = store
                    .list(
                        &self.bucket,
                        &self.prefix,
                        self.page_token.as_deref(),
                        LIST_PAGE,
                    )
                    .map_err(|e| ReaderError::Store {
                        uri: s3_uri(&self.bucket, &self.prefix),
                        source: e,
                    })?;
                self.page = page.objects;
                self.next_token = page.next_continuation_token;
                self.idx = 0;
                self.loaded = true;
            }
            while self.idx < self.page.len() {
                let i = self.idx;
                self.idx += 1;
                if let Some((k, skip_k)) = &self.skip {
                    let key = self.page[i].key.as_str();
                    if key < k.as_str() || (*skip_k && key == k.as_str()) {
                        continue;
                    }
                    self.skip = None;
                }
                return Ok(self.page.get(i));
            }
            match self.next_token.take() {
                Some(t) => {
                    self.page_token = Some(t);
                    self.loaded = false;
                }
                None => return Ok(None),
            }
        }
    }

    pub fn page_token(&self) -> Option<String> {
        self.page_token.clone()
    }
}

/// `LOAD_AND_FLATTEN`: every listed object, folder markers (`…/`, 0 bytes) left out.
pub(crate) struct ListingSeq {
    pager: ListingPager,
    current: Option<String>,
}

impl ListingSeq {
    pub fn new(bucket: &str, prefix: &str, resume: Option<&ListingCursor>) -> Self {
        // The checkpoint's key is listed again: that object is reopened at its cursor.
        ListingSeq {
            pager: ListingPager::new(bucket, prefix, resume, false),
            current: None,
        }
    }
}

impl ObjectSeq for ListingSeq {
    fn next_object(
        &mut self,
        store: &dyn ObjectStore,
    ) -> Result<Option<(Target, Option<u64>)>, ReaderError> {
        loop {
            let bucket = self.pager.bucket.clone();
            let Some(meta) = self.pager.next_meta(store)? else {
                return Ok(None);
            };
            if meta.key.ends_with('/') && meta.size == 0 {
                continue;
            }
            let (key, size) = (meta.key.clone(), meta.size);
            self.current = Some(key.clone());
            return Ok(Some((Target::plain(&bucket, &key), Some(size))));
        }
    }

    fn cursor(&self) -> SeqCursor {
        SeqCursor::Listing(ListingCursor {
            page_token: self.pager.page_token(),
            last_key: self.current.clone(),
        })
    }
}

/// An Athena `UNLOAD` manifest: one data object URI per line, read a line at a time with a
/// ranged GET (so a long manifest is never held in memory).
pub(crate) struct AthenaSeq {
    manifest: Target,
    /// Offset of the line after the current one.
    next_offset: u64,
    next_line: u64,
    /// Offset of the current file's line and its index.
    cur_offset: u64,
    cur_line: u64,
    file_index: Option<u64>,
}

impl AthenaSeq {
    pub fn new(manifest: Target, resume: Option<&ManifestCursor>) -> Self {
        match resume {
            Some(c) => AthenaSeq {
                manifest,
                next_offset: c.offset,
                next_line: c.line.max(1),
                cur_offset: c.offset,
                cur_line: c.line.max(1),
                file_index: c.file_index.checked_sub(1),
            },
            None => AthenaSeq {
                manifest,
                next_offset: 0,
                next_line: 1,
                cur_offset: 0,
                cur_line: 1,
                file_index: None,
            },
        }
    }
}

/// Parses `s3://bucket/key`.
fn parse_s3_uri(s: &str) -> Option<(String, String)> {
    let s = s.trim().trim_matches('"').trim();
    let lower = s.get(..5)?.to_ascii_lowercase();
    if lower != "s3://" {
        return None;
    }
    let rest = &s[5..];
    let (bucket, key) = rest.split_once('/')?;
    if bucket.is_empty() || key.is_empty() {
        return None;
    }
    Some((bucket.to_string(), key.to_string()))
}

impl ObjectSeq for AthenaSeq {
    fn next_object(
        &mut self,
        store: &dyn ObjectStore,
    ) -> Result<Option<(Target, Option<u64>)>, ReaderError> {
        let Some(raw) = self.manifest.get_raw(store, self.next_offset)? else {
            return Ok(None);
        };
        let mut src = ByteSource::new(
            Some(raw),
            self.next_offset,
            self.next_line,
            self.manifest.uri(),
        );
        if src.offset == 0 {
            src.skip_bom().map_err(|e| src.io_error(e, None))?;
        }
        loop {
            let (start, start_line) = (src.offset, src.line);
            let mut line = Vec::new();
            let mut ended = false;
            loop {
                let chunk = src.fill(None)?;
                if chunk.is_empty() {
                    break;
                }
                let (n, nl) = match chunk.iter().position(|&b| b == b'\n') {
                    Some(i) => (i, true),
                    None => (chunk.len(), false),
                };
                if line.len() + n > MAX_MANIFEST_LINE {
                    return Err(ReaderError::Malformed {
                        format: Format::AthenaManifest,
                        at: Location {
                            uri: self.manifest.uri(),
                            line: Some(start_line),
                            offset: Some(start),
                            index: None,
                        },
                        message: "a line is longer than an S3 URI can be".into(),
                    });
                }
                line.extend_from_slice(&chunk[..n]);
                src.consume(n + usize::from(nl));
                if nl {
                    ended = true;
                    break;
                }
            }
            let text = String::from_utf8_lossy(&line);
            if text.trim().is_empty() {
                if !ended {
                    return Ok(None);
                }
                continue;
            }
            let Some((bucket, key)) = parse_s3_uri(&text) else {
                return Err(ReaderError::Malformed {
                    format: Format::AthenaManifest,
                    at: Location {
                        uri: self.manifest.uri(),
                        line: Some(start_line),
                        offset: Some(start),
                        index: None,
                    },
                    message: format!("'{}' is not an s3://bucket/key URI", text.trim()),
                });
            };
            self.cur_offset = start;
            self.cur_line = start_line;
            self.next_offset = src.offset;
            self.next_line = src.line;
            self.file_index = Some(self.file_index.map_or(0, |i| i + 1));
            return Ok(Some((Target::plain(&bucket, &key), None)));
        }
    }

    fn cursor(&self) -> SeqCursor {
        SeqCursor::Manifest(ManifestCursor {
            file_index: self.file_index.unwrap_or(0),
            offset: self.cur_offset,
            line: self.cur_line,
        })
    }
}

/// An S3 Inventory: the data files of `manifest.json`, with `fileSchema` as their header.
pub(crate) struct InventorySeq {
    bucket: String,
    files: Vec<String>,
    next: usize,
}

/// Reads `manifest.json`; returns the sequence and the CSV header from `fileSchema`.
pub(crate) fn read_inventory(
    store: &dyn ObjectStore,
    manifest: &Target,
    resume: Option<&ManifestCursor>,
) -> Result<(InventorySeq, Vec<String>), ReaderError> {
    let bad = |message: String| ReaderError::Malformed {
        format: Format::InventoryManifest,
        at: Location {
            uri: manifest.uri(),
            ..Default::default()
        },
        message,
    };
    let Some(raw) = manifest.get_raw(store, 0)? else {
        return Err(bad("the manifest is empty".into()));
    };
    let mut text = Vec::new();
    raw.take(MAX_INVENTORY_MANIFEST + 1)
        .read_to_end(&mut text)
        .map_err(|e| ReaderError::Io {
            at: Location {
                uri: manifest.uri(),
                ..Default::default()
            },
            message: e.to_string(),
        })?;
    if text.len() as u64 > MAX_INVENTORY_MANIFEST {
        return Err(bad(format!(
            "the manifest is larger than {MAX_INVENTORY_MANIFEST} bytes"
        )));
    }
    let doc: Value = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    let format = doc.get("fileFormat").and_then(Value::as_str).unwrap_or("");
    if !format.eq_ignore_ascii_case("CSV") {
        return Err(bad(format!(
            "fileFormat '{format}' is not supported: only CSV inventories can be read"
        )));
    }
    let schema = doc
        .get("fileSchema")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("fileSchema is missing".into()))?;
    let header: Vec<String> = schema.split(',').map(|s| s.trim().to_string()).collect();
    if header.iter().all(|h| h.is_empty()) {
        return Err(bad("fileSchema is empty".into()));
    }
    let files = doc
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("files is missing".into()))?;
    let mut keys = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        match f.get("key").and_then(Value::as_str) {
            Some(k) if !k.is_empty() => keys.push(k.to_string()),
            _ => return Err(bad(format!("files[{i}] has no key"))),
        }
    }
    // `destinationBucket` is an ARN (`arn:aws:s3:::name`); the data files live there.
    let bucket = doc
        .get("destinationBucket")
        .and_then(Value::as_str)
        .map(|b| b.rsplit(":::").next().unwrap_or(b).to_string())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| manifest.bucket.clone());
    let next = resume.map(|c| c.file_index as usize).unwrap_or(0);
    Ok((
        InventorySeq {
            bucket,
            files: keys,
            next,
        },
        header,
    ))
}

impl ObjectSeq for InventorySeq {
    fn next_object(
        &mut self,
        _store: &dyn ObjectStore,
    ) -> Result<Option<(Target, Option<u64>)>, ReaderError> {
        let Some(key) = self.files.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        Ok(Some((Target::plain(&self.bucket, key), None)))
    }

    fn cursor(&self) -> SeqCursor {
        SeqCursor::Manifest(ManifestCursor {
            file_index: self.next.saturating_sub(1) as u64,
            offset: 0,
            line: 0,
        })
    }
}

/// Items from a sequence of objects.
pub(crate) struct SeqStream {
    store: Arc<dyn ObjectStore>,
    seq: Box<dyn ObjectSeq>,
    format: FileFormat,
    current: Option<OpenObject>,
    /// Whether `current` has returned an item in this stream.
    current_produced: bool,
    resume_object: Option<ObjectCursor>,
    items_read: u64,
    max: u64,
    finished: bool,
    failed: bool,
    good_seq: SeqCursor,
    good_object: Option<ObjectCursor>,
    /// The checkpoint's object must be the first one the sequence yields (not so for listings,
    /// where it may have been deleted since).
    strict: bool,
}

impl SeqStream {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        seq: Box<dyn ObjectSeq>,
        format: FileFormat,
        max: u64,
        resume: Option<&Position>,
    ) -> Self {
        let good_seq = match resume {
            Some(Position {
                listing: Some(l), ..
            }) => SeqCursor::Listing(l.clone()),
            Some(Position {
                manifest: Some(m), ..
            }) => SeqCursor::Manifest(m.clone()),
            _ => SeqCursor::None,
        };
        SeqStream {
            store,
            seq,
            format,
            current: None,
            current_produced: false,
            resume_object: resume.and_then(|p| p.object.clone()),
            items_read: resume.map(|p| p.items_read).unwrap_or(0),
            max,
            finished: resume.is_some_and(|p| p.finished),
            failed: false,
            good_seq,
            good_object: resume.and_then(|p| p.object.clone()),
            strict: true,
        }
    }

    /// Lets the checkpoint's object be missing from the sequence (listings).
    pub fn lenient(mut self) -> Self {
        self.strict = false;
        self
    }

    /// Opens the next object that exists; `false` at the end.
    fn advance(&mut self) -> Result<bool, ReaderError> {
        let Some((target, size)) = self.seq.next_object(self.store.as_ref())? else {
            return Ok(false);
        };
        let resume = match self.resume_object.take() {
            Some(c) if c.bucket == target.bucket && c.key == target.key => Some(c),
            Some(c) if self.strict => {
                return Err(ReaderError::BadResume {
                    message: format!(
                        "the checkpoint is inside {} but the source now yields {}",
                        s3_uri(&c.bucket, &c.key),
                        target.uri()
                    ),
                })
            }
            _ => None,
        };
        let obj = OpenObject::open(&self.store, target, size, &self.format, resume.as_ref())?;
        self.current = Some(obj);
        self.current_produced = false;
        Ok(true)
    }

    /// Opens the first object now, so a missing bucket or key fails `open`.
    pub fn prime(&mut self) -> Result<(), ReaderError> {
        if self.finished || self.current.is_some() || self.items_read >= self.max {
            return Ok(());
        }
        if !self.advance()? {
            self.finished = true;
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Item>, ReaderError> {
        loop {
            if self.current.is_none() && !self.advance()? {
                return Ok(None);
            }
            let Some(obj) = self.current.as_mut() else {
                return Ok(None);
            };
            match obj.next(self.items_read)? {
                Some((value, key)) => {
                    if !self.current_produced {
                        self.current_produced = true;
                        self.good_seq = self.seq.cursor();
                        self.good_object = None;
                    }
                    let item = Item {
                        value,
                        index: self.items_read,
                        key,
                        source: obj.source.clone(),
                    };
                    self.items_read += 1;
                    return Ok(Some(item));
                }
                None => {
                    if self.current_produced {
                        self.good_object = Some(obj.cursor());
                    }
                    self.current = None;
                    self.current_produced = false;
                }
            }
        }
    }
}

impl Iterator for SeqStream {
    type Item = Result<Item, ReaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished || self.failed {
            return None;
        }
        if self.items_read >= self.max {
            self.finished = true;
            return None;
        }
        match self.step() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl ItemStream for SeqStream {
    fn position(&self) -> Position {
        let object = if self.current_produced {
            self.current.as_ref().map(OpenObject::cursor)
        } else {
            self.good_object.clone()
        };
        let (listing, manifest) = match &self.good_seq {
            SeqCursor::None => (None, None),
            SeqCursor::Listing(l) => (Some(l.clone()), None),
            SeqCursor::Manifest(m) => (None, Some(m.clone())),
        };
        Position {
            items_read: self.items_read,
            finished: self.finished,
            listing,
            manifest,
            object,
        }
    }
}

/// `listObjectsV2` without a transformation: each object's metadata is an item.
pub(crate) struct ListingItems {
    store: Arc<dyn ObjectStore>,
    pager: ListingPager,
    source: Arc<str>,
    items_read: u64,
    max: u64,
    finished: bool,
    failed: bool,
    good: Option<ListingCursor>,
}

impl ListingItems {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        bucket: &str,
        prefix: &str,
        max: u64,
        resume: Option<&Position>,
    ) -> Self {
        let cursor = resume.and_then(|p| p.listing.clone());
        ListingItems {
            store,
            // The checkpoint's key is skipped: that item was returned already.
            pager: ListingPager::new(bucket, prefix, cursor.as_ref(), true),
            source: Arc::from(format!("S3://{bucket}")),
            items_read: resume.map(|p| p.items_read).unwrap_or(0),
            max,
            finished: resume.is_some_and(|p| p.finished),
            failed: false,
            good: cursor,
        }
    }

    /// Fetches the first page now, so a missing bucket fails `open`.
    pub fn prime(&mut self) -> Result<(), ReaderError> {
        if self.finished || self.items_read >= self.max || self.pager.loaded {
            return Ok(());
        }
        let page = self
            .store
            .list(
                &self.pager.bucket,
                &self.pager.prefix,
                self.pager.page_token.as_deref(),
                LIST_PAGE,
            )
            .map_err(|e| ReaderError::Store {
                uri: s3_uri(&self.pager.bucket, &self.pager.prefix),
                source: e,
            })?;
        self.pager.page = page.objects;
        self.pager.next_token = page.next_continuation_token;
        self.pager.idx = 0;
        self.pager.loaded = true;
        Ok(())
    }
}

/// The listing item shape (spec §2.3.9): exactly these keys, `Etag` with its quotes,
/// `LastModified` in epoch seconds.
pub(crate) fn listing_item(meta: &ObjectMeta) -> Value {
    let mut m = Map::with_capacity(5);
    m.insert("Etag".into(), Value::String(meta.etag.clone()));
    m.insert("Key".into(), Value::String(meta.key.clone()));
    m.insert(
        "LastModified".into(),
        Value::from(meta.last_modified.timestamp()),
    );
    m.insert("Size".into(), Value::from(meta.size));
    m.insert(
        "StorageClass".into(),
        Value::String(meta.storage_class.clone()),
    );
    Value::Object(m)
}

impl Iterator for ListingItems {
    type Item = Result<Item, ReaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished || self.failed {
            return None;
        }
        if self.items_read >= self.max {
            self.finished = true;
            return None;
        }
        let meta = match self.pager.next_meta(self.store.as_ref()) {
            Ok(Some(m)) => m,
            Ok(None) => {
                self.finished = true;
                return None;
            }
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        let value = listing_item(meta);
        let key = meta.key.clone();
        self.good = Some(ListingCursor {
            page_token: self.pager.page_token(),
            last_key: Some(key),
        });
        let item = Item {
            value,
            index: self.items_read,
            key: None,
            source: self.source.clone(),
        };
        self.items_read += 1;
        Some(Ok(item))
    }
}

impl ItemStream for ListingItems {
    fn position(&self) -> Position {
        Position {
            items_read: self.items_read,
            finished: self.finished,
            listing: self.good.clone(),
            manifest: None,
            object: None,
        }
    }
}

/// The CSV options of S3 Inventory data files.
pub(crate) fn inventory_format(header: Vec<String>, delimiter: u8) -> FileFormat {
    FileFormat::Csv(CsvOptions {
        header: CsvHeader::Given(header),
        delimiter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris() {
        assert_eq!(
            parse_s3_uri("s3://b/k/x.gz"),
            Some(("b".into(), "k/x.gz".into()))
        );
        assert_eq!(
            parse_s3_uri(" \"S3://b/k\"\r"),
            Some(("b".into(), "k".into()))
        );
        assert_eq!(parse_s3_uri("s3://b/"), None);
        assert_eq!(parse_s3_uri("s3://b"), None);
        assert_eq!(parse_s3_uri("https://b/k"), None);
        assert_eq!(parse_s3_uri("s3:"), None);
    }
}
