//! Lambda Invoke with the fleet's error handling: throttling (`TooManyRequestsException`,
//! HTTP 429) and service errors (5xx) are retried with exponential backoff and full jitter; a
//! function error is an answer, not a failure of the call.
//!
//! A function error arrives as `200` with `X-Amz-Function-Error` from AWS, and as HTTP 500
//! with the error document from `cargo lambda watch`: both become [`Invoked::FunctionError`].

use std::time::Duration;

use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use rand::Rng;
use serde_json::Value;
use tokio::runtime::Handle;

/// Lambda's synchronous invoke payload limit (request and response): 6 MB.
pub const PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

/// How long an asynchronous invocation waits for its acknowledgement.
const ASYNC_ACK: Duration = Duration::from_secs(3);

/// What an invocation answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Invoked {
    /// The function returned (the payload, parsed).
    Ok(Value),
    /// The function failed: its `errorType` and `errorMessage`.
    FunctionError { error_type: String, message: String },
    /// An asynchronous invocation was queued.
    Queued,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    /// The call itself failed after retries: `Lambda.<code>` and the message.
    #[error("{name}: {message} (function {function})")]
    Service {
        name: String,
        message: String,
        function: String,
    },
}

impl InvokeError {
    /// The Step Functions-style error name, e.g. `Lambda.ResourceNotFoundException`.
    pub fn name(&self) -> &str {
        match self {
            InvokeError::Service { name, .. } => name,
        }
    }
}

/// A Lambda client that retries what is worth retrying.
#[derive(Clone)]
pub struct Invoker {
    pub client: aws_sdk_lambda::Client,
    pub handle: Handle,
    pub max_attempts: u32,
}

impl Invoker {
    pub fn new(client: aws_sdk_lambda::Client, handle: Handle) -> Self {
        Invoker {
            client,
            handle,
            max_attempts: 6,
        }
    }

    /// Invokes `function` with `payload`; `asynchronous` queues it (InvocationType Event).
    pub fn invoke(
        &self,
        function: &str,
        payload: Vec<u8>,
        asynchronous: bool,
    ) -> Result<Invoked, InvokeError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let call = self
                .client
                .invoke()
                .function_name(function)
                .invocation_type(if asynchronous {
                    InvocationType::Event
                } else {
                    InvocationType::RequestResponse
                })
                .payload(Blob::new(payload.clone()));
            let result = if asynchronous {
                // Lambda acknowledges an Event invocation (202) at once; a stand-in that runs
                // it before answering (cargo lambda watch) has it by then too.
                match self
                    .handle
                    .block_on(async { tokio::time::timeout(ASYNC_ACK, call.send()).await })
                {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::info!(
                            function,
                            "asynchronous invocation sent; not waiting for its acknowledgement"
                        );
                        return Ok(Invoked::Queued);
                    }
                }
            } else {
                self.handle.block_on(call.send())
            };
            let retry = match result {
                Ok(out) => {
                    if asynchronous {
                        return Ok(Invoked::Queued);
                    }
                    let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
                    if out.function_error().is_some() {
                        return Ok(function_error(body));
                    }
                    return Ok(Invoked::Ok(parse_payload(body)));
                }
                Err(SdkError::ServiceError(e)) => {
                    let status = e.raw().status().as_u16();
                    let body = e.raw().body().bytes().unwrap_or_default();
                    // cargo lambda watch: a function error is an HTTP 500 with the error
                    // document.
                    if let Some(fe) = error_document(body) {
                        return Ok(fe);
                    }
                    let code = e.err().code().unwrap_or("AWSLambdaException").to_string();
                    let message = e.err().message().unwrap_or_default().to_string();
                    let throttled = status == 429 || code == "TooManyRequestsException";
                    let server = status >= 500;
                    if !(throttled || server) || attempt >= self.max_attempts {
                        return Err(InvokeError::Service {
                            name: format!("Lambda.{code}"),
                            message,
                            function: function.to_string(),
                        });
                    }
                    format!("Lambda.{code}: {message}")
                }
                Err(e) => {
                    let message =
                        aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
                    if attempt >= self.max_attempts {
                        return Err(InvokeError::Service {
                            name: "Lambda.SdkClientException".into(),
                            message,
                            function: function.to_string(),
                        });
                    }
                    message
                }
            };
            let delay = backoff(attempt);
            tracing::warn!(function, attempt, ?delay, error = %retry, "retrying Lambda invoke");
            std::thread::sleep(delay);
        }
    }
}

/// Exponential backoff with full jitter: up to 100 ms × 2^attempt, capped at 10 s.
pub fn backoff(attempt: u32) -> Duration {
    let cap = 100u64.saturating_mul(1 << attempt.min(7)).min(10_000);
    Duration::from_millis(rand::thread_rng().gen_range(cap / 4..=cap))
}

fn parse_payload(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// A function-error payload: `{"errorType", "errorMessage", ...}`.
fn function_error(body: &[u8]) -> Invoked {
    error_document(body).unwrap_or_else(|| Invoked::FunctionError {
        error_type: "Lambda.Unknown".into(),
        message: String::from_utf8_lossy(body).into_owned(),
    })
}

fn error_document(body: &[u8]) -> Option<Invoked> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let error_type = v.get("errorType")?.as_str()?.to_string();
    let message = v
        .get("errorMessage")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Some(Invoked::FunctionError {
        error_type,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_become_function_errors() {
        assert_eq!(
            function_error(br#"{"errorType":"mapfleet.InvalidRequest","errorMessage":"no job"}"#),
            Invoked::FunctionError {
                error_type: "mapfleet.InvalidRequest".into(),
                message: "no job".into()
            }
        );
        assert_eq!(
            function_error(b"Task timed out"),
            Invoked::FunctionError {
                error_type: "Lambda.Unknown".into(),
                message: "Task timed out".into()
            }
        );
        assert_eq!(error_document(br#"{"ok":1}"#), None);
        assert_eq!(parse_payload(b""), Value::Null);
        assert_eq!(parse_payload(b"\"x\""), Value::String("x".into()));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            assert!(d <= Duration::from_secs(10));
        }
        assert!(backoff(1) <= Duration::from_millis(200));
    }
}
