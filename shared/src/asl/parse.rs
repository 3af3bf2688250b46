//! JSON → validated [`StateMachine`]. (Helper D fills this in.)

use serde_json::Value;

use super::diagnostic::Diagnostic;
use super::model::StateMachine;

/// Parses and validates a definition. On failure returns every diagnostic found.
pub fn parse_definition(definition: &Value) -> Result<StateMachine, Vec<Diagnostic>> {
    let _ = definition;
    Err(vec![Diagnostic::error("SCHEMA_VALIDATION_FAILED", "unimplemented", "/")])
}

/// Parses definition text (reports non-JSON as `INVALID_JSON_DESCRIPTION`).
pub fn parse_definition_str(text: &str) -> Result<StateMachine, Vec<Diagnostic>> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => parse_definition(&v),
        Err(e) => Err(vec![Diagnostic::error(
            "INVALID_JSON_DESCRIPTION",
            format!("Invalid JSON: {e}"),
            format!("line {}, column {}", e.line(), e.column()),
        )]),
    }
}
