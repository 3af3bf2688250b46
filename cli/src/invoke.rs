//! Task adapters for local runs: `--task-command RESOURCE=COMMAND` and `--lambda-endpoint URL`.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use mapfleet_core::engine::{IntegrationPattern, TaskInvoker, TaskOutcome, TaskRequest};
use serde_json::{json, Value};

pub struct LocalInvoker {
    pub commands: HashMap<String, String>,
    pub lambda_endpoint: Option<String>,
}

impl TaskInvoker for LocalInvoker {
    fn invoke(&self, req: &TaskRequest) -> TaskOutcome {
        if let Some(cmd) = self.commands.get(&req.resource) {
            let outcome = run_command(cmd, &req.input);
            return match (outcome, req.pattern) {
                (TaskOutcome::Succeeded(_), IntegrationPattern::WaitForTaskToken) => {
                    announce_token(req);
                    TaskOutcome::Submitted
                }
                (o, _) => o,
            };
        }
        if req.pattern == IntegrationPattern::WaitForTaskToken {
            // Nothing to call: the task just waits for its callback.
            announce_token(req);
            return TaskOutcome::Submitted;
        }
        if let Some(endpoint) = &self.lambda_endpoint {
            if let Some((function, payload, wrapped)) = lambda_call(req) {
                return invoke_lambda(endpoint, &function, &payload, wrapped);
            }
        }
        mapfleet_core::engine::handlers::no_integration(req)
    }
}

fn announce_token(req: &TaskRequest) {
    if let Some(t) = &req.token {
        eprintln!(
            "mapfleet: state '{}' waits for a callback: mapfleet send-task-success --task-token {} --task-output '{{}}'",
            req.state_name, t
        );
    }
}

/// Runs COMMAND through the shell with the input on stdin; stdout is the result.
pub fn run_command(cmd: &str, input: &Value) -> TaskOutcome {
    let child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return TaskOutcome::Failed {
                error: Some("States.TaskFailed".into()),
                cause: Some(format!("cannot start task command '{cmd}': {e}")),
            }
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let text = serde_json::to_vec(input).unwrap_or_default();
        // A command that does not read its input closes the pipe early: that is fine.
        let _ = stdin.write_all(&text);
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => {
            return TaskOutcome::Failed {
                error: Some("States.TaskFailed".into()),
                cause: Some(format!("task command '{cmd}' failed: {e}")),
            }
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() {
        let trimmed = stdout.trim();
        if trimmed.is_empty() {
            return TaskOutcome::Succeeded(Value::Null);
        }
        return match serde_json::from_str::<Value>(trimmed) {
            Ok(v) => TaskOutcome::Succeeded(v),
            Err(e) => TaskOutcome::Failed {
                error: Some("States.TaskFailed".into()),
                cause: Some(format!(
                    "task command '{cmd}' printed output that is not JSON: {e}"
                )),
            },
        };
    }
    if let Ok(v) = serde_json::from_str::<Value>(stdout.trim()) {
        if let Some(t) = v.get("errorType").and_then(Value::as_str) {
            return TaskOutcome::Failed {
                error: Some(t.to_string()),
                cause: Some(stdout.trim().to_string()),
            };
        }
    }
    TaskOutcome::Failed {
        error: Some("States.TaskFailed".into()),
        cause: Some(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

/// (function name, payload, whether the result is wrapped as `lambda:invoke` wraps it).
fn lambda_call(req: &TaskRequest) -> Option<(String, Value, bool)> {
    if req.resource.starts_with("arn:aws:states:::lambda:invoke") {
        let f = req.input.get("FunctionName")?.as_str()?.to_string();
        let payload = req.input.get("Payload").cloned().unwrap_or(json!({}));
        return Some((function_name(&f), payload, true));
    }
    let parts: Vec<&str> = req.resource.split(':').collect();
    if parts.len() >= 7 && parts[2] == "lambda" && parts[5] == "function" {
        return Some((parts[6].to_string(), req.input.clone(), false));
    }
    None
}

/// `cargo lambda watch` resolves bare names only.
fn function_name(f: &str) -> String {
    let parts: Vec<&str> = f.split(':').collect();
    if parts.len() >= 7 && parts[5] == "function" {
        parts[6].to_string()
    } else {
        f.to_string()
    }
}

fn invoke_lambda(endpoint: &str, function: &str, payload: &Value, wrapped: bool) -> TaskOutcome {
    let url = format!(
        "{}/2015-03-31/functions/{}/invocations",
        endpoint.trim_end_matches('/'),
        function
    );
    let resp = ureq::post(&url)
        .set("content-type", "application/json")
        .send_string(&payload.to_string());
    let (status, function_error, body) = match resp {
        Ok(r) => {
            let fe = r.header("X-Amz-Function-Error").map(str::to_string);
            let s = r.status();
            (s, fe, r.into_string().unwrap_or_default())
        }
        Err(ureq::Error::Status(code, r)) => (
            code,
            Some("Unhandled".into()),
            r.into_string().unwrap_or_default(),
        ),
        Err(e) => {
            return TaskOutcome::Failed {
                error: Some("Lambda.SdkClientException".into()),
                cause: Some(format!("cannot reach the Lambda endpoint {url}: {e}")),
            }
        }
    };
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
    if function_error.is_some() {
        let error = parsed
            .get("errorType")
            .and_then(Value::as_str)
            .unwrap_or("Lambda.Unknown")
            .to_string();
        return TaskOutcome::Failed {
            error: Some(error),
            cause: Some(body),
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
