//! Validation diagnostics, shaped like ValidateStateMachineDefinition's.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a definition: `code` as AWS names it (`SCHEMA_VALIDATION_FAILED`,
/// `MISSING_TRANSITION_TARGET`, `INVALID_JSON_DESCRIPTION`, …), a human message, and the
/// JSON-pointer-like location (`/States/MyState/Next`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: String,
    pub message: String,
    pub location: String,
}

impl Diagnostic {
    pub fn error(code: &str, message: impl Into<String>, location: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code: code.to_string(),
            message: message.into(),
            location: location.into(),
        }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} at {}", self.code, self.message, self.location)
    }
}
