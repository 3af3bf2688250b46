//! Recorded AWS cases (`tests/conformance/*.jsonl`, copied from the project's shared recordings)
//! and how to run one through the engine.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mapfleet_core::asl::parse::parse_definition;
use mapfleet_core::asl::ExecutionType;
use mapfleet_core::engine::test_state::{test_state, TestStatePorts, TestStateRequest};
use mapfleet_core::engine::{
    run_to_completion, Event, Execution, ExecutionInfo, ExecutionStatus, RunOptions, TaskInvoker,
    TaskOutcome, TaskRequest, TestStateResponse, TimeMode,
};
use mapfleet_core::ports::{Clock, SeededEntropy, SystemClock, VirtualClock};
use serde_json::Value;

use crate::matcher::Matcher;

/// `tests/conformance` in the repository, or `$MAPFLEET_CONFORMANCE_DIR`.
pub fn conformance_dir() -> PathBuf {
    if let Ok(d) = std::env::var("MAPFLEET_CONFORMANCE_DIR") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

pub fn load(file: &str) -> Vec<Value> {
    let path = conformance_dir().join(file);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "the recorded AWS cases are missing: cannot read {} ({e}); they ship in \
                 tests/conformance/ (or set MAPFLEET_CONFORMANCE_DIR)",
                path.display()
            );
            std::process::exit(2);
        }
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Replays recorded task results in order.
pub struct Replay {
    outcomes: Mutex<VecDeque<TaskOutcome>>,
}

impl Replay {
    pub fn from_service_calls(calls: &[Value]) -> Self {
        let mut out = VecDeque::new();
        for c in calls {
            let d = c.get("details").cloned().unwrap_or(Value::Null);
            match c.get("type").and_then(Value::as_str).unwrap_or_default() {
                "TaskSucceeded" | "LambdaFunctionSucceeded" => {
                    // History outputs are JSON text; the recorder decoded most of them, but
                    // some top-level strings are still JSON text (a Lambda returning "x").
                    let output = match d.get("output").cloned().unwrap_or(Value::Null) {
                        Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
                        other => other,
                    };
                    out.push_back(TaskOutcome::Succeeded(output))
                }
                kind @ ("TaskFailed" | "LambdaFunctionFailed") => {
                    out.push_back(TaskOutcome::Failed {
                        error: d.get("error").and_then(Value::as_str).map(str::to_string),
                        cause: d.get("cause").map(|c| match c {
                            Value::String(s) => s.clone(),
                            // The recorded functions are Python: a plain Lambda ARN passes their
                            // error JSON through as json.dumps wrote it; the lambda:invoke
                            // integration re-serializes it compactly.
                            other if kind == "LambdaFunctionFailed" => python_json(other),
                            other => other.to_string(),
                        }),
                    })
                }
                "TaskTimedOut" | "LambdaFunctionTimedOut" => out.push_back(TaskOutcome::NoResponse),
                _ => {}
            }
        }
        Replay {
            outcomes: Mutex::new(out),
        }
    }
}

impl TaskInvoker for Replay {
    fn invoke(&self, _request: &TaskRequest) -> TaskOutcome {
        let next = self.outcomes.lock().ok().and_then(|mut q| q.pop_front());
        next.unwrap_or(TaskOutcome::Failed {
            error: Some("Replay.Exhausted".into()),
            cause: Some("no recorded result left for this task".into()),
        })
    }
}

/// No service at all: every task fails.
pub struct NoService;

impl TaskInvoker for NoService {
    fn invoke(&self, request: &TaskRequest) -> TaskOutcome {
        mapfleet_core::engine::handlers::no_integration(request)
    }
}

pub struct Outcome {
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub execution: Option<Execution>,
}

/// Runs a case's definition and input on a virtual clock.
pub fn run_case(case: &Value, invoker: &dyn TaskInvoker, record: bool) -> Result<Outcome, String> {
    let def = case.get("definition").cloned().unwrap_or(Value::Null);
    let machine = parse_definition(&def).map_err(|d| {
        format!(
            "definition rejected: {}",
            d.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let input = case
        .get("input")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    let kind = match case.get("state_machine_type").and_then(Value::as_str) {
        Some("EXPRESS") => ExecutionType::Express,
        _ => ExecutionType::Standard,
    };
    let clock = VirtualClock::new(SystemClock.now());
    let mut info = ExecutionInfo::local("StateMachine", "exec-1", input, clock.now(), kind);
    info.sync_start =
        case.get("record_kind").and_then(Value::as_str) == Some("start_sync_execution");
    let mut exec = Execution::new(Arc::new(machine), def, info, record);
    let entropy = SeededEntropy::new(7);
    run_to_completion(
        &mut exec,
        vec![Event::Start],
        RunOptions {
            time: TimeMode::Virtual(&clock),
            entropy: &entropy,
            invoker,
            callbacks: None,
            on_change: None,
            map_runs: None,
            stop: None,
        },
    );
    Ok(Outcome {
        status: exec.status.as_str().to_string(),
        output: exec.output.clone(),
        error: exec.error.clone(),
        cause: exec.cause.clone(),
        execution: Some(exec),
    })
}

/// Compares an outcome with `case.expected`; `None` when it matches.
pub fn check(case: &Value, o: &Outcome) -> Option<String> {
    let exp = &case["expected"];
    let placeholders: Vec<String> = case
        .get("placeholders")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let m = Matcher::new(&placeholders);
    let exp_status = exp["status"].as_str().unwrap_or_default();
    if o.status != exp_status {
        return Some(format!(
            "status {} != {} (error={:?} cause={:?})",
            o.status,
            exp_status,
            o.error,
            o.cause
                .as_deref()
                .map(|c| c.chars().take(300).collect::<String>())
        ));
    }
    if exp_status == "SUCCEEDED" {
        let out = o.output.clone().unwrap_or(Value::Null);
        return m.check(exp.get("output").unwrap_or(&Value::Null), &out, "$output");
    }
    if let Some(e) = exp.get("error") {
        let actual = o.error.clone().map(Value::String).unwrap_or(Value::Null);
        if let Some(r) = m.check(e, &actual, "$error") {
            return Some(r);
        }
    }
    if let Some(c) = exp.get("cause") {
        let actual = match (
            &o.cause,
            exp.get("cause_is_json")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ) {
            (Some(text), true) => match serde_json::from_str::<Value>(text) {
                Ok(v) => v,
                Err(_) => return Some("$cause: expected JSON text".into()),
            },
            (Some(text), false) => Value::String(text.clone()),
            (None, _) => Value::Null,
        };
        return m.check(c, &actual, "$cause");
    }
    let _ = ExecutionStatus::Running;
    None
}

/// JSON text as Python's `json.dumps` writes it (", " and ": " separators, ASCII escapes).
pub fn python_json(v: &Value) -> String {
    match v {
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    python_json(&Value::String(k.clone())),
                    python_json(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut buf = [0u16; 2];
                        for u in c.encode_utf16(&mut buf) {
                            out.push_str(&format!("\\u{:04x}", u));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        other => other.to_string(),
    }
}

/// A task that always returns the same recorded result.
struct Recorded(Value);

impl TaskInvoker for Recorded {
    fn invoke(&self, _request: &TaskRequest) -> TaskOutcome {
        TaskOutcome::Succeeded(self.0.clone())
    }
}

/// Decodes a value AWS returned as JSON text; other values stay as they are.
fn decoded(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    }
}

/// The role the recorded TestState calls ran with. The recorded requests leave `roleArn`
/// out; the recordings (nearly all) passed one.
pub const TEST_STATE_ROLE: &str = "arn:aws:iam::123456789012:role/mapfleet-test-state";

/// Runs a `test_state_cases.jsonl` case: its `request` through the TestState API. A state
/// that called a real service without a mock gets the service's result replayed from the
/// recording (`inspectionData.result`, DEBUG/TRACE only); without one its task fails.
pub fn run_test_state_case(case: &Value) -> Result<TestStateResponse, String> {
    let mut req = TestStateRequest::from_json(&case["request"]).map_err(|e| e.to_string())?;
    if req.role_arn.is_none() {
        req.role_arn = Some(TEST_STATE_ROLE.to_string());
    }
    let recorded = if req.mock.is_none() {
        case["expected"]["inspectionData"]
            .get("result")
            .map(decoded)
    } else {
        None
    };
    let invoker: Box<dyn TaskInvoker> = match recorded {
        Some(r) => Box::new(Recorded(r)),
        None => Box::new(NoService),
    };
    let entropy = SeededEntropy::new(7);
    let ports = TestStatePorts {
        invoker: invoker.as_ref(),
        entropy: &entropy,
        now: SystemClock.now(),
    };
    test_state(&req, &ports).map_err(|e| e.to_string())
}

/// The query language(s) a TestState case's definition uses, for the report.
pub fn test_state_languages(case: &Value) -> String {
    let text = case["request"]["definition"].to_string();
    if text.contains("\"QueryLanguage\":\"JSONata\"") {
        "JSONata".into()
    } else {
        "JSONPath".into()
    }
}

/// Compares a TestState response with `case.expected` (`status`, `output`, `error`,
/// `cause`, `nextState`, `inspectionData`; a field is compared when either side has it).
/// AWS returns output and inspection data as JSON text; the recording decoded the objects
/// among them, so expected text is decoded before comparing.
pub fn check_test_state(case: &Value, resp: &TestStateResponse) -> Option<String> {
    let exp = &case["expected"];
    let placeholders: Vec<String> = case
        .get("placeholders")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let m = Matcher::new(&placeholders);
    let actual = resp.to_json();
    if exp["status"] != actual["status"] {
        return Some(format!(
            "status {} != {} (error={} cause={})",
            actual["status"],
            exp["status"],
            actual.get("error").unwrap_or(&Value::Null),
            actual.get("cause").unwrap_or(&Value::Null)
        ));
    }
    for key in ["output", "error", "cause", "nextState", "inspectionData"] {
        let expected = match (key, exp.get(key)) {
            ("inspectionData", Some(Value::Object(d))) => Some(Value::Object(
                d.iter().map(|(k, v)| (k.clone(), decoded(v))).collect(),
            )),
            (_, e) => e.cloned(),
        };
        match (expected, actual.get(key)) {
            (None, None) => {}
            (Some(e), Some(a)) => {
                if let Some(r) = m.check(&e, a, &format!("${key}")) {
                    return Some(r);
                }
            }
            (Some(_), None) => return Some(format!("${key}: missing")),
            (None, Some(a)) => {
                let text = a.to_string();
                return Some(format!(
                    "${key}: not expected, got {}",
                    text.chars().take(120).collect::<String>()
                ));
            }
        }
    }
    None
}
