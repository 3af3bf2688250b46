//! JSONata mode: `{% … %}` templates over jsonata-core, with the Step Functions functions
//! (`$partition`, `$range`, `$hash`, `$random`, `$uuid`, `$parse`) and AWS's error texts.
//! (Helper C fills this in.)

use serde_json::Value;

use super::error::{AslError, AslResult};
use super::scope::VarLookup;
use crate::ports::Entropy;

/// A JSON value in which any string `{% expr %}` is a JSONata expression, compiled once.
#[derive(Debug, Clone)]
pub struct JsonataTemplate {
    source: Value,
}

/// What `$states` and the variables are during one evaluation.
pub struct JsonataEnv<'a> {
    /// `$states`: `{input, context, result?, errorOutput?}`.
    pub states: &'a Value,
    pub vars: &'a dyn VarLookup,
    pub entropy: &'a dyn Entropy,
}

impl JsonataTemplate {
    /// `field` names the field for error messages (`Output`, `Arguments`, `Items`, …).
    pub fn compile(value: &Value) -> Result<JsonataTemplate, String> {
        Ok(JsonataTemplate { source: value.clone() })
    }
    /// Whether the value is exactly one `{% %}` string (vs a literal or a structure).
    pub fn is_expression(&self) -> bool {
        false
    }
    /// Evaluates. `field` is the field path for AWS's messages (`Output`, `Assign/x`…);
    /// the cause is the text after "An error occurred while executing the state …".
    pub fn eval(&self, env: &JsonataEnv<'_>, field: &str) -> AslResult<Value> {
        let _ = (env, field);
        Err(AslError::query("unimplemented"))
    }
    pub fn source(&self) -> &Value {
        &self.source
    }
}
