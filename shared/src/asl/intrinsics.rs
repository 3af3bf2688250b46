//! The 18 intrinsic functions (`States.Format`, …), parsed once. (Helper B fills this in.)

use serde_json::Value;

use super::error::{AslError, AslResult};
use super::scope::Scope;

#[derive(Debug, Clone)]
pub struct Intrinsic {
    source: String,
}

impl Intrinsic {
    pub fn parse(source: &str) -> Result<Intrinsic, String> {
        Err(format!("unimplemented: {source}"))
    }
    pub fn eval(&self, scope: &Scope<'_>) -> AslResult<Value> {
        let _ = scope;
        Err(AslError::intrinsic(format!("unimplemented: {}", self.source)))
    }
}
