//! JSONPath payload templates (`Parameters`, `ResultSelector`, `ItemSelector`, `Assign`, …):
//! keys ending in `.$` take a path, a context path, a variable path or an intrinsic call.
//! (Helper B fills this in.)

use serde_json::Value;

use super::error::{AslError, AslResult};
use super::intrinsics::Intrinsic;
use super::jsonpath::JsonPath;
use super::scope::Scope;

/// The value of a `.$` key (or of Fail's `ErrorPath`/`CausePath`): a path or an intrinsic.
#[derive(Debug, Clone)]
pub enum PathExpr {
    Path(JsonPath),
    Intrinsic(Box<Intrinsic>),
}

impl PathExpr {
    pub fn parse(source: &str) -> Result<PathExpr, String> {
        Err(format!("unimplemented: {source}"))
    }
    /// `field` is the key as written (e.g. `value.$`), for error messages.
    pub fn eval(&self, scope: &Scope<'_>, field: &str) -> AslResult<Value> {
        let _ = (scope, field);
        Err(AslError::runtime("unimplemented"))
    }
    pub fn uses_context(&self) -> bool {
        false
    }
}

/// A compiled payload template.
#[derive(Debug, Clone)]
pub struct PayloadTemplate {
    source: Value,
}

impl PayloadTemplate {
    /// Compiles `value` (an object for Parameters/ResultSelector/…; Assign is an object too).
    /// Errors carry the location inside the template (e.g. `/a/b.$`) and a message.
    pub fn compile(value: &Value) -> Result<PayloadTemplate, (String, String)> {
        Ok(PayloadTemplate { source: value.clone() })
    }
    pub fn eval(&self, scope: &Scope<'_>) -> AslResult<Value> {
        let _ = scope;
        Err(AslError::runtime("unimplemented"))
    }
    /// Whether any `.$` value reads `$$` (so the engine builds the context object only then).
    pub fn uses_context(&self) -> bool {
        true
    }
    pub fn source(&self) -> &Value {
        &self.source
    }
}
