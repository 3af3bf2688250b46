//! Lambda: the optimized `arn:aws:states:::lambda:invoke[.waitForTaskToken]` integration and
//! plain function ARNs as `Resource`.
//!
//! Result shapes are the CLI's (`cli/src/invoke.rs`), which follow AWS: `lambda:invoke`
//! wraps the payload (`{"ExecutedVersion", "Payload", "SdkHttpMetadata", "SdkResponseMetadata",
//! "StatusCode"}`), a function ARN returns the payload itself. A function error (the response
//! carries `X-Amz-Function-Error`, or — under `cargo lambda watch` — the endpoint answers HTTP
//! 500 with the error JSON) fails the task with the payload's `errorType` (`Lambda.Unknown`
//! when absent) and the payload text as cause. Service errors are `Lambda.<Exception>`,
//! unmodelled ones `Lambda.AWSLambdaException`, transport failures `Lambda.SdkClientException`;
//! throttling (`TooManyRequestsException`) is retried with exponential backoff and full jitter
//! first.

use std::time::Duration;

use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::invoke::{InvokeError, InvokeOutput};
use aws_sdk_lambda::operation::RequestId;
use aws_sdk_lambda::types::{InvocationType, LogType};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::Blob;
use mapfleet_core::engine::{TaskOutcome, TaskRequest};
use rand::Rng;
use serde_json::{json, Value};

use super::errors::{source_text, variant_name, TaskError};
use super::{AwsTaskInvoker, Params};

/// What to invoke.
#[derive(Debug, Clone, Default)]
struct Call {
    function: String,
    payload: Value,
    invocation_type: Option<String>,
    qualifier: Option<String>,
    client_context: Option<String>,
    log_type: Option<String>,
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]` → `NAME`; anything else as is.
pub fn bare_function_name(f: &str) -> &str {
    let parts: Vec<&str> = f.split(':').collect();
    if parts.len() >= 7 && parts[0] == "arn" && parts[5] == "function" {
        parts[6]
    } else {
        f
    }
}

/// `arn:aws:states:::lambda:invoke[.waitForTaskToken]`.
pub(crate) fn invoke_integration(inv: &AwsTaskInvoker, req: &TaskRequest) -> TaskOutcome {
    let p = Params::new(&req.input, "States.Runtime");
    let call = (|| -> Result<Call, TaskError> {
        Ok(Call {
            function: p.req_str("FunctionName")?.to_string(),
            payload: p.get("Payload").cloned().unwrap_or_else(|| json!({})),
            invocation_type: p.str("InvocationType")?.map(str::to_string),
            qualifier: p.str("Qualifier")?.map(str::to_string),
            client_context: p.str("ClientContext")?.map(str::to_string),
            log_type: p.str("LogType")?.map(str::to_string),
        })
    })();
    match call {
        Ok(call) => invoke(inv, call, true),
        Err(e) => e.into(),
    }
}

/// A plain function ARN as `Resource`: the whole input is the payload, the result the
/// function's own output.
pub(crate) fn invoke_arn(inv: &AwsTaskInvoker, arn: &str, input: &Value) -> TaskOutcome {
    let call = Call {
        function: arn.to_string(),
        payload: input.clone(),
        ..Call::default()
    };
    invoke(inv, call, false)
}

fn invoke(inv: &AwsTaskInvoker, mut call: Call, wrapped: bool) -> TaskOutcome {
    if inv.bare_lambda_names {
        call.function = bare_function_name(&call.function).to_string();
    }
    let payload = match serde_json::to_vec(&call.payload) {
        Ok(p) => p,
        Err(e) => {
            return TaskError::new(
                "States.Runtime",
                format!("Payload is not serializable: {e}"),
            )
            .into()
        }
    };
    let mut attempt = 0u32;
    loop {
        let request = inv
            .clients
            .lambda()
            .invoke()
            .function_name(&call.function)
            .payload(Blob::new(payload.clone()))
            .set_invocation_type(call.invocation_type.as_deref().map(InvocationType::from))
            .set_qualifier(call.qualifier.clone())
            .set_client_context(call.client_context.clone())
            .set_log_type(call.log_type.as_deref().map(LogType::from));
        match inv.clients.handle.block_on(request.send()) {
            Ok(out) => return success_outcome(&out, wrapped),
            Err(err) => {
                if is_throttled(&err) && attempt < inv.lambda_throttle_retries {
                    std::thread::sleep(backoff(attempt));
                    attempt += 1;
                    continue;
                }
                return error_outcome(&err, wrapped);
            }
        }
    }
}

/// Full jitter over 100 ms · 2^attempt, capped at 5 s.
fn backoff(attempt: u32) -> Duration {
    let cap = 100u64.saturating_mul(1u64 << attempt.min(16)).min(5_000);
    Duration::from_millis(rand::thread_rng().gen_range(0..=cap))
}

fn is_throttled(err: &SdkError<InvokeError>) -> bool {
    err.as_service_error().is_some_and(|e| {
        e.is_too_many_requests_exception() || e.code() == Some("TooManyRequestsException")
    })
}

fn success_outcome(out: &InvokeOutput, wrapped: bool) -> TaskOutcome {
    let payload = out.payload().map(|b| b.as_ref()).unwrap_or_default();
    let status = u16::try_from(out.status_code()).unwrap_or(200);
    let outcome = lambda_outcome(status, out.function_error().is_some(), payload, wrapped);
    match (outcome, out.executed_version(), out.log_result()) {
        (TaskOutcome::Succeeded(Value::Object(mut m)), version, log) if wrapped => {
            if let Some(v) = version {
                m.insert("ExecutedVersion".into(), json!(v));
            }
            if let Some(l) = log {
                m.insert("LogResult".into(), json!(l));
            }
            TaskOutcome::Succeeded(Value::Object(m))
        }
        (o, _, _) => o,
    }
}

/// The task outcome for an invoke's response: HTTP `status`, whether the function failed
/// (`X-Amz-Function-Error`, or a `cargo lambda watch` HTTP 500), and the payload bytes;
/// `wrapped` for `lambda:invoke` (versus a plain function ARN).
pub fn lambda_outcome(
    status: u16,
    function_error: bool,
    payload: &[u8],
    wrapped: bool,
) -> TaskOutcome {
    let text = String::from_utf8_lossy(payload).to_string();
    // Not JSON (or empty, as for InvocationType Event): the text itself.
    let parsed: Value =
        serde_json::from_slice(payload).unwrap_or_else(|_| Value::String(text.clone()));
    if function_error {
        let error = parsed
            .get("errorType")
            .and_then(Value::as_str)
            .unwrap_or("Lambda.Unknown")
            .to_string();
        return TaskOutcome::Failed {
            error: Some(error),
            cause: Some(text),
        };
    }
    if wrapped {
        TaskOutcome::Succeeded(json!({
            "ExecutedVersion": "$LATEST",
            "Payload": parsed,
            "SdkHttpMetadata": {"HttpStatusCode": status},
            "SdkResponseMetadata": {},
            "StatusCode": status,
        }))
    } else {
        TaskOutcome::Succeeded(parsed)
    }
}

/// Whether an error response is a function error in disguise: `cargo lambda watch` answers a
/// failed function with HTTP 500 and the error JSON, with no Lambda error code.
pub fn is_disguised_function_error(status: u16, error_code: Option<&str>, body: &[u8]) -> bool {
    status == 500
        && error_code.is_none()
        && serde_json::from_slice::<Value>(body)
            .ok()
            .is_some_and(|v| v.get("errorType").is_some() || v.get("errorMessage").is_some())
}

/// The Step Functions error name for a Lambda service error.
pub fn lambda_error_name(variant: Option<&str>) -> String {
    match variant {
        Some(v) => format!("Lambda.{}", super::errors::java_exception_name(v)),
        None => "Lambda.AWSLambdaException".to_string(),
    }
}

fn error_outcome(err: &SdkError<InvokeError>, wrapped: bool) -> TaskOutcome {
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let raw = ctx.raw();
            let status = raw.status().as_u16();
            let body = raw.body().bytes().unwrap_or_default();
            if is_disguised_function_error(status, e.code(), body) {
                return lambda_outcome(status, true, body, wrapped);
            }
            let variant = variant_name(e);
            let code = e.code().unwrap_or("null");
            let message = e.message().unwrap_or(code);
            TaskError::new(
                lambda_error_name(variant.as_deref()),
                format!(
                    "{message} (Service: AWSLambda; Status Code: {status}; Error Code: {code}; Request ID: {}; Proxy: null)",
                    err.request_id().unwrap_or("null")
                ),
            )
            .into()
        }
        SdkError::ConstructionFailure(_) => TaskError::new(
            "Lambda.AWSLambdaException",
            format!("Invalid request: {}", source_text(err)),
        )
        .into(),
        _ => TaskError::new(
            "Lambda.SdkClientException",
            format!("Unable to execute HTTP request: {}", source_text(err)),
        )
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names() {
        assert_eq!(
            bare_function_name("arn:aws:lambda:us-east-1:1:function:f"),
            "f"
        );
        assert_eq!(
            bare_function_name("arn:aws:lambda:us-east-1:1:function:f:live"),
            "f"
        );
        assert_eq!(bare_function_name("f"), "f");
    }
}
