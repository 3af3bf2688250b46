//! Parquet objects in a build without the `parquet` feature (the Lambda worker and writer do
//! not read items): opening one is a named error, never a panic or a silent empty source.

use std::sync::Arc;

use serde_json::Value;

use super::error::ReaderError;
use super::source::Target;
use super::ParquetCursor;
use crate::storage::ObjectStore;

pub(crate) enum ParquetObject {}

impl ParquetObject {
    pub fn open(
        _store: Arc<dyn ObjectStore>,
        target: Target,
        _size: Option<u64>,
        _cursor: ParquetCursor,
    ) -> Result<Self, ReaderError> {
        Err(ReaderError::InvalidField {
            field: "ReaderConfig.InputType".into(),
            message: format!(
                "PARQUET ({}) cannot be read by this build of mapfleet (built without the \
                 `parquet` feature of mapfleet-core)",
                target.uri()
            ),
        })
    }

    pub fn next_value(&mut self, _index: u64) -> Result<Option<Value>, ReaderError> {
        match *self {}
    }

    pub fn cursor(&self) -> ParquetCursor {
        match *self {}
    }

    pub fn offset(&self) -> u64 {
        match *self {}
    }
}
