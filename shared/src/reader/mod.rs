//! The Distributed Map `ItemReader` (spec §2.3): streams items out of S3 objects with
//! checkpoints that resume exactly after the last item returned.
//!
//! ```text
//! ReaderSpec::from_json(evaluated ItemReader) ──► open(store, &spec, resume?) ──► ItemStream
//!                                                     │                              │
//!                          one object / listing / manifests              next() → Item {value, index, …}
//!                                                                         checkpoint() → Position (serde)
//! ```
//!
//! * Objects are streamed through `std::io::Read` (ranged GETs); no object is loaded whole.
//!   JSON documents are cut into elements by a streaming splitter ([`json`]), CSV is parsed by a
//!   hand-written state machine implementing §2.3.6 ([`csv`]), Parquet row groups are read
//!   through ranged reads ([`parquet`]).
//! * gzip and zstd objects are recognised by their magic bytes (whatever the key's extension);
//!   other compressions (bzip2, xz, lz4, zip, or a `.br`/`.snappy`/… extension) fail with
//!   `UnsupportedCompression`. Resuming inside a compressed object re-decompresses it from the
//!   start and discards the bytes before the checkpoint without keeping them.
//! * `MaxItems` stops the stream after that many items (0 ⇒ none, capped at 100,000,000).
//! * Every failure is a [`ReaderError`]: `error()` is the error name (`States.ItemReaderFailed`),
//!   `cause()` names the object, line, byte offset and item index.

mod csv;
mod error;
mod json;
#[cfg(feature = "parquet")]
mod parquet;
#[cfg(not(feature = "parquet"))]
#[path = "parquet_off.rs"]
mod parquet;
mod source;
mod spec;
mod stream;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::{
    s3_uri, Format, Location, ReaderError, MAX_CSV_HEADER_BYTES, MAX_ITEM_BYTES,
    MAX_PARQUET_FOOTER_BYTES,
};
pub use json::JsonContainer;
/// Where a Parquet read stands: the next row is `row` of row group `row_group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ParquetCursor {
    pub row_group: u64,
    pub row: u64,
}
pub use source::Compression;
pub use spec::{CsvHeader, CsvOptions, FileFormat, ObjectRef, ReaderSpec, Source, MAX_ITEMS_CAP};

use crate::storage::ObjectStore;
use source::BytesStore;
use stream::{
    inventory_format, read_inventory, AthenaSeq, ListingItems, ListingSeq, SeqStream, SingleSeq,
};

/// One item read from the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The item (`$$.Map.Item.Value`): a JSON value, a CSV row object of strings, a Parquet
    /// row object, or a listing entry `{Etag, Key, LastModified, Size, StorageClass}`.
    pub value: Value,
    /// Position of the item in the whole source, from 0 (`$$.Map.Item.Index`).
    pub index: u64,
    /// The entry's key when an `ItemsPointer` selects a JSON object (`$$.Map.Item.Key`).
    pub key: Option<String>,
    /// `$$.Map.Item.Source`: `S3://bucket` for a plain listing, `S3://bucket/key` of the
    /// object the item came from otherwise (spec §2.3.9, spelled as the docs show it).
    pub source: Arc<str>,
}

/// A stream of items that can say where it stands.
pub trait ItemStream: Iterator<Item = Result<Item, ReaderError>> + Send {
    /// The checkpoint just after the last item returned. Reopening with it continues with the
    /// next item. After an error it still describes the last good item; after the end (or
    /// `MaxItems`) it is `finished`.
    ///
    /// Method-call syntax `stream.position()` resolves to `Iterator::position`: call
    /// `ItemStream::position(&*stream)` or [`checkpoint`](Self::checkpoint).
    fn position(&self) -> Position;

    /// [`position`](Self::position), under a name `Iterator` does not take.
    fn checkpoint(&self) -> Position {
        self.position()
    }
}

/// A serializable checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    /// Items returned so far: the index of the next item.
    pub items_read: u64,
    /// Nothing is left to read (end of the source, or `MaxItems` reached).
    #[serde(default)]
    pub finished: bool,
    /// Listings: the page holding the object of the last item and that object's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<ListingCursor>,
    /// Manifests: which data file the last item came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestCursor>,
    /// The object the last item came from and where in it the next item starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectCursor>,
}

/// Where a ListObjectsV2 walk stands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListingCursor {
    /// The continuation token that fetched the page (`None`: the first page).
    pub page_token: Option<String>,
    /// The key of the last object returned (plain listing) or being read (LOAD_AND_FLATTEN).
    pub last_key: Option<String>,
}

/// Where a manifest walk stands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ManifestCursor {
    /// 0-based index of the data file in the manifest.
    pub file_index: u64,
    /// Athena: byte offset of that file's line in the manifest (0 for S3 Inventory).
    pub offset: u64,
    /// Athena: 1-based line of that file in the manifest (0 for S3 Inventory).
    #[serde(default)]
    pub line: u64,
}

/// Where reading stands inside one object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ObjectCursor {
    pub bucket: String,
    pub key: String,
    /// Byte offset of the next unread item in the (decompressed) object. Parquet: the offset of
    /// the row group holding the next row.
    pub offset: u64,
    /// 1-based line of that offset (0 for Parquet).
    pub line: u64,
    /// Items returned from this object.
    pub items_read: u64,
    /// The object's external compression, found when it was first opened.
    #[serde(default)]
    pub compression: Compression,
    /// A first-row CSV header, once read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_header: Option<Vec<String>>,
    /// JSON: the kind of container being iterated, once entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_container: Option<JsonContainer>,
    /// Parquet: row group and row of the next item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parquet: Option<ParquetCursor>,
}

/// Opens the item stream of `spec`, from the start or from a checkpoint.
///
/// The first object (or listing page, or manifest) is opened before this returns, so a
/// missing bucket or key fails here.
pub fn open(
    store: Arc<dyn ObjectStore>,
    spec: &ReaderSpec,
    resume: Option<&Position>,
) -> Result<Box<dyn ItemStream>, ReaderError> {
    let max = spec.max_items;
    match &spec.source {
        Source::Object { object, format } => {
            let seq = SingleSeq(Some(object.target()));
            let mut s = SeqStream::new(store, Box::new(seq), format.clone(), max, resume);
            s.prime()?;
            Ok(Box::new(s))
        }
        Source::Listing {
            bucket,
            prefix,
            load: None,
        } => {
            let mut s = ListingItems::new(store, bucket, prefix, max, resume);
            s.prime()?;
            Ok(Box::new(s))
        }
        Source::Listing {
            bucket,
            prefix,
            load: Some(format),
        } => {
            let seq = ListingSeq::new(bucket, prefix, resume.and_then(|p| p.listing.as_ref()));
            let mut s = SeqStream::new(store, Box::new(seq), format.clone(), max, resume).lenient();
            s.prime()?;
            Ok(Box::new(s))
        }
        Source::AthenaManifest { manifest, format } => {
            let seq = AthenaSeq::new(manifest.target(), resume.and_then(|p| p.manifest.as_ref()));
            let mut s = SeqStream::new(store, Box::new(seq), format.clone(), max, resume);
            s.prime()?;
            Ok(Box::new(s))
        }
        Source::Inventory {
            manifest,
            delimiter,
        } => {
            if resume.is_some_and(|p| p.finished) {
                let seq = SingleSeq(None);
                return Ok(Box::new(SeqStream::new(
                    store,
                    Box::new(seq),
                    FileFormat::Jsonl,
                    max,
                    resume,
                )));
            }
            let (seq, header) = read_inventory(
                store.as_ref(),
                &manifest.target(),
                resume.and_then(|p| p.manifest.as_ref()),
            )?;
            let format = inventory_format(header, *delimiter);
            let mut s = SeqStream::new(store, Box::new(seq), format, max, resume);
            s.prime()?;
            Ok(Box::new(s))
        }
    }
}

/// Reads items from in-memory object bytes as `spec` describes (a `getObject` spec: its bucket
/// and key name the data in positions and causes). For TestState's `mapItemReaderData` and tests.
pub fn open_bytes(
    spec: &ReaderSpec,
    data: Vec<u8>,
    resume: Option<&Position>,
) -> Result<Box<dyn ItemStream>, ReaderError> {
    let Source::Object { object, .. } = &spec.source else {
        return Err(ReaderError::InvalidCombination {
            message: "in-memory item data needs an arn:aws:states:::s3:getObject reader".into(),
        });
    };
    let store: Arc<dyn ObjectStore> = Arc::new(BytesStore {
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        data: Arc::new(data),
    });
    let mut local = spec.clone();
    if let Source::Object { object, .. } = &mut local.source {
        object.version_id = None;
        object.expected_bucket_owner = None;
    }
    open(store, &local, resume)
}
