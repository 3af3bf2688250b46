//! The execution state machine: `Execution::apply(event) → actions`.
//!
//! An execution is a tree of *threads*: the top-level machine is one thread, each Parallel
//! branch and each Map iteration is a child thread. A thread sits on one state at a time and
//! is either ready to run it, or blocked on a task, a timer or its children. `apply` feeds an
//! event in, runs every thread that became ready as far as it can go synchronously (Pass,
//! Choice, Succeed, Fail and all data processing happen right here), and returns the effects
//! the edge must perform (invoke a task, set a timer, …) as data. Nothing here does I/O,
//! reads the clock or draws random numbers except through [`Env`].

use std::borrow::Cow;

use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::asl::choice;
use crate::asl::jsonata::{JsonataEnv, JsonataTemplate};
use crate::asl::jsonpath::{JsonPath, PathError, Root};
use crate::asl::scope::{Scope, VarLookup};
use crate::asl::timestamp;
use crate::asl::{
    AslError, Catcher, DynString, Dynamic, ErrorName, Io, ItemsSource, PathField, ProcessorMode,
    QueryLanguage, Retrier, State, StateId, StateKind, StateMachine, Template, Transition, WaitFor,
};
use crate::ports::Entropy;

use super::context::{context_object, ExecutionInfo, StateContext};
use super::distributed::MapRunRequest;
use super::history::History;
use super::test_state::{Point, Probe};

/// Inline Maps with at least this many items and a side-effect-free processor use all cores.
const PARALLEL_MIN_ITEMS: usize = 512;

/// 256 KiB: the payload limit for inputs, outputs and results.
pub const PAYLOAD_LIMIT: usize = 256 * 1024;

/// Inline Map iterations AWS runs at once when MaxConcurrency is 0/unset.
const INLINE_MAP_DEFAULT_CONCURRENCY: u64 = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
        }
    }
}

/// What the edge tells the execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Event {
    Start,
    /// The task's result (for `.waitForTaskToken`: the callback's output).
    TaskSucceeded {
        task: u64,
        output: Value,
    },
    /// A `.waitForTaskToken` service call went out; the task now waits for its callback.
    TaskSubmitted {
        task: u64,
    },
    TaskFailed {
        task: u64,
        error: Option<String>,
        cause: Option<String>,
    },
    TaskHeartbeat {
        task: u64,
    },
    TimerFired {
        timer: u64,
    },
    /// RedriveExecution: re-run the state the execution failed in (see [`Execution::redrivable`]).
    Redrive,
    /// A Distributed Map's Map Run ended: the Map state's result, or its error and cause.
    MapRunEnded {
        run: u64,
        result: Result<Value, (String, String)>,
    },
    /// StopExecution.
    Abort {
        error: Option<String>,
        cause: Option<String>,
    },
}

/// How a Task resource is integrated, from its ARN suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntegrationPattern {
    RequestResponse,
    Sync,
    WaitForTaskToken,
}

/// A task the edge must run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRequest {
    pub task: u64,
    pub state_name: String,
    pub resource: String,
    pub pattern: IntegrationPattern,
    pub input: Value,
    pub token: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub heartbeat_seconds: Option<u64>,
    pub credentials: Option<Value>,
}

/// What the execution asks the edge to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Action {
    InvokeTask(TaskRequest),
    CancelTask {
        task: u64,
    },
    /// Run (or resume) a Distributed Map's Map Run.
    StartMapRun(Box<MapRunRequest>),
    /// Stop caring about a Map Run (its state was cancelled).
    CancelMapRun {
        run: u64,
    },
    StartTimer {
        timer: u64,
        at: DateTime<Utc>,
    },
    CancelTimer {
        timer: u64,
    },
}

/// Effects the pure core may use while applying an event.
pub struct Env<'a> {
    pub now: DateTime<Utc>,
    pub entropy: &'a dyn Entropy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ParentLink {
    thread: u64,
    slot: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct VarScope {
    parent: Option<u64>,
    vars: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum TimerPurpose {
    /// A Wait state's wait, or a retry back-off: the thread re-runs its state.
    Resume {
        thread: u64,
    },
    TaskTimeout {
        task: u64,
    },
    HeartbeatTimeout {
        task: u64,
    },
    ExecutionTimeout,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct InFlightTask {
    thread: u64,
    token: Option<String>,
    timeout_timer: Option<u64>,
    heartbeat_timer: Option<u64>,
    heartbeat_seconds: Option<u64>,
    resource_type: String,
    resource_name: String,
    legacy_lambda: bool,
    request: TaskRequest,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum ChildKind {
    Parallel,
    /// An inline Map (a Distributed Map runs as a Map Run instead).
    Map {
        /// Items not yet started, in order (ItemSelector applied lazily).
        items: Vec<Value>,
        /// The Map's effective input (`$` in ItemSelector).
        effective_input: Value,
        max_concurrency: u64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Children {
    kind: ChildKind,
    results: Vec<Option<Value>>,
    next_to_start: usize,
    running: Vec<u64>,
    /// Event id of the last event in the children's part of the history.
    last_event: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum ThreadStatus {
    /// Will run `state`; `retry` when re-running after a retry back-off (no StateEntered).
    Ready {
        retry: bool,
    },
    InTask {
        task: u64,
    },
    Sleeping {
        timer: u64,
    },
    InMapRun {
        run: u64,
    },
    Children(Box<Children>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Thread {
    parent: Option<ParentLink>,
    /// From the top machine down to this thread's machine: (state, branch index).
    path: Vec<(StateId, u32)>,
    scope: u64,
    state: StateId,
    /// The raw input of the current state.
    /// Shared, so reading it while the state runs copies nothing.
    input: Arc<Value>,
    entered_event: u64,
    entered_time: DateTime<Utc>,
    /// Per-retrier attempt counters of the current state.
    retry_counts: Vec<u64>,
    retry_total: u32,
    /// The event id that the next event of this thread follows.
    last_event: u64,
    /// Map iteration index or Parallel branch index.
    slot: usize,
    /// Whether `scope` is the thread's own (else it shares its parent's: no Assign inside).
    #[serde(default = "yes")]
    own_scope: bool,
    /// When the thread's Parallel/Map state failed: that state and the results of the
    /// branches or iterations that had finished (a redrive re-runs only the others).
    #[serde(default)]
    done_slots: Option<(StateId, Vec<Option<Value>>)>,
    status: ThreadStatus,
}

/// The top-level state an execution stopped in, with what re-running it needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RedrivePoint {
    state: StateId,
    input: Value,
    vars: Map<String, Value>,
    map_run: Option<MapRunRequest>,
    /// A failed Parallel's or inline Map's finished branches/iterations, by slot.
    #[serde(default)]
    done_slots: Option<Vec<Option<Value>>>,
}

/// Redrives of one execution at most (as for Map Runs, spec §4.8).
pub const MAX_EXECUTION_REDRIVES: u32 = 1000;

/// A failure on its way up: the error name and cause as AWS reports them.
#[derive(Debug, Clone)]
struct Failure {
    error: Option<String>,
    cause: Option<String>,
}

impl Failure {
    fn name(&self) -> ErrorName {
        ErrorName::from(self.error.clone().unwrap_or_default())
    }
}

/// What running one state produced.
enum Step {
    /// The next state and its input (shared: a Choice passes its input on without a copy).
    Next(StateId, Arc<Value>),
    End(Value),
    Fail(Failure),
    Blocked,
}

/// A running or finished execution. Serializable: the CLI keeps it in its state folder so a
/// run can resume, and tests inspect it.
#[derive(Serialize, Deserialize)]
pub struct Execution {
    pub info: ExecutionInfo,
    pub definition: Value,
    pub status: ExecutionStatus,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub stop_time: Option<DateTime<Utc>>,
    pub history: History,
    threads: BTreeMap<u64, Thread>,
    scopes: HashMap<u64, VarScope>,
    tasks: HashMap<u64, InFlightTask>,
    /// Map Runs in flight: the thread waiting on each and its request.
    #[serde(default)]
    map_runs: HashMap<u64, (u64, MapRunRequest)>,
    /// Where a redrive starts again: the top-level state the execution stopped in.
    #[serde(default)]
    redrive_point: Option<RedrivePoint>,
    /// The Map Run of the last Distributed Map that failed (a redrive redrives it).
    #[serde(default)]
    failed_map_run: Option<MapRunRequest>,
    /// Set by a redrive until the Distributed Map it re-enters picks its Map Run up again.
    #[serde(default)]
    redrive_map_run: Option<MapRunRequest>,
    /// Set by a redrive until the Parallel/inline Map it re-enters reuses these results.
    #[serde(default)]
    redrive_slots: Option<(StateId, Vec<Option<Value>>)>,
    timers: HashMap<u64, (TimerPurpose, DateTime<Utc>)>,
    next_id: u64,
    #[serde(skip)]
    machine: Option<Arc<StateMachine>>,
    /// Variables the top-level scope starts with (a sub-execution sees its parent's).
    #[serde(skip)]
    initial_vars: Map<String, Value>,
    /// The top-level thread's input when it is not the execution input (a sub-execution).
    #[serde(skip)]
    start_input: Option<Value>,
    /// Whether pure inline Maps may use all cores (not inside a worker already).
    #[serde(skip, default = "yes")]
    parallel: bool,
    #[serde(skip)]
    ready: VecDeque<u64>,
    #[serde(skip)]
    actions: Vec<Action>,
    /// TestState only: records the data flow of the state under test and seeds its context
    /// (`None` in ordinary runs: every hook is one `Option` check).
    #[serde(skip)]
    probe: Option<Box<Probe>>,
}

fn lang_is_jsonata(state: &State) -> bool {
    state.query_language == QueryLanguage::Jsonata
}

/// Resolves the (sub)machine a thread runs in.
fn machine_at<'m>(root: &'m StateMachine, path: &[(StateId, u32)]) -> &'m StateMachine {
    let mut m = root;
    for &(sid, idx) in path {
        m = match &m.state(sid).kind {
            StateKind::Parallel(p) => match p.branches.get(idx as usize) {
                Some(b) => b,
                None => return m,
            },
            StateKind::Map(map) => &map.item_processor,
            _ => return m,
        };
    }
    m
}

/// Whether a value's JSON text is over the 256 KiB payload limit. Walks the value with cheap
/// bounds first (a string's JSON text is between its length + 2 and 6 × its length + 2) and
/// serializes only when the bounds straddle the limit.
pub fn exceeds_payload_limit(v: &Value) -> bool {
    fn bounds(v: &Value, lo: &mut usize, hi: &mut usize) {
        match v {
            Value::Null => {
                *lo += 4;
                *hi += 4;
            }
            Value::Bool(_) => {
                *lo += 4;
                *hi += 5;
            }
            Value::Number(_) => {
                *lo += 1;
                *hi += 24;
            }
            Value::String(s) => {
                *lo += s.len() + 2;
                *hi += 6 * s.len() + 2;
            }
            Value::Array(a) => {
                *lo += 2 + a.len().saturating_sub(1);
                *hi += 2 + a.len().saturating_sub(1);
                for x in a {
                    bounds(x, lo, hi);
                    if *lo > PAYLOAD_LIMIT {
                        return;
                    }
                }
            }
            Value::Object(m) => {
                *lo += 2 + m.len().saturating_sub(1);
                *hi += 2 + m.len().saturating_sub(1);
                for (k, x) in m {
                    *lo += k.len() + 3;
                    *hi += 6 * k.len() + 3;
                    bounds(x, lo, hi);
                    if *lo > PAYLOAD_LIMIT {
                        return;
                    }
                }
            }
        }
    }
    let (mut lo, mut hi) = (0, 0);
    bounds(v, &mut lo, &mut hi);
    if lo > PAYLOAD_LIMIT {
        true
    } else if hi <= PAYLOAD_LIMIT {
        false
    } else {
        json_size(v) > PAYLOAD_LIMIT
    }
}

/// Serialized JSON size without building the text.
pub fn json_size(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Variables visible from a scope (innermost first).
struct ScopeVars<'a> {
    scopes: &'a HashMap<u64, VarScope>,
    scope: u64,
}

impl VarLookup for ScopeVars<'_> {
    fn get_var(&self, name: &str) -> Option<&Value> {
        let mut cur = Some(self.scope);
        while let Some(id) = cur {
            let s = self.scopes.get(&id)?;
            if let Some(v) = s.vars.get(name) {
                return Some(v);
            }
            cur = s.parent;
        }
        None
    }
    fn for_each_var(&self, f: &mut dyn FnMut(&str, &Value)) {
        let mut seen: Vec<&str> = Vec::new();
        let mut cur = Some(self.scope);
        while let Some(id) = cur {
            let Some(s) = self.scopes.get(&id) else { break };
            for (k, v) in &s.vars {
                if !seen.contains(&k.as_str()) {
                    seen.push(k);
                    f(k, v);
                }
            }
            cur = s.parent;
        }
    }
}

impl Execution {
    /// A new execution of `machine` (parsed from `definition`).
    pub fn new(
        machine: Arc<StateMachine>,
        definition: Value,
        info: ExecutionInfo,
        record_history: bool,
    ) -> Self {
        Execution {
            info,
            definition,
            status: ExecutionStatus::Running,
            output: None,
            error: None,
            cause: None,
            stop_time: None,
            history: History::new(record_history),
            threads: BTreeMap::new(),
            scopes: HashMap::new(),
            tasks: HashMap::new(),
            map_runs: HashMap::new(),
            redrive_point: None,
            failed_map_run: None,
            redrive_map_run: None,
            redrive_slots: None,
            timers: HashMap::new(),
            next_id: 1,
            machine: Some(machine),
            initial_vars: Map::new(),
            start_input: None,
            parallel: true,
            ready: VecDeque::new(),
            actions: Vec::new(),
            probe: None,
        }
    }

    /// Variables the top-level scope starts with (TestState's `variables`).
    pub fn set_initial_variables(&mut self, vars: Map<String, Value>) {
        self.initial_vars = vars;
    }

    /// Attaches a TestState probe (see [`super::test_state`]).
    pub fn set_probe(&mut self, probe: Probe) {
        self.probe = Some(Box::new(probe));
    }

    pub fn probe(&self) -> Option<&Probe> {
        self.probe.as_deref()
    }

    /// The probe, when `tid` is the top-level thread sitting on the state under test.
    fn probe_at(&mut self, tid: u64) -> Option<&mut Probe> {
        let probe = self.probe.as_deref_mut()?;
        let th = self.threads.get(&tid)?;
        (th.parent.is_none() && th.state == probe.state).then_some(probe)
    }

    /// Records one data-flow point of the state under test (`value` is only built then).
    fn probe_point(&mut self, tid: u64, point: Point, value: impl FnOnce() -> Value) {
        if self.probe.is_some() {
            if let Some(p) = self.probe_at(tid) {
                p.record(point, value());
            }
        }
    }

    /// Re-attaches the compiled machine after deserialization.
    pub fn attach(&mut self, machine: Arc<StateMachine>) {
        self.machine = Some(machine);
    }

    pub fn is_finished(&self) -> bool {
        self.status != ExecutionStatus::Running
    }

    /// The task a `.waitForTaskToken` token belongs to.
    pub fn task_for_token(&self, token: &str) -> Option<u64> {
        self.tasks
            .iter()
            .find(|(_, t)| t.token.as_deref() == Some(token))
            .map(|(id, _)| *id)
    }

    /// The integration pattern of an in-flight task.
    pub fn task_for_token_pattern(&self, task: u64) -> Option<IntegrationPattern> {
        self.tasks.get(&task).map(|t| t.request.pattern)
    }

    /// The tasks and timers still pending: what the edge must (re)issue after loading a
    /// saved execution.
    pub fn pending_actions(&self) -> Vec<Action> {
        let mut out: Vec<Action> = self
            .timers
            .iter()
            .map(|(id, (_, at))| Action::StartTimer {
                timer: *id,
                at: *at,
            })
            .collect();
        out.extend(
            self.tasks
                .values()
                .map(|t| Action::InvokeTask(t.request.clone())),
        );
        out.extend(
            self.map_runs
                .values()
                .map(|(_, r)| Action::StartMapRun(Box::new(r.clone()))),
        );
        out
    }

    fn add_timer(&mut self, timer: u64, purpose: TimerPurpose, at: DateTime<Utc>) {
        self.timers.insert(timer, (purpose, at));
        self.actions.push(Action::StartTimer { timer, at });
    }

    fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Applies one event; returns the effects to perform.
    pub fn apply(&mut self, event: Event, env: &Env<'_>) -> Vec<Action> {
        if let Event::Redrive = event {
            if self.redrivable().is_ok() {
                self.redrive(env);
                self.run_ready(env);
            }
            return std::mem::take(&mut self.actions);
        }
        if self.is_finished() {
            return Vec::new();
        }
        match event {
            Event::Start => self.start(env),
            Event::TaskSucceeded { task, output } => self.on_task_succeeded(task, output, env),
            Event::TaskSubmitted { task } => self.on_task_submitted(task, env),
            Event::TaskFailed { task, error, cause } => {
                if let Some(t) = self.tasks.remove(&task) {
                    self.clear_task_timers(&t);
                    let kind = if t.legacy_lambda {
                        "LambdaFunctionFailed"
                    } else {
                        "TaskFailed"
                    };
                    let last = self.thread_last_event(t.thread);
                    let (rt, rn) = (t.resource_type.clone(), t.resource_name.clone());
                    let (e2, c2) = (error.clone(), cause.clone());
                    let id = self.history.emit(last, kind, env.now, || {
                        let mut d = Map::new();
                        if let Some(c) = &c2 {
                            d.insert("cause".into(), Value::String(c.clone()));
                        }
                        if let Some(e) = &e2 {
                            d.insert("error".into(), Value::String(e.clone()));
                        }
                        if !t.legacy_lambda {
                            d.insert("resource".into(), Value::String(rn));
                            d.insert("resourceType".into(), Value::String(rt));
                        }
                        Value::Object(d)
                    });
                    self.set_last_event(t.thread, id);
                    self.state_failed(t.thread, Failure { error, cause }, env);
                }
            }
            Event::TaskHeartbeat { task } => {
                if let Some(t) = self.tasks.get(&task).cloned() {
                    if let (Some(old), Some(secs)) = (t.heartbeat_timer, t.heartbeat_seconds) {
                        self.timers.remove(&old);
                        self.actions.push(Action::CancelTimer { timer: old });
                        let timer = self.fresh_id();
                        self.add_timer(
                            timer,
                            TimerPurpose::HeartbeatTimeout { task },
                            env.now + Duration::seconds(secs as i64),
                        );
                        self.actions.push(Action::StartTimer {
                            timer,
                            at: env.now + Duration::seconds(secs as i64),
                        });
                        if let Some(tt) = self.tasks.get_mut(&task) {
                            tt.heartbeat_timer = Some(timer);
                        }
                    }
                }
            }
            Event::TimerFired { timer } => self.on_timer(timer, env),
            Event::MapRunEnded { run, result } => self.on_map_run_ended(run, result, env),
            Event::Redrive => {}
            Event::Abort { error, cause } => {
                if let Some(root) = self.root_thread() {
                    self.capture_redrive_point(root);
                }
                self.cancel_all();
                self.finish(
                    ExecutionStatus::Aborted,
                    None,
                    error,
                    cause,
                    env,
                    "ExecutionAborted",
                );
            }
        }
        self.run_ready(env);
        std::mem::take(&mut self.actions)
    }

    fn machine(&self) -> Arc<StateMachine> {
        match &self.machine {
            Some(m) => m.clone(),
            None => Arc::new(StateMachine {
                start_at: 0,
                states: Vec::new(),
                by_name: HashMap::new(),
                comment: None,
                query_language: QueryLanguage::JsonPath,
                timeout_seconds: None,
                version: None,
            }),
        }
    }

    fn start(&mut self, env: &Env<'_>) {
        let machine = self.machine();
        if machine.states.is_empty() {
            self.finish(
                ExecutionStatus::Failed,
                None,
                Some("States.Runtime".into()),
                Some("The state machine definition is not attached".into()),
                env,
                "ExecutionFailed",
            );
            return;
        }
        let input = self.info.input.clone();
        let started = self.history.emit(
            0,
            "ExecutionStarted",
            env.now,
            || json!({"input": input, "roleArn": self.info.role_arn}),
        );
        if let Some(secs) = machine.timeout_seconds {
            let timer = self.fresh_id();
            self.add_timer(
                timer,
                TimerPurpose::ExecutionTimeout,
                env.now + Duration::seconds(secs as i64),
            );
        }
        let scope = self.fresh_id();
        let vars = std::mem::take(&mut self.initial_vars);
        self.scopes.insert(scope, VarScope { parent: None, vars });
        let tid = self.fresh_id();
        self.threads.insert(
            tid,
            Thread {
                parent: None,
                path: Vec::new(),
                scope,
                state: machine.start_at,
                input: self
                    .start_input
                    .take()
                    .map(Arc::new)
                    .unwrap_or_else(|| self.info.input.clone()),
                entered_event: 0,
                entered_time: env.now,
                retry_counts: Vec::new(),
                retry_total: 0,
                last_event: started,
                slot: 0,
                own_scope: true,
                done_slots: None,
                status: ThreadStatus::Ready { retry: false },
            },
        );
        self.ready.push_back(tid);
    }

    fn thread_last_event(&self, tid: u64) -> u64 {
        self.threads.get(&tid).map(|t| t.last_event).unwrap_or(0)
    }

    fn set_last_event(&mut self, tid: u64, id: u64) {
        if let Some(t) = self.threads.get_mut(&tid) {
            t.last_event = id;
        }
    }

    fn finish(
        &mut self,
        status: ExecutionStatus,
        output: Option<Value>,
        error: Option<String>,
        cause: Option<String>,
        env: &Env<'_>,
        event: &str,
    ) {
        if self.is_finished() {
            return;
        }
        let last = self.history.last_id;
        let (o2, e2, c2) = (output.clone(), error.clone(), cause.clone());
        self.history.emit(last, event, env.now, || {
            let mut d = Map::new();
            if let Some(o) = o2 {
                d.insert("output".into(), o);
            }
            if let Some(e) = e2 {
                d.insert("error".into(), Value::String(e));
            }
            if let Some(c) = c2 {
                d.insert("cause".into(), Value::String(c));
            }
            Value::Object(d)
        });
        self.status = status;
        self.output = output;
        self.error = error;
        self.cause = cause;
        self.stop_time = Some(env.now);
        self.cancel_all();
    }

    fn cancel_all(&mut self) {
        for (run, _) in self.map_runs.drain() {
            self.actions.push(Action::CancelMapRun { run });
        }
        for (task, _) in self.tasks.drain() {
            self.actions.push(Action::CancelTask { task });
        }
        for (timer, _) in self.timers.drain() {
            self.actions.push(Action::CancelTimer { timer });
        }
        self.threads.clear();
        self.ready.clear();
    }

    fn clear_task_timers(&mut self, t: &InFlightTask) {
        for timer in [t.timeout_timer, t.heartbeat_timer].into_iter().flatten() {
            self.timers.remove(&timer);
            self.actions.push(Action::CancelTimer { timer });
        }
    }

    fn on_timer(&mut self, timer: u64, env: &Env<'_>) {
        let Some((purpose, _)) = self.timers.remove(&timer) else {
            return;
        };
        match purpose {
            TimerPurpose::Resume { thread } => {
                let machine = self.machine();
                let Some(t) = self.threads.get(&thread) else {
                    return;
                };
                match t.status {
                    ThreadStatus::Sleeping { timer: tm } if tm == timer => {}
                    _ => return,
                }
                let m = machine_at(&machine, &t.path);
                let state = m.state(t.state);
                if let StateKind::Wait(w) = &state.kind {
                    // The wait is over: the Wait state exits.
                    let input = Value::clone(&t.input);
                    let step = self.finish_wait(thread, state, &w.io, w.transition, input, env);
                    if self.continue_with(thread, step, env) {
                        self.ready.push_back(thread);
                    }
                } else if let Some(t) = self.threads.get_mut(&thread) {
                    t.status = ThreadStatus::Ready { retry: true };
                    self.ready.push_back(thread);
                }
            }
            TimerPurpose::TaskTimeout { task } | TimerPurpose::HeartbeatTimeout { task } => {
                let heartbeat = matches!(purpose, TimerPurpose::HeartbeatTimeout { .. });
                if let Some(t) = self.tasks.remove(&task) {
                    self.clear_task_timers(&t);
                    self.actions.push(Action::CancelTask { task });
                    let last = self.thread_last_event(t.thread);
                    let legacy = t.legacy_lambda;
                    let (rt, rn) = (t.resource_type.clone(), t.resource_name.clone());
                    let kind = if legacy {
                        "LambdaFunctionTimedOut"
                    } else {
                        "TaskTimedOut"
                    };
                    let id = self.history.emit(last, kind, env.now, || {
                        let mut d = Map::new();
                        d.insert("error".into(), json!("States.Timeout"));
                        if !legacy {
                            d.insert("resource".into(), Value::String(rn));
                            d.insert("resourceType".into(), Value::String(rt));
                        }
                        Value::Object(d)
                    });
                    self.set_last_event(t.thread, id);
                    // Heartbeat expiry reports States.Timeout too (States.HeartbeatTimeout is
                    // only a matcher name).
                    let _ = heartbeat;
                    self.state_failed(
                        t.thread,
                        Failure {
                            error: Some("States.Timeout".into()),
                            cause: Some(String::new()),
                        },
                        env,
                    );
                }
            }
            TimerPurpose::ExecutionTimeout => {
                if let Some(root) = self.root_thread() {
                    self.capture_redrive_point(root);
                }
                self.finish(
                    ExecutionStatus::TimedOut,
                    None,
                    Some("States.Timeout".into()),
                    None,
                    env,
                    "ExecutionTimedOut",
                );
            }
        }
    }

    fn on_task_submitted(&mut self, task: u64, env: &Env<'_>) {
        let Some(t) = self.tasks.get(&task) else {
            return;
        };
        let (thread, rt, rn) = (t.thread, t.resource_type.clone(), t.resource_name.clone());
        let last = self.thread_last_event(thread);
        let id = self.history.emit(
            last,
            "TaskSubmitted",
            env.now,
            || json!({"resource": rn, "resourceType": rt}),
        );
        self.set_last_event(thread, id);
    }

    fn on_task_succeeded(&mut self, task: u64, output: Value, env: &Env<'_>) {
        let Some(t) = self.tasks.remove(&task) else {
            return;
        };
        self.clear_task_timers(&t);
        let thread = t.thread;
        let last = self.thread_last_event(thread);
        let kind = if t.legacy_lambda {
            "LambdaFunctionSucceeded"
        } else {
            "TaskSucceeded"
        };
        let o2 = output.clone();
        let (rt, rn) = (t.resource_type.clone(), t.resource_name.clone());
        let id = self.history.emit(last, kind, env.now, || {
            if t.legacy_lambda {
                json!({"output": o2})
            } else {
                json!({"output": o2, "resource": rn, "resourceType": rt})
            }
        });
        self.set_last_event(thread, id);
        let machine = self.machine();
        let Some(th) = self.threads.get(&thread) else {
            return;
        };
        let m = machine_at(&machine, &th.path);
        let state = m.state(th.state);
        if exceeds_payload_limit(&output) {
            // The integration reports an oversize result as the task's failure, which the
            // state's Retry/Catch see like any other.
            let f = Failure {
                error: Some("States.DataLimitExceeded".into()),
                cause: Some(format!(
                    "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.",
                    if t.legacy_lambda { t.resource_name.as_str() } else { state.name.as_str() }
                )),
            };
            self.state_failed(thread, f, env);
            return;
        }
        let StateKind::Task(task_def) = &state.kind else {
            return;
        };
        let step = self.complete_result_state(
            thread,
            state,
            &task_def.io,
            task_def.transition,
            output,
            env,
        );
        if self.continue_with(thread, step, env) {
            self.ready.push_back(thread);
        }
    }

    /// Runs ready threads until none is ready.
    fn run_ready(&mut self, env: &Env<'_>) {
        while let Some(tid) = self.ready.pop_front() {
            if self.is_finished() {
                self.ready.clear();
                return;
            }
            self.run_thread(tid, env);
        }
    }

    fn run_thread(&mut self, tid: u64, env: &Env<'_>) {
        let machine = self.machine();
        loop {
            let Some(th) = self.threads.get(&tid) else {
                return;
            };
            let retry = match th.status {
                ThreadStatus::Ready { retry } => retry,
                _ => return,
            };
            let m = machine_at(&machine, &th.path);
            let state = m.state(th.state);
            if !retry {
                let last = th.last_event;
                let details = if self.history.record {
                    json!({"input": *th.input, "name": state.name})
                } else {
                    Value::Null
                };
                let id = self.history.emit_state(
                    last,
                    state.kind.type_name(),
                    "StateEntered",
                    env.now,
                    || details,
                );
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.entered_event = id;
                    t.last_event = id;
                    t.entered_time = env.now;
                    t.retry_counts.clear();
                    t.retry_total = 0;
                }
            }
            let step = self.run_state(tid, state, env);
            match step {
                Step::Blocked => return,
                other => {
                    if !self.continue_with(tid, other, env) {
                        return;
                    }
                }
            }
        }
    }

    /// Applies a step's outcome to a thread. Returns true if the thread is ready to run its
    /// next state right away.
    fn continue_with(&mut self, tid: u64, step: Step, env: &Env<'_>) -> bool {
        match step {
            Step::Blocked => false,
            Step::Next(next, output) => {
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.state = next;
                    t.input = output;
                    t.status = ThreadStatus::Ready { retry: false };
                    true
                } else {
                    false
                }
            }
            Step::End(output) => {
                self.thread_done(tid, output, env);
                false
            }
            Step::Fail(f) => {
                self.fail_thread(tid, f, env);
                false
            }
        }
    }

    // ----- helpers for evaluation -----------------------------------------------------------

    fn vars(&self, tid: u64) -> ScopeVars<'_> {
        let scope = self.threads.get(&tid).map(|t| t.scope).unwrap_or(0);
        ScopeVars {
            scopes: &self.scopes,
            scope,
        }
    }

    /// The identity a thread's context object shows (every thread of an execution shares it;
    /// Distributed Map children are executions of their own).
    fn info_for(&self, _tid: u64) -> &ExecutionInfo {
        &self.info
    }

    fn context_for(
        &self,
        tid: u64,
        state: &State,
        token: Option<&str>,
        map_item: Option<Value>,
    ) -> Value {
        if let Some(ctx) = self.probe.as_ref().and_then(|p| p.context.as_ref()) {
            return ctx.clone();
        }
        let Some(t) = self.threads.get(&tid) else {
            return Value::Null;
        };
        let retry = match state.kind {
            StateKind::Task(_) | StateKind::Parallel(_) | StateKind::Map(_) => Some(t.retry_total),
            _ => None,
        };
        context_object(
            self.info_for(tid),
            &StateContext {
                name: &state.name,
                entered_time: t.entered_time,
                retry_count: retry,
                task_token: token,
                map_item,
            },
        )
    }

    /// Prefixes a cause the way AWS does for errors raised while evaluating a state.
    fn located(&self, tid: u64, state: &State, e: AslError) -> Failure {
        let entered = self.threads.get(&tid).map(|t| t.entered_event).unwrap_or(0);
        Failure {
            error: Some(e.name.as_str().to_string()),
            cause: Some(format!(
                "An error occurred while executing the state '{}' (entered at the event id #{}). {}",
                state.name, entered, e.cause
            )),
        }
    }

    fn select_path(
        &self,
        tid: u64,
        state: &State,
        path: &JsonPath,
        input: &Value,
    ) -> Result<Value, AslError> {
        let ctx;
        let vars = self.vars(tid);
        let root: &Value = match path.root() {
            Root::Input => input,
            Root::Context => {
                ctx = self.context_for(tid, state, None, None);
                &ctx
            }
            Root::Variable(name) => match vars.get_var(name) {
                Some(v) => v,
                None => {
                    return Err(AslError::runtime(format!(
                        "Invalid path '{}': The variable '{}' is not defined.",
                        path.source(),
                        name
                    )))
                }
            },
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

    /// InputPath without copying the input when it is `$` (the default).
    fn input_path<'a>(
        &self,
        tid: u64,
        state: &State,
        field: &PathField,
        input: &'a Value,
    ) -> Result<Cow<'a, Value>, AslError> {
        match field {
            PathField::Default => Ok(Cow::Borrowed(input)),
            PathField::Null => Ok(Cow::Owned(Value::Object(Map::new()))),
            PathField::Path(p) => self.select_path(tid, state, p, input).map(Cow::Owned),
        }
    }

    fn apply_path_field(
        &self,
        tid: u64,
        state: &State,
        field: &PathField,
        input: Value,
    ) -> Result<Value, AslError> {
        match field {
            PathField::Default => Ok(input),
            PathField::Null => Ok(Value::Object(Map::new())),
            PathField::Path(p) => self.select_path(tid, state, p, &input),
        }
    }

    fn apply_result_path(
        &self,
        field: &PathField,
        raw: Value,
        result: Value,
    ) -> Result<Value, AslError> {
        match field {
            PathField::Default => Ok(result),
            PathField::Null => Ok(raw),
            PathField::Path(p) => {
                let mut target = raw;
                match p.set(&mut target, result) {
                    Ok(()) => Ok(target),
                    Err(e) => Err(AslError::new(
                        ErrorName::ResultPathMatchFailure,
                        e.to_string(),
                    )),
                }
            }
        }
    }

    fn eval_payload(
        &self,
        tid: u64,
        state: &State,
        t: &crate::asl::template::PayloadTemplate,
        input: &Value,
        token: Option<&str>,
        map_item: Option<Value>,
        env: &Env<'_>,
    ) -> Result<Value, AslError> {
        let ctx = if t.uses_context() || map_item.is_some() {
            self.context_for(tid, state, token, map_item)
        } else {
            Value::Null
        };
        let vars = self.vars(tid);
        let scope = Scope {
            input,
            context: &ctx,
            vars: &vars,
            entropy: env.entropy,
        };
        t.eval(&scope)
    }

    fn states_object(
        &self,
        tid: u64,
        state: &State,
        input: &Value,
        result: Option<&Value>,
        error_output: Option<&Value>,
        token: Option<&str>,
        map_item: Option<Value>,
    ) -> Value {
        let mut s = Map::new();
        s.insert("input".into(), input.clone());
        if state_reads_context(state) {
            s.insert(
                "context".into(),
                self.context_for(tid, state, token, map_item),
            );
        }
        if let Some(r) = result {
            s.insert("result".into(), r.clone());
        }
        if let Some(e) = error_output {
            s.insert("errorOutput".into(), e.clone());
        }
        Value::Object(s)
    }

    fn eval_jsonata(
        &self,
        tid: u64,
        states: &Value,
        t: &JsonataTemplate,
        field: &str,
        env: &Env<'_>,
    ) -> Result<Value, AslError> {
        let vars = self.vars(tid);
        t.eval(
            &JsonataEnv {
                states,
                vars: &vars,
                entropy: env.entropy,
            },
            field,
        )
    }

    /// Evaluates an Assign (either language) with the variable values as of state entry,
    /// returning the new bindings (applied by [`Self::commit_assign`]).
    fn eval_assign(
        &self,
        tid: u64,
        state: &State,
        assign: &Template,
        jp_input: &Value,
        states: Option<&Value>,
        env: &Env<'_>,
    ) -> Result<Map<String, Value>, AslError> {
        let v = match assign {
            Template::JsonPath(t) => self.eval_payload(tid, state, t, jp_input, None, None, env)?,
            Template::Jsonata(t) => match states {
                Some(s) => self.eval_jsonata(tid, s, t, "Assign", env)?,
                None => {
                    let s = self.states_object(tid, state, jp_input, None, None, None, None);
                    self.eval_jsonata(tid, &s, t, "Assign", env)?
                }
            },
        };
        match v {
            Value::Object(m) => Ok(m),
            other => Err(AslError::runtime(format!(
                "Assign must produce an object, got {}",
                compact(&other)
            ))),
        }
    }

    fn commit_assign(&mut self, tid: u64, vars: Map<String, Value>) {
        if vars.is_empty() {
            return;
        }
        let scope = self.threads.get(&tid).map(|t| t.scope).unwrap_or(0);
        if let Some(s) = self.scopes.get_mut(&scope) {
            for (k, v) in vars {
                s.vars.insert(k, v);
            }
        }
    }

    fn emit_exited(
        &mut self,
        tid: u64,
        state: &State,
        output: &Value,
        assigned: Option<&Map<String, Value>>,
        env: &Env<'_>,
    ) {
        let last = self.thread_last_event(tid);
        let name = &state.name;
        let id =
            self.history
                .emit_state(last, state.kind.type_name(), "StateExited", env.now, || {
                    let mut d = Map::new();
                    if let Some(a) = assigned.filter(|a| !a.is_empty()) {
                        d.insert(
                            "assignedVariables".into(),
                            Value::Object(
                                a.iter()
                                    .map(|(k, v)| (k.clone(), Value::String(compact(v))))
                                    .collect(),
                            ),
                        );
                        d.insert(
                            "assignedVariablesDetails".into(),
                            json!({"truncated": false}),
                        );
                    }
                    d.insert("name".into(), Value::String(name.clone()));
                    d.insert("output".into(), output.clone());
                    Value::Object(d)
                });
        self.set_last_event(tid, id);
    }

    /// Common exit: check size, emit StateExited, commit variables, transition.
    fn exit_state(
        &mut self,
        tid: u64,
        state: &State,
        transition: Option<Transition>,
        output: impl Into<Arc<Value>>,
        assigned: Map<String, Value>,
        env: &Env<'_>,
    ) -> Step {
        let output: Arc<Value> = output.into();
        if exceeds_payload_limit(&output) {
            return Step::Fail(Failure {
                error: Some("States.DataLimitExceeded".into()),
                cause: Some(format!(
                    "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.",
                    state.name
                )),
            });
        }
        self.emit_exited(tid, state, &output, Some(&assigned), env);
        self.probe_point(tid, Point::Assigned, || Value::Object(assigned.clone()));
        self.commit_assign(tid, assigned);
        match transition {
            Some(Transition::Next(n)) => Step::Next(n, output),
            _ => Step::End(Arc::unwrap_or_clone(output)),
        }
    }

    // ----- states ------------------------------------------------------------------------------

    fn run_state(&mut self, tid: u64, state: &State, env: &Env<'_>) -> Step {
        // Synchronous states consume their input; the others keep it on the thread (ResultPath,
        // Catch, a Wait's exit and retries need it later).
        let consumes = matches!(
            state.kind,
            StateKind::Pass(_) | StateKind::Choice(_) | StateKind::Succeed(_) | StateKind::Fail(_)
        );
        let shared = match self.threads.get_mut(&tid) {
            Some(t) if consumes => std::mem::take(&mut t.input),
            Some(t) => t.input.clone(),
            None => return Step::Blocked,
        };
        let r = match &state.kind {
            // Pass and Choice take the input shared and copy it only when they must change it
            // (a child's first input is shared with its execution and its Map Run); for the
            // others a consumed input is (almost always) no longer shared: unwrapping is free.
            StateKind::Pass(p) => self.run_pass(tid, state, p, shared, env),
            StateKind::Choice(c) => self.run_choice(tid, state, c, shared, env),
            StateKind::Succeed(s) => {
                self.run_succeed(tid, state, &s.io, Arc::unwrap_or_clone(shared), env)
            }
            StateKind::Fail(f) => self.run_fail(tid, state, f, Arc::unwrap_or_clone(shared), env),
            StateKind::Wait(w) => self.run_wait(tid, state, w, &shared, env),
            StateKind::Task(t) => self.run_task(tid, state, t, &shared, env),
            StateKind::Parallel(p) => self.run_parallel(tid, state, p, &shared, env),
            StateKind::Map(m) => self.run_map(tid, state, m, &shared, env),
        };
        match r {
            Ok(step) => step,
            Err(e) => {
                let terminal = e.name.is_terminal();
                let f = self.located(tid, state, e);
                if lang_is_jsonata(state)
                    && f.error.as_deref() == Some("States.QueryEvaluationError")
                {
                    let last = self.thread_last_event(tid);
                    let (e2, c2, n2) = (f.error.clone(), f.cause.clone(), state.name.clone());
                    self.history.emit(
                        last,
                        "EvaluationFailed",
                        env.now,
                        || json!({"error": e2, "cause": c2, "state": n2}),
                    );
                }
                if terminal {
                    Step::Fail(f)
                } else {
                    self.handle_error(tid, state, f, env)
                }
            }
        }
    }

    fn run_pass(
        &mut self,
        tid: u64,
        state: &State,
        p: &crate::asl::Pass,
        shared: Arc<Value>,
        env: &Env<'_>,
    ) -> Result<Step, AslError> {
        if lang_is_jsonata(state) {
            let states = self.states_object(tid, state, &shared, None, None, None, None);
            let output = match &p.io.output {
                Some(o) => Arc::new(self.eval_jsonata(tid, &states, o, "Output", env)?),
                None => shared,
            };
            let assigned = match &p.io.assign {
                Some(a) => self.eval_assign(tid, state, a, &Value::Null, Some(&states), env)?,
                None => Map::new(),
            };
            return Ok(self.exit_state(tid, state, Some(p.transition), output, assigned, env));
        }
        let effective = self.input_path(tid, state, &p.io.input_path, &shared)?;
        self.probe_point(tid, Point::AfterInputPath, || effective.as_ref().clone());
        let computed = if let Some(r) = &p.result {
            Some(r.clone())
        } else if let Some(Template::JsonPath(t)) = &p.io.parameters {
            Some(self.eval_payload(tid, state, t, &effective, None, None, env)?)
        } else {
            None
        };
        match (&p.result, &computed) {
            (Some(r), _) => self.probe_point(tid, Point::Result, || r.clone()),
            (None, c) => self.probe_point(tid, Point::AfterParameters, || {
                c.clone().unwrap_or_else(|| effective.as_ref().clone())
            }),
        }
        let result = match (computed, effective) {
            (Some(r), _) => Some(r),
            (None, Cow::Owned(e)) => Some(e),
            (None, Cow::Borrowed(_)) => None,
        };
        // The raw input is only taken (copied when still shared, as a child's first input is)
        // when ResultPath merges into it or the result is the input itself.
        let (result, raw) = match (result, &p.io.result_path) {
            (Some(r), PathField::Default) => (r, Value::Null),
            (Some(r), _) => (r, Arc::unwrap_or_clone(shared)),
            (None, PathField::Default) => (Arc::unwrap_or_clone(shared), Value::Null),
            (None, _) => {
                let raw = Arc::unwrap_or_clone(shared);
                (raw.clone(), raw)
            }
        };
        let assigned = match &p.io.assign {
            Some(a) => self.eval_assign(tid, state, a, &result, None, env)?,
            None => Map::new(),
        };
        self.probe_point(tid, Point::AfterResultSelector, || result.clone());
        let merged = self.apply_result_path(&p.io.result_path, raw, result)?;
        self.probe_point(tid, Point::AfterResultPath, || merged.clone());
        let output = self.apply_path_field(tid, state, &p.io.output_path, merged)?;
        Ok(self.exit_state(tid, state, Some(p.transition), output, assigned, env))
    }

    fn run_succeed(
        &mut self,
        tid: u64,
        state: &State,
        io: &Io,
        raw: Value,
        env: &Env<'_>,
    ) -> Result<Step, AslError> {
        let output = if lang_is_jsonata(state) {
            match &io.output {
                Some(o) => {
                    let states = self.states_object(tid, state, &raw, None, None, None, None);
                    self.eval_jsonata(tid, &states, o, "Output", env)?
                }
                None => raw,
            }
        } else {
            let effective = self.apply_path_field(tid, state, &io.input_path, raw)?;
            self.probe_point(tid, Point::AfterInputPath, || effective.clone());
            self.apply_path_field(tid, state, &io.output_path, effective)?
        };
        Ok(self.exit_state(tid, state, None, output, Map::new(), env))
    }

    fn eval_dyn_string(
        &self,
        tid: u64,
        state: &State,
        d: &DynString,
        raw: &Value,
        field: &str,
        env: &Env<'_>,
    ) -> Result<Value, AslError> {
        match d {
            DynString::Literal(s) => Ok(Value::String(s.clone())),
            DynString::Path(pe) => {
                let ctx = if pe.uses_context() {
                    self.context_for(tid, state, None, None)
                } else {
                    Value::Null
                };
                let vars = self.vars(tid);
                let scope = Scope {
                    input: raw,
                    context: &ctx,
                    vars: &vars,
                    entropy: env.entropy,
                };
                pe.eval(&scope, field)
            }
            DynString::Jsonata(t) => {
                let states = self.states_object(tid, state, raw, None, None, None, None);
                self.eval_jsonata(tid, &states, t, field, env)
            }
        }
    }

    fn run_fail(
        &mut self,
        tid: u64,
        state: &State,
        f: &crate::asl::Fail,
        raw: Value,
        env: &Env<'_>,
    ) -> Result<Step, AslError> {
        let as_text = |v: Value| match v {
            Value::String(s) => s,
            other => compact(&other),
        };
        let error = match &f.error {
            Some(d) => Some(as_text(self.eval_dyn_string(
                tid,
                state,
                d,
                &raw,
                "ErrorPath",
                env,
            )?)),
            None => None,
        };
        let cause = match &f.cause {
            Some(d) => Some(as_text(self.eval_dyn_string(
                tid,
                state,
                d,
                &raw,
                "CausePath",
                env,
            )?)),
            None => None,
        };
        Ok(Step::Fail(Failure { error, cause }))
    }

    fn run_choice(
        &mut self,
        tid: u64,
        state: &State,
        c: &crate::asl::Choice,
        shared: Arc<Value>,
        env: &Env<'_>,
    ) -> Result<Step, AslError> {
        let raw: &Value = &shared;
        let jsonata = lang_is_jsonata(state);
        let effective = if jsonata {
            Cow::Borrowed(raw)
        } else {
            self.input_path(tid, state, &c.io.input_path, raw)?
        };
        if !jsonata {
            self.probe_point(tid, Point::AfterInputPath, || effective.as_ref().clone());
        }
        let states = if jsonata {
            Some(self.states_object(tid, state, raw, None, None, None, None))
        } else {
            None
        };
        let mut chosen = None;
        for (i, branch) in c.choices.iter().enumerate() {
            let matched = {
                let ctx = if branch.rule.uses_context() {
                    self.context_for(tid, state, None, None)
                } else {
                    Value::Null
                };
                let vars = self.vars(tid);
                let scope = Scope {
                    input: &effective,
                    context: &ctx,
                    vars: &vars,
                    entropy: env.entropy,
                };
                choice::evaluate(&branch.rule, &scope, states.as_ref(), i)?
            };
            if matched {
                chosen = Some(branch);
                break;
            }
        }
        let next = match chosen {
            Some(b) => b.next,
            None => match c.default {
                Some(d) => d,
                None => {
                    return Err(AslError::new(
                        ErrorName::NoChoiceMatched,
                        "No Matches!".to_string(),
                    ));
                }
            },
        };
        let mut assigned = match &c.io.assign {
            Some(a) => self.eval_assign(tid, state, a, &effective, states.as_ref(), env)?,
            None => Map::new(),
        };
        if let Some(b) = chosen {
            if let Some(a) = &b.assign {
                assigned.extend(self.eval_assign(
                    tid,
                    state,
                    a,
                    &effective,
                    states.as_ref(),
                    env,
                )?);
            }
        }
        let effective_owned = match effective {
            Cow::Owned(v) => Some(v),
            Cow::Borrowed(_) => None,
        };
        let output: Arc<Value> = if let Some(s) = &states {
            let out_t = chosen
                .and_then(|b| b.output.as_ref())
                .or(c.io.output.as_ref());
            match out_t {
                Some(o) => Arc::new(self.eval_jsonata(tid, s, o, "Output", env)?),
                None => shared,
            }
        } else {
            match effective_owned {
                // The input passes through untouched: no copy.
                None if matches!(c.io.output_path, PathField::Default) => shared,
                // The effective input is the raw input unless InputPath selected something.
                effective => {
                    let effective = effective.unwrap_or_else(|| Arc::unwrap_or_clone(shared));
                    Arc::new(self.apply_path_field(tid, state, &c.io.output_path, effective)?)
                }
            }
        };
        Ok(self.exit_state(
            tid,
            state,
            Some(Transition::Next(next)),
            output,
            assigned,
            env,
        ))
    }

    fn run_wait(
        &mut self,
        tid: u64,
        state: &State,
        w: &crate::asl::Wait,
        raw: &Value,
        env: &Env<'_>,
    ) -> Result<Step, AslError> {
        let jsonata = lang_is_jsonata(state);
        let effective = if jsonata {
            Cow::Borrowed(raw)
        } else {
            self.input_path(tid, state, &w.io.input_path, raw)?
        };
        let until = match &w.wait {
            WaitFor::Seconds(d) => {
                let secs = match d {
                    Dynamic::Literal(n) => *n as i64,
                    Dynamic::Path(p) => {
                        let v = self.select_path(tid, state, p, &effective).map_err(|_| {
                            AslError::runtime(format!(
                                "The SecondsPath parameter does not reference an input value: {}",
                                p.source()
                            ))
                        })?;
                        match v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)) {
                            Some(n) if n >= 0 => n,
                            _ => {
                                return Err(AslError::runtime(format!(
                                    "The SecondsPath parameter does not reference a valid integer value: {} == {}",
                                    p.source(),
                                    compact(&v)
                                )))
                            }
                        }
                    }
                    Dynamic::Jsonata(t) => {
                        let states = self.states_object(tid, state, raw, None, None, None, None);
                        let v = self.eval_jsonata(tid, &states, t, "Seconds", env)?;
                        match v.as_i64() {
                            Some(n) if n >= 0 => n,
                            _ => {
                                return Err(AslError::query(format!(
                                    "The JSONata expression '{}' specified for the field 'Seconds' returned an unexpected result type. Expected 'integer', but was '{}' for value: {}",
                                    t.quoted_source(),
                                    crate::asl::jsonata::type_name(&v),
                                    compact(&v)
                                )))
                            }
                        }
                    }
                };
                env.now + Duration::seconds(secs)
            }
            WaitFor::Timestamp(d) => {
                let text = match d {
                    Dynamic::Literal(s) => s.clone(),
                    Dynamic::Path(p) => {
                        let v = self.select_path(tid, state, p, &effective).map_err(|_| {
                            AslError::runtime(format!(
                                "The TimestampPath parameter does not reference an input value: {}",
                                p.source()
                            ))
                        })?;
                        match v.as_str().and_then(timestamp::parse) {
                            Some(_) => v.as_str().unwrap_or_default().to_string(),
                            None => {
                                let shown = match &v {
                                    Value::String(s) => s.clone(),
                                    other => compact(other),
                                };
                                return Err(AslError::runtime(format!(
                                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {} == {}",
                                    p.source(),
                                    shown
                                )));
                            }
                        }
                    }
                    Dynamic::Jsonata(t) => {
                        let states = self.states_object(tid, state, raw, None, None, None, None);
                        let v = self.eval_jsonata(tid, &states, t, "Timestamp", env)?;
                        let shown = match &v {
                            Value::String(s) => s.clone(),
                            other => compact(other),
                        };
                        if v.as_str().and_then(timestamp::parse).is_none() {
                            return Err(AslError::query(format!(
                                "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {shown}"
                            )));
                        }
                        shown
                    }
                };
                timestamp::parse(&text).unwrap_or(env.now)
            }
        };
        if until <= env.now {
            return self.finish_wait_result(tid, state, &w.io, w.transition, raw.clone(), env);
        }
        let timer = self.fresh_id();
        self.add_timer(timer, TimerPurpose::Resume { thread: tid }, until);
        if let Some(t) = self.threads.get_mut(&tid) {
            t.status = ThreadStatus::Sleeping { timer };
        }
        Ok(Step::Blocked)
    }

    fn finish_wait(
        &mut self,
        tid: u64,
        state: &State,
        io: &Io,
        transition: Transition,
        raw: Value,
        env: &Env<'_>,
    ) -> Step {
        match self.finish_wait_result(tid, state, io, transition, raw, env) {
            Ok(s) => s,
            Err(e) => Step::Fail(self.located(tid, state, e)),
        }
    }

    fn finish_wait_result(
        &mut self,
        tid: u64,
        state: &State,
        io: &Io,
        transition: Transition,
        raw: Value,
        env: &Env<'_>,
    ) -> Result<Step, AslError> {
        if lang_is_jsonata(state) {
            let states = self.states_object(tid, state, &raw, None, None, None, None);
            let assigned = match &io.assign {
                Some(a) => self.eval_assign(tid, state, a, &Value::Null, Some(&states), env)?,
                None => Map::new(),
            };
            let output = match &io.output {
                Some(o) => self.eval_jsonata(tid, &states, o, "Output", env)?,
                None => raw,
            };
            return Ok(self.exit_state(tid, state, Some(transition), output, assigned, env));
        }
        let effective = self.apply_path_field(tid, state, &io.input_path, raw)?;
        self.probe_point(tid, Point::AfterInputPath, || effective.clone());
        let assigned = match &io.assign {
            Some(a) => self.eval_assign(tid, state, a, &effective, None, env)?,
            None => Map::new(),
        };
        let output = self.apply_path_field(tid, state, &io.output_path, effective)?;
        Ok(self.exit_state(tid, state, Some(transition), output, assigned, env))
    }

    fn eval_dynamic_u64(
        &self,
        tid: u64,
        state: &State,
        d: &Dynamic<u64>,
        input: &Value,
        raw: &Value,
        field: &str,
        env: &Env<'_>,
    ) -> Result<u64, AslError> {
        match d {
            Dynamic::Literal(n) => Ok(*n),
            Dynamic::Path(p) => {
                let v = self.select_path(tid, state, p, input)?;
                match as_integer(&v).and_then(|n| u64::try_from(n).ok()) {
                    Some(n) => Ok(n),
                    None => Err(AslError::runtime(format!(
                        "The {}Path field refers to value \"{}\" which is not a valid integer: {}",
                        field,
                        match &v {
                            Value::String(s) => s.clone(),
                            other => compact(other),
                        },
                        p.source()
                    ))),
                }
            }
            Dynamic::Jsonata(t) => {
                let states = self.states_object(tid, state, raw, None, None, None, None);
                let v = self.eval_jsonata(tid, &states, t, field, env)?;
                match v.as_u64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64)) {
                    Some(n) => Ok(n),
                    None => Err(AslError::query(format!(
                        "The JSONata expression '{}' specified for the field '{}' returned an unexpected result type. Expected 'integer', but was '{}' for value: {}",
                        t.quoted_source(),
                        field,
                        crate::asl::jsonata::type_name(&v),
                        compact(&v)
                    ))),
                }
            }
        }
    }

    fn run_task(
        &mut self,
        tid: u64,
        state: &State,
        t: &crate::asl::Task,
        raw: &Value,
        env: &Env<'_>,
    ) -> Result<Step, AslError> {
        let jsonata = lang_is_jsonata(state);
        let pattern = if t.resource.ends_with(".waitForTaskToken") {
            IntegrationPattern::WaitForTaskToken
        } else if t.resource.ends_with(".sync") || t.resource.contains(".sync:") {
            IntegrationPattern::Sync
        } else {
            IntegrationPattern::RequestResponse
        };
        // `.waitForTaskToken` and `.sync` tasks both carry a token (`$$.Task.Token`).
        let token = if pattern != IntegrationPattern::RequestResponse {
            Some(format!(
                "{}{}",
                env.entropy.uuid_v4().replace('-', ""),
                env.entropy.uuid_v4().replace('-', "")
            ))
        } else {
            None
        };
        let effective = if jsonata {
            Cow::Borrowed(raw)
        } else {
            self.input_path(tid, state, &t.io.input_path, raw)?
        };
        let input = match &t.io.parameters {
            Some(Template::JsonPath(p)) => {
                self.eval_payload(tid, state, p, &effective, token.as_deref(), None, env)?
            }
            Some(Template::Jsonata(a)) => {
                let states =
                    self.states_object(tid, state, raw, None, None, token.as_deref(), None);
                self.eval_jsonata(tid, &states, a, "Arguments", env)?
            }
            None => effective.as_ref().clone(),
        };
        if jsonata {
            self.probe_point(tid, Point::AfterArguments, || input.clone());
        } else {
            self.probe_point(tid, Point::AfterInputPath, || effective.as_ref().clone());
            self.probe_point(tid, Point::AfterParameters, || input.clone());
        }
        let timeout = match &t.timeout_seconds {
            Some(d) => Some(self.eval_dynamic_u64(
                tid,
                state,
                d,
                &effective,
                raw,
                "TimeoutSeconds",
                env,
            )?),
            None => None,
        };
        let heartbeat = match &t.heartbeat_seconds {
            Some(d) => Some(self.eval_dynamic_u64(
                tid,
                state,
                d,
                &effective,
                raw,
                "HeartbeatSeconds",
                env,
            )?),
            None => None,
        };
        let credentials = match &t.credentials {
            Some(Template::JsonPath(p)) => {
                Some(self.eval_payload(tid, state, p, &effective, None, None, env)?)
            }
            Some(Template::Jsonata(a)) => {
                let states = self.states_object(tid, state, raw, None, None, None, None);
                Some(self.eval_jsonata(tid, &states, a, "Credentials", env)?)
            }
            None => None,
        };
        let (resource_type, resource_name, legacy) = describe_resource(&t.resource);
        let task = self.fresh_id();
        let last = self.thread_last_event(tid);
        let (i2, rt, rn) = (input.clone(), resource_type.clone(), resource_name.clone());
        let (sched, started) = if legacy {
            let res = t.resource.clone();
            let id = self
                .history
                .emit(last, "LambdaFunctionScheduled", env.now, || {
                    let mut d = json!({"input": i2, "resource": res});
                    if let Some(s) = timeout {
                        d["timeoutInSeconds"] = json!(s);
                    }
                    d
                });
            (id, "LambdaFunctionStarted")
        } else {
            let id = self.history.emit(last, "TaskScheduled", env.now, || {
                let mut d = Map::new();
                if let Some(h) = heartbeat {
                    d.insert("heartbeatInSeconds".into(), json!(h));
                }
                d.insert("parameters".into(), i2);
                d.insert("region".into(), json!(super::context::DEFAULT_REGION));
                d.insert("resource".into(), json!(rn));
                d.insert("resourceType".into(), json!(rt));
                if let Some(s) = timeout {
                    d.insert("timeoutInSeconds".into(), json!(s));
                }
                Value::Object(d)
            });
            (id, "TaskStarted")
        };
        let (rt, rn) = (resource_type.clone(), resource_name.clone());
        let started_id = self.history.emit(sched, started, env.now, || {
            if legacy {
                Value::Null
            } else {
                json!({"resource": rn, "resourceType": rt})
            }
        });
        self.set_last_event(tid, started_id);
        let timeout_timer = timeout.map(|s| {
            let timer = self.fresh_id();
            self.add_timer(
                timer,
                TimerPurpose::TaskTimeout { task },
                env.now + Duration::seconds(s as i64),
            );
            timer
        });
        let heartbeat_timer = heartbeat.map(|s| {
            let timer = self.fresh_id();
            self.add_timer(
                timer,
                TimerPurpose::HeartbeatTimeout { task },
                env.now + Duration::seconds(s as i64),
            );
            timer
        });
        let request = TaskRequest {
            task,
            state_name: state.name.clone(),
            resource: t.resource.clone(),
            pattern,
            input,
            token: token.clone(),
            timeout_seconds: timeout,
            heartbeat_seconds: heartbeat,
            credentials,
        };
        self.tasks.insert(
            task,
            InFlightTask {
                thread: tid,
                token: token.clone(),
                timeout_timer,
                heartbeat_timer,
                heartbeat_seconds: heartbeat,
                resource_type,
                resource_name,
                legacy_lambda: legacy,
                request: request.clone(),
            },
        );
        self.actions.push(Action::InvokeTask(request));
        if let Some(th) = self.threads.get_mut(&tid) {
            th.status = ThreadStatus::InTask { task };
        }
        Ok(Step::Blocked)
    }

    /// Task/Parallel/Map success: ResultSelector, Assign, ResultPath, OutputPath (or JSONata
    /// Output/Assign), then exit.
    fn complete_result_state(
        &mut self,
        tid: u64,
        state: &State,
        io: &Io,
        transition: Transition,
        result: Value,
        env: &Env<'_>,
    ) -> Step {
        let r = (|| -> Result<Step, AslError> {
            let raw = self
                .threads
                .get(&tid)
                .map(|t| t.input.clone())
                .unwrap_or_default();
            self.probe_point(tid, Point::Result, || result.clone());
            if lang_is_jsonata(state) {
                let states = self.states_object(tid, state, &raw, Some(&result), None, None, None);
                let assigned = match &io.assign {
                    Some(a) => self.eval_assign(tid, state, a, &Value::Null, Some(&states), env)?,
                    None => Map::new(),
                };
                let output = match &io.output {
                    Some(o) => self.eval_jsonata(tid, &states, o, "Output", env)?,
                    None => result,
                };
                return Ok(self.exit_state(tid, state, Some(transition), output, assigned, env));
            }
            let selected = match &io.result_selector {
                Some(rs) => self.eval_payload(tid, state, rs, &result, None, None, env)?,
                None => result.clone(),
            };
            let assigned = match &io.assign {
                Some(a) => self.eval_assign(tid, state, a, &result, None, env)?,
                None => Map::new(),
            };
            self.probe_point(tid, Point::AfterResultSelector, || selected.clone());
            let merged = self.apply_result_path(
                &io.result_path,
                shared_value(&raw, &io.result_path),
                selected,
            )?;
            self.probe_point(tid, Point::AfterResultPath, || merged.clone());
            let output = self.apply_path_field(tid, state, &io.output_path, merged)?;
            Ok(self.exit_state(tid, state, Some(transition), output, assigned, env))
        })();
        match r {
            Ok(s) => s,
            Err(e) => {
                let terminal = e.name.is_terminal();
                let f = self.located(tid, state, e);
                if terminal {
                    Step::Fail(f)
                } else {
                    self.handle_error(tid, state, f, env)
                }
            }
        }
    }

    fn run_parallel(
        &mut self,
        tid: u64,
        state: &State,
        p: &crate::asl::Parallel,
        raw: &Value,
        env: &Env<'_>,
    ) -> Result<Step, AslError> {
        let input = if lang_is_jsonata(state) {
            match &p.io.parameters {
                Some(Template::Jsonata(a)) => {
                    let states = self.states_object(tid, state, raw, None, None, None, None);
                    self.eval_jsonata(tid, &states, a, "Arguments", env)?
                }
                _ => raw.clone(),
            }
        } else {
            let effective = self.input_path(tid, state, &p.io.input_path, raw)?;
            match &p.io.parameters {
                Some(Template::JsonPath(t)) => {
                    self.eval_payload(tid, state, t, &effective, None, None, env)?
                }
                _ => effective.into_owned(),
            }
        };
        let last = self.thread_last_event(tid);
        let started = self
            .history
            .emit(last, "ParallelStateStarted", env.now, || Value::Null);
        self.set_last_event(tid, started);
        let n = p.branches.len();
        let kept = self.take_redrive_slots(tid).filter(|d| d.len() == n);
        let mut children = Children {
            kind: ChildKind::Parallel,
            results: kept.clone().unwrap_or_else(|| vec![None; n]),
            next_to_start: n,
            running: Vec::new(),
            last_event: started,
        };
        let (path, scope) = match self.threads.get(&tid) {
            Some(t) => (t.path.clone(), t.scope),
            None => return Ok(Step::Blocked),
        };
        let sid = self.threads.get(&tid).map(|t| t.state).unwrap_or(0);
        for (i, branch) in p.branches.iter().enumerate() {
            if kept.as_ref().is_some_and(|d| d[i].is_some()) {
                continue;
            }
            let mut bpath = path.clone();
            bpath.push((sid, i as u32));
            let (child_scope, own_scope) = self.child_scope(scope, branch);
            let child = self.fresh_id();
            self.threads.insert(
                child,
                Thread {
                    parent: Some(ParentLink {
                        thread: tid,
                        slot: i,
                    }),
                    path: bpath,
                    scope: child_scope,
                    state: branch.start_at,
                    input: Arc::new(input.clone()),
                    entered_event: 0,
                    entered_time: env.now,
                    retry_counts: Vec::new(),
                    retry_total: 0,
                    last_event: started,
                    slot: i,
                    own_scope,
                    done_slots: None,
                    status: ThreadStatus::Ready { retry: false },
                },
            );
            children.running.push(child);
            self.ready.push_back(child);
        }
        if children.running.is_empty() {
            let results = children
                .results
                .into_iter()
                .map(|r| r.unwrap_or(Value::Null))
                .collect();
            return Ok(self.parallel_done(tid, state, results, env));
        }
        if let Some(t) = self.threads.get_mut(&tid) {
            t.status = ThreadStatus::Children(Box::new(children));
        }
        Ok(Step::Blocked)
    }

    fn parallel_done(
        &mut self,
        tid: u64,
        state: &State,
        results: Vec<Value>,
        env: &Env<'_>,
    ) -> Step {
        let last = self.history.last_id;
        let id = self
            .history
            .emit(last, "ParallelStateSucceeded", env.now, || Value::Null);
        self.set_last_event(tid, id);
        let StateKind::Parallel(p) = &state.kind else {
            return Step::Blocked;
        };
        self.complete_result_state(tid, state, &p.io, p.transition, Value::Array(results), env)
    }

    fn run_map(
        &mut self,
        tid: u64,
        state: &State,
        m: &crate::asl::Map,
        raw: &Value,
        env: &Env<'_>,
    ) -> Result<Step, AslError> {
        let jsonata = lang_is_jsonata(state);
        let distributed = m.processor_config.mode == ProcessorMode::Distributed;
        let effective = if jsonata {
            Cow::Borrowed(raw)
        } else {
            self.input_path(tid, state, &m.io.input_path, raw)?
        };
        // The items borrowed from the input, when the lean path may run them without copying
        // them first.
        let kept = if distributed {
            None
        } else {
            self.take_redrive_slots(tid)
        };
        let lean_view: Option<&Vec<Value>> = if !distributed
            && kept.is_none()
            && !self.history.record
            && m.item_reader.is_none()
            && !matches!(m.item_selector, Some(Template::Jsonata(_)))
            && super::lean::eligible(&m.item_processor)
        {
            match &m.items {
                None => effective.as_array(),
                Some(ItemsSource::Path(p)) if p.is_definite() && *p.root() == Root::Input => {
                    p.select_ref(&effective).and_then(Value::as_array)
                }
                _ => None,
            }
        } else {
            None
        };
        let items_value = match &m.items {
            _ if lean_view.is_some() => Value::Array(Vec::new()),
            // An ItemReader reads the items; ItemsPath does not apply to the input then.
            _ if m.item_reader.is_some() => Value::Array(Vec::new()),
            Some(ItemsSource::Path(p)) => self.select_path(tid, state, p, &effective)?,
            Some(ItemsSource::Jsonata(t)) => {
                let states = self.states_object(tid, state, raw, None, None, None, None);
                let v = self.eval_jsonata(tid, &states, t, "Items", env)?;
                if !v.is_array() {
                    return Err(AslError::query(format!(
                        "The JSONata expression '{}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was '{}' for value: {}",
                        t.quoted_source(),
                        crate::asl::jsonata::type_name(&v),
                        compact(&v)
                    )));
                }
                v
            }
            None => effective.as_ref().clone(),
        };
        let items = match items_value {
            Value::Array(a) => a,
            other => {
                let msg = format!(
                    "Map state input must be an array but was: {}",
                    compact(&other)
                );
                return Err(if jsonata {
                    AslError::query(msg)
                } else {
                    AslError::runtime(msg)
                });
            }
        };
        let max_concurrency = match &m.max_concurrency {
            Some(d) => {
                self.eval_dynamic_u64(tid, state, d, &effective, raw, "MaxConcurrency", env)?
            }
            None => 0,
        };
        let tolerated_count = match &m.tolerated_failure_count {
            Some(Dynamic::Path(p)) => {
                let v = self.select_path(tid, state, p, &effective)?;
                match as_integer(&v) {
                    Some(n) if n < 0 => return Err(AslError::runtime("ToleratedFailureCount cannot be negative.")),
                    Some(n) => Some(n as u64),
                    None => {
                        return Err(AslError::runtime(format!(
                            "The ToleratedFailureCountPath field refers to value \"{}\" which is not a valid integer: {}",
                            match &v {
                                Value::String(s) => s.clone(),
                                other => compact(other),
                            },
                            p.source()
                        )))
                    }
                }
            }
            Some(d) => Some(self.eval_dynamic_u64(
                tid,
                state,
                d,
                &effective,
                raw,
                "ToleratedFailureCount",
                env,
            )?),
            None => None,
        };
        let tolerated_percentage = match &m.tolerated_failure_percentage {
            Some(Dynamic::Literal(f)) => Some(*f),
            Some(Dynamic::Path(p)) => {
                let v = self.select_path(tid, state, p, &effective)?;
                let as_float = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()));
                match as_float {
                    Some(f) if !(0.0..=100.0).contains(&f) => {
                        return Err(AslError::runtime("ToleratedFailurePercentage must be between 0 and 100."))
                    }
                    Some(f) => Some(f),
                    None => {
                        return Err(AslError::runtime(format!(
                            "The ToleratedFailurePercentagePath field refers to value \"{}\" which is not a valid float: {}",
                            match &v {
                                Value::String(s) => s.clone(),
                                other => compact(other),
                            },
                            p.source()
                        )))
                    }
                }
            }
            Some(Dynamic::Jsonata(t)) => {
                let states = self.states_object(tid, state, raw, None, None, None, None);
                let v = self.eval_jsonata(tid, &states, t, "ToleratedFailurePercentage", env)?;
                match v.as_f64() {
                    Some(f) if (0.0..=100.0).contains(&f) => Some(f),
                    _ => {
                        return Err(AslError::query(
                            "ToleratedFailurePercentage must be between 0 and 100.",
                        ))
                    }
                }
            }
            None => None,
        };
        if distributed {
            let settings = crate::maprun::Settings {
                max_concurrency,
                tolerated_failure_count: tolerated_count,
                tolerated_failure_percentage: tolerated_percentage,
            };
            return self.start_map_run(tid, state, m, raw, &effective, items, settings, env);
        }
        let mut items = items;
        let mut started_at = None;
        if let Some(view) = lean_view {
            let len = view.len();
            let last = self.thread_last_event(tid);
            let started =
                self.history
                    .emit(last, "MapStateStarted", env.now, || json!({"length": len}));
            self.set_last_event(tid, started);
            if let Some((results, events)) =
                self.run_lean_iterations(tid, state, m, view, &effective, env)
            {
                let children = Children {
                    kind: ChildKind::Map {
                        items: Vec::new(),
                        effective_input: Value::Null,
                        max_concurrency: 0,
                    },
                    results: results.into_iter().map(Some).collect(),
                    next_to_start: len,
                    running: Vec::new(),
                    last_event: started,
                };
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.status = ThreadStatus::Children(Box::new(children));
                }
                self.history.last_id += events;
                return Ok(self.map_done(tid, state, env));
            }
            // Something the lean path does not handle: run the items the exact way.
            items = view.clone();
            started_at = Some(started);
        }
        let len = items.len();
        let started = match started_at {
            Some(id) => id,
            None => {
                let last = self.thread_last_event(tid);
                self.history
                    .emit(last, "MapStateStarted", env.now, || json!({"length": len}))
            }
        };
        let last_event = started;
        self.set_last_event(tid, last_event);
        let limit = if max_concurrency == 0 {
            INLINE_MAP_DEFAULT_CONCURRENCY
        } else {
            max_concurrency
        };
        let children = Children {
            kind: ChildKind::Map {
                items,
                // Only an ItemSelector reads the Map's effective input again.
                effective_input: if m.item_selector.is_some() {
                    effective.into_owned()
                } else {
                    Value::Null
                },
                max_concurrency: limit,
            },
            // A redrive keeps the iterations that had finished.
            results: kept
                .clone()
                .filter(|d| d.len() == len)
                .unwrap_or_else(|| vec![None; len]),
            next_to_start: 0,
            running: Vec::new(),
            last_event,
        };
        let partial = children.results.iter().any(Option::is_some);
        if let Some(t) = self.threads.get_mut(&tid) {
            t.status = ThreadStatus::Children(Box::new(children));
        }
        if partial && children_all_done(self.threads.get(&tid)) {
            return Ok(self.map_done(tid, state, env));
        }
        let lean_again = !partial
            && !self.history.record
            && len > 0
            && started_at.is_none()
            && super::lean::eligible(&m.item_processor);
        let lean = if lean_again {
            match self.threads.get(&tid).map(|t| &t.status) {
                Some(ThreadStatus::Children(ch)) => match &ch.kind {
                    ChildKind::Map {
                        items,
                        effective_input,
                        ..
                    } => self.run_lean_iterations(tid, state, m, items, effective_input, env),
                    ChildKind::Parallel => None,
                },
                _ => None,
            }
        } else {
            None
        };
        {
            if let Some((results, events)) = lean {
                if let Some(ThreadStatus::Children(ch)) =
                    self.threads.get_mut(&tid).map(|t| &mut t.status)
                {
                    ch.results = results.into_iter().map(Some).collect();
                    ch.next_to_start = len;
                }
                self.history.last_id += events;
                return Ok(self.map_done(tid, state, env));
            }
        }
        if self.parallel
            && !partial
            && len >= PARALLEL_MIN_ITEMS
            && !self.history.record
            && is_pure(&m.item_processor)
        {
            if let Some((results, events)) = self.run_pure_iterations(tid, state, m, env) {
                if let Some(ThreadStatus::Children(ch)) =
                    self.threads.get_mut(&tid).map(|t| &mut t.status)
                {
                    ch.results = results.into_iter().map(Some).collect();
                    ch.next_to_start = len;
                }
                self.history.last_id += events;
                return Ok(self.map_done(tid, state, env));
            }
        }
        if len == 0 {
            return Ok(self.map_done(tid, state, env));
        }
        self.start_map_children(tid, state, env)?;
        Ok(Step::Blocked)
    }

    /// Evaluates an ItemReader/ResultWriter object: its `Parameters` (JSONPath payload template
    /// over the effective input) or `Arguments` (JSONata), and `ReaderConfig.MaxItems(Path)`.
    #[allow(clippy::too_many_arguments)]
    fn eval_io_object(
        &self,
        tid: u64,
        state: &State,
        obj: &Value,
        raw: &Value,
        effective: &Value,
        field: &str,
        env: &Env<'_>,
    ) -> Result<Value, AslError> {
        let Value::Object(src) = obj else {
            return Ok(obj.clone());
        };
        let mut out = src.clone();
        if let Some(p) = src.get("Parameters") {
            let t = crate::asl::template::PayloadTemplate::compile(p).map_err(|(loc, msg)| {
                AslError::runtime(format!("{field}.Parameters{loc}: {msg}"))
            })?;
            out.insert(
                "Parameters".into(),
                self.eval_payload(tid, state, &t, effective, None, None, env)?,
            );
        }
        if let Some(a) = src.get("Arguments") {
            let t = JsonataTemplate::compile(a)
                .map_err(|m| AslError::query(format!("{field}.Arguments: {m}")))?;
            let states = self.states_object(tid, state, raw, None, None, None, None);
            let v = self.eval_jsonata(tid, &states, &t, &format!("{field}/Arguments"), env)?;
            out.remove("Arguments");
            out.insert("Parameters".into(), v);
        }
        if let Some(Value::Object(rc)) = src.get("ReaderConfig") {
            let mut rc = rc.clone();
            if let Some(Value::String(p)) = rc.remove("MaxItemsPath") {
                let path = JsonPath::parse(&p)
                    .map_err(|e| AslError::runtime(format!("MaxItemsPath: {e}")))?;
                let v = self.select_path(tid, state, &path, effective)?;
                match as_integer(&v) {
                    Some(n) if n >= 0 => {
                        rc.insert("MaxItems".into(), json!(n));
                    }
                    _ => {
                        return Err(AslError::runtime(format!(
                            "The MaxItemsPath field refers to value \"{}\" which is not a valid integer: {p}",
                            match &v {
                                Value::String(s) => s.clone(),
                                other => compact(other),
                            }
                        )))
                    }
                }
            }
            if let Some(Value::String(e)) = rc.get("MaxItems").cloned() {
                let t = JsonataTemplate::compile(&Value::String(e)).map_err(AslError::query)?;
                let states = self.states_object(tid, state, raw, None, None, None, None);
                let v = self.eval_jsonata(tid, &states, &t, "ReaderConfig/MaxItems", env)?;
                rc.insert("MaxItems".into(), v);
            }
            out.insert("ReaderConfig".into(), Value::Object(rc));
        }
        Ok(Value::Object(out))
    }

    /// ItemBatcher limits and BatchInput, evaluated.
    #[allow(clippy::type_complexity)]
    fn eval_batcher(
        &self,
        tid: u64,
        state: &State,
        b: &Value,
        raw: &Value,
        effective: &Value,
        env: &Env<'_>,
    ) -> Result<(Option<u64>, Option<u64>, Option<Value>), AslError> {
        let number = |name: &str| -> Result<Option<u64>, AslError> {
            if let Some(v) = b.get(name) {
                return match v {
                    Value::String(e) => {
                        let t = JsonataTemplate::compile(&Value::String(e.clone()))
                            .map_err(AslError::query)?;
                        let states = self.states_object(tid, state, raw, None, None, None, None);
                        let v = self.eval_jsonata(
                            tid,
                            &states,
                            &t,
                            &format!("ItemBatcher/{name}"),
                            env,
                        )?;
                        as_integer(&v)
                            .filter(|n| *n > 0)
                            .map(|n| Some(n as u64))
                            .ok_or_else(|| {
                                AslError::query(format!(
                                    "ItemBatcher.{name} must be a positive integer, got {}",
                                    compact(&v)
                                ))
                            })
                    }
                    other => Ok(other.as_u64()),
                };
            }
            if let Some(Value::String(p)) = b.get(format!("{name}Path").as_str()) {
                let path = JsonPath::parse(p)
                    .map_err(|e| AslError::runtime(format!("{name}Path: {e}")))?;
                let v = self.select_path(tid, state, &path, effective)?;
                return match as_integer(&v) {
                    Some(n) if n > 0 => Ok(Some(n as u64)),
                    _ => Err(AslError::runtime(format!(
                        "The {name}Path field refers to value \"{}\" which is not a valid integer: {p}",
                        match &v {
                            Value::String(s) => s.clone(),
                            other => compact(other),
                        }
                    ))),
                };
            }
            Ok(None)
        };
        let max_items = number("MaxItemsPerBatch")?;
        let max_bytes = number("MaxInputBytesPerBatch")?;
        let batch_input = match b.get("BatchInput") {
            None => None,
            Some(bi) if lang_is_jsonata(state) => {
                let t = JsonataTemplate::compile(bi).map_err(AslError::query)?;
                let states = self.states_object(tid, state, raw, None, None, None, None);
                Some(self.eval_jsonata(tid, &states, &t, "ItemBatcher/BatchInput", env)?)
            }
            Some(bi) => {
                let t =
                    crate::asl::template::PayloadTemplate::compile(bi).map_err(|(loc, msg)| {
                        AslError::runtime(format!("ItemBatcher.BatchInput{loc}: {msg}"))
                    })?;
                Some(self.eval_payload(tid, state, &t, effective, None, None, env)?)
            }
        };
        Ok((max_items, max_bytes, batch_input))
    }

    /// A Distributed Map hands its items to a Map Run (spec §4.6 events: MapStateStarted,
    /// MapRunStarted, then MapRunSucceeded/Failed when it ends).
    #[allow(clippy::too_many_arguments)]
    fn start_map_run(
        &mut self,
        tid: u64,
        state: &State,
        m: &crate::asl::Map,
        raw: &Value,
        effective: &Value,
        items: Vec<Value>,
        settings: crate::maprun::Settings,
        env: &Env<'_>,
    ) -> Result<Step, AslError> {
        let reader = match &m.item_reader {
            Some(r) => {
                Some(self.eval_io_object(tid, state, r, raw, effective, "ItemReader", env)?)
            }
            None => None,
        };
        let writer = match &m.result_writer {
            Some(w) => {
                Some(self.eval_io_object(tid, state, w, raw, effective, "ResultWriter", env)?)
            }
            None => None,
        };
        let (batch_max_items, batch_max_bytes, batch_input) = match &m.item_batcher {
            Some(b) => self.eval_batcher(tid, state, b, raw, effective, env)?,
            None => (None, None, None),
        };
        let info = self.info_for(tid).clone();
        let label = m.label.clone().unwrap_or_else(|| state.name.clone());
        let here = self.threads.get(&tid).map(|t| (t.path.clone(), t.state));
        // A redrive re-enters the Map state: it redrives the same Map Run (spec §5.4).
        let redriven = match self.redrive_map_run.take() {
            Some(prev) if here.as_ref() == Some(&(prev.path.clone(), prev.state)) => {
                Some(prev.map_run_arn)
            }
            _ => None,
        };
        let redrive = redriven.is_some();
        let map_run_arn = redriven.unwrap_or_else(|| {
            format!(
                "{}/{}:{}",
                info.state_machine_arn
                    .replacen(":stateMachine:", ":mapRun:", 1),
                label,
                env.entropy.uuid_v4()
            )
        });
        let mut vars = Map::new();
        self.vars(tid).for_each_var(&mut |k, v| {
            vars.insert(k.to_string(), v.clone());
        });
        let Some(th) = self.threads.get(&tid) else {
            return Ok(Step::Blocked);
        };
        let (path, sid, entered_time, last) =
            (th.path.clone(), th.state, th.entered_time, th.last_event);
        let run = self.fresh_id();
        let len = items.len();
        let req = MapRunRequest {
            run,
            map_run_arn: map_run_arn.clone(),
            state_name: state.name.clone(),
            path,
            state: sid,
            entered_time,
            labelled_name: format!("{}/{}", info.state_machine_name, label),
            parent: info,
            items: if m.item_reader.is_some() {
                None
            } else {
                Some(items)
            },
            reader,
            writer,
            batching: m.item_batcher.is_some(),
            batch_max_items,
            batch_max_bytes,
            batch_input,
            settings,
            express_children: m.processor_config.execution_type
                == crate::asl::ExecutionType::Express,
            effective_input: effective.clone(),
            vars,
            redrive,
        };
        let started =
            self.history
                .emit(last, "MapStateStarted", env.now, || json!({"length": len}));
        let arn = map_run_arn.clone();
        let id = self.history.emit(
            started,
            "MapRunStarted",
            env.now,
            || json!({"mapRunArn": arn}),
        );
        self.set_last_event(tid, id);
        if let Some(t) = self.threads.get_mut(&tid) {
            t.status = ThreadStatus::InMapRun { run };
        }
        self.map_runs.insert(run, (tid, req.clone()));
        self.actions.push(Action::StartMapRun(Box::new(req)));
        Ok(Step::Blocked)
    }

    fn on_map_run_ended(
        &mut self,
        run: u64,
        result: Result<Value, (String, String)>,
        env: &Env<'_>,
    ) {
        let Some((tid, req)) = self.map_runs.remove(&run) else {
            return;
        };
        let machine = self.machine();
        let Some(th) = self.threads.get(&tid) else {
            return;
        };
        if !matches!(th.status, ThreadStatus::InMapRun { run: r } if r == run) {
            return;
        }
        let last = th.last_event;
        let m = machine_at(&machine, &th.path);
        let state = m.state(th.state);
        let StateKind::Map(map) = &state.kind else {
            return;
        };
        match result {
            Ok(value) => {
                let id1 = self
                    .history
                    .emit(last, "MapRunSucceeded", env.now, || Value::Null);
                let id2 = self
                    .history
                    .emit(id1, "MapStateSucceeded", env.now, || Value::Null);
                self.set_last_event(tid, id1.max(id2));
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.status = ThreadStatus::Ready { retry: true };
                    // MapStateExited follows MapRunSucceeded (spec §4.6).
                    t.last_event = id1;
                }
                let step = if req.writer.is_none() && exceeds_payload_limit(&value) {
                    Step::Fail(Failure {
                        error: Some("States.DataLimitExceeded".into()),
                        cause: Some(format!(
                            "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.",
                            state.name
                        )),
                    })
                } else {
                    self.complete_result_state(tid, state, &map.io, map.transition, value, env)
                };
                if self.continue_with(tid, step, env) {
                    self.ready.push_back(tid);
                }
            }
            Err((error, cause)) => {
                self.failed_map_run = Some(req.clone());
                let (e2, c2) = (error.clone(), cause.clone());
                let id1 = self.history.emit(
                    last,
                    "MapRunFailed",
                    env.now,
                    || json!({"error": e2, "cause": c2}),
                );
                let id2 = self
                    .history
                    .emit(id1, "MapStateFailed", env.now, || Value::Null);
                self.set_last_event(tid, id2);
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.status = ThreadStatus::Ready { retry: true };
                }
                self.state_failed(
                    tid,
                    Failure {
                        error: Some(error),
                        cause: Some(cause),
                    },
                    env,
                );
            }
        }
    }

    /// The variable scope of a new branch or iteration: its own when anything inside assigns
    /// variables, else its parent's (read-only sharing: nothing to create or drop).
    fn child_scope(&mut self, parent: u64, machine: &StateMachine) -> (u64, bool) {
        if !assigns(machine) {
            return (parent, false);
        }
        let scope = self.fresh_id();
        self.scopes.insert(
            scope,
            VarScope {
                parent: Some(parent),
                vars: Map::new(),
            },
        );
        (scope, true)
    }

    /// The finished slots a redrive kept for the top-level state `tid` is entering.
    fn take_redrive_slots(&mut self, tid: u64) -> Option<Vec<Option<Value>>> {
        let th = self.threads.get(&tid)?;
        if th.parent.is_some() || self.redrive_slots.as_ref().map(|(s, _)| *s) != Some(th.state) {
            return None;
        }
        self.redrive_slots.take().map(|(_, d)| d)
    }

    fn root_thread(&self) -> Option<u64> {
        self.threads
            .iter()
            .find(|(_, t)| t.parent.is_none())
            .map(|(id, _)| *id)
    }

    /// Remembers where the top-level thread stopped, so a redrive can start there again.
    fn capture_redrive_point(&mut self, root: u64) {
        let Some(th) = self.threads.get(&root) else {
            return;
        };
        let vars = self
            .scopes
            .get(&th.scope)
            .map(|s| s.vars.clone())
            .unwrap_or_default();
        let in_flight = self
            .map_runs
            .values()
            .find(|(t, _)| *t == root)
            .map(|(_, r)| r.clone());
        let failed = self
            .failed_map_run
            .take()
            .filter(|r| r.path.is_empty() && r.state == th.state);
        let done_slots = th
            .done_slots
            .clone()
            .filter(|(s, _)| *s == th.state)
            .map(|(_, d)| d);
        self.redrive_point = Some(RedrivePoint {
            state: th.state,
            input: Value::clone(&th.input),
            vars,
            map_run: in_flight.or(failed),
            done_slots,
        });
    }

    /// Whether RedriveExecution may redrive this execution, or AWS's reason why not
    /// (spec §5.2).
    pub fn redrivable(&self) -> Result<(), String> {
        match self.status {
            ExecutionStatus::Running => Err("Execution is RUNNING and cannot be redriven".into()),
            ExecutionStatus::Succeeded => {
                Err("Execution is SUCCEEDED and cannot be redriven".into())
            }
            _ if self.info.execution_type == crate::asl::ExecutionType::Express => {
                Err("Express executions cannot be redriven".into())
            }
            _ if self.info.redrive_count >= MAX_EXECUTION_REDRIVES => Err(format!(
                "Execution has been redriven {MAX_EXECUTION_REDRIVES} times, the maximum"
            )),
            _ if self.redrive_point.is_none() => {
                Err("Execution has no state to redrive from".into())
            }
            _ => Ok(()),
        }
    }

    /// Redrive (spec §5.3): the top-level state the execution stopped in runs again with the
    /// input it had, retry counters reset; states that had succeeded are not re-run. A
    /// Distributed Map redrives its Map Run; a Parallel or inline Map re-runs as a whole.
    fn redrive(&mut self, env: &Env<'_>) {
        let Some(point) = self.redrive_point.take() else {
            return;
        };
        self.info.redrive_count += 1;
        self.info.redrive_time = Some(env.now);
        self.status = ExecutionStatus::Running;
        self.output = None;
        self.error = None;
        self.cause = None;
        self.stop_time = None;
        let count = self.info.redrive_count;
        let last = self.history.last_id;
        let redriven = self.history.emit(
            last,
            "ExecutionRedriven",
            env.now,
            || json!({"redriveCount": count}),
        );
        if let Some(secs) = self.machine().timeout_seconds {
            let timer = self.fresh_id();
            self.add_timer(
                timer,
                TimerPurpose::ExecutionTimeout,
                env.now + Duration::seconds(secs as i64),
            );
        }
        self.redrive_map_run = point.map_run;
        self.redrive_slots = point.done_slots.map(|d| (point.state, d));
        let scope = self.fresh_id();
        self.scopes.insert(
            scope,
            VarScope {
                parent: None,
                vars: point.vars,
            },
        );
        let tid = self.fresh_id();
        self.threads.insert(
            tid,
            Thread {
                parent: None,
                path: Vec::new(),
                scope,
                state: point.state,
                input: Arc::new(point.input),
                entered_event: 0,
                entered_time: env.now,
                retry_counts: Vec::new(),
                retry_total: 0,
                last_event: redriven,
                slot: 0,
                own_scope: true,
                done_slots: None,
                status: ThreadStatus::Ready { retry: false },
            },
        );
        self.ready.push_back(tid);
    }

    /// How many Map Runs the execution waits on (a checkpoint must record each one, or a
    /// resumed run would start it afresh).
    pub fn map_runs_in_flight(&self) -> usize {
        self.map_runs.len()
    }

    /// The compiled machine this execution runs.
    pub fn machine_arc(&self) -> Arc<StateMachine> {
        self.machine()
    }

    /// Runs an inline Map's iterations on the lean path ([`super::lean`]), on all cores when
    /// there are many. Returns the outputs in item order and the history events the exact path
    /// would have counted, or `None` to fall back to the exact path.
    #[allow(clippy::too_many_arguments)]
    fn run_lean_iterations(
        &self,
        tid: u64,
        state: &State,
        m: &crate::asl::Map,
        items: &[Value],
        effective_input: &Value,
        env: &Env<'_>,
    ) -> Option<(Vec<Value>, u64)> {
        let mut vars = Map::new();
        self.vars(tid).for_each_var(&mut |k, v| {
            vars.insert(k.to_string(), v.clone());
        });
        let info = self.info_for(tid);
        let lean = super::lean::LeanEnv {
            info,
            vars: &vars,
            entropy: env.entropy,
            now: env.now,
        };
        let processor = &m.item_processor;
        let run_slice = |first: usize, slice: &[Value]| -> Option<(Vec<Value>, u64)> {
            let mut out = Vec::with_capacity(slice.len());
            let mut events = 0;
            for (i, item) in slice.iter().enumerate() {
                let input = match &m.item_selector {
                    Some(Template::JsonPath(t)) => {
                        let map_item = json!({"Index": first + i, "Value": item});
                        self.eval_payload(tid, state, t, effective_input, None, Some(map_item), env)
                            .ok()?
                    }
                    Some(Template::Jsonata(_)) => return None,
                    None => item.clone(),
                };
                let (o, e) = super::lean::run_item(processor, input, &lean)?;
                out.push(o);
                // MapIterationStarted and MapIterationSucceeded, then the states' own.
                events += 2 + e;
            }
            Some((out, events))
        };
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(16);
        if !self.parallel || workers < 2 || items.len() < PARALLEL_MIN_ITEMS {
            return run_slice(0, items);
        }
        let chunk = items.len().div_ceil(workers * 8).max(64);
        // CPU-bound: rayon spreads the slices over the cores.
        let outcomes: Vec<Option<(Vec<Value>, u64)>> = items
            .par_chunks(chunk)
            .enumerate()
            .map(|(n, slice)| run_slice(n * chunk, slice))
            .collect();
        concat_slices(outcomes, items.len())
    }

    /// Runs the iterations of an inline Map whose processor has no side effects (no Task, no
    /// Wait) on all cores: each worker runs a slice of the items as a sub-execution of the
    /// processor. Returns the outputs in item order and how many history events the
    /// iterations produced, or `None` when any iteration failed — the caller then runs the
    /// Map the ordinary way, which is exact (ids, which failure wins) and, with no side
    /// effects, indistinguishable.
    fn run_pure_iterations(
        &self,
        tid: u64,
        state: &State,
        m: &crate::asl::Map,
        env: &Env<'_>,
    ) -> Option<(Vec<Value>, u64)> {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(16);
        if workers < 2 {
            return None;
        }
        let th = self.threads.get(&tid)?;
        let ThreadStatus::Children(ch) = &th.status else {
            return None;
        };
        let ChildKind::Map {
            items,
            effective_input,
            ..
        } = &ch.kind
        else {
            return None;
        };
        let machine = Arc::new(iterations_machine(state, m));
        let mut vars = Map::new();
        self.vars(tid).for_each_var(&mut |k, v| {
            vars.insert(k.to_string(), v.clone());
        });
        let info = self.info_for(tid);
        let chunk = items.len().div_ceil(workers);
        let outcomes: Vec<Option<(Vec<Value>, u64)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = items
                .chunks(chunk)
                .enumerate()
                .map(|(n, slice)| {
                    let machine = machine.clone();
                    let vars = vars.clone();
                    scope.spawn(move || -> Option<(Vec<Value>, u64)> {
                        let mut inputs = Vec::with_capacity(slice.len());
                        for (i, item) in slice.iter().enumerate() {
                            let index = n * chunk + i;
                            let input = match &m.item_selector {
                                Some(Template::JsonPath(t)) => {
                                    let map_item = json!({"Index": index, "Value": item});
                                    self.eval_payload(
                                        tid,
                                        state,
                                        t,
                                        effective_input,
                                        None,
                                        Some(map_item),
                                        env,
                                    )
                                    .ok()?
                                }
                                Some(Template::Jsonata(t)) => {
                                    let map_item = json!({"Index": index, "Value": item});
                                    let states = self.states_object(
                                        tid,
                                        state,
                                        effective_input,
                                        None,
                                        None,
                                        None,
                                        Some(map_item),
                                    );
                                    self.eval_jsonata(tid, &states, t, "ItemSelector", env)
                                        .ok()?
                                }
                                None => item.clone(),
                            };
                            inputs.push(input);
                        }
                        // The iterations see the parent's context ($$.Execution.Input included).
                        let mut sub = Execution::new(machine, Value::Null, info.clone(), false);
                        sub.initial_vars = vars;
                        sub.start_input = Some(Value::Array(inputs));
                        sub.parallel = false;
                        sub.apply(Event::Start, env);
                        if sub.status != ExecutionStatus::Succeeded {
                            return None;
                        }
                        // Less the wrapper's own events: ExecutionStarted, MapStateEntered,
                        // MapStateStarted, MapStateSucceeded, MapStateExited, ExecutionSucceeded.
                        let events = sub.history.last_id.saturating_sub(6);
                        match sub.output.take() {
                            Some(Value::Array(out)) => Some((out, events)),
                            _ => None,
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().ok().flatten())
                .collect()
        });
        concat_slices(outcomes, items.len())
    }

    /// Starts as many Map iterations as MaxConcurrency allows.
    fn start_map_children(
        &mut self,
        tid: u64,
        state: &State,
        env: &Env<'_>,
    ) -> Result<(), AslError> {
        let StateKind::Map(m) = &state.kind else {
            return Ok(());
        };
        loop {
            let Some(th) = self.threads.get(&tid) else {
                return Ok(());
            };
            let ThreadStatus::Children(ch) = &th.status else {
                return Ok(());
            };
            let ChildKind::Map {
                items,
                max_concurrency,
                effective_input,
            } = &ch.kind
            else {
                return Ok(());
            };
            if ch.next_to_start >= items.len() || ch.running.len() as u64 >= *max_concurrency {
                return Ok(());
            }
            let index = ch.next_to_start;
            if ch.results.get(index).is_some_and(Option::is_some) {
                // Finished before a redrive: not run again.
                if let Some(ThreadStatus::Children(ch)) =
                    self.threads.get_mut(&tid).map(|t| &mut t.status)
                {
                    ch.next_to_start += 1;
                }
                continue;
            }
            let (path, scope, sid, last_event) =
                (th.path.clone(), th.scope, th.state, ch.last_event);
            let child_input = match &m.item_selector {
                Some(Template::JsonPath(t)) => {
                    let map_item = json!({"Index": index, "Value": items[index]});
                    self.eval_payload(tid, state, t, effective_input, None, Some(map_item), env)?
                }
                Some(Template::Jsonata(t)) => {
                    let map_item = json!({"Index": index, "Value": items[index]});
                    // JSONata: the effective input is the raw input.
                    let states = self.states_object(
                        tid,
                        state,
                        effective_input,
                        None,
                        None,
                        None,
                        Some(map_item),
                    );
                    self.eval_jsonata(tid, &states, t, "ItemSelector", env)?
                }
                // The item is not needed again: move it out instead of copying it.
                None => match self.threads.get_mut(&tid).map(|t| &mut t.status) {
                    Some(ThreadStatus::Children(ch)) => match &mut ch.kind {
                        ChildKind::Map { items, .. } => std::mem::take(&mut items[index]),
                        ChildKind::Parallel => Value::Null,
                    },
                    _ => Value::Null,
                },
            };
            let mut cpath = path;
            cpath.push((sid, 0));
            let (child_scope, own_scope) = self.child_scope(scope, &m.item_processor);
            let child = self.fresh_id();
            let name = &state.name;
            let last = self.history.emit(
                last_event,
                "MapIterationStarted",
                env.now,
                || json!({"index": index, "name": name}),
            );
            let start_at = m.item_processor.start_at;
            self.threads.insert(
                child,
                Thread {
                    parent: Some(ParentLink {
                        thread: tid,
                        slot: index,
                    }),
                    path: cpath,
                    scope: child_scope,
                    state: start_at,
                    input: Arc::new(child_input),
                    entered_event: 0,
                    entered_time: env.now,
                    retry_counts: Vec::new(),
                    retry_total: 0,
                    last_event: last,
                    slot: index,
                    own_scope,
                    done_slots: None,
                    status: ThreadStatus::Ready { retry: false },
                },
            );
            if let Some(ThreadStatus::Children(ch)) =
                self.threads.get_mut(&tid).map(|t| &mut t.status)
            {
                ch.next_to_start += 1;
                ch.running.push(child);
                ch.last_event = last;
            }
            self.ready.push_back(child);
        }
    }

    fn map_done(&mut self, tid: u64, state: &State, env: &Env<'_>) -> Step {
        let Some(th) = self.threads.get_mut(&tid) else {
            return Step::Blocked;
        };
        let ThreadStatus::Children(ch) =
            std::mem::replace(&mut th.status, ThreadStatus::Ready { retry: true })
        else {
            return Step::Blocked;
        };
        let results: Vec<Value> = ch
            .results
            .into_iter()
            .map(|r| r.unwrap_or(Value::Null))
            .collect();
        let last = self.history.last_id;
        let id = self
            .history
            .emit(last, "MapStateSucceeded", env.now, || Value::Null);
        self.set_last_event(tid, id);
        let StateKind::Map(m) = &state.kind else {
            return Step::Blocked;
        };
        // An inline Map's array is only checked as part of the state's output (after
        // ResultSelector), like any state output.
        let result = Value::Array(results);
        self.complete_result_state(tid, state, &m.io, m.transition, result, env)
    }

    // ----- completion and failure ---------------------------------------------------------

    fn thread_done(&mut self, tid: u64, output: Value, env: &Env<'_>) {
        let Some(th) = self.threads.remove(&tid) else {
            return;
        };
        if th.own_scope {
            self.scopes.remove(&th.scope);
        }
        let Some(parent) = th.parent else {
            self.finish(
                ExecutionStatus::Succeeded,
                Some(output),
                None,
                None,
                env,
                "ExecutionSucceeded",
            );
            return;
        };
        let machine = self.machine();
        let Some((ppath, pstate_id)) = self.detach_child(&parent, tid) else {
            return;
        };
        let Some(ThreadStatus::Children(ch)) =
            self.threads.get_mut(&parent.thread).map(|t| &mut t.status)
        else {
            return;
        };
        if let Some(slot) = ch.results.get_mut(parent.slot) {
            *slot = Some(output);
        }
        let is_map = matches!(ch.kind, ChildKind::Map { .. });
        let all_done = ch.running.is_empty() && ch.next_to_start >= ch.results.len();
        let m = machine_at(&machine, &ppath);
        let pstate = m.state(pstate_id);
        if is_map {
            let name = &pstate.name;
            let last = th.last_event;
            let idx = parent.slot;
            let id = self.history.emit(
                last,
                "MapIterationSucceeded",
                env.now,
                || json!({"index": idx, "name": name}),
            );
            if let Some(ThreadStatus::Children(ch)) =
                self.threads.get_mut(&parent.thread).map(|t| &mut t.status)
            {
                ch.last_event = id;
            }
        }
        if all_done {
            let step = if is_map {
                self.map_done(parent.thread, pstate, env)
            } else {
                let results =
                    match self.threads.get_mut(&parent.thread).map(|t| {
                        std::mem::replace(&mut t.status, ThreadStatus::Ready { retry: true })
                    }) {
                        Some(ThreadStatus::Children(ch)) => ch
                            .results
                            .into_iter()
                            .map(|r| r.unwrap_or(Value::Null))
                            .collect(),
                        _ => Vec::new(),
                    };
                self.parallel_done(parent.thread, pstate, results, env)
            };
            if self.continue_with(parent.thread, step, env) {
                self.ready.push_back(parent.thread);
            }
        } else if is_map {
            if let Err(e) = self.start_map_children(parent.thread, pstate, env) {
                let f = self.located(parent.thread, pstate, e);
                self.fail_thread(parent.thread, f, env);
            }
        }
    }

    /// Removes a thread and everything under it (tasks, timers, children).
    fn cancel_thread(&mut self, tid: u64) {
        let Some(th) = self.threads.remove(&tid) else {
            return;
        };
        if th.own_scope {
            self.scopes.remove(&th.scope);
        }
        match th.status {
            ThreadStatus::InTask { task } => {
                if let Some(t) = self.tasks.remove(&task) {
                    self.clear_task_timers(&t);
                    self.actions.push(Action::CancelTask { task });
                }
            }
            ThreadStatus::Sleeping { timer } => {
                self.timers.remove(&timer);
                self.actions.push(Action::CancelTimer { timer });
            }
            ThreadStatus::Children(ch) => {
                for c in ch.running {
                    self.cancel_thread(c);
                }
            }
            ThreadStatus::Ready { .. } => {
                self.ready.retain(|r| *r != tid);
            }
            ThreadStatus::InMapRun { run } => {
                self.map_runs.remove(&run);
                self.actions.push(Action::CancelMapRun { run });
            }
        }
    }

    /// A state raised an error that its own Retry/Catch may handle.
    fn state_failed(&mut self, tid: u64, f: Failure, env: &Env<'_>) {
        let machine = self.machine();
        let Some(th) = self.threads.get(&tid) else {
            return;
        };
        let m = machine_at(&machine, &th.path);
        let state = m.state(th.state);
        let step = if f.name().is_terminal() {
            Step::Fail(f)
        } else {
            self.handle_error(tid, state, f, env)
        };
        if self.continue_with(tid, step, env) {
            self.ready.push_back(tid);
        }
    }

    /// The thread failed for good: its parent decides what that means.
    fn fail_thread(&mut self, tid: u64, f: Failure, env: &Env<'_>) {
        let Some(th) = self.threads.get(&tid) else {
            return;
        };
        let parent = th.parent.clone();
        let last = th.last_event;
        if parent.is_none() {
            self.capture_redrive_point(tid);
        }
        self.cancel_thread(tid);
        let Some(parent) = parent else {
            self.finish(
                ExecutionStatus::Failed,
                None,
                f.error,
                f.cause,
                env,
                "ExecutionFailed",
            );
            return;
        };
        let machine = self.machine();
        let Some((ppath, pstate_id)) = self.detach_child(&parent, tid) else {
            return;
        };
        let Some(ThreadStatus::Children(ch)) =
            self.threads.get_mut(&parent.thread).map(|t| &mut t.status)
        else {
            return;
        };
        let m = machine_at(&machine, &ppath);
        let name = m.state(pstate_id).name.clone();
        let is_map = matches!(ch.kind, ChildKind::Map { .. });
        let running = std::mem::take(&mut ch.running);
        // Kept for a redrive, which re-runs only the branches/iterations that did not finish —
        // unless the failure was States.DataLimitExceeded (spec §5.3).
        let done = if f.error.as_deref() == Some("States.DataLimitExceeded") {
            None
        } else {
            Some((pstate_id, std::mem::take(&mut ch.results)))
        };
        for c in running {
            self.cancel_thread(c);
        }
        let mut prev = last;
        if is_map {
            let idx = parent.slot;
            prev = self.history.emit(
                last,
                "MapIterationFailed",
                env.now,
                || json!({"index": idx, "name": name}),
            );
        }
        let kind_ev = if is_map {
            "MapStateFailed"
        } else {
            "ParallelStateFailed"
        };
        let id = self.history.emit(prev, kind_ev, env.now, || Value::Null);
        self.set_last_event(parent.thread, id);
        if let Some(pt) = self.threads.get_mut(&parent.thread) {
            pt.status = ThreadStatus::Ready { retry: true };
            pt.done_slots = done;
        }
        self.state_failed(parent.thread, f, env);
    }

    /// Takes a finished or failed child out of its parent's running set; returns the parent's
    /// machine path and state.
    fn detach_child(
        &mut self,
        parent: &ParentLink,
        tid: u64,
    ) -> Option<(Vec<(StateId, u32)>, StateId)> {
        let pt = self.threads.get_mut(&parent.thread)?;
        let ThreadStatus::Children(ch) = &mut pt.status else {
            return None;
        };
        ch.running.retain(|c| *c != tid);
        Some((pt.path.clone(), pt.state))
    }

    /// Retry, then Catch, for a state that raised `f`.
    fn handle_error(&mut self, tid: u64, state: &State, f: Failure, env: &Env<'_>) -> Step {
        let (retry, catch): (&[Retrier], &[Catcher]) = match &state.kind {
            StateKind::Task(t) => (&t.retry, &t.catch),
            StateKind::Parallel(p) => (&p.retry, &p.catch),
            StateKind::Map(m) => (&m.retry, &m.catch),
            _ => (&[], &[]),
        };
        let name = f.name();
        if name.is_terminal() {
            return Step::Fail(f);
        }
        let is_task = matches!(state.kind, StateKind::Task(_));
        if let Some((i, r)) = retry
            .iter()
            .enumerate()
            .find(|(_, r)| error_matches(&r.error_equals, &name, is_task))
        {
            let attempts = self
                .threads
                .get(&tid)
                .and_then(|t| t.retry_counts.get(i).copied())
                .unwrap_or(0)
                + self.probe_at(tid).map_or(0, |p| p.retrier_retry_count);
            if let Some(p) = self.probe_at(tid) {
                p.retry_matched(i);
            }
            if attempts < r.max_attempts {
                let mut delay = r.interval_seconds as f64 * r.backoff_rate.powi(attempts as i32);
                if let Some(max) = r.max_delay_seconds {
                    delay = delay.min(max as f64);
                }
                if r.jitter == crate::asl::Jitter::Full {
                    delay *= env.entropy.next_f64();
                }
                if let Some(p) = self.probe_at(tid) {
                    p.retrying(delay, f.error.clone(), f.cause.clone());
                }
                let timer = self.fresh_id();
                self.add_timer(
                    timer,
                    TimerPurpose::Resume { thread: tid },
                    env.now + Duration::milliseconds((delay * 1000.0) as i64),
                );
                if let Some(t) = self.threads.get_mut(&tid) {
                    if t.retry_counts.len() <= i {
                        t.retry_counts.resize(i + 1, 0);
                    }
                    t.retry_counts[i] += 1;
                    t.retry_total += 1;
                    t.status = ThreadStatus::Sleeping { timer };
                }
                return Step::Blocked;
            }
        }
        if let Some((ci, c)) = catch
            .iter()
            .enumerate()
            .find(|(_, c)| error_matches(&c.error_equals, &name, is_task))
        {
            if let Some(p) = self.probe_at(tid) {
                p.caught(ci, f.error.clone(), f.cause.clone());
            }
            let error_output = json!({"Error": f.error, "Cause": f.cause});
            let raw = self
                .threads
                .get(&tid)
                .map(|t| t.input.clone())
                .unwrap_or_default();
            let r = (|| -> Result<Step, AslError> {
                if lang_is_jsonata(state) {
                    let states =
                        self.states_object(tid, state, &raw, None, Some(&error_output), None, None);
                    let assigned = match &c.assign {
                        Some(a) => {
                            self.eval_assign(tid, state, a, &Value::Null, Some(&states), env)?
                        }
                        None => Map::new(),
                    };
                    let output = match &c.output {
                        Some(o) => self.eval_jsonata(tid, &states, o, "Output", env)?,
                        None => error_output.clone(),
                    };
                    return Ok(self.exit_state(
                        tid,
                        state,
                        Some(Transition::Next(c.next)),
                        output,
                        assigned,
                        env,
                    ));
                }
                let assigned = match &c.assign {
                    Some(a) => self.eval_assign(tid, state, a, &error_output, None, env)?,
                    None => Map::new(),
                };
                let output = self.apply_result_path(
                    &c.result_path,
                    shared_value(&raw, &c.result_path),
                    error_output.clone(),
                )?;
                Ok(self.exit_state(
                    tid,
                    state,
                    Some(Transition::Next(c.next)),
                    output,
                    assigned,
                    env,
                ))
            })();
            return match r {
                Ok(s) => s,
                Err(e) => Step::Fail(self.located(tid, state, e)),
            };
        }
        Step::Fail(f)
    }
}

/// An integer from a `…Path` value: a JSON integer, an integral float, or a string holding
/// one (AWS accepts `"1"`).
fn as_integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// Whether a retrier's/catcher's `ErrorEquals` matches an error.
fn error_matches(list: &[String], name: &ErrorName, is_task: bool) -> bool {
    list.iter().any(|e| match e.as_str() {
        "States.ALL" => !name.is_terminal(),
        "States.TaskFailed" => {
            is_task
                && !matches!(
                    name,
                    ErrorName::Timeout | ErrorName::Runtime | ErrorName::DataLimitExceeded
                )
        }
        "States.Timeout" => matches!(name, ErrorName::Timeout | ErrorName::HeartbeatTimeout),
        other => other == name.as_str(),
    })
}

/// (resourceType, resource, legacy Lambda ARN?) as history events name them.
pub fn describe_resource(resource: &str) -> (String, String, bool) {
    if let Some(rest) = resource.strip_prefix("arn:aws:states:::") {
        let rest = rest.strip_prefix("aws-sdk:").unwrap_or(rest);
        let mut parts = rest.splitn(2, ':');
        let service = parts.next().unwrap_or_default().to_string();
        let action = parts.next().unwrap_or_default().to_string();
        return (service, action, false);
    }
    let parts: Vec<&str> = resource.split(':').collect();
    if parts.len() >= 6 && parts[2] == "lambda" && parts[5] == "function" {
        return ("lambda".into(), resource.to_string(), true);
    }
    if parts.len() >= 6 && parts[2] == "states" && parts[5] == "activity" {
        return ("activity".into(), resource.to_string(), false);
    }
    ("task".into(), resource.to_string(), false)
}

/// Whether any JSONata field of a state may read `$states.context`. Building the context
/// object copies the execution input, so it is only built when something reads it.
fn state_reads_context(state: &State) -> bool {
    fn t(x: &Option<JsonataTemplate>) -> bool {
        x.as_ref().is_some_and(|t| t.uses_states_member("context"))
    }
    fn tm(x: &Option<Template>) -> bool {
        matches!(x, Some(Template::Jsonata(t)) if t.uses_states_member("context"))
    }
    fn d<T>(x: &Option<Dynamic<T>>) -> bool {
        matches!(x, Some(Dynamic::Jsonata(t)) if t.uses_states_member("context"))
    }
    fn io(i: &Io) -> bool {
        tm(&i.parameters) || t(&i.output) || tm(&i.assign)
    }
    fn catch(c: &[Catcher]) -> bool {
        c.iter().any(|c| t(&c.output) || tm(&c.assign))
    }
    match &state.kind {
        StateKind::Pass(p) => io(&p.io),
        StateKind::Succeed(p) => io(&p.io),
        StateKind::Task(x) => {
            io(&x.io)
                || tm(&x.credentials)
                || d(&x.timeout_seconds)
                || d(&x.heartbeat_seconds)
                || catch(&x.catch)
        }
        StateKind::Choice(c) => {
            io(&c.io)
                || c.choices
                    .iter()
                    .any(|b| b.rule.uses_context() || t(&b.output) || tm(&b.assign))
        }
        StateKind::Wait(w) => {
            io(&w.io)
                || match &w.wait {
                    WaitFor::Seconds(Dynamic::Jsonata(x)) => x.uses_states_member("context"),
                    WaitFor::Timestamp(Dynamic::Jsonata(x)) => x.uses_states_member("context"),
                    _ => false,
                }
        }
        StateKind::Fail(f) => [&f.error, &f.cause]
            .iter()
            .any(|x| matches!(x, Some(DynString::Jsonata(t)) if t.uses_states_member("context"))),
        StateKind::Parallel(p) => io(&p.io) || catch(&p.catch),
        StateKind::Map(m) => {
            io(&m.io)
                || tm(&m.item_selector)
                || matches!(&m.items, Some(ItemsSource::Jsonata(t)) if t.uses_states_member("context"))
                || d(&m.max_concurrency)
                || d(&m.tolerated_failure_count)
                || d(&m.tolerated_failure_percentage)
                || catch(&m.catch)
        }
    }
}

/// The raw input a ResultPath merges into: only copied when the ResultPath keeps it.
fn shared_value(raw: &Arc<Value>, field: &PathField) -> Value {
    match field {
        PathField::Default => Value::Null,
        PathField::Null | PathField::Path(_) => Value::clone(raw),
    }
}

fn yes() -> bool {
    true
}

/// Whether a (sub)machine has no side effects and never blocks: only Pass, Choice, Succeed,
/// Fail, and inline Maps and Parallels made of those.
pub(crate) fn is_pure(machine: &StateMachine) -> bool {
    machine.states.iter().all(|st| match &st.kind {
        StateKind::Pass(_) | StateKind::Choice(_) | StateKind::Succeed(_) | StateKind::Fail(_) => {
            true
        }
        StateKind::Map(m) => {
            m.processor_config.mode == ProcessorMode::Inline && is_pure(&m.item_processor)
        }
        StateKind::Parallel(p) => p.branches.iter().all(is_pure),
        StateKind::Task(_) | StateKind::Wait(_) => false,
    })
}

/// A one-state machine that maps its input array through a Map's processor: how a worker runs
/// a slice of a pure inline Map's iterations.
fn iterations_machine(state: &State, m: &crate::asl::Map) -> StateMachine {
    let map = crate::asl::Map {
        io: Io::default(),
        item_processor: m.item_processor.clone(),
        processor_config: crate::asl::ProcessorConfig::default(),
        items: None,
        item_selector: None,
        max_concurrency: None,
        tolerated_failure_percentage: None,
        tolerated_failure_count: None,
        label: None,
        item_reader: None,
        item_batcher: None,
        result_writer: None,
        retry: Vec::new(),
        catch: Vec::new(),
        transition: Transition::End,
    };
    let mut by_name = HashMap::new();
    by_name.insert(state.name.clone(), 0);
    StateMachine {
        start_at: 0,
        states: vec![State {
            name: state.name.clone(),
            comment: None,
            query_language: QueryLanguage::JsonPath,
            kind: StateKind::Map(map),
        }],
        by_name,
        comment: None,
        query_language: QueryLanguage::JsonPath,
        timeout_seconds: None,
        version: None,
    }
}

/// Whether any state of a (sub)machine, nested ones included, assigns variables.
fn assigns(machine: &StateMachine) -> bool {
    fn catch(c: &[Catcher]) -> bool {
        c.iter().any(|c| c.assign.is_some())
    }
    machine.states.iter().any(|st| match &st.kind {
        StateKind::Pass(p) => p.io.assign.is_some(),
        StateKind::Succeed(_) | StateKind::Fail(_) => false,
        StateKind::Wait(w) => w.io.assign.is_some(),
        StateKind::Choice(c) => {
            c.io.assign.is_some() || c.choices.iter().any(|b| b.assign.is_some())
        }
        StateKind::Task(t) => t.io.assign.is_some() || catch(&t.catch),
        StateKind::Parallel(p) => {
            p.io.assign.is_some() || catch(&p.catch) || p.branches.iter().any(assigns)
        }
        StateKind::Map(m) => m.io.assign.is_some() || catch(&m.catch) || assigns(&m.item_processor),
    })
}

/// Whether a thread waiting on children has every result (a redrive may have kept them all).
fn children_all_done(th: Option<&Thread>) -> bool {
    match th.map(|t| &t.status) {
        Some(ThreadStatus::Children(ch)) => ch.results.iter().all(Option::is_some),
        _ => false,
    }
}

/// Joins per-slice iteration outcomes in item order (`None` if any slice gave up).
fn concat_slices(
    outcomes: Vec<Option<(Vec<Value>, u64)>>,
    len: usize,
) -> Option<(Vec<Value>, u64)> {
    let mut results = Vec::with_capacity(len);
    let mut events = 0;
    for o in outcomes {
        let (mut r, e) = o?;
        results.append(&mut r);
        events += e;
    }
    Some((results, events))
}
