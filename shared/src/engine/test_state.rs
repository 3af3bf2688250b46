//! The TestState API: evaluates one state on its own and reports what happened to its data.
//!
//! A thin layer over the ordinary engine. [`test_state`] takes the state out of its definition
//! (the whole `definition`, or the state `stateName` names inside a full one), wraps it in a
//! one-state machine whose transition targets are `Succeed` stubs, and runs that machine
//! through [`Execution`] with:
//!
//! * a mock [`TaskInvoker`] answering with `mock.result` / `mock.errorOutput` (Task states);
//!   a Map or Parallel state with a mock becomes a Task-shaped state whose "task" is the mock,
//!   so its ResultSelector/ResultPath/Output/Assign/Retry/Catch run as usual, after this
//!   module has evaluated the Map's own fields (InputPath, ItemsPath/Items, MaxConcurrency,
//!   tolerated failures) and applied `stateConfiguration.mapIterationFailureCount`;
//! * a [`Probe`] on the execution that seeds the context object (`context`, or the one
//!   TestState makes up), the attempts already made (`stateConfiguration.retrierRetryCount`)
//!   and records the data-flow points (`afterInputPath`, `afterParameters`/`afterArguments`,
//!   `result`, `afterResultSelector`, `afterResultPath`, assigned variables, which retrier or
//!   catcher took the error);
//! * the `variables` as the top-level scope.
//!
//! The outcome maps to TestState's statuses: `RETRIABLE` as soon as a retrier schedules a
//! retry (the run stops there), `CAUGHT_ERROR` when a catcher took the error, `SUCCEEDED` /
//! `FAILED` otherwise; `nextState` is the stub the state went to. At `DEBUG` and `TRACE` the
//! response carries the inspection data AWS reports for the state's type and query language.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::asl::diagnostic::Diagnostic;
use crate::asl::jsonata::JsonataEnv;
use crate::asl::jsonpath::{JsonPath, PathError, Root};
use crate::asl::parse::parse_definition;
use crate::asl::timestamp;
use crate::asl::{
    AslError, Catcher, Dynamic, ExecutionType, Io, ItemsSource, PathField, QueryLanguage, Retrier,
    State, StateId, StateKind, Task, Transition,
};
use crate::ports::{Entropy, VirtualClock};

use super::context::{ExecutionInfo, DEFAULT_ACCOUNT, DEFAULT_REGION};
use super::driver::{TaskInvoker, TaskOutcome};
use super::execution::{
    Action, Env, Event, Execution, ExecutionStatus, IntegrationPattern, TaskRequest,
};

/// The name the state under test runs as: AWS reports it as `$$.State.Name` whatever the
/// state is called.
const TESTED_STATE_NAME: &str = "StateName";
/// The state machine the evaluation pretends to run in.
const TEST_MACHINE_NAME: &str = "TestStateMachine";
/// The resource of the Task-shaped state a mocked Map or Parallel becomes.
const COMPOSITE_MOCK_RESOURCE: &str = "mapfleet:test-state:mock";
/// More events than a single state can ever need: the evaluation stops there.
const MAX_EVENTS: usize = 10_000;

// ----- the probe ---------------------------------------------------------------------------

/// A data-flow point of the state under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Point {
    AfterInputPath,
    AfterParameters,
    AfterArguments,
    Result,
    AfterResultSelector,
    AfterResultPath,
    /// The variables the state assigned (an object).
    Assigned,
}

/// What an [`Execution`] records for TestState, and what it seeds: attached with
/// [`Execution::set_probe`]; it only ever watches the top-level thread on `state`.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// The state under test (in the top-level machine).
    pub(crate) state: StateId,
    /// Replaces the whole context object (`$$`, `$states.context`).
    pub(crate) context: Option<Value>,
    /// Attempts already made by the retrier that matches the error.
    pub(crate) retrier_retry_count: u64,
    points: BTreeMap<Point, Value>,
    retry_index: Option<usize>,
    retry_backoff_seconds: Option<f64>,
    retrying: Option<(Option<String>, Option<String>)>,
    catch_index: Option<usize>,
    caught: Option<(Option<String>, Option<String>)>,
}

impl Probe {
    /// A probe on state `state` of the top-level machine.
    pub fn new(state: StateId) -> Self {
        Probe {
            state,
            ..Probe::default()
        }
    }

    pub fn with_context(mut self, context: Value) -> Self {
        self.context = Some(context);
        self
    }

    pub fn with_retrier_retry_count(mut self, count: u64) -> Self {
        self.retrier_retry_count = count;
        self
    }

    pub(crate) fn record(&mut self, point: Point, value: Value) {
        self.points.insert(point, value);
    }

    pub(crate) fn retry_matched(&mut self, index: usize) {
        self.retry_index = Some(index);
    }

    pub(crate) fn retrying(
        &mut self,
        delay_seconds: f64,
        error: Option<String>,
        cause: Option<String>,
    ) {
        self.retry_backoff_seconds = Some(delay_seconds);
        self.retrying = Some((error, cause));
    }

    pub(crate) fn caught(&mut self, index: usize, error: Option<String>, cause: Option<String>) {
        self.catch_index = Some(index);
        self.caught = Some((error, cause));
    }

    /// The value recorded at `point`, if the state got there.
    pub fn get(&self, point: Point) -> Option<&Value> {
        self.points.get(&point)
    }

    /// A retrier scheduled a retry of the state: TestState's `RETRIABLE`.
    pub fn is_retrying(&self) -> bool {
        self.retrying.is_some()
    }

    fn error_details(&self) -> Option<ErrorDetails> {
        let d = ErrorDetails {
            catch_index: self.catch_index.map(|i| i as u64),
            retry_index: self.retry_index.map(|i| i as u64),
            retry_backoff_interval_seconds: self.retry_backoff_seconds.map(|s| {
                if s.is_finite() && s > 0.0 {
                    s as u64
                } else {
                    0
                }
            }),
        };
        (d != ErrorDetails::default()).then_some(d)
    }
}

// ----- request -----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InspectionLevel {
    /// Status, output, error, next state.
    #[default]
    Info,
    /// Plus the inspection data (the data flow).
    Debug,
    /// Like DEBUG (HTTP request/response details are for HTTP Tasks, not run here).
    Trace,
}

impl InspectionLevel {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INFO" => Some(InspectionLevel::Info),
            "DEBUG" => Some(InspectionLevel::Debug),
            "TRACE" => Some(InspectionLevel::Trace),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InspectionLevel::Info => "INFO",
            InspectionLevel::Debug => "DEBUG",
            InspectionLevel::Trace => "TRACE",
        }
    }
}

/// How strictly AWS checks a mocked result against the service's API. Accepted for
/// compatibility; mapfleet has no service models, so every mode accepts any result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidationMode {
    #[default]
    Strict,
    Present,
    None,
}

/// `mock.errorOutput`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MockError {
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// `mock`: what the state's task (or a Map's/Parallel's iterations) returned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mock {
    /// The result (decoded; AWS takes it as JSON text).
    pub result: Option<Value>,
    pub error_output: Option<MockError>,
    pub field_validation_mode: FieldValidationMode,
}

/// `stateConfiguration`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StateConfiguration {
    /// Attempts already made by the retrier that applies to the mocked error.
    pub retrier_retry_count: Option<u64>,
    /// The state inside a Map/Parallel the mocked error comes from.
    pub error_caused_by_state: Option<String>,
    /// Map iterations that failed.
    pub map_iteration_failure_count: Option<u64>,
    /// What a Distributed Map's ItemReader read (JSON text for JSON sources).
    pub map_item_reader_data: Option<String>,
}

/// A TestState request. Values are decoded JSON (AWS sends them as JSON text; see
/// [`TestStateRequest::from_json`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TestStateRequest {
    /// One state, or a whole state machine together with `state_name`.
    pub definition: Value,
    pub input: Value,
    pub inspection_level: InspectionLevel,
    pub state_name: Option<String>,
    pub mock: Option<Mock>,
    /// Replaces the context object.
    pub context: Option<Value>,
    pub variables: Option<Map<String, Value>>,
    pub state_configuration: StateConfiguration,
    /// Shown as `$$.Execution.RoleArn` (`null` without one, as on AWS).
    pub role_arn: Option<String>,
    pub reveal_secrets: bool,
}

impl TestStateRequest {
    pub fn new(definition: Value, input: Value) -> Self {
        TestStateRequest {
            definition,
            input,
            inspection_level: InspectionLevel::Info,
            state_name: None,
            mock: None,
            context: None,
            variables: None,
            state_configuration: StateConfiguration::default(),
            role_arn: None,
            reveal_secrets: false,
        }
    }

    /// Reads a request shaped like AWS's TestState request (`definition`, `input`,
    /// `inspectionLevel`, `stateName`, `mock`, `context`, `variables`,
    /// `stateConfiguration`, `roleArn`, `revealSecrets`). `definition`, `input`, `context`,
    /// `variables` and `mock.result` may be JSON text (as AWS takes them) or JSON values.
    pub fn from_json(v: &Value) -> Result<Self, TestStateError> {
        let obj = v
            .as_object()
            .ok_or_else(|| invalid("the request must be a JSON object"))?;
        let definition = match obj.get("definition") {
            Some(d) => json_field(d, "definition")?,
            None => return Err(invalid("definition is required")),
        };
        let input = match obj.get("input") {
            Some(i) => json_field(i, "input")?,
            None => Value::Object(Map::new()),
        };
        let inspection_level = match obj.get("inspectionLevel") {
            None | Some(Value::Null) => InspectionLevel::Info,
            Some(Value::String(s)) => InspectionLevel::parse(s).ok_or_else(|| {
                invalid(format!(
                    "inspectionLevel must be INFO, DEBUG or TRACE, got '{s}'"
                ))
            })?,
            Some(other) => {
                return Err(invalid(format!(
                    "inspectionLevel must be a string, got {other}"
                )))
            }
        };
        let state_name = opt_string(obj.get("stateName"), "stateName")?;
        let mock = match obj.get("mock") {
            None | Some(Value::Null) => None,
            Some(m) => Some(parse_mock(m)?),
        };
        let context = match obj.get("context") {
            None | Some(Value::Null) => None,
            Some(c) => Some(json_field(c, "context")?),
        };
        let variables = match obj.get("variables") {
            None | Some(Value::Null) => None,
            Some(v) => match json_field(v, "variables")? {
                Value::Object(m) => Some(m),
                other => {
                    return Err(invalid(format!(
                        "variables must be a JSON object, got {}",
                        compact(&other)
                    )))
                }
            },
        };
        let state_configuration = match obj.get("stateConfiguration") {
            None | Some(Value::Null) => StateConfiguration::default(),
            Some(c) => parse_configuration(c)?,
        };
        Ok(TestStateRequest {
            definition,
            input,
            inspection_level,
            state_name,
            mock,
            context,
            variables,
            state_configuration,
            role_arn: opt_string(obj.get("roleArn"), "roleArn")?,
            reveal_secrets: obj
                .get("revealSecrets")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

fn invalid(msg: impl Into<String>) -> TestStateError {
    TestStateError::Validation(msg.into())
}

/// A field AWS takes as JSON text: text is decoded (text that is not JSON stays a string),
/// anything else is taken as the value itself.
fn json_field(v: &Value, field: &str) -> Result<Value, TestStateError> {
    match v {
        Value::String(s) => match serde_json::from_str(s) {
            Ok(decoded) => Ok(decoded),
            Err(_) if field == "input" || field == "result" => Ok(v.clone()),
            Err(e) => Err(invalid(format!("{field} is not valid JSON: {e}"))),
        },
        other => Ok(other.clone()),
    }
}

fn opt_string(v: Option<&Value>, field: &str) -> Result<Option<String>, TestStateError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(format!(
            "{field} must be a string, got {}",
            compact(other)
        ))),
    }
}

fn opt_count(v: Option<&Value>, field: &str) -> Result<Option<u64>, TestStateError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{field} must be a non-negative integer, got {n}"))),
    }
}

fn parse_mock(m: &Value) -> Result<Mock, TestStateError> {
    let obj = m
        .as_object()
        .ok_or_else(|| invalid("mock must be a JSON object"))?;
    let result = match obj.get("result") {
        None | Some(Value::Null) => None,
        Some(r) => Some(json_field(r, "result")?),
    };
    let error_output = match obj.get("errorOutput") {
        None | Some(Value::Null) => None,
        Some(e) => {
            let eo = e
                .as_object()
                .ok_or_else(|| invalid("mock.errorOutput must be a JSON object"))?;
            Some(MockError {
                error: opt_string(eo.get("error"), "mock.errorOutput.error")?,
                cause: opt_string(eo.get("cause"), "mock.errorOutput.cause")?,
            })
        }
    };
    let field_validation_mode = match obj.get("fieldValidationMode").and_then(Value::as_str) {
        None | Some("STRICT") => FieldValidationMode::Strict,
        Some("PRESENT") => FieldValidationMode::Present,
        Some("NONE") => FieldValidationMode::None,
        Some(other) => {
            return Err(invalid(format!(
                "mock.fieldValidationMode must be STRICT, PRESENT or NONE, got '{other}'"
            )))
        }
    };
    Ok(Mock {
        result,
        error_output,
        field_validation_mode,
    })
}

fn parse_configuration(c: &Value) -> Result<StateConfiguration, TestStateError> {
    let obj = c
        .as_object()
        .ok_or_else(|| invalid("stateConfiguration must be a JSON object"))?;
    Ok(StateConfiguration {
        retrier_retry_count: opt_count(obj.get("retrierRetryCount"), "retrierRetryCount")?,
        error_caused_by_state: opt_string(obj.get("errorCausedByState"), "errorCausedByState")?,
        map_iteration_failure_count: opt_count(
            obj.get("mapIterationFailureCount"),
            "mapIterationFailureCount",
        )?,
        map_item_reader_data: match obj.get("mapItemReaderData") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(compact(other)),
        },
    })
}

// ----- response ----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStateStatus {
    Succeeded,
    Failed,
    /// A retrier would retry the state.
    Retriable,
    /// A catcher took the error; `next_state` is its `Next`.
    CaughtError,
}

impl TestStateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TestStateStatus::Succeeded => "SUCCEEDED",
            TestStateStatus::Failed => "FAILED",
            TestStateStatus::Retriable => "RETRIABLE",
            TestStateStatus::CaughtError => "CAUGHT_ERROR",
        }
    }
}

/// `inspectionData.errorDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorDetails {
    pub catch_index: Option<u64>,
    pub retry_index: Option<u64>,
    pub retry_backoff_interval_seconds: Option<u64>,
}

/// `inspectionData` (DEBUG and TRACE), decoded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InspectionData {
    pub input: Value,
    pub after_arguments: Option<Value>,
    pub after_input_path: Option<Value>,
    pub after_parameters: Option<Value>,
    pub result: Option<Value>,
    pub after_result_selector: Option<Value>,
    pub after_result_path: Option<Value>,
    pub after_items_path: Option<Value>,
    pub max_concurrency: Option<u64>,
    pub tolerated_failure_count: Option<u64>,
    pub tolerated_failure_percentage: Option<f64>,
    pub variables: Option<Map<String, Value>>,
    pub error_details: Option<ErrorDetails>,
}

impl InspectionData {
    /// As JSON: `as_text` renders the data fields as JSON text, as AWS does.
    fn to_json_with(&self, as_text: bool) -> Value {
        let enc = |v: &Value| {
            if as_text {
                Value::String(compact(v))
            } else {
                v.clone()
            }
        };
        let mut d = Map::new();
        d.insert("input".into(), enc(&self.input));
        let fields = [
            ("afterArguments", &self.after_arguments),
            ("afterInputPath", &self.after_input_path),
            ("afterParameters", &self.after_parameters),
            ("result", &self.result),
            ("afterResultSelector", &self.after_result_selector),
            ("afterResultPath", &self.after_result_path),
            ("afterItemsPath", &self.after_items_path),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                d.insert(k.into(), enc(v));
            }
        }
        if let Some(n) = self.max_concurrency {
            d.insert("maxConcurrency".into(), json!(n));
        }
        if let Some(n) = self.tolerated_failure_count {
            d.insert("toleratedFailureCount".into(), json!(n));
        }
        if let Some(p) = self.tolerated_failure_percentage {
            d.insert("toleratedFailurePercentage".into(), json!(p));
        }
        if let Some(vars) = &self.variables {
            d.insert("variables".into(), enc(&Value::Object(vars.clone())));
        }
        if let Some(e) = &self.error_details {
            let mut ed = Map::new();
            if let Some(i) = e.catch_index {
                ed.insert("catchIndex".into(), json!(i));
            }
            if let Some(s) = e.retry_backoff_interval_seconds {
                ed.insert("retryBackoffIntervalSeconds".into(), json!(s));
            }
            if let Some(i) = e.retry_index {
                ed.insert("retryIndex".into(), json!(i));
            }
            d.insert("errorDetails".into(), Value::Object(ed));
        }
        Value::Object(d)
    }
}

/// A TestState response.
#[derive(Debug, Clone, PartialEq)]
pub struct TestStateResponse {
    pub status: TestStateStatus,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub next_state: Option<String>,
    pub inspection_data: Option<InspectionData>,
}

impl TestStateResponse {
    /// The response with every value decoded.
    pub fn to_json(&self) -> Value {
        self.to_json_with(false)
    }

    /// The response as AWS returns it: `output` and the inspection data as JSON text.
    pub fn to_aws_json(&self) -> Value {
        self.to_json_with(true)
    }

    fn to_json_with(&self, as_text: bool) -> Value {
        let mut d = Map::new();
        if let Some(o) = &self.output {
            let v = if as_text {
                Value::String(compact(o))
            } else {
                o.clone()
            };
            d.insert("output".into(), v);
        }
        if let Some(e) = &self.error {
            d.insert("error".into(), json!(e));
        }
        if let Some(c) = &self.cause {
            d.insert("cause".into(), json!(c));
        }
        if let Some(i) = &self.inspection_data {
            d.insert("inspectionData".into(), i.to_json_with(as_text));
        }
        if let Some(n) = &self.next_state {
            d.insert("nextState".into(), json!(n));
        }
        d.insert("status".into(), json!(self.status.as_str()));
        Value::Object(d)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TestStateError {
    #[error("InvalidDefinition: {}", join(.0))]
    InvalidDefinition(Vec<Diagnostic>),
    #[error("InvalidDefinition: the definition has no state named '{0}'")]
    StateNotFound(String),
    #[error("ValidationException: {0}")]
    Validation(String),
}

fn join(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

// ----- evaluation --------------------------------------------------------------------------

/// The effects an evaluation may use: tasks without a mock, randomness, the start time.
pub struct TestStatePorts<'a> {
    pub invoker: &'a dyn TaskInvoker,
    pub entropy: &'a dyn Entropy,
    pub now: DateTime<Utc>,
}

/// Evaluates the request's state once. Errors are request problems (an invalid definition,
/// an unknown `stateName`, a missing mock); a state that fails is a `FAILED` response.
pub fn test_state(
    req: &TestStateRequest,
    ports: &TestStatePorts<'_>,
) -> Result<TestStateResponse, TestStateError> {
    let wrapped = wrap(req)?;
    let mut machine = parse_definition(&wrapped.definition).map_err(|diags| {
        // A lone state's findings point into the state, not into the wrapper.
        let prefix = format!("/States/{}", wrapped.tested_name);
        TestStateError::InvalidDefinition(
            diags
                .into_iter()
                .map(|mut d| {
                    if let Some(rest) = d.location.strip_prefix(&prefix) {
                        d.location = if rest.is_empty() {
                            "/".into()
                        } else {
                            rest.to_string()
                        };
                    }
                    d
                })
                .collect(),
        )
    })?;
    let tested = machine.start_at;
    let state = machine.state(tested).clone();
    let vars = req.variables.clone().unwrap_or_default();
    let info = execution_info(req, ports);
    let context = match &req.context {
        Some(c) => c.clone(),
        None => default_context(&info, &state, req),
    };

    // What the state's task, or a Map's/Parallel's iterations, come back with.
    let mut map_fields = MapFields::default();
    let mocked: Option<TaskOutcome> = match (&state.kind, &req.mock) {
        (StateKind::Map(_) | StateKind::Parallel(_), None) => {
            return Err(invalid(format!(
                "a {} state can only be tested with a mock",
                state.kind.type_name()
            )))
        }
        (StateKind::Map(m), Some(mock)) => {
            check_mock(mock)?;
            check_error_source(&state, req)?;
            let outcome = map_outcome(
                &state,
                m,
                mock,
                req,
                &context,
                &vars,
                ports.entropy,
                &mut map_fields,
            );
            set_kind(&mut machine, tested, composite_as_task(&state.kind));
            Some(outcome)
        }
        (StateKind::Parallel(_), Some(mock)) => {
            check_mock(mock)?;
            check_error_source(&state, req)?;
            set_kind(&mut machine, tested, composite_as_task(&state.kind));
            Some(mock_outcome(mock))
        }
        (StateKind::Task(_), Some(mock)) => {
            check_mock(mock)?;
            Some(mock_outcome(mock))
        }
        (StateKind::Task(t), None) => {
            if needs_mock(&t.resource) {
                return Err(invalid(format!(
                    "the resource '{}' can only be tested with a mock",
                    t.resource
                )));
            }
            None
        }
        (_, Some(_)) => {
            return Err(invalid(format!(
                "a mock applies to Task, Map and Parallel states, not to a {} state",
                state.kind.type_name()
            )))
        }
        (_, None) => None,
    };

    let mut exec = Execution::new(Arc::new(machine), wrapped.definition, info, true);
    exec.set_initial_variables(vars.clone());
    exec.set_probe(
        Probe::new(tested)
            .with_context(context)
            .with_retrier_retry_count(req.state_configuration.retrier_retry_count.unwrap_or(0)),
    );
    let invoker = MockInvoker {
        outcome: mocked,
        fallback: ports.invoker,
    };
    drive(&mut exec, &invoker, ports);

    let probe = exec.probe().cloned().unwrap_or_default();
    let mut resp = TestStateResponse {
        status: TestStateStatus::Succeeded,
        output: None,
        error: None,
        cause: None,
        next_state: None,
        inspection_data: None,
    };
    match exec.status {
        ExecutionStatus::Succeeded => {
            resp.output = exec.output.clone();
            resp.next_state = next_state(&exec, &wrapped.tested_name);
            if let Some((error, cause)) = &probe.caught {
                resp.status = TestStateStatus::CaughtError;
                resp.error = error.clone();
                resp.cause = cause.clone();
            }
        }
        ExecutionStatus::Running => match &probe.retrying {
            Some((error, cause)) => {
                resp.status = TestStateStatus::Retriable;
                resp.error = error.clone();
                resp.cause = cause.clone();
            }
            None => {
                resp.status = TestStateStatus::Failed;
                resp.error = Some("States.Timeout".into());
                resp.cause = Some("The state did not finish: its task never answered".into());
            }
        },
        ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted => {
            resp.status = TestStateStatus::Failed;
            resp.error = exec.error.clone();
            resp.cause = exec.cause.clone();
        }
    }
    if req.inspection_level != InspectionLevel::Info {
        resp.inspection_data = Some(inspection(req, &state, &probe, &map_fields, &vars));
    }
    Ok(resp)
}

/// The one-state machine the evaluation runs.
struct Wrapped {
    definition: Value,
    /// The state under test's name in it.
    tested_name: String,
}

/// Takes the state out of the request's definition and wraps it: the state under test is
/// the start state, every state it can go to is a `Succeed` stub of the same name.
fn wrap(req: &TestStateRequest) -> Result<Wrapped, TestStateError> {
    let def = req
        .definition
        .as_object()
        .ok_or_else(|| invalid("the definition must be a JSON object"))?;
    let (state_json, top_language) = if def.contains_key("States") {
        // A whole state machine: it must be valid as a whole.
        parse_definition(&req.definition).map_err(TestStateError::InvalidDefinition)?;
        let name = match (&req.state_name, def.get("StartAt").and_then(Value::as_str)) {
            (Some(n), _) => n.clone(),
            (None, Some(start)) => start.to_string(),
            (None, None) => {
                return Err(invalid(
                    "stateName is required with a state machine definition",
                ))
            }
        };
        let found =
            find_state(&req.definition, &name).ok_or(TestStateError::StateNotFound(name))?;
        (found.clone(), def.get("QueryLanguage").cloned())
    } else {
        (req.definition.clone(), None)
    };
    let mut targets: BTreeSet<String> = BTreeSet::new();
    let mut add = |v: Option<&Value>| {
        if let Some(Value::String(s)) = v {
            targets.insert(s.clone());
        }
    };
    add(state_json.get("Next"));
    add(state_json.get("Default"));
    for key in ["Choices", "Catch"] {
        if let Some(Value::Array(list)) = state_json.get(key) {
            for item in list {
                add(item.get("Next"));
            }
        }
    }
    let mut tested_name = TESTED_STATE_NAME.to_string();
    while targets.contains(&tested_name) {
        tested_name.push('_');
    }
    let mut states = Map::new();
    states.insert(tested_name.clone(), state_json);
    for t in targets {
        states.insert(t, json!({"Type": "Succeed"}));
    }
    let mut wrapper = Map::new();
    if let Some(ql) = top_language {
        wrapper.insert("QueryLanguage".into(), ql);
    }
    wrapper.insert("StartAt".into(), json!(tested_name));
    wrapper.insert("States".into(), Value::Object(states));
    Ok(Wrapped {
        definition: Value::Object(wrapper),
        tested_name,
    })
}

/// A state by name anywhere in a machine (Parallel branches and Map processors included).
fn find_state<'a>(machine: &'a Value, name: &str) -> Option<&'a Value> {
    let states = machine.get("States")?.as_object()?;
    if let Some(s) = states.get(name) {
        return Some(s);
    }
    states.values().find_map(|s| {
        let mut subs: Vec<&Value> = Vec::new();
        if let Some(Value::Array(branches)) = s.get("Branches") {
            subs.extend(branches.iter());
        }
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(p) = s.get(key) {
                subs.push(p);
            }
        }
        subs.into_iter().find_map(|m| find_state(m, name))
    })
}

/// Whether a task can only be tested with a mock (it would wait for a callback or poll a
/// job, as AWS's TestState refuses too).
fn needs_mock(resource: &str) -> bool {
    resource.ends_with(".waitForTaskToken")
        || resource.ends_with(".sync")
        || resource.contains(".sync:")
        || resource.contains(":activity:")
}

fn check_mock(mock: &Mock) -> Result<(), TestStateError> {
    match (&mock.result, &mock.error_output) {
        (Some(_), Some(_)) => Err(invalid(
            "a mock has either a result or an errorOutput, not both",
        )),
        (None, None) => Err(invalid("a mock needs a result or an errorOutput")),
        _ => Ok(()),
    }
}

/// `errorCausedByState` must name a state inside the Map/Parallel.
fn check_error_source(state: &State, req: &TestStateRequest) -> Result<(), TestStateError> {
    let Some(name) = &req.state_configuration.error_caused_by_state else {
        return Ok(());
    };
    let inner: Vec<&crate::asl::StateMachine> = match &state.kind {
        StateKind::Map(m) => vec![&m.item_processor],
        StateKind::Parallel(p) => p.branches.iter().collect(),
        _ => Vec::new(),
    };
    fn contains(m: &crate::asl::StateMachine, name: &str) -> bool {
        m.by_name.contains_key(name)
            || m.states.iter().any(|s| match &s.kind {
                StateKind::Map(x) => contains(&x.item_processor, name),
                StateKind::Parallel(p) => p.branches.iter().any(|b| contains(b, name)),
                _ => false,
            })
    }
    if inner.iter().any(|m| contains(m, name)) {
        Ok(())
    } else {
        Err(invalid(format!(
            "errorCausedByState '{name}' is not a state of the {} state",
            state.kind.type_name()
        )))
    }
}

fn mock_outcome(mock: &Mock) -> TaskOutcome {
    match &mock.error_output {
        Some(e) => TaskOutcome::Failed {
            error: e.error.clone(),
            cause: e.cause.clone(),
        },
        None => TaskOutcome::Succeeded(mock.result.clone().unwrap_or(Value::Null)),
    }
}

fn set_kind(machine: &mut crate::asl::StateMachine, id: StateId, kind: StateKind) {
    if let Some(s) = machine.states.get_mut(id) {
        s.kind = kind;
    }
}

/// A Map or Parallel whose iterations are mocked, as a Task whose result is the mock: its
/// result processing, Retry and Catch stay; the fields that only feed iterations go.
/// `States.TaskFailed` only ever matches a Task's errors, so it leaves the error lists.
fn composite_as_task(kind: &StateKind) -> StateKind {
    let (io, retry, catch, transition): (&Io, &[Retrier], &[Catcher], Transition) = match kind {
        StateKind::Map(m) => (&m.io, &m.retry, &m.catch, m.transition),
        StateKind::Parallel(p) => (&p.io, &p.retry, &p.catch, p.transition),
        _ => return kind.clone(),
    };
    let not_task_failed = |list: &[String]| -> Vec<String> {
        list.iter()
            .filter(|e| e.as_str() != "States.TaskFailed")
            .cloned()
            .collect()
    };
    StateKind::Task(Task {
        io: Io {
            input_path: PathField::Default,
            parameters: None,
            result_selector: io.result_selector.clone(),
            result_path: io.result_path.clone(),
            output_path: io.output_path.clone(),
            output: io.output.clone(),
            assign: io.assign.clone(),
        },
        resource: COMPOSITE_MOCK_RESOURCE.into(),
        credentials: None,
        timeout_seconds: None,
        heartbeat_seconds: None,
        retry: retry
            .iter()
            .map(|r| Retrier {
                error_equals: not_task_failed(&r.error_equals),
                ..r.clone()
            })
            .collect(),
        catch: catch
            .iter()
            .map(|c| Catcher {
                error_equals: not_task_failed(&c.error_equals),
                ..c.clone()
            })
            .collect(),
        transition,
    })
}

/// What the Map's own fields evaluated to (its inspection data).
#[derive(Default)]
struct MapFields {
    after_input_path: Option<Value>,
    after_items_path: Option<Value>,
    max_concurrency: Option<u64>,
    tolerated_count: Option<u64>,
    tolerated_percentage: Option<f64>,
}

/// Evaluates a mocked Map's own fields and decides its outcome: the mocked error, the
/// tolerated-failure threshold (`mapIterationFailureCount` against the Map's
/// ToleratedFailureCount/Percentage), or the mocked result. An error in the Map's fields is
/// the outcome too.
#[allow(clippy::too_many_arguments)]
fn map_outcome(
    state: &State,
    m: &crate::asl::Map,
    mock: &Mock,
    req: &TestStateRequest,
    context: &Value,
    vars: &Map<String, Value>,
    entropy: &dyn Entropy,
    fields: &mut MapFields,
) -> TaskOutcome {
    let r = (|| -> Result<TaskOutcome, AslError> {
        let jsonata = state.query_language == QueryLanguage::Jsonata;
        let raw = &req.input;
        let states = json!({"input": raw, "context": context});
        let env = JsonataEnv {
            states: &states,
            vars,
            entropy,
        };
        let effective = if jsonata {
            raw.clone()
        } else {
            let e = match &m.io.input_path {
                PathField::Default => raw.clone(),
                PathField::Null => Value::Object(Map::new()),
                PathField::Path(p) => select(p, raw, context, vars)?,
            };
            fields.after_input_path = Some(e.clone());
            e
        };
        let items_len = if m.item_reader.is_some() {
            // The reader's data comes with the request.
            req.state_configuration
                .map_item_reader_data
                .as_deref()
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .and_then(|v| v.as_array().map(Vec::len))
                .unwrap_or(0)
        } else {
            let items = match &m.items {
                Some(ItemsSource::Path(p)) => {
                    let v = select(p, &effective, context, vars)?;
                    if !v.is_array() {
                        return Err(not_an_array(p));
                    }
                    v
                }
                Some(ItemsSource::Jsonata(t)) => {
                    let v = t.eval(&env, "Items")?;
                    if !v.is_array() {
                        return Err(t.type_error("Items", "array", &v));
                    }
                    v
                }
                None if !effective.is_array() => {
                    return Err(if jsonata {
                        AslError::query(format!(
                            "Map state input must be an array but was: {}",
                            compact(&effective)
                        ))
                    } else {
                        AslError::runtime("Reference path \"$\" must point to array.")
                    });
                }
                None => effective.clone(),
            };
            let len = items.as_array().map_or(0, Vec::len);
            if !jsonata {
                fields.after_items_path = Some(items);
            }
            len
        };
        let max = match &m.max_concurrency {
            Some(d) => eval_count(d, "MaxConcurrency", &effective, context, vars, &env)?,
            None => 0,
        };
        fields.max_concurrency = Some(max);
        if let Some(d) = &m.tolerated_failure_count {
            fields.tolerated_count = Some(eval_count(
                d,
                "ToleratedFailureCount",
                &effective,
                context,
                vars,
                &env,
            )?);
        }
        if let Some(d) = &m.tolerated_failure_percentage {
            fields.tolerated_percentage =
                Some(eval_percentage(d, &effective, context, vars, &env)?);
        }
        if let Some(e) = &mock.error_output {
            return Ok(TaskOutcome::Failed {
                error: e.error.clone(),
                cause: e.cause.clone(),
            });
        }
        // The failure count only counts against a tolerance the Map defines (recorded on
        // AWS: a Map without one succeeds whatever the count).
        let failures = req
            .state_configuration
            .map_iteration_failure_count
            .unwrap_or(0);
        if fields.tolerated_count.is_some() || fields.tolerated_percentage.is_some() {
            let count_ok = fields.tolerated_count.is_some_and(|c| failures <= c);
            let pct_ok = fields.tolerated_percentage.is_some_and(|p| {
                if items_len == 0 {
                    failures == 0
                } else {
                    failures as f64 * 100.0 / items_len as f64 <= p
                }
            });
            if !count_ok && !pct_ok {
                return Ok(TaskOutcome::Failed {
                    error: Some("States.ExceedToleratedFailureThreshold".into()),
                    cause: Some("The specified tolerated failure threshold was exceeded".into()),
                });
            }
        }
        Ok(TaskOutcome::Succeeded(
            mock.result.clone().unwrap_or(Value::Null),
        ))
    })();
    r.unwrap_or_else(|e| TaskOutcome::Failed {
        error: Some(e.name.as_str().to_string()),
        cause: Some(e.cause),
    })
}

/// `ItemsPath` selected something else than an array. AWS quotes the path relative to the
/// document it reads (`$$.Execution.Input` shows as `$.Execution.Input`).
fn not_an_array(p: &JsonPath) -> AslError {
    let src = p.source();
    let shown = match p.root() {
        Root::Context => src.strip_prefix('$').unwrap_or(src),
        _ => src,
    };
    AslError::runtime(format!("Reference path \"{shown}\" must point to array."))
}

/// A reference path against the input, the context object or a variable.
fn select(
    path: &JsonPath,
    input: &Value,
    context: &Value,
    vars: &Map<String, Value>,
) -> Result<Value, AslError> {
    let root = match path.root() {
        Root::Input => input,
        Root::Context => context,
        Root::Variable(name) => vars.get(name).ok_or_else(|| {
            AslError::runtime(format!(
                "Invalid path '{}': The variable '{}' is not defined.",
                path.source(),
                name
            ))
        })?,
    };
    path.select(root).map_err(|e| match e {
        PathError::NoResults { normalized } => AslError::runtime(format!(
            "Invalid path '{}' : {}",
            path.source(),
            path.not_found_message(root)
                .unwrap_or_else(|| format!("No results for path: {normalized}"))
        )),
        PathError::CannotSet { message } => AslError::runtime(message),
    })
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => compact(other),
    }
}

/// MaxConcurrency / ToleratedFailureCount: a literal, a `…Path` or JSONata.
fn eval_count(
    d: &Dynamic<u64>,
    field: &str,
    effective: &Value,
    context: &Value,
    vars: &Map<String, Value>,
    env: &JsonataEnv<'_>,
) -> Result<u64, AslError> {
    match d {
        Dynamic::Literal(n) => Ok(*n),
        Dynamic::Path(p) => {
            let v = select(p, effective, context, vars)?;
            let n = match &v {
                Value::Number(n) => n.as_u64().or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .map(|f| f as u64)
                }),
                Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            };
            n.ok_or_else(|| {
                AslError::runtime(format!(
                    "The {field}Path field refers to value \"{}\" which is not a valid integer: {}",
                    shown(&v),
                    p.source()
                ))
            })
        }
        Dynamic::Jsonata(t) => {
            let v = t.eval(env, field)?;
            v.as_u64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .ok_or_else(|| t.type_error(field, "integer", &v))
        }
    }
}

/// ToleratedFailurePercentage: a literal, a `…Path` or JSONata, between 0 and 100.
fn eval_percentage(
    d: &Dynamic<f64>,
    effective: &Value,
    context: &Value,
    vars: &Map<String, Value>,
    env: &JsonataEnv<'_>,
) -> Result<f64, AslError> {
    let out_of_range = "ToleratedFailurePercentage must be between 0 and 100.";
    match d {
        Dynamic::Literal(f) => Ok(*f),
        Dynamic::Path(p) => {
            let v = select(p, effective, context, vars)?;
            let f = v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()));
            match f {
                Some(f) if (0.0..=100.0).contains(&f) => Ok(f),
                Some(_) => Err(AslError::runtime(out_of_range)),
                None => Err(AslError::runtime(format!(
                    "The ToleratedFailurePercentagePath field refers to value \"{}\" which is not a valid float: {}",
                    shown(&v),
                    p.source()
                ))),
            }
        }
        Dynamic::Jsonata(t) => {
            let v = t.eval(env, "ToleratedFailurePercentage")?;
            match v.as_f64() {
                Some(f) if (0.0..=100.0).contains(&f) => Ok(f),
                _ => Err(AslError::query(out_of_range)),
            }
        }
    }
}

/// The execution a TestState evaluation pretends to be: an Express execution of a made-up
/// state machine, started now.
fn execution_info(req: &TestStateRequest, ports: &TestStatePorts<'_>) -> ExecutionInfo {
    let name = ports.entropy.uuid_v4();
    let mut info = ExecutionInfo::local(
        TEST_MACHINE_NAME,
        &name,
        req.input.clone(),
        ports.now,
        ExecutionType::Express,
    );
    info.execution_arn = format!(
        "arn:aws:states:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:express:{TEST_MACHINE_NAME}:{name}"
    );
    info.sync_start = true;
    if let Some(r) = &req.role_arn {
        info.role_arn = r.clone();
    }
    info
}

/// The context object AWS makes up when the request has none.
fn default_context(info: &ExecutionInfo, state: &State, req: &TestStateRequest) -> Value {
    let started = Value::String(timestamp::format(info.start_time));
    let mut st = Map::new();
    st.insert("Name".into(), json!(TESTED_STATE_NAME));
    st.insert("EnteredTime".into(), started.clone());
    if matches!(
        state.kind,
        StateKind::Task(_) | StateKind::Parallel(_) | StateKind::Map(_)
    ) {
        st.insert(
            "RetryCount".into(),
            json!(req.state_configuration.retrier_retry_count.unwrap_or(0)),
        );
    }
    json!({
        "Execution": {
            "Id": info.execution_arn,
            "Input": req.input,
            "Name": info.name,
            "RoleArn": req.role_arn,
            "StartTime": started,
        },
        "StateMachine": {"Id": info.state_machine_arn, "Name": info.state_machine_name},
        "State": Value::Object(st),
    })
}

/// Answers the state's task with the mock, or sends it to the caller's invoker.
struct MockInvoker<'a> {
    outcome: Option<TaskOutcome>,
    fallback: &'a dyn TaskInvoker,
}

impl TaskInvoker for MockInvoker<'_> {
    fn invoke(&self, request: &TaskRequest) -> TaskOutcome {
        match &self.outcome {
            Some(o) => o.clone(),
            None => self.fallback.invoke(request),
        }
    }
}

/// Runs the wrapped machine to its end, synchronously, on a virtual clock (a Wait state or a
/// task timeout costs no time), and stops as soon as a retrier schedules a retry.
fn drive(exec: &mut Execution, invoker: &dyn TaskInvoker, ports: &TestStatePorts<'_>) {
    let clock = VirtualClock::new(ports.now);
    let mut queue: VecDeque<Event> = VecDeque::from([Event::Start]);
    let mut timers: BTreeSet<(DateTime<Utc>, u64)> = BTreeSet::new();
    for _ in 0..MAX_EVENTS {
        let event = match queue.pop_front() {
            Some(e) => e,
            None => match timers.pop_first() {
                Some((at, timer)) => {
                    clock.advance_to(at);
                    Event::TimerFired { timer }
                }
                // Nothing can happen any more (a task that never answers).
                None => return,
            },
        };
        let env = Env {
            now: crate::ports::Clock::now(&clock),
            entropy: ports.entropy,
        };
        let actions = exec.apply(event, &env);
        if exec.is_finished() || exec.probe().is_some_and(Probe::is_retrying) {
            return;
        }
        for action in actions {
            match action {
                Action::InvokeTask(req) => match invoker.invoke(&req) {
                    TaskOutcome::Succeeded(output) => queue.push_back(Event::TaskSucceeded {
                        task: req.task,
                        output,
                    }),
                    TaskOutcome::Failed { error, cause } => queue.push_back(Event::TaskFailed {
                        task: req.task,
                        error,
                        cause,
                    }),
                    TaskOutcome::Submitted | TaskOutcome::NoResponse => {
                        if req.pattern != IntegrationPattern::RequestResponse {
                            queue.push_back(Event::TaskSubmitted { task: req.task });
                        }
                    }
                },
                Action::StartTimer { timer, at } => {
                    timers.insert((at, timer));
                }
                Action::CancelTimer { timer } => timers.retain(|(_, t)| *t != timer),
                Action::CancelTask { .. } | Action::CancelMapRun { .. } => {}
                // A Distributed Map under test needs a mock (it then runs as a task).
                Action::StartMapRun(req) => queue.push_back(Event::MapRunEnded {
                    run: req.run,
                    result: Err((
                        "States.Runtime".into(),
                        "TestState runs a Distributed Map state only with a mock result".into(),
                    )),
                }),
            }
        }
    }
}

/// The stub the state under test went to.
fn next_state(exec: &Execution, tested: &str) -> Option<String> {
    exec.history
        .events
        .iter()
        .rev()
        .filter(|e| e.kind.ends_with("StateEntered"))
        .find_map(|e| e.details.get("name").and_then(Value::as_str))
        .filter(|n| *n != tested)
        .map(str::to_string)
}

/// The inspection data AWS reports for this state's type and query language.
fn inspection(
    req: &TestStateRequest,
    state: &State,
    probe: &Probe,
    map: &MapFields,
    vars: &Map<String, Value>,
) -> InspectionData {
    let jsonpath = state.query_language == QueryLanguage::JsonPath;
    let get = |p: Point| probe.get(p).cloned();
    let mut d = InspectionData {
        input: req.input.clone(),
        ..InspectionData::default()
    };
    match &state.kind {
        StateKind::Pass(p) if jsonpath => {
            // A Pass with a Result reports it, not its (unused) input processing.
            if p.result.is_some() {
                d.result = get(Point::Result);
            } else {
                d.after_input_path = get(Point::AfterInputPath);
                d.after_parameters = get(Point::AfterParameters);
            }
            d.after_result_selector = get(Point::AfterResultSelector);
            d.after_result_path = get(Point::AfterResultPath);
        }
        StateKind::Task(_) => {
            if jsonpath {
                d.after_input_path = get(Point::AfterInputPath);
                d.after_parameters = get(Point::AfterParameters);
            } else {
                d.after_arguments = get(Point::AfterArguments);
            }
            d.result = get(Point::Result);
            if jsonpath {
                d.after_result_selector = get(Point::AfterResultSelector);
                d.after_result_path = get(Point::AfterResultPath);
            }
        }
        StateKind::Choice(_) | StateKind::Succeed(_) | StateKind::Wait(_) if jsonpath => {
            d.after_input_path = get(Point::AfterInputPath);
        }
        StateKind::Fail(_) if jsonpath => d.after_input_path = Some(req.input.clone()),
        StateKind::Parallel(_) if jsonpath => {
            d.after_result_selector = get(Point::AfterResultSelector);
            d.after_result_path = get(Point::AfterResultPath);
        }
        StateKind::Map(_) => {
            d.after_input_path = map.after_input_path.clone();
            d.after_items_path = map.after_items_path.clone();
            d.max_concurrency = map.max_concurrency;
            d.tolerated_failure_count = map.tolerated_count;
            d.tolerated_failure_percentage = map.tolerated_percentage;
            if jsonpath {
                d.after_result_selector = get(Point::AfterResultSelector);
                d.after_result_path = get(Point::AfterResultPath);
            }
        }
        _ => {}
    }
    let mut all = vars.clone();
    if let Some(Value::Object(assigned)) = probe.get(Point::Assigned) {
        for (k, v) in assigned {
            all.insert(k.clone(), v.clone());
        }
    }
    if !all.is_empty() {
        d.variables = Some(all);
    }
    d.error_details = probe.error_details();
    d
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::handlers::HandlerRegistry;
    use crate::ports::SeededEntropy;

    fn run(req: &TestStateRequest) -> TestStateResponse {
        run_with(req, &HandlerRegistry::new())
    }

    fn run_with(req: &TestStateRequest, invoker: &dyn TaskInvoker) -> TestStateResponse {
        let entropy = SeededEntropy::new(1);
        let ports = TestStatePorts {
            invoker,
            entropy: &entropy,
            now: Utc::now(),
        };
        test_state(req, &ports).expect("a response")
    }

    fn request(v: Value) -> TestStateRequest {
        TestStateRequest::from_json(&v).expect("a valid request")
    }

    #[test]
    fn pass_state_reports_its_data_flow() {
        let resp = run(&request(json!({
            "definition": {"Type": "Pass", "InputPath": "$.a", "Parameters": {"x.$": "$.b"},
                           "ResultPath": "$.r", "Next": "After"},
            "input": {"a": {"b": 1}},
            "inspectionLevel": "DEBUG"
        })));
        assert_eq!(resp.status, TestStateStatus::Succeeded);
        assert_eq!(resp.next_state.as_deref(), Some("After"));
        assert_eq!(resp.output, Some(json!({"a": {"b": 1}, "r": {"x": 1}})));
        let d = resp.inspection_data.expect("inspection data");
        assert_eq!(d.after_input_path, Some(json!({"b": 1})));
        assert_eq!(d.after_parameters, Some(json!({"x": 1})));
        assert_eq!(d.after_result_selector, Some(json!({"x": 1})));
        assert_eq!(
            d.after_result_path,
            Some(json!({"a": {"b": 1}, "r": {"x": 1}}))
        );
        assert_eq!(d.result, None);
    }

    #[test]
    fn info_level_has_no_inspection_data() {
        let resp = run(&request(json!({
            "definition": {"Type": "Pass", "End": true}, "input": {"v": 1}
        })));
        assert_eq!(resp.output, Some(json!({"v": 1})));
        assert!(resp.inspection_data.is_none());
        assert!(resp.next_state.is_none());
    }

    #[test]
    fn task_mock_result_runs_result_processing() {
        let resp = run(&request(json!({
            "definition": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                           "Parameters": {"FunctionName": "f", "Payload.$": "$"},
                           "ResultSelector": {"p.$": "$.Payload"}, "ResultPath": "$.out", "End": true},
            "input": {"k": 1},
            "inspectionLevel": "TRACE",
            "mock": {"result": "{\"Payload\": 7}"}
        })));
        assert_eq!(resp.status, TestStateStatus::Succeeded);
        assert_eq!(resp.output, Some(json!({"k": 1, "out": {"p": 7}})));
        let d = resp.inspection_data.expect("inspection data");
        assert_eq!(
            d.after_parameters,
            Some(json!({"FunctionName": "f", "Payload": {"k": 1}}))
        );
        assert_eq!(d.result, Some(json!({"Payload": 7})));
        assert_eq!(d.after_result_selector, Some(json!({"p": 7})));
    }

    #[test]
    fn retrier_makes_the_error_retriable_with_its_backoff() {
        let def = json!({"Type": "Task", "QueryLanguage": "JSONata", "Resource": "arn:aws:states:::lambda:invoke",
                         "Arguments": {"FunctionName": "f"},
                         "Retry": [{"ErrorEquals": ["Other"]}, {"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 3.0}],
                         "End": true});
        let mut req = request(json!({
            "definition": def, "inspectionLevel": "DEBUG",
            "mock": {"errorOutput": {"error": "Boom", "cause": "bad"}},
            "stateConfiguration": {"retrierRetryCount": 2}
        }));
        let resp = run(&req);
        assert_eq!(resp.status, TestStateStatus::Retriable);
        assert_eq!(resp.error.as_deref(), Some("Boom"));
        assert_eq!(resp.cause.as_deref(), Some("bad"));
        let d = resp.inspection_data.expect("inspection data");
        assert_eq!(d.after_arguments, Some(json!({"FunctionName": "f"})));
        assert_eq!(
            d.error_details,
            Some(ErrorDetails {
                catch_index: None,
                retry_index: Some(1),
                retry_backoff_interval_seconds: Some(18)
            })
        );
        // The retrier is used up: the state fails.
        req.state_configuration.retrier_retry_count = Some(3);
        let resp = run(&req);
        assert_eq!(resp.status, TestStateStatus::Failed);
        let d = resp.inspection_data.expect("inspection data");
        assert_eq!(
            d.error_details
                .and_then(|e| e.retry_backoff_interval_seconds),
            None
        );
    }

    #[test]
    fn catcher_gives_caught_error_and_its_next_state() {
        let resp = run(&request(json!({
            "definition": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                           "Catch": [{"ErrorEquals": ["Nope"], "Next": "A"},
                                     {"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "B"}],
                           "End": true},
            "input": {"x": 1}, "inspectionLevel": "DEBUG",
            "mock": {"errorOutput": {"error": "Boom", "cause": "bad"}}
        })));
        assert_eq!(resp.status, TestStateStatus::CaughtError);
        assert_eq!(resp.next_state.as_deref(), Some("B"));
        assert_eq!(resp.error.as_deref(), Some("Boom"));
        assert_eq!(
            resp.output,
            Some(json!({"x": 1, "err": {"Error": "Boom", "Cause": "bad"}}))
        );
        let d = resp.inspection_data.expect("inspection data");
        assert_eq!(d.error_details.and_then(|e| e.catch_index), Some(1));
    }

    #[test]
    fn state_name_picks_a_state_of_a_machine() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n > 1 %}", "Next": "A"}], "Default": "C"},
            "C": {"Type": "Succeed"}}});
        let resp = run(&request(
            json!({"definition": def, "stateName": "B", "input": {"n": 2}}),
        ));
        assert_eq!(resp.status, TestStateStatus::Succeeded);
        assert_eq!(resp.next_state.as_deref(), Some("A"));
        let missing = TestStateRequest {
            state_name: Some("Z".into()),
            ..request(json!({"definition": def}))
        };
        let entropy = SeededEntropy::new(1);
        let ports = TestStatePorts {
            invoker: &HandlerRegistry::new(),
            entropy: &entropy,
            now: Utc::now(),
        };
        assert!(matches!(
            test_state(&missing, &ports),
            Err(TestStateError::StateNotFound(_))
        ));
    }

    #[test]
    fn context_and_variables_are_seeded() {
        let resp = run(&request(json!({
            "definition": {"Type": "Pass", "QueryLanguage": "JSONata",
                           "Output": {"ctx": "{% $states.context.Execution.Name %}", "v": "{% $v %}"},
                           "Assign": {"w": 2}, "End": true},
            "context": "{\"Execution\": {\"Name\": \"e1\"}}",
            "variables": {"v": 1},
            "inspectionLevel": "DEBUG"
        })));
        assert_eq!(resp.output, Some(json!({"ctx": "e1", "v": 1})));
        let d = resp.inspection_data.expect("inspection data");
        assert_eq!(
            d.variables,
            Some(
                json!({"v": 1, "w": 2})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            )
        );
    }

    #[test]
    fn default_context_names_the_state_state_name() {
        let resp = run(&request(json!({
            "definition": {"Type": "Pass", "Parameters": {"c.$": "$$"}, "End": true},
            "input": {"i": 1}, "roleArn": "arn:aws:iam::123456789012:role/r"
        })));
        let out = resp.output.expect("output");
        assert_eq!(out["c"]["State"]["Name"], json!("StateName"));
        assert_eq!(out["c"]["Execution"]["Input"], json!({"i": 1}));
        assert_eq!(
            out["c"]["Execution"]["RoleArn"],
            json!("arn:aws:iam::123456789012:role/r")
        );
        assert!(out["c"]["State"].get("RetryCount").is_none());
    }

    fn map_def(extra: Value) -> Value {
        let mut d = json!({"Type": "Map", "ItemsPath": "$.items",
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
            "End": true});
        if let (Some(d), Some(e)) = (d.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                d.insert(k.clone(), v.clone());
            }
        }
        d
    }

    #[test]
    fn map_mock_result_and_failure_threshold() {
        let def = map_def(json!({"ToleratedFailureCount": 1, "MaxConcurrency": 4,
            "Catch": [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "Next": "Over"}]}));
        let base = json!({"definition": def, "input": {"items": [1, 2, 3]}, "inspectionLevel": "DEBUG",
                          "mock": {"result": "[10, 20, 30]"}});
        let resp = run(&request(base.clone()));
        assert_eq!(resp.status, TestStateStatus::Succeeded);
        assert_eq!(resp.output, Some(json!([10, 20, 30])));
        let d = resp.inspection_data.expect("inspection data");
        assert_eq!(d.after_items_path, Some(json!([1, 2, 3])));
        assert_eq!(d.max_concurrency, Some(4));
        assert_eq!(d.tolerated_failure_count, Some(1));
        assert_eq!(d.result, None);

        let mut over = base;
        over["stateConfiguration"] = json!({"mapIterationFailureCount": 2});
        let resp = run(&request(over));
        assert_eq!(resp.status, TestStateStatus::CaughtError);
        assert_eq!(
            resp.error.as_deref(),
            Some("States.ExceedToleratedFailureThreshold")
        );
        assert_eq!(resp.next_state.as_deref(), Some("Over"));
    }

    #[test]
    fn map_items_must_be_an_array() {
        let resp = run(&request(json!({
            "definition": map_def(json!({})), "input": {"items": 5},
            "mock": {"result": "[]"}
        })));
        assert_eq!(resp.status, TestStateStatus::Failed);
        assert_eq!(resp.error.as_deref(), Some("States.Runtime"));
        assert_eq!(
            resp.cause.as_deref(),
            Some("Reference path \"$.items\" must point to array.")
        );
    }

    #[test]
    fn map_and_parallel_need_a_mock() {
        let entropy = SeededEntropy::new(1);
        let ports = TestStatePorts {
            invoker: &HandlerRegistry::new(),
            entropy: &entropy,
            now: Utc::now(),
        };
        let req = request(json!({"definition": map_def(json!({})), "input": {"items": []}}));
        assert!(matches!(
            test_state(&req, &ports),
            Err(TestStateError::Validation(_))
        ));
    }

    #[test]
    fn parallel_mock_error_fails_the_state() {
        let resp = run(&request(json!({
            "definition": {"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}],
                           "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "X"}], "End": true},
            "mock": {"errorOutput": {"error": "States.TaskFailed", "cause": "c"}},
            "stateConfiguration": {"errorCausedByState": "B"}
        })));
        // States.TaskFailed in a Parallel's Catch only matches Task errors.
        assert_eq!(resp.status, TestStateStatus::Failed);
        assert_eq!(resp.error.as_deref(), Some("States.TaskFailed"));
    }

    #[test]
    fn task_without_mock_uses_the_invoker() {
        let mut reg = HandlerRegistry::new();
        reg.register("arn:aws:states:::lambda:invoke", |r| {
            Ok(json!({"got": r.input.clone()}))
        });
        let resp = run_with(
            &request(
                json!({"definition": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true},
                            "input": {"a": 1}}),
            ),
            &reg,
        );
        assert_eq!(resp.output, Some(json!({"got": {"a": 1}})));
    }

    #[test]
    fn wire_format_uses_json_text() {
        let resp = run(&request(json!({
            "definition": {"Type": "Pass", "Result": [1, 2], "End": true}, "inspectionLevel": "TRACE"
        })));
        let wire = resp.to_aws_json();
        assert_eq!(wire["output"], json!("[1,2]"));
        assert_eq!(wire["inspectionData"]["result"], json!("[1,2]"));
        assert_eq!(wire["inspectionData"]["input"], json!("{}"));
        assert_eq!(wire["status"], json!("SUCCEEDED"));
    }

    #[test]
    fn invalid_requests_are_errors() {
        assert!(TestStateRequest::from_json(&json!({"input": {}})).is_err());
        assert!(
            TestStateRequest::from_json(&json!({"definition": {}, "inspectionLevel": "LOUD"}))
                .is_err()
        );
        let entropy = SeededEntropy::new(1);
        let ports = TestStatePorts {
            invoker: &HandlerRegistry::new(),
            entropy: &entropy,
            now: Utc::now(),
        };
        let bad = request(json!({"definition": {"Type": "Pass", "Next": 3}}));
        assert!(matches!(
            test_state(&bad, &ports),
            Err(TestStateError::InvalidDefinition(_))
        ));
        let mock_on_pass =
            request(json!({"definition": {"Type": "Pass", "End": true}, "mock": {"result": "1"}}));
        assert!(matches!(
            test_state(&mock_on_pass, &ports),
            Err(TestStateError::Validation(_))
        ));
    }
}
