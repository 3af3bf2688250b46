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

/// How an asynchronous (Event) invocation is confirmed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AsyncAck {
    /// Wait this long for Lambda's acknowledgement (202, at once in AWS); without it the
    /// invocation is an error, never taken as queued (its request still goes out: it is not
    /// dropped half-way).
    Wait(Duration),
    /// A stand-in that answers an Event invocation only when the function has run (`cargo
    /// lambda watch`): the request goes out in the background and is taken as queued
    /// (`MAPFLEET_ASYNC_ACK=background`; never in AWS, where a frozen environment would not
    /// finish sending it).
    Background,
}

impl AsyncAck {
    /// From `MAPFLEET_ASYNC_ACK`: `background`, or the seconds to wait (default 30).
    pub fn from_env() -> Self {
        match std::env::var("MAPFLEET_ASYNC_ACK").ok().as_deref() {
            Some("background") => AsyncAck::Background,
            Some(secs) => secs
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(|s| AsyncAck::Wait(Duration::from_secs_f64(s)))
                .unwrap_or(AsyncAck::Wait(DEFAULT_ASYNC_ACK)),
            None => AsyncAck::Wait(DEFAULT_ASYNC_ACK),
        }
    }
}

const DEFAULT_ASYNC_ACK: Duration = Duration::from_secs(30);

/// What an invocation answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Invoked {
    /// The function returned (the payload, parsed).
    Ok(Value),
    /// The function failed: its `errorType` and `errorMessage`.
    FunctionError { error_type: String, message: String },
    /// An asynchronous invocation was queued (acknowledged, or sent in the background to a
    /// stand-in: see [`AsyncAck`]).
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

/// The Lambda Invoke port: [`Invoker`] in AWS; the fleet simulation runs the functions in
/// process.
pub trait Invoke: Send + Sync {
    /// Invokes `function` with `payload`; `asynchronous` queues it (InvocationType Event).
    fn invoke(
        &self,
        function: &str,
        payload: Vec<u8>,
        asynchronous: bool,
    ) -> Result<Invoked, InvokeError>;
}

impl Invoke for Invoker {
    fn invoke(
        &self,
        function: &str,
        payload: Vec<u8>,
        asynchronous: bool,
    ) -> Result<Invoked, InvokeError> {
        Invoker::invoke(self, function, payload, asynchronous)
    }
}

/// A Lambda client that retries what is worth retrying.
#[derive(Clone)]
pub struct Invoker {
    pub client: aws_sdk_lambda::Client,
    pub handle: Handle,
    pub max_attempts: u32,
    pub async_ack: AsyncAck,
}

impl Invoker {
    pub fn new(client: aws_sdk_lambda::Client, handle: Handle) -> Self {
        Invoker {
            client,
            handle,
            max_attempts: 6,
            async_ack: AsyncAck::from_env(),
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
                // The request runs to its end on the runtime: a wait that gives up never
                // drops it half-sent.
                let sending = self.handle.spawn(call.send());
                let wait = match self.async_ack {
                    AsyncAck::Background => {
                        tracing::info!(function, "asynchronous invocation sent in the background");
                        return Ok(Invoked::Queued);
                    }
                    AsyncAck::Wait(wait) => wait,
                };
                match self
                    .handle
                    .block_on(async { tokio::time::timeout(wait, sending).await })
                {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => {
                        return Err(InvokeError::Service {
                            name: "Lambda.SdkClientException".into(),
                            message: format!("the asynchronous invocation's task failed: {e}"),
                            function: function.to_string(),
                        })
                    }
                    Err(_) => {
                        return Err(InvokeError::Service {
                            name: "Lambda.AsyncInvokeUnconfirmed".into(),
                            message: format!(
                                "Lambda did not acknowledge the asynchronous invocation within \
                                 {wait:?} (it may still arrive; a duplicate finds the execution's \
                                 lease held)"
                            ),
                            function: function.to_string(),
                        })
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

    /// A Lambda endpoint on a local socket: answers every request with `reply`, or never.
    fn endpoint(reply: Option<&'static str>) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    let _ = stream.read(&mut buf);
                    match reply {
                        Some(r) => {
                            let _ = stream.write_all(r.as_bytes());
                        }
                        // Holds the connection open without answering.
                        None => std::thread::park(),
                    }
                });
            }
        });
        format!("http://{addr}")
    }

    fn invoker(url: &str, rt: &tokio::runtime::Runtime, ack: AsyncAck) -> Invoker {
        let conf = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                "x", "x", None, None, "test",
            ))
            .endpoint_url(url)
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
            .build();
        Invoker {
            client: aws_sdk_lambda::Client::from_conf(conf),
            handle: rt.handle().clone(),
            max_attempts: 1,
            async_ack: ack,
        }
    }

    /// An asynchronous invocation is queued only when Lambda acknowledged it; one that gets
    /// no acknowledgement in time is an error naming that, not "queued".
    #[test]
    fn an_asynchronous_invocation_is_confirmed_or_an_error() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let wait = AsyncAck::Wait(Duration::from_millis(300));
        let acked = endpoint(Some("HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"));
        assert_eq!(
            invoker(&acked, &rt, wait)
                .invoke("f", b"{}".to_vec(), true)
                .unwrap(),
            Invoked::Queued
        );
        let silent = endpoint(None);
        let err = invoker(&silent, &rt, wait)
            .invoke("f", b"{}".to_vec(), true)
            .unwrap_err();
        assert_eq!(err.name(), "Lambda.AsyncInvokeUnconfirmed", "{err}");
        // A stand-in that answers only once the function ran: sent in the background.
        assert_eq!(
            invoker(&silent, &rt, AsyncAck::Background)
                .invoke("f", b"{}".to_vec(), true)
                .unwrap(),
            Invoked::Queued
        );
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
