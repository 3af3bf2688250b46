//! Runtime errors of the ASL engine, named as Step Functions names them.

use std::fmt;

/// An ASL error name. The `States.*` names are predefined; anything else is a user or task
/// error name (e.g. a Lambda `errorType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", from = "String")]
pub enum ErrorName {
    /// `States.Runtime`: not retriable, not catchable.
    Runtime,
    /// `States.DataLimitExceeded`: not retriable, not catchable.
    DataLimitExceeded,
    IntrinsicFailure,
    QueryEvaluationError,
    ResultPathMatchFailure,
    ParameterPathFailure,
    NoChoiceMatched,
    TaskFailed,
    Timeout,
    HeartbeatTimeout,
    BranchFailed,
    Permissions,
    ExceedToleratedFailureThreshold,
    ItemReaderFailed,
    ResultWriterFailed,
    /// Any other name (user errors, task errors, `Lambda.*`, `States.Http.StatusCode.404`, …).
    Other(String),
}

impl ErrorName {
    pub fn as_str(&self) -> &str {
        match self {
            ErrorName::Runtime => "States.Runtime",
            ErrorName::DataLimitExceeded => "States.DataLimitExceeded",
            ErrorName::IntrinsicFailure => "States.IntrinsicFailure",
            ErrorName::QueryEvaluationError => "States.QueryEvaluationError",
            ErrorName::ResultPathMatchFailure => "States.ResultPathMatchFailure",
            ErrorName::ParameterPathFailure => "States.ParameterPathFailure",
            ErrorName::NoChoiceMatched => "States.NoChoiceMatched",
            ErrorName::TaskFailed => "States.TaskFailed",
            ErrorName::Timeout => "States.Timeout",
            ErrorName::HeartbeatTimeout => "States.HeartbeatTimeout",
            ErrorName::BranchFailed => "States.BranchFailed",
            ErrorName::Permissions => "States.Permissions",
            ErrorName::ExceedToleratedFailureThreshold => "States.ExceedToleratedFailureThreshold",
            ErrorName::ItemReaderFailed => "States.ItemReaderFailed",
            ErrorName::ResultWriterFailed => "States.ResultWriterFailed",
            ErrorName::Other(s) => s,
        }
    }

    /// `States.Runtime` ends the execution: no Retry, no Catch. (`States.DataLimitExceeded`
    /// is terminal when a state's own output is too large — the engine fails the execution
    /// directly then — but a task whose result is too large fails with it like any task
    /// error, and Catch sees it: recorded on AWS.)
    pub fn is_terminal(&self) -> bool {
        matches!(self, ErrorName::Runtime)
    }
}

impl From<&str> for ErrorName {
    fn from(s: &str) -> Self {
        match s {
            "States.Runtime" => ErrorName::Runtime,
            "States.DataLimitExceeded" => ErrorName::DataLimitExceeded,
            "States.IntrinsicFailure" => ErrorName::IntrinsicFailure,
            "States.QueryEvaluationError" => ErrorName::QueryEvaluationError,
            "States.ResultPathMatchFailure" => ErrorName::ResultPathMatchFailure,
            "States.ParameterPathFailure" => ErrorName::ParameterPathFailure,
            "States.NoChoiceMatched" => ErrorName::NoChoiceMatched,
            "States.TaskFailed" => ErrorName::TaskFailed,
            "States.Timeout" => ErrorName::Timeout,
            "States.HeartbeatTimeout" => ErrorName::HeartbeatTimeout,
            "States.BranchFailed" => ErrorName::BranchFailed,
            "States.Permissions" => ErrorName::Permissions,
            "States.ExceedToleratedFailureThreshold" => ErrorName::ExceedToleratedFailureThreshold,
            "States.ItemReaderFailed" => ErrorName::ItemReaderFailed,
            "States.ResultWriterFailed" => ErrorName::ResultWriterFailed,
            other => ErrorName::Other(other.to_string()),
        }
    }
}

impl From<String> for ErrorName {
    fn from(s: String) -> Self {
        ErrorName::from(s.as_str())
    }
}

impl From<ErrorName> for String {
    fn from(e: ErrorName) -> String {
        e.as_str().to_string()
    }
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A runtime error raised while evaluating a state. `cause` is the part of the message that
/// the module knows (e.g. `The JSONPath '$.x' specified for the field 'a.$' could not be found
/// in the input '{}'`); the engine prefixes the state name and event id where AWS does.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{name}: {cause}")]
pub struct AslError {
    pub name: ErrorName,
    pub cause: String,
}

impl AslError {
    pub fn new(name: ErrorName, cause: impl Into<String>) -> Self {
        AslError {
            name,
            cause: cause.into(),
        }
    }
    pub fn runtime(cause: impl Into<String>) -> Self {
        Self::new(ErrorName::Runtime, cause)
    }
    pub fn intrinsic(cause: impl Into<String>) -> Self {
        Self::new(ErrorName::IntrinsicFailure, cause)
    }
    pub fn query(cause: impl Into<String>) -> Self {
        Self::new(ErrorName::QueryEvaluationError, cause)
    }
}

pub type AslResult<T> = Result<T, AslError>;
