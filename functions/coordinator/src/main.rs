//! The coordinator function: runs Map Run jobs on the fleet (`docs/fleet-protocol.md`).
//! Triggers: a direct invocation, an EventBridge event, or a parent state machine's
//! `lambda:invoke.waitForTaskToken` task.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use mapfleet_aws::config::Aws;
use mapfleet_aws::fleet::coordinator::{Coordinator, Invocation, Request};
use mapfleet_aws::fleet::{edge, FleetError};
use serde_json::Value;

fn diagnostic(e: FleetError) -> Diagnostic {
    tracing::error!(error_type = e.name(), error = %e, "request failed");
    Diagnostic {
        error_type: e.name().to_string(),
        error_message: e.to_string(),
    }
}

/// An EventBridge envelope's `detail`, or the payload itself.
fn request(payload: &Value) -> Result<Request, FleetError> {
    if payload.get("detail-type").is_some() && payload.get("source").is_some() {
        let event: EventBridgeEvent<Value> = serde_json::from_value(payload.clone())
            .map_err(|e| FleetError::InvalidRequest(format!("not an EventBridge event: {e}")))?;
        tracing::info!(source = %event.source, detail_type = %event.detail_type, "EventBridge event");
        return Request::from_eventbridge_detail(&event.detail);
    }
    Request::parse(payload)
}

async fn handle(c: Arc<Coordinator>, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let (payload, ctx) = event.into_parts();
    let req = request(&payload).map_err(diagnostic)?;
    let budget = Invocation::budget_of(&payload);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    // A deadline already past means the runtime gave none (`cargo lambda watch`): assume
    // Lambda's 15-minute limit.
    let remaining = match ctx.deadline.saturating_sub(now_ms) {
        0 => {
            tracing::warn!(
                deadline_ms = ctx.deadline,
                "no usable deadline; assuming 15 minutes"
            );
            Duration::from_secs(900)
        }
        ms => Duration::from_millis(ms),
    };
    let account = ctx
        .invoked_function_arn
        .split(':')
        .nth(4)
        .map(str::to_string);
    let request_id = ctx.request_id.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let inv = Invocation {
            request_id: &request_id,
            deadline: Instant::now() + remaining,
            account: account.filter(|a| !a.is_empty()),
            budget,
        };
        c.handle(req, &inv)
    })
    .await
    .map_err(|e| diagnostic(FleetError::dependency("mapfleet.Internal", e)))?;
    mapfleet_aws::metrics::log("coordinator");
    answer.map_err(diagnostic)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    edge::init_logs();
    let aws = Aws::load().await;
    let coordinator = Arc::new(edge::coordinator(&aws)?);
    lambda_runtime::run(service_fn(move |ev| handle(coordinator.clone(), ev))).await
}
