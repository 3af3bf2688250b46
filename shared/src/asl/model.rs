//! The compiled definition model. `parse::parse_definition` builds it from JSON after
//! validation; every path, template, intrinsic and JSONata expression is compiled once here,
//! and transitions are resolved to indices, so nothing is reparsed while the engine runs.

use std::collections::HashMap;

use serde_json::Value;

use super::jsonata::JsonataTemplate;
use super::jsonpath::JsonPath;
use super::template::{PathExpr, PayloadTemplate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryLanguage {
    #[default]
    JsonPath,
    Jsonata,
}

impl QueryLanguage {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryLanguage::JsonPath => "JSONPath",
            QueryLanguage::Jsonata => "JSONata",
        }
    }
}

/// Index of a state inside its [`StateMachine`] (a machine, a Parallel branch or a Map's
/// ItemProcessor: transitions never leave it).
pub type StateId = usize;

/// A machine, a Parallel branch, or a Map's ItemProcessor/Iterator.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub start_at: StateId,
    /// States in definition order.
    pub states: Vec<State>,
    pub by_name: HashMap<String, StateId>,
    pub comment: Option<String>,
    /// The top-level `QueryLanguage` (states inherit it unless they override it).
    pub query_language: QueryLanguage,
    /// Machine-level `TimeoutSeconds` (top level only).
    pub timeout_seconds: Option<u64>,
    pub version: Option<String>,
}

impl StateMachine {
    pub fn state(&self, id: StateId) -> &State {
        &self.states[id]
    }
    pub fn id_of(&self, name: &str) -> Option<StateId> {
        self.by_name.get(name).copied()
    }
}

#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub comment: Option<String>,
    /// The effective query language of this state.
    pub query_language: QueryLanguage,
    pub kind: StateKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Next(StateId),
    End,
}

/// A JSONPath `InputPath`/`OutputPath`/`ResultPath` field: absent (defaults to `$`), explicit
/// `null`, or a path.
#[derive(Debug, Clone, Default)]
pub enum PathField {
    #[default]
    Default,
    Null,
    Path(JsonPath),
}

/// A payload template in either query language (Parameters/Arguments, ItemSelector, Assign,
/// Output…).
#[derive(Debug, Clone)]
pub enum Template {
    /// JSONPath payload template (`.$` keys, intrinsics).
    JsonPath(PayloadTemplate),
    /// JSON with `{% … %}` JSONata expressions anywhere.
    Jsonata(JsonataTemplate),
}

/// A value that is a literal, read from a reference path (`…Path` fields), or computed by
/// JSONata (`{% %}`).
#[derive(Debug, Clone)]
pub enum Dynamic<T> {
    Literal(T),
    Path(JsonPath),
    Jsonata(JsonataTemplate),
}

/// A string that is a literal, a JSONPath reference path or an intrinsic (Fail's
/// `ErrorPath`/`CausePath`), or JSONata.
#[derive(Debug, Clone)]
pub enum DynString {
    Literal(String),
    Path(PathExpr),
    Jsonata(JsonataTemplate),
}

/// Input/output processing common to most states. JSONPath fields are `Default`/`None` in
/// JSONata states and the reverse.
#[derive(Debug, Clone, Default)]
pub struct Io {
    pub input_path: PathField,
    /// JSONPath `Parameters` or JSONata `Arguments` (Map: `ItemSelector` lives in [`Map`]).
    pub parameters: Option<Template>,
    pub result_selector: Option<PayloadTemplate>,
    pub result_path: PathField,
    pub output_path: PathField,
    /// JSONata `Output`.
    pub output: Option<JsonataTemplate>,
    pub assign: Option<Template>,
}

#[derive(Debug, Clone)]
pub enum StateKind {
    Pass(Pass),
    Task(Task),
    Choice(Choice),
    Wait(Wait),
    Succeed(Succeed),
    Fail(Fail),
    Parallel(Parallel),
    Map(Map),
}

impl StateKind {
    /// The AWS type name (`Pass`, `Task`, …), used in history event names.
    pub fn type_name(&self) -> &'static str {
        match self {
            StateKind::Pass(_) => "Pass",
            StateKind::Task(_) => "Task",
            StateKind::Choice(_) => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed(_) => "Succeed",
            StateKind::Fail(_) => "Fail",
            StateKind::Parallel(_) => "Parallel",
            StateKind::Map(_) => "Map",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Pass {
    pub io: Io,
    /// `Result` (JSONPath).
    pub result: Option<Value>,
    pub transition: Transition,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub io: Io,
    pub resource: String,
    pub credentials: Option<Template>,
    pub timeout_seconds: Option<Dynamic<u64>>,
    pub heartbeat_seconds: Option<Dynamic<u64>>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    pub transition: Transition,
}

#[derive(Debug, Clone)]
pub struct Choice {
    pub io: Io,
    pub choices: Vec<ChoiceBranch>,
    pub default: Option<StateId>,
}

/// A top-level Choice rule: a condition plus where to go and what to assign/output.
#[derive(Debug, Clone)]
pub struct ChoiceBranch {
    pub rule: ChoiceRule,
    pub next: StateId,
    pub assign: Option<Template>,
    /// JSONata `Output` on a rule.
    pub output: Option<JsonataTemplate>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ChoiceRule {
    And(Vec<ChoiceRule>),
    Or(Vec<ChoiceRule>),
    Not(Box<ChoiceRule>),
    /// `Variable` + one comparison operator.
    Compare {
        variable: JsonPath,
        op: ComparisonOp,
        operand: Operand,
    },
    /// JSONata `Condition`.
    Condition(JsonataTemplate),
}

impl ChoiceRule {
    /// Whether evaluating the rule may read the context object (`$$…`).
    pub fn uses_context(&self) -> bool {
        use super::jsonpath::Root;
        match self {
            ChoiceRule::And(r) | ChoiceRule::Or(r) => r.iter().any(ChoiceRule::uses_context),
            ChoiceRule::Not(r) => r.uses_context(),
            ChoiceRule::Compare {
                variable, operand, ..
            } => {
                *variable.root() == Root::Context
                    || matches!(operand, Operand::Path(p) if *p.root() == Root::Context)
            }
            ChoiceRule::Condition(t) => t.uses_states_member("context"),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Operand {
    Literal(Value),
    /// The `…Path` form of an operator.
    Path(JsonPath),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComparisonOp {
    BooleanEquals,
    NumericEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    NumericLessThan,
    NumericLessThanEquals,
    StringEquals,
    StringGreaterThan,
    StringGreaterThanEquals,
    StringLessThan,
    StringLessThanEquals,
    StringMatches,
    TimestampEquals,
    TimestampGreaterThan,
    TimestampGreaterThanEquals,
    TimestampLessThan,
    TimestampLessThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

impl ComparisonOp {
    pub const ALL: [ComparisonOp; 23] = [
        ComparisonOp::BooleanEquals,
        ComparisonOp::NumericEquals,
        ComparisonOp::NumericGreaterThan,
        ComparisonOp::NumericGreaterThanEquals,
        ComparisonOp::NumericLessThan,
        ComparisonOp::NumericLessThanEquals,
        ComparisonOp::StringEquals,
        ComparisonOp::StringGreaterThan,
        ComparisonOp::StringGreaterThanEquals,
        ComparisonOp::StringLessThan,
        ComparisonOp::StringLessThanEquals,
        ComparisonOp::StringMatches,
        ComparisonOp::TimestampEquals,
        ComparisonOp::TimestampGreaterThan,
        ComparisonOp::TimestampGreaterThanEquals,
        ComparisonOp::TimestampLessThan,
        ComparisonOp::TimestampLessThanEquals,
        ComparisonOp::IsNull,
        ComparisonOp::IsPresent,
        ComparisonOp::IsNumeric,
        ComparisonOp::IsString,
        ComparisonOp::IsBoolean,
        ComparisonOp::IsTimestamp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ComparisonOp::BooleanEquals => "BooleanEquals",
            ComparisonOp::NumericEquals => "NumericEquals",
            ComparisonOp::NumericGreaterThan => "NumericGreaterThan",
            ComparisonOp::NumericGreaterThanEquals => "NumericGreaterThanEquals",
            ComparisonOp::NumericLessThan => "NumericLessThan",
            ComparisonOp::NumericLessThanEquals => "NumericLessThanEquals",
            ComparisonOp::StringEquals => "StringEquals",
            ComparisonOp::StringGreaterThan => "StringGreaterThan",
            ComparisonOp::StringGreaterThanEquals => "StringGreaterThanEquals",
            ComparisonOp::StringLessThan => "StringLessThan",
            ComparisonOp::StringLessThanEquals => "StringLessThanEquals",
            ComparisonOp::StringMatches => "StringMatches",
            ComparisonOp::TimestampEquals => "TimestampEquals",
            ComparisonOp::TimestampGreaterThan => "TimestampGreaterThan",
            ComparisonOp::TimestampGreaterThanEquals => "TimestampGreaterThanEquals",
            ComparisonOp::TimestampLessThan => "TimestampLessThan",
            ComparisonOp::TimestampLessThanEquals => "TimestampLessThanEquals",
            ComparisonOp::IsNull => "IsNull",
            ComparisonOp::IsPresent => "IsPresent",
            ComparisonOp::IsNumeric => "IsNumeric",
            ComparisonOp::IsString => "IsString",
            ComparisonOp::IsBoolean => "IsBoolean",
            ComparisonOp::IsTimestamp => "IsTimestamp",
        }
    }

    /// Whether the operator has a `…Path` variant (all but `Is*` and `StringMatches`).
    pub fn has_path_variant(self) -> bool {
        !matches!(
            self,
            ComparisonOp::StringMatches
                | ComparisonOp::IsNull
                | ComparisonOp::IsPresent
                | ComparisonOp::IsNumeric
                | ComparisonOp::IsString
                | ComparisonOp::IsBoolean
                | ComparisonOp::IsTimestamp
        )
    }
}

#[derive(Debug, Clone)]
pub enum WaitFor {
    /// `Seconds`, `SecondsPath` or JSONata `Seconds`.
    Seconds(Dynamic<u64>),
    /// `Timestamp`, `TimestampPath` or JSONata `Timestamp`; literals are validated RFC 3339.
    Timestamp(Dynamic<String>),
}

#[derive(Debug, Clone)]
pub struct Wait {
    pub io: Io,
    pub wait: WaitFor,
    pub transition: Transition,
}

#[derive(Debug, Clone)]
pub struct Succeed {
    pub io: Io,
}

#[derive(Debug, Clone)]
pub struct Fail {
    pub error: Option<DynString>,
    pub cause: Option<DynString>,
}

#[derive(Debug, Clone)]
pub struct Parallel {
    pub io: Io,
    pub branches: Vec<StateMachine>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    pub transition: Transition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessorMode {
    #[default]
    Inline,
    Distributed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionType {
    #[default]
    Standard,
    Express,
}

#[derive(Debug, Clone, Default)]
pub struct ProcessorConfig {
    pub mode: ProcessorMode,
    pub execution_type: ExecutionType,
}

/// Where a Map's items come from when there is no ItemReader.
#[derive(Debug, Clone)]
pub enum ItemsSource {
    /// JSONPath `ItemsPath` (default `$`).
    Path(JsonPath),
    /// JSONata `Items` (a literal array or an expression).
    Jsonata(JsonataTemplate),
}

#[derive(Debug, Clone)]
pub struct Map {
    pub io: Io,
    pub item_processor: Box<StateMachine>,
    pub processor_config: ProcessorConfig,
    /// `None` means `ItemsPath: "$"` (JSONPath) or the whole input (JSONata without `Items`).
    pub items: Option<ItemsSource>,
    /// `ItemSelector` or legacy `Parameters`.
    pub item_selector: Option<Template>,
    /// 0 / unset means unbounded (inline: AWS runs ~40 at a time; distributed: 10,000).
    pub max_concurrency: Option<Dynamic<u64>>,
    pub tolerated_failure_percentage: Option<Dynamic<f64>>,
    pub tolerated_failure_count: Option<Dynamic<u64>>,
    pub label: Option<String>,
    /// Distributed-mode fields, kept as validated JSON; the Map Run engine compiles them.
    pub item_reader: Option<Value>,
    pub item_batcher: Option<Value>,
    pub result_writer: Option<Value>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    pub transition: Transition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    #[default]
    None,
    Full,
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    /// Default 1.
    pub interval_seconds: u64,
    /// Default 3.
    pub max_attempts: u64,
    /// Default 2.0.
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub jitter: Jitter,
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: StateId,
    /// JSONPath `ResultPath` (default `$`).
    pub result_path: PathField,
    /// JSONata `Output` (default `$states.errorOutput`).
    pub output: Option<JsonataTemplate>,
    pub assign: Option<Template>,
}
