//! Jayway-style JSONPath, as Step Functions evaluates it. (Helper A fills this in.)
//!
//! Why not a crate: serde_json_path / jsonpath-rust implement RFC 9535, whose results differ
//! from Jayway's (definite paths return the node itself, not a one-element list; missing
//! leaves are errors for definite paths; `$$`/`$var` roots; AWS's error texts).

use serde_json::Value;

/// What a path is evaluated against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$…`
    Input,
    /// `$$…`
    Context,
    /// `$name…`
    Variable(String),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct PathSyntaxError {
    pub message: String,
    /// Character offset in the path text.
    pub offset: usize,
}

/// Evaluation failures, rendered by the caller into AWS's message for the field at hand.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PathError {
    /// A definite path that selects nothing. `normalized` is Jayway's form, e.g. `$['X']`.
    #[error("No results for path: {normalized}")]
    NoResults { normalized: String },
    /// ResultPath cannot be applied (e.g. a field on an array).
    #[error("{message}")]
    CannotSet { message: String },
}

#[derive(Debug, Clone)]
pub struct JsonPath {
    source: String,
    root: Root,
}

impl JsonPath {
    pub fn parse(source: &str) -> Result<JsonPath, PathSyntaxError> {
        Err(PathSyntaxError { message: format!("unimplemented: {source}"), offset: 0 })
    }
    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn root(&self) -> &Root {
        &self.root
    }
    /// Only `.name`, `['name']` and `[index]` steps (what ResultPath, ItemsPath, `…Path`
    /// fields and Choice `Variable` allow).
    pub fn is_reference(&self) -> bool {
        false
    }
    /// Selects at most one node (no wildcards, slices, filters, deep scan, unions).
    pub fn is_definite(&self) -> bool {
        false
    }
    /// Evaluates against `root` (the value for [`Self::root`]). Definite paths return the
    /// node or `NoResults`; indefinite paths return an array of matches (maybe empty).
    pub fn select(&self, root: &Value) -> Result<Value, PathError> {
        let _ = root;
        Err(PathError::NoResults { normalized: self.source.clone() })
    }
    /// The node a definite path selects, without copying.
    pub fn select_ref<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let _ = root;
        None
    }
    /// ResultPath: writes `value` at this reference path inside `target`, creating missing
    /// object fields. `$` replaces the whole target.
    pub fn set(&self, target: &mut Value, value: Value) -> Result<(), PathError> {
        let _ = (target, value);
        Err(PathError::CannotSet { message: "unimplemented".into() })
    }
}
