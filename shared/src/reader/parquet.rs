//! Parquet objects (spec §2.3.7): each row is an item, a JSON object keyed by column name.
//!
//! The file is read through ranged GETs (a `ChunkReader` over the object store): the footer
//! first (refused over 5 MB), then the column chunks of one row group at a time, as the
//! `parquet` crate's record reader asks for them — never the whole object. A checkpoint is
//! (row group, row inside it); resuming opens only the row groups from there on and decodes
//! and drops the rows before the checkpoint inside its row group.
//!
//! Type mapping (AWS's is unconfirmed, spec §14.10): booleans and integers as JSON numbers,
//! floats as numbers (NaN/±inf ⇒ null), DECIMAL as an exact decimal string, strings as
//! strings, binary as UTF-8 text when valid and base64 otherwise, DATE as `YYYY-MM-DD`,
//! TIME as `HH:MM:SS.fff[fff]`, TIMESTAMP (and INT96) as RFC 3339 UTC `…T…Z`, structs as
//! objects, lists as arrays, maps as objects with stringified keys.
//!
//! The record reader panics on a few conversions it does not implement; those panics are
//! caught and reported as malformed-Parquet errors.

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, FileReader, Length};
use parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};
use parquet::record::reader::RowIter;
use parquet::record::{Field, Row};
use serde_json::{Map, Number, Value};

use super::error::{Format, Location, ReaderError, MAX_PARQUET_FOOTER_BYTES};
use super::source::Target;
use super::ParquetCursor;
use crate::storage::ObjectStore;

struct StoreChunks {
    store: Arc<dyn ObjectStore>,
    target: Target,
    len: u64,
}

impl Length for StoreChunks {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for StoreChunks {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        match self.target.get_raw(self.store.as_ref(), start) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(ParquetError::EOF(format!(
                "offset {start} is past the end of {}",
                self.target.uri()
            ))),
            Err(e) => Err(ParquetError::General(e.cause())),
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.target
            .get_range(self.store.as_ref(), start, length as u64)
            .map(Bytes::from)
            .map_err(|e| ParquetError::General(e.cause()))
    }
}

pub(crate) struct ParquetObject {
    rows: RowIter<'static>,
    /// Row counts of the row groups from `first_group` on.
    group_rows: Vec<u64>,
    /// Byte offset of each of those row groups (for checkpoints).
    group_offsets: Vec<u64>,
    first_group: u64,
    /// Index into `group_rows` of the next row, and the row inside it.
    group: usize,
    row: u64,
    uri: String,
    failed: bool,
}

fn malformed(uri: &str, message: String, index: Option<u64>) -> ReaderError {
    ReaderError::Malformed {
        format: Format::Parquet,
        at: Location {
            uri: uri.to_string(),
            index,
            ..Default::default()
        },
        message,
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "the Parquet decoder failed".into()
    }
}

impl ParquetObject {
    /// Opens `target` (of `size` bytes, when known) at `cursor`.
    pub fn open(
        store: Arc<dyn ObjectStore>,
        target: Target,
        size: Option<u64>,
        cursor: ParquetCursor,
    ) -> Result<Self, ReaderError> {
        let uri = target.uri();
        let len = match size {
            Some(s) => s,
            None => {
                store
                    .head(&target.bucket, &target.key, target.version_id.as_deref())
                    .map_err(|e| target.store_err(e))?
                    .size
            }
        };
        if len < 12 {
            return Err(malformed(
                &uri,
                format!("{len} bytes is too short for a Parquet file"),
                None,
            ));
        }
        let tail = target.get_range(store.as_ref(), len - 8, 8)?;
        if &tail[4..8] != b"PAR1" {
            return Err(malformed(
                &uri,
                "the object does not end with the Parquet magic 'PAR1'".into(),
                None,
            ));
        }
        let footer = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
        if footer > MAX_PARQUET_FOOTER_BYTES {
            return Err(ReaderError::ParquetFooterTooLarge {
                uri,
                size: footer,
                limit: MAX_PARQUET_FOOTER_BYTES,
            });
        }
        let first_group = cursor.row_group;
        let options = ReadOptionsBuilder::new()
            .with_predicate(Box::new(move |_, i| i as u64 >= first_group))
            .build();
        let chunks = StoreChunks { store, target, len };
        let opened = catch_unwind(AssertUnwindSafe(|| {
            SerializedFileReader::new_with_options(chunks, options)
        }));
        let reader = match opened {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(malformed(&uri, e.to_string(), None)),
            Err(p) => return Err(malformed(&uri, panic_text(p), None)),
        };
        let meta = reader.metadata();
        let group_rows: Vec<u64> = meta
            .row_groups()
            .iter()
            .map(|g| g.num_rows().max(0) as u64)
            .collect();
        let group_offsets: Vec<u64> = meta
            .row_groups()
            .iter()
            .map(|g| {
                if g.num_columns() == 0 {
                    return 0;
                }
                let c = g.column(0);
                let data = c.data_page_offset();
                c.dictionary_page_offset()
                    .map(|d| d.min(data))
                    .unwrap_or(data)
                    .max(0) as u64
            })
            .collect();
        let rows = RowIter::from_file_into(Box::new(reader));
        let mut me = ParquetObject {
            rows,
            group_rows,
            group_offsets,
            first_group,
            group: 0,
            row: 0,
            uri,
            failed: false,
        };
        me.settle();
        // Skip the rows before the checkpoint inside its row group.
        for _ in 0..cursor.row {
            if me.next_row(None)?.is_none() {
                return Err(ReaderError::BadResume {
                    message: format!("{} has fewer rows than the checkpoint {cursor:?}", me.uri),
                });
            }
        }
        Ok(me)
    }

    /// Moves past empty row groups.
    fn settle(&mut self) {
        while self.group < self.group_rows.len() && self.row >= self.group_rows[self.group] {
            self.group += 1;
            self.row = 0;
        }
    }

    fn next_row(&mut self, index: Option<u64>) -> Result<Option<Value>, ReaderError> {
        if self.failed {
            return Ok(None);
        }
        let got = catch_unwind(AssertUnwindSafe(|| {
            self.rows.next().map(|r| r.map(|row| row_json(&row)))
        }));
        match got {
            Ok(None) => Ok(None),
            Ok(Some(Ok(v))) => {
                self.row += 1;
                self.settle();
                Ok(Some(v))
            }
            Ok(Some(Err(e))) => {
                self.failed = true;
                Err(malformed(&self.uri, e.to_string(), index))
            }
            Err(p) => {
                self.failed = true;
                Err(malformed(&self.uri, panic_text(p), index))
            }
        }
    }

    pub fn next_value(&mut self, index: u64) -> Result<Option<Value>, ReaderError> {
        self.next_row(Some(index))
    }

    pub fn cursor(&self) -> ParquetCursor {
        ParquetCursor {
            row_group: self.first_group + self.group as u64,
            row: self.row,
        }
    }

    /// Byte offset of the row group holding the next row.
    pub fn offset(&self) -> u64 {
        self.group_offsets.get(self.group).copied().unwrap_or(0)
    }
}

fn float(x: f64) -> Value {
    Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// A row as a JSON object.
pub(crate) fn row_json(row: &Row) -> Value {
    let mut m = Map::new();
    for (name, field) in row.get_column_iter() {
        m.insert(name.clone(), field_json(field));
    }
    Value::Object(m)
}

fn field_json(f: &Field) -> Value {
    match f {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(n) => Value::from(*n),
        Field::Short(n) => Value::from(*n),
        Field::Int(n) => Value::from(*n),
        Field::Long(n) => Value::from(*n),
        Field::UByte(n) => Value::from(*n),
        Field::UShort(n) => Value::from(*n),
        Field::UInt(n) => Value::from(*n),
        Field::ULong(n) => Value::from(*n),
        Field::Float16(h) => float(f64::from(*h)),
        // Through the shortest decimal text, so 0.1f32 stays 0.1.
        Field::Float(x) => x
            .to_string()
            .parse::<f64>()
            .map(float)
            .unwrap_or(Value::Null),
        Field::Double(x) => float(*x),
        Field::Decimal(_) => Value::String(f.to_string()),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => Value::String(base64::engine::general_purpose::STANDARD.encode(b.data())),
        },
        Field::Date(days) => days
            .checked_add(719_163)
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
            .unwrap_or(Value::Null),
        Field::TimeMillis(ms) => time(i64::from(*ms) * 1_000_000, 3),
        Field::TimeMicros(us) => time(us.saturating_mul(1_000), 6),
        Field::TimestampMillis(ms) => DateTime::<Utc>::from_timestamp_millis(*ms)
            .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
            .unwrap_or(Value::Null),
        Field::TimestampMicros(us) => DateTime::<Utc>::from_timestamp_micros(*us)
            .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()))
            .unwrap_or(Value::Null),
        Field::Group(row) => row_json(row),
        Field::ListInternal(list) => Value::Array(list.elements().iter().map(field_json).collect()),
        Field::MapInternal(map) => {
            let mut m = Map::new();
            for (k, v) in map.entries() {
                let key = match field_json(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                m.insert(key, field_json(v));
            }
            Value::Object(m)
        }
    }
}

fn time(nanos: i64, digits: usize) -> Value {
    let secs = nanos.div_euclid(1_000_000_000);
    let sub = nanos.rem_euclid(1_000_000_000) as u32;
    match u32::try_from(secs)
        .ok()
        .and_then(|s| NaiveTime::from_num_seconds_from_midnight_opt(s, sub))
    {
        Some(t) => Value::String(if digits == 3 {
            t.format("%H:%M:%S%.3f").to_string()
        } else {
            t.format("%H:%M:%S%.6f").to_string()
        }),
        None => Value::Null,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use parquet::basic::Compression as PqCompression;
    use parquet::data_type::{
        BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type,
    };
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use serde_json::json;

    /// A Parquet file with `groups` row groups of `per_group` rows:
    /// `{id: i64, name: utf8 (null every 5th), score: double, flag: bool, day: date, ts: timestamp(ms)}`.
    pub(crate) fn sample_parquet(
        groups: usize,
        per_group: usize,
        codec: PqCompression,
    ) -> (Vec<u8>, Vec<Value>) {
        let schema = Arc::new(
            parse_message_type(
                "message item {
                    REQUIRED INT64 id;
                    OPTIONAL BYTE_ARRAY name (UTF8);
                    REQUIRED DOUBLE score;
                    REQUIRED BOOLEAN flag;
                    REQUIRED INT32 day (DATE);
                    REQUIRED INT64 ts (TIMESTAMP(MILLIS,true));
                }",
            )
            .unwrap(),
        );
        let props = Arc::new(WriterProperties::builder().set_compression(codec).build());
        let mut buf = Vec::new();
        let mut expected = Vec::new();
        {
            let mut w = SerializedFileWriter::new(&mut buf, schema, props).unwrap();
            for g in 0..groups {
                let base = (g * per_group) as i64;
                let ids: Vec<i64> = (0..per_group as i64).map(|i| base + i).collect();
                let names: Vec<ByteArray> = ids
                    .iter()
                    .filter(|i| *i % 5 != 0)
                    .map(|i| ByteArray::from(format!("name-{i}").as_str()))
                    .collect();
                let name_def: Vec<i16> =
                    ids.iter().map(|i| if i % 5 == 0 { 0 } else { 1 }).collect();
                let scores: Vec<f64> = ids.iter().map(|i| *i as f64 + 0.5).collect();
                let flags: Vec<bool> = ids.iter().map(|i| i % 2 == 0).collect();
                let days: Vec<i32> = ids.iter().map(|i| 19_000 + *i as i32).collect();
                let ts: Vec<i64> = ids.iter().map(|i| 1_668_560_400_000 + i * 1_001).collect();
                let mut rg = w.next_row_group().unwrap();
                let mut col = rg.next_column().unwrap().unwrap();
                col.typed::<Int64Type>()
                    .write_batch(&ids, None, None)
                    .unwrap();
                col.close().unwrap();
                let mut col = rg.next_column().unwrap().unwrap();
                col.typed::<ByteArrayType>()
                    .write_batch(&names, Some(&name_def), None)
                    .unwrap();
                col.close().unwrap();
                let mut col = rg.next_column().unwrap().unwrap();
                col.typed::<DoubleType>()
                    .write_batch(&scores, None, None)
                    .unwrap();
                col.close().unwrap();
                let mut col = rg.next_column().unwrap().unwrap();
                col.typed::<BoolType>()
                    .write_batch(&flags, None, None)
                    .unwrap();
                col.close().unwrap();
                let mut col = rg.next_column().unwrap().unwrap();
                col.typed::<Int32Type>()
                    .write_batch(&days, None, None)
                    .unwrap();
                col.close().unwrap();
                let mut col = rg.next_column().unwrap().unwrap();
                col.typed::<Int64Type>()
                    .write_batch(&ts, None, None)
                    .unwrap();
                col.close().unwrap();
                rg.close().unwrap();
                for i in ids {
                    let day =
                        NaiveDate::from_num_days_from_ce_opt(719_163 + 19_000 + i as i32).unwrap();
                    let t = DateTime::<Utc>::from_timestamp_millis(1_668_560_400_000 + i * 1_001)
                        .unwrap();
                    expected.push(json!({
                        "id": i,
                        "name": if i % 5 == 0 { Value::Null } else { json!(format!("name-{i}")) },
                        "score": i as f64 + 0.5,
                        "flag": i % 2 == 0,
                        "day": day.format("%Y-%m-%d").to_string(),
                        "ts": t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                    }));
                }
            }
            w.close().unwrap();
        }
        (buf, expected)
    }

    #[test]
    fn field_mapping() {
        assert_eq!(field_json(&Field::Float(0.1)), json!(0.1));
        assert_eq!(field_json(&Field::Double(f64::NAN)), Value::Null);
        assert_eq!(field_json(&Field::Date(0)), json!("1970-01-01"));
        assert_eq!(
            field_json(&Field::TimestampMillis(1_668_558_572_000)),
            json!("2022-11-16T00:29:32.000Z")
        );
        assert_eq!(
            field_json(&Field::TimestampMicros(1)),
            json!("1970-01-01T00:00:00.000001Z")
        );
        assert_eq!(
            field_json(&Field::TimeMillis(3_723_004)),
            json!("01:02:03.004")
        );
        assert_eq!(field_json(&Field::TimeMicros(1)), json!("00:00:00.000001"));
        assert_eq!(
            field_json(&Field::Bytes(ByteArray::from(vec![0xffu8, 0]))),
            json!("/wA=")
        );
        assert_eq!(
            field_json(&Field::Bytes(ByteArray::from("hi"))),
            json!("hi")
        );
        assert_eq!(
            field_json(&Field::Decimal(parquet::data_type::Decimal::from_i32(
                -12345, 6, 2
            ))),
            json!("-123.45")
        );
        assert_eq!(field_json(&Field::ULong(u64::MAX)), json!(u64::MAX));
    }
}
