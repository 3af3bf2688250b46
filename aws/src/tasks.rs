//! [`AwsTaskInvoker`]: runs Task states against AWS (or moto, LocalStack, `cargo lambda watch`)
//! through the SDK, the way Step Functions does, with Step Functions' result shapes and error
//! names.
//!
//! | Resource | Module |
//! |---|---|
//! | `arn:aws:states:::lambda:invoke[.waitForTaskToken]`, `arn:aws:lambda:…:function:NAME` | [`lambda`] |
//! | `arn:aws:states:::http:invoke` | [`http`] |
//! | `arn:aws:states:::aws-sdk:{s3,dynamodb,sqs,sns,eventbridge}:ACTION[.waitForTaskToken]` | [`sdk`] |
//! | `arn:aws:states:::{dynamodb,sqs,sns,events}:ACTION[.waitForTaskToken]` (optimized) | [`sdk`] |
//!
//! Anything else goes to the `inner` invoker when there is one, and otherwise fails as the CLI
//! does ([`no_integration`]); an `aws-sdk` action this module does not implement fails with
//! `States.Runtime` naming the resource.
//!
//! Not modelled: the task's `Credentials` (cross-account role) — calls use the invoker's own
//! credentials; HTTP Task connections (`Authentication`/`InvocationConfig.ConnectionArn`) are
//! accepted and ignored, so no connection headers, query or body parameters are merged in.
//!
//! The invoker is blocking: it runs the async SDK with `Handle::block_on`, so call it from
//! plain threads (the engine's task threads), never from inside an async task.

pub mod attr;
pub mod errors;
pub mod http;
pub mod lambda;
pub mod sdk;

use mapfleet_core::engine::handlers::no_integration;
use mapfleet_core::engine::{IntegrationPattern, TaskInvoker, TaskOutcome, TaskRequest};
use serde_json::Value;
use std::sync::OnceLock;

use crate::config::Aws;

pub use errors::TaskError;

/// The SDK clients, built once.
#[derive(Clone)]
/// The SDK clients Task states call, each built on its first use: a function whose children
/// call no AWS service never builds one.
pub(crate) struct Clients {
    pub handle: tokio::runtime::Handle,
    aws: Aws,
    lambda: OnceLock<aws_sdk_lambda::Client>,
    s3: OnceLock<aws_sdk_s3::Client>,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    sns: OnceLock<aws_sdk_sns::Client>,
    eventbridge: OnceLock<aws_sdk_eventbridge::Client>,
}

impl Clients {
    fn new(aws: &Aws) -> Self {
        Clients {
            handle: aws.handle.clone(),
            aws: aws.clone(),
            lambda: OnceLock::new(),
            s3: OnceLock::new(),
            dynamodb: OnceLock::new(),
            sqs: OnceLock::new(),
            sns: OnceLock::new(),
            eventbridge: OnceLock::new(),
        }
    }

    pub fn lambda(&self) -> &aws_sdk_lambda::Client {
        self.lambda.get_or_init(|| self.aws.lambda())
    }

    pub fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3.get_or_init(|| self.aws.s3())
    }

    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        self.dynamodb.get_or_init(|| self.aws.dynamodb())
    }

    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.sqs
            .get_or_init(|| aws_sdk_sqs::Client::new(&self.aws.sdk))
    }

    pub fn sns(&self) -> &aws_sdk_sns::Client {
        self.sns
            .get_or_init(|| aws_sdk_sns::Client::new(&self.aws.sdk))
    }

    pub fn eventbridge(&self) -> &aws_sdk_eventbridge::Client {
        self.eventbridge
            .get_or_init(|| aws_sdk_eventbridge::Client::new(&self.aws.sdk))
    }
}

/// Runs Lambda, HTTP and AWS SDK Task states; other resources go to `inner`.
pub struct AwsTaskInvoker {
    clients: Clients,
    http: http::HttpInvoker,
    /// Reduce `arn:aws:lambda:…:function:NAME[:qualifier]` to `NAME` (for `cargo lambda watch`,
    /// which resolves bare names only).
    bare_lambda_names: bool,
    /// Retries of a throttled Lambda invoke (`TooManyRequestsException`) before the task fails.
    lambda_throttle_retries: u32,
    inner: Option<Box<dyn TaskInvoker>>,
}

/// Environment variable: `true` reduces Lambda function ARNs to bare names.
pub const BARE_NAMES_ENV: &str = "MAPFLEET_LAMBDA_BARE_NAMES";

impl AwsTaskInvoker {
    /// Builds the clients from `aws` once. Lambda function ARNs are reduced to bare names when
    /// `MAPFLEET_LAMBDA_BARE_NAMES=true`.
    pub fn new(aws: &Aws) -> Self {
        AwsTaskInvoker {
            clients: Clients::new(aws),
            http: http::HttpInvoker::new(aws.sdk.region().map(|r| r.to_string())),
            bare_lambda_names: std::env::var(BARE_NAMES_ENV).is_ok_and(|v| v == "true"),
            lambda_throttle_retries: 4,
            inner: None,
        }
    }

    /// Resources this invoker does not handle go to `inner` (instead of failing).
    pub fn with_inner(mut self, inner: Box<dyn TaskInvoker>) -> Self {
        self.inner = Some(inner);
        self
    }

    /// Overrides `MAPFLEET_LAMBDA_BARE_NAMES`.
    pub fn with_bare_lambda_names(mut self, bare: bool) -> Self {
        self.bare_lambda_names = bare;
        self
    }

    /// How many times a throttled Lambda invoke is retried (exponential backoff with full
    /// jitter) before the task fails with `Lambda.TooManyRequestsException`. Default 4.
    pub fn with_lambda_throttle_retries(mut self, retries: u32) -> Self {
        self.lambda_throttle_retries = retries;
        self
    }

    /// Whether this invoker itself runs `resource` (rather than its `inner` fallback).
    pub fn handles(resource: &str) -> bool {
        match Target::parse(resource) {
            Target::Other => false,
            Target::Sdk { service, action } => sdk::supported(service, action, sdk::Flavour::Sdk),
            _ => true,
        }
    }

    fn delegate(&self, req: &TaskRequest) -> TaskOutcome {
        match &self.inner {
            Some(inner) => inner.invoke(req),
            None => no_integration(req),
        }
    }
}

/// What a Task's `Resource` names, its `.waitForTaskToken` suffix removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// `arn:aws:states:::lambda:invoke`
    LambdaInvoke,
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]` (the whole ARN)
    LambdaArn(&'a str),
    /// `arn:aws:states:::http:invoke`
    Http,
    /// `arn:aws:states:::aws-sdk:SERVICE:ACTION`
    Sdk {
        service: &'a str,
        action: &'a str,
    },
    /// `arn:aws:states:::SERVICE:ACTION` (optimized integrations)
    Optimized {
        service: &'a str,
        action: &'a str,
    },
    Other,
}

impl<'a> Target<'a> {
    pub(crate) fn parse(resource: &'a str) -> Target<'a> {
        let base = resource
            .strip_suffix(".waitForTaskToken")
            .unwrap_or(resource);
        if let Some(rest) = base.strip_prefix("arn:aws:states:::") {
            if rest.contains(".sync") {
                return Target::Other;
            }
            if rest == "lambda:invoke" {
                return Target::LambdaInvoke;
            }
            if rest == "http:invoke" {
                return Target::Http;
            }
            if let Some(sdk) = rest.strip_prefix("aws-sdk:") {
                return match sdk.split_once(':') {
                    Some((service, action)) if !service.is_empty() && !action.is_empty() => {
                        Target::Sdk { service, action }
                    }
                    _ => Target::Other,
                };
            }
            return match rest.split_once(':') {
                Some((service, action))
                    if sdk::supported(service, action, sdk::Flavour::Optimized) =>
                {
                    Target::Optimized { service, action }
                }
                _ => Target::Other,
            };
        }
        // A plain function ARN has no `.waitForTaskToken` form.
        if base == resource {
            let parts: Vec<&str> = resource.split(':').collect();
            if parts.len() >= 7
                && parts[0] == "arn"
                && parts[2] == "lambda"
                && parts[5] == "function"
            {
                return Target::LambdaArn(resource);
            }
        }
        Target::Other
    }
}

impl TaskInvoker for AwsTaskInvoker {
    fn invoke(&self, req: &TaskRequest) -> TaskOutcome {
        let outcome = match Target::parse(&req.resource) {
            Target::LambdaInvoke => lambda::invoke_integration(self, req),
            Target::LambdaArn(arn) => lambda::invoke_arn(self, arn, &req.input),
            Target::Http => self.http.invoke(&req.input),
            Target::Sdk { service, action } => {
                if !sdk::supported(service, action, sdk::Flavour::Sdk) {
                    if self.inner.is_some() {
                        return self.delegate(req);
                    }
                    return TaskError::new(
                        "States.Runtime",
                        format!(
                            "mapfleet does not implement the AWS SDK integration '{}' (state '{}'); supported: {}",
                            req.resource,
                            req.state_name,
                            sdk::SUPPORTED_SDK.join(", ")
                        ),
                    )
                    .into();
                }
                sdk::call(
                    &self.clients,
                    sdk::Flavour::Sdk,
                    service,
                    action,
                    &req.input,
                )
            }
            Target::Optimized { service, action } => sdk::call(
                &self.clients,
                sdk::Flavour::Optimized,
                service,
                action,
                &req.input,
            ),
            Target::Other => return self.delegate(req),
        };
        match (outcome, req.pattern) {
            // The service call went out: the task now waits for SendTaskSuccess/Failure.
            (TaskOutcome::Succeeded(_), IntegrationPattern::WaitForTaskToken) => {
                TaskOutcome::Submitted
            }
            (o, _) => o,
        }
    }
}

/// Reads PascalCase parameters out of a Task's (already evaluated) input.
pub(crate) struct Params<'a> {
    input: &'a Value,
    /// The error name for a missing or ill-typed parameter.
    error: String,
}

impl<'a> Params<'a> {
    pub(crate) fn new(input: &'a Value, error: impl Into<String>) -> Self {
        Params {
            input,
            error: error.into(),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        match self.input.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub(crate) fn fail(&self, cause: impl Into<String>) -> TaskError {
        TaskError::new(self.error.clone(), cause)
    }

    pub(crate) fn str(&self, name: &str) -> Result<Option<&'a str>, TaskError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => {
                Err(self.fail(format!("Parameter '{name}' must be a string, not {other}")))
            }
        }
    }

    pub(crate) fn req_str(&self, name: &str) -> Result<&'a str, TaskError> {
        self.str(name)?
            .ok_or_else(|| self.fail(format!("Missing required parameter '{name}'")))
    }

    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, TaskError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => {
                Err(self.fail(format!("Parameter '{name}' must be a boolean, not {other}")))
            }
        }
    }

    pub(crate) fn i32(&self, name: &str) -> Result<Option<i32>, TaskError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    self.fail(format!("Parameter '{name}' must be an integer, not {v}"))
                }),
        }
    }

    /// A string parameter that may also be given as JSON (serialized to its text), as Step
    /// Functions does for message bodies and event details.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    pub(crate) fn object(
        &self,
        name: &str,
    ) -> Result<Option<&'a serde_json::Map<String, Value>>, TaskError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => {
                Err(self.fail(format!("Parameter '{name}' must be an object, not {other}")))
            }
        }
    }

    /// A `{name: string}` map.
    pub(crate) fn string_map(
        &self,
        name: &str,
    ) -> Result<Option<std::collections::HashMap<String, String>>, TaskError> {
        let Some(m) = self.object(name)? else {
            return Ok(None);
        };
        m.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(self.fail(format!(
                    "Parameter '{name}.{k}' must be a string, not {other}"
                ))),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    pub(crate) fn string_list(&self, name: &str) -> Result<Option<Vec<String>>, TaskError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        self.fail(format!("Parameter '{name}' must list strings, not {v}"))
                    })
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(other) => {
                Err(self.fail(format!("Parameter '{name}' must be a list, not {other}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_parse_to_targets() {
        assert_eq!(
            Target::parse("arn:aws:states:::lambda:invoke"),
            Target::LambdaInvoke
        );
        assert_eq!(
            Target::parse("arn:aws:states:::lambda:invoke.waitForTaskToken"),
            Target::LambdaInvoke
        );
        assert_eq!(
            Target::parse("arn:aws:lambda:us-east-1:123456789012:function:f:live"),
            Target::LambdaArn("arn:aws:lambda:us-east-1:123456789012:function:f:live")
        );
        assert_eq!(Target::parse("arn:aws:states:::http:invoke"), Target::Http);
        assert_eq!(
            Target::parse("arn:aws:states:::aws-sdk:s3:getObject"),
            Target::Sdk {
                service: "s3",
                action: "getObject"
            }
        );
        assert_eq!(
            Target::parse("arn:aws:states:::aws-sdk:sqs:sendMessage.waitForTaskToken"),
            Target::Sdk {
                service: "sqs",
                action: "sendMessage"
            }
        );
        assert_eq!(
            Target::parse("arn:aws:states:::dynamodb:putItem"),
            Target::Optimized {
                service: "dynamodb",
                action: "putItem"
            }
        );
        assert_eq!(
            Target::parse("arn:aws:states:::states:startExecution.sync:2"),
            Target::Other
        );
        assert_eq!(
            Target::parse("arn:aws:states:::batch:submitJob"),
            Target::Other
        );
        assert_eq!(Target::parse("my-local-resource"), Target::Other);
        assert!(AwsTaskInvoker::handles(
            "arn:aws:states:::aws-sdk:s3:putObject"
        ));
        assert!(!AwsTaskInvoker::handles(
            "arn:aws:states:::aws-sdk:ec2:describeInstances"
        ));
        assert!(!AwsTaskInvoker::handles(
            "arn:aws:states:us-east-1:1:activity:a"
        ));
    }
}
