//! Reader failures. Every one of them fails the Map Run with `States.ItemReaderFailed` (spec
//! §2.3.12) except a non-integer `MaxItems`, which AWS rejects before the Map Run starts with
//! `States.Runtime` (§2.3.8). [`ReaderError::cause`] is the text for the `MapRunFailed` cause:
//! it names the object (`s3://bucket/key`) and, for data errors, the line, byte offset and item
//! index where reading stopped.

use std::fmt;

use crate::storage::StoreError;

/// The limit on one item read from CSV/JSON/JSONL (spec §2.3.3: 8 MB).
pub const MAX_ITEM_BYTES: usize = 8 * 1024 * 1024;
/// The limit on a CSV header row (spec §2.3.3: 10 KB).
pub const MAX_CSV_HEADER_BYTES: usize = 10 * 1024;
/// The limit on a Parquet footer (spec §2.3.3: 5 MB).
pub const MAX_PARQUET_FOOTER_BYTES: u64 = 5 * 1024 * 1024;

/// Where in which object a data error happened.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// `s3://bucket/key`.
    pub uri: String,
    /// 1-based line of the (decompressed) object, when the format has lines.
    pub line: Option<u64>,
    /// Byte offset in the (decompressed) object.
    pub offset: Option<u64>,
    /// Index of the item being read, counted over the whole source.
    pub index: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.uri)?;
        let mut parts = Vec::new();
        if let Some(l) = self.line {
            parts.push(format!("line {l}"));
        }
        if let Some(o) = self.offset {
            parts.push(format!("byte offset {o}"));
        }
        if let Some(i) = self.index {
            parts.push(format!("item index {i}"));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

/// Which parser reported a malformed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Jsonl,
    Parquet,
    AthenaManifest,
    InventoryManifest,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Csv => "CSV",
            Format::Json => "JSON",
            Format::Jsonl => "JSONL",
            Format::Parquet => "Parquet",
            Format::AthenaManifest => "Athena manifest",
            Format::InventoryManifest => "S3 Inventory manifest",
        })
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReaderError {
    // ---- the ItemReader definition ----
    /// `Resource` is neither `s3:getObject` nor `s3:listObjectsV2`.
    #[error("The ItemReader resource '{resource}' is not supported: use arn:aws:states:::s3:getObject or arn:aws:states:::s3:listObjectsV2")]
    UnsupportedResource { resource: String },
    /// A required parameter is missing or not a string (`Bucket`, `Key`, …).
    #[error("The ItemReader field '{field}' is required and must be a string")]
    MissingParameter { field: String },
    /// A field has a value of the wrong type or outside its enumeration.
    #[error("The ItemReader field '{field}' has an invalid value: {message}")]
    InvalidField { field: String, message: String },
    /// Fields that cannot be used together (e.g. `S3_INVENTORY` with an `InputType`).
    #[error("Invalid ItemReader configuration: {message}")]
    InvalidCombination { message: String },
    /// `MaxItems` resolved to a negative number (observed cause text).
    #[error("field MaxItems must be positive")]
    MaxItemsNegative,
    /// `MaxItems` resolved to something that is not an integer (fails before the Map Run).
    #[error("The MaxItems field refers to value \"{value}\" which is not a valid integer")]
    MaxItemsNotInteger { value: String },
    /// `CSVHeaders` (or a first-row header) repeats a name (observed cause text).
    #[error("CSV headers cannot contain duplicates.")]
    DuplicateCsvHeaders,

    // ---- reading ----
    /// The object store refused: missing bucket or key, access denied, …
    #[error("Failed to read {uri}: {source}")]
    Store { uri: String, source: StoreError },
    /// A read failed half-way through an object.
    #[error("Failed to read {at}: {message}")]
    Io { at: Location, message: String },
    /// The object is not valid for its `InputType`.
    #[error("Malformed {format} in {at}: {message}")]
    Malformed {
        format: Format,
        at: Location,
        message: String,
    },
    /// The JSON node to iterate is not an array (observed cause text).
    #[error("Attempting to map over non-iterable node.")]
    NonIterable { uri: String },
    /// `ItemsPointer` names no node of the document.
    #[error("The ItemsPointer '{pointer}' does not match any node in {uri}")]
    PointerNotFound { pointer: String, uri: String },
    /// One item is larger than the 8 MB a reader accepts.
    #[error("The item at {at} exceeds the maximum item size of {limit} bytes")]
    ItemTooLarge { at: Location, limit: usize },
    /// A CSV header row larger than 10 KB.
    #[error("The CSV header of {uri} exceeds the maximum header size of {limit} bytes")]
    HeaderTooLarge { uri: String, limit: usize },
    /// An external compression other than gzip and zstd.
    #[error(
        "The object {uri} is compressed with {kind}, which is not supported: use GZIP or ZSTD"
    )]
    UnsupportedCompression { uri: String, kind: String },
    /// A Parquet footer larger than 5 MB.
    #[error("The Parquet footer of {uri} is {size} bytes, over the limit of {limit} bytes")]
    ParquetFooterTooLarge { uri: String, size: u64, limit: u64 },
    /// A checkpoint that does not fit the object or the reader configuration.
    #[error("Cannot resume reading: {message}")]
    BadResume { message: String },
}

impl ReaderError {
    /// The error name the Map Run (or, for `MaxItemsNotInteger`, the state) fails with.
    pub fn error(&self) -> &'static str {
        match self {
            ReaderError::MaxItemsNotInteger { .. } => "States.Runtime",
            _ => "States.ItemReaderFailed",
        }
    }

    /// The cause text: names the object and where reading stopped.
    pub fn cause(&self) -> String {
        self.to_string()
    }

    pub(crate) fn store(bucket: &str, key: &str, source: StoreError) -> Self {
        ReaderError::Store {
            uri: s3_uri(bucket, key),
            source,
        }
    }
}

/// `s3://bucket/key` (or `s3://bucket` for an empty key).
pub fn s3_uri(bucket: &str, key: &str) -> String {
    if key.is_empty() {
        format!("s3://{bucket}")
    } else {
        format!("s3://{bucket}/{key}")
    }
}
