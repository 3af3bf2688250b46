//! The coordinator function's core: runs a job (a state machine, or a bare Distributed Map
//! state, plus its input) with its Map Runs on the fleet, checkpointing the execution and its
//! Map Runs in DynamoDB; hands over to a new invocation of itself before Lambda's time limit;
//! answers a parent state machine's task token; serves redrive and describe requests.
//!
//! A job is run under a lease (one DynamoDB item per execution name), so a duplicated or
//! retried invocation never runs it concurrently; children already recorded by workers are
//! never dispatched again (see [`super::LambdaFleet`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mapfleet_core::asl::parse::parse_definition_str;
use mapfleet_core::asl::{ExecutionType, StateMachine};
use mapfleet_core::engine::describe::{describe_execution, list_map_runs};
use mapfleet_core::engine::distributed::MapRunPorts;
use mapfleet_core::engine::{
    run_to_completion, Event, Execution, ExecutionInfo, ExecutionStatus, RunOptions, TaskInvoker,
    TimeMode,
};
use mapfleet_core::maprun::checkpoint::CheckpointStore;
use mapfleet_core::ports::{Clock, OsEntropy, SystemClock};
use mapfleet_core::storage::{GetObject, ObjectStore};
use serde_json::{json, Map, Value};

use super::state::FleetCheckpoints;
use super::table::FleetTable;
use super::{FleetError, LambdaFleet, S3Ref};
use crate::invoke::Invoke;

/// The coordinator's settings, from its environment (`docs/fleet-protocol.md`).
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub worker_function: String,
    pub writer_function: Option<String>,
    /// This function's own name, to continue in a new invocation.
    pub self_function: Option<String>,
    pub state_bucket: Option<String>,
    pub concurrency: usize,
    pub children_per_invoke: usize,
    pub default_job: Option<S3Ref>,
    pub region: String,
    pub max_result_file_bytes: Option<u64>,
    /// Time kept in reserve before the invocation's deadline: the coordinator stops
    /// dispatching this long before it, lets the workers in flight finish, and hands over.
    pub reserve: Duration,
    /// How often a parent's task token is heartbeaten.
    pub heartbeat_every: Duration,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl CoordinatorConfig {
    pub fn from_env() -> Result<Self, FleetError> {
        let number = |name: &str, default: u64| -> Result<u64, FleetError> {
            match env(name) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| {
                    FleetError::InvalidRequest(format!("{name} must be a number, not '{v}'"))
                }),
            }
        };
        Ok(CoordinatorConfig {
            worker_function: env("MAPFLEET_WORKER_FUNCTION").ok_or_else(|| {
                FleetError::InvalidRequest("MAPFLEET_WORKER_FUNCTION is not set".into())
            })?,
            writer_function: env("MAPFLEET_WRITER_FUNCTION"),
            self_function: env("MAPFLEET_COORDINATOR_FUNCTION")
                .or_else(|| env("AWS_LAMBDA_FUNCTION_NAME")),
            state_bucket: env("MAPFLEET_STATE_BUCKET"),
            concurrency: number("MAPFLEET_WORKER_CONCURRENCY", 16)? as usize,
            children_per_invoke: number("MAPFLEET_CHILDREN_PER_INVOKE", 100)? as usize,
            default_job: match env("MAPFLEET_DEFAULT_JOB") {
                None => None,
                Some(uri) => Some(S3Ref::parse(&uri).ok_or_else(|| {
                    FleetError::InvalidRequest(format!(
                        "MAPFLEET_DEFAULT_JOB must be an s3://bucket/key URI, not '{uri}'"
                    ))
                })?),
            },
            region: env("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            max_result_file_bytes: env("MAPFLEET_RESULT_FILE_BYTES").and_then(|v| v.parse().ok()),
            reserve: Duration::from_secs(number("MAPFLEET_RESERVE_SECONDS", 330)?),
            heartbeat_every: Duration::from_secs(number("MAPFLEET_HEARTBEAT_SECONDS", 60)?),
        })
    }
}

/// A job: what to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub definition: Value,
    pub input: Value,
    pub name: Option<String>,
    pub state_machine_name: Option<String>,
}

/// Where a job is: inline, or in S3.
#[derive(Debug, Clone, PartialEq)]
pub enum JobSource {
    Inline(Job),
    Ref {
        at: S3Ref,
        name: Option<String>,
    },
    /// A scheduled event with an empty detail: `MAPFLEET_DEFAULT_JOB`.
    Default,
}

/// A coordinator request (`docs/fleet-protocol.md`).
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Start {
        job: JobSource,
        task_token: Option<String>,
    },
    Continue {
        name: String,
        task_token: Option<String>,
    },
    Redrive {
        name: String,
        task_token: Option<String>,
    },
    Describe {
        name: String,
    },
    ListMapRuns {
        name: String,
    },
    DescribeMapRun {
        map_run_arn: String,
    },
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn required(v: &Value, name: &str, action: &str) -> Result<String, FleetError> {
    field(v, name).map(str::to_string).ok_or_else(|| {
        FleetError::InvalidRequest(format!("the '{action}' request needs a string '{name}'"))
    })
}

fn job_source(v: &Value) -> Result<JobSource, FleetError> {
    let name = field(v, "name").map(str::to_string);
    if let Some(uri) = field(v, "jobRef") {
        let at = S3Ref::parse(uri).ok_or_else(|| {
            FleetError::InvalidRequest(format!(
                "jobRef must be an s3://bucket/key URI, not '{uri}'"
            ))
        })?;
        return Ok(JobSource::Ref { at, name });
    }
    Ok(JobSource::Inline(job_from(v)?))
}

/// A job from its JSON: `definition` (object or text), `input`, `name`.
pub fn job_from(v: &Value) -> Result<Job, FleetError> {
    let definition = v.get("definition").cloned().ok_or_else(|| {
        FleetError::InvalidRequest(
            "the event is not a job: it has no 'definition' (see docs/fleet-protocol.md)".into(),
        )
    })?;
    Ok(Job {
        definition,
        input: v.get("input").cloned().unwrap_or_else(|| json!({})),
        name: field(v, "name").map(str::to_string),
        state_machine_name: field(v, "stateMachineName").map(str::to_string),
    })
}

impl Request {
    /// A direct invocation's payload (also the `detail` of an EventBridge event, through
    /// [`Request::from_eventbridge_detail`]).
    pub fn parse(v: &Value) -> Result<Request, FleetError> {
        if !v.is_object() {
            return Err(FleetError::InvalidRequest(format!(
                "the event must be a JSON object, not {}",
                kind(v)
            )));
        }
        let task_token = field(v, "taskToken").map(str::to_string);
        let action = field(v, "action").unwrap_or("start");
        match action {
            "start" => {
                // From a parent state machine the job may be nested under "job".
                let body = v.get("job").unwrap_or(v);
                Ok(Request::Start {
                    job: job_source(body)?,
                    task_token,
                })
            }
            "continue" => Ok(Request::Continue {
                name: required(v, "name", action)?,
                task_token,
            }),
            "redrive" => Ok(Request::Redrive {
                name: required(v, "name", action)?,
                task_token,
            }),
            "describe" => Ok(Request::Describe {
                name: required(v, "name", action)?,
            }),
            "listMapRuns" => Ok(Request::ListMapRuns {
                name: required(v, "name", action)?,
            }),
            "describeMapRun" => Ok(Request::DescribeMapRun {
                map_run_arn: required(v, "mapRunArn", action)?,
            }),
            other => Err(FleetError::InvalidRequest(format!(
                "unknown action '{other}' (start, continue, redrive, describe, listMapRuns, describeMapRun)"
            ))),
        }
    }

    /// An EventBridge event's `detail`: a request, or empty (a scheduled rule: the default
    /// job).
    pub fn from_eventbridge_detail(detail: &Value) -> Result<Request, FleetError> {
        match detail {
            Value::Null => Ok(Request::Start {
                job: JobSource::Default,
                task_token: None,
            }),
            Value::Object(m) if m.is_empty() => Ok(Request::Start {
                job: JobSource::Default,
                task_token: None,
            }),
            v => Request::parse(v),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A bare `"Type": "Map"` state becomes a one-state machine; text is parsed.
pub fn normalize_definition(definition: &Value) -> Result<Value, FleetError> {
    let def = match definition {
        Value::String(text) => serde_json::from_str(text).map_err(|e| {
            FleetError::InvalidDefinition(format!(
                "INVALID_JSON_DESCRIPTION: the definition is not JSON: {e}"
            ))
        })?,
        v => v.clone(),
    };
    if def.get("Type").and_then(Value::as_str) == Some("Map") && def.get("States").is_none() {
        let mut state = def.as_object().cloned().unwrap_or_default();
        state.remove("Next");
        state.insert("End".into(), Value::Bool(true));
        let mut states = Map::new();
        states.insert("Map".into(), Value::Object(state));
        return Ok(json!({ "StartAt": "Map", "States": states }));
    }
    Ok(def)
}

fn parse_machine(definition: &Value) -> Result<(String, StateMachine), FleetError> {
    let text = definition.to_string();
    let machine = parse_definition_str(&text).map_err(|diags| {
        FleetError::InvalidDefinition(
            diags
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    Ok((text, machine))
}

/// The coordinator: its ports and settings.
pub struct Coordinator {
    pub config: CoordinatorConfig,
    pub store: Arc<dyn ObjectStore>,
    /// Leases and execution snapshots.
    pub table: Arc<dyn FleetTable>,
    /// The Map Runs: run records in the table, children in the state bucket.
    pub checkpoints: Arc<FleetCheckpoints>,
    pub lambda: Arc<dyn Invoke>,
    pub tasks: Arc<dyn TaskInvoker>,
    pub sfn: aws_sdk_sfn::Client,
    /// The runtime the Step Functions client's calls (task tokens) run on.
    pub runtime: tokio::runtime::Handle,
}

/// Where an invocation stands.
pub struct Invocation<'a> {
    /// Lambda's request id: the lease owner.
    pub request_id: &'a str,
    /// When Lambda stops this invocation.
    pub deadline: Instant,
    /// The account (from the invoked function's ARN), for ARNs.
    pub account: Option<String>,
    /// The request's `budgetSeconds`: stop and continue in a new invocation after this long
    /// even when Lambda's deadline is further (bounds each invocation; continuations keep it).
    pub budget: Option<Duration>,
}

impl Invocation<'_> {
    /// A request's `budgetSeconds`, if it has one.
    pub fn budget_of(payload: &Value) -> Option<Duration> {
        payload
            .get("budgetSeconds")
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
    }
}

impl Coordinator {
    /// Serves one request; the answer is the execution (DescribeExecution shape) or the
    /// describe/list shape asked for.
    pub fn handle(&self, req: Request, inv: &Invocation<'_>) -> Result<Value, FleetError> {
        let budgeted;
        let inv = match inv.budget {
            Some(b) => {
                budgeted = Invocation {
                    request_id: inv.request_id,
                    deadline: inv.deadline.min(Instant::now() + b),
                    account: inv.account.clone(),
                    budget: inv.budget,
                };
                &budgeted
            }
            None => inv,
        };
        match req {
            Request::Start { job, task_token } => {
                let job = self.resolve(job)?;
                self.start(job, task_token, inv)
            }
            Request::Continue { name, task_token } => {
                let exec = self.load(&name)?;
                self.run(exec, Vec::new(), task_token, inv)
            }
            Request::Redrive { name, task_token } => {
                let exec = self.load(&name)?;
                exec.redrivable()
                    .map_err(FleetError::ExecutionNotRedrivable)?;
                self.run(exec, vec![Event::Redrive], task_token, inv)
            }
            Request::Describe { name } => Ok(describe_execution(&self.load(&name)?)),
            Request::ListMapRuns { name } => {
                let exec = self.load(&name)?;
                let runs = self
                    .checkpoints
                    .list(&exec.info.execution_arn)
                    .map_err(|e| FleetError::dependency("DynamoDB", e))?;
                Ok(list_map_runs(&runs))
            }
            Request::DescribeMapRun { map_run_arn } => self
                .checkpoints
                .load_record(&map_run_arn)
                .map_err(|e| FleetError::dependency("DynamoDB", e))?
                .map(|r| r.describe())
                .ok_or(FleetError::MapRunDoesNotExist(map_run_arn)),
        }
    }

    fn resolve(&self, job: JobSource) -> Result<Job, FleetError> {
        let (at, name) = match job {
            JobSource::Inline(j) => return Ok(j),
            JobSource::Ref { at, name } => (at, name),
            JobSource::Default => match &self.config.default_job {
                Some(at) => (at.clone(), None),
                None => {
                    return Err(FleetError::InvalidRequest(
                        "the event carries no job and MAPFLEET_DEFAULT_JOB is not set".into(),
                    ))
                }
            },
        };
        let mut body = self
            .store
            .get(&GetObject {
                bucket: &at.bucket,
                key: &at.key,
                ..Default::default()
            })
            .map_err(|e| FleetError::dependency(format!("S3.{}", e.code()), e))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut body, &mut bytes)
            .map_err(|e| FleetError::dependency("S3.ReadError", e))?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            FleetError::InvalidRequest(format!(
                "s3://{}/{} is not a JSON job: {e}",
                at.bucket, at.key
            ))
        })?;
        let mut job = job_from(&v)?;
        if name.is_some() {
            job.name = name;
        }
        Ok(job)
    }

    fn load(&self, name: &str) -> Result<Execution, FleetError> {
        let name = name.rsplit(':').next().unwrap_or(name);
        let text = self
            .table
            .get_execution(name)?
            .ok_or_else(|| FleetError::ExecutionDoesNotExist(name.to_string()))?;
        serde_json::from_str(&text).map_err(|e| {
            FleetError::dependency(
                "DynamoDB",
                format!("the saved execution '{name}' cannot be read: {e}"),
            )
        })
    }

    fn start(
        &self,
        job: Job,
        task_token: Option<String>,
        inv: &Invocation<'_>,
    ) -> Result<Value, FleetError> {
        let definition = normalize_definition(&job.definition)?;
        let (_, machine) = parse_machine(&definition)?;
        let name = job
            .name
            .clone()
            .unwrap_or_else(|| uuid_like(inv.request_id));
        // The lease first, then the check: two starts of one name never both create it.
        if !self
            .table
            .acquire_lease(&name, inv.request_id, lease_for(inv))?
        {
            return Err(FleetError::ExecutionAlreadyRunning(name));
        }
        let existing = self.table.get_execution(&name);
        if !matches!(existing, Ok(None)) {
            let _ = self.table.release_lease(&name, inv.request_id);
            // Starting a name that exists resumes it (or reports it, when it has ended).
            existing?;
            let exec = self.load(&name)?;
            return self.run(exec, Vec::new(), task_token, inv);
        }
        let machine_name = job
            .state_machine_name
            .clone()
            .unwrap_or_else(|| "mapfleet".into());
        let mut info = ExecutionInfo::local(
            &machine_name,
            &name,
            job.input.clone(),
            SystemClock.now(),
            ExecutionType::Standard,
        );
        localize(&mut info, &self.config.region, inv.account.as_deref());
        let exec = Execution::new(Arc::new(machine), definition, info, false);
        self.run(exec, vec![Event::Start], task_token, inv)
    }

    fn save(&self, exec: &Execution) -> Result<(), FleetError> {
        let text = serde_json::to_string(exec)
            .map_err(|e| FleetError::dependency("DynamoDB", e.to_string()))?;
        self.table
            .put_execution(&exec.info.name, &text, exec.is_finished())?;
        Ok(())
    }

    /// [`Self::save`], tried again with back-off.
    fn save_retrying(&self, exec: &Execution) -> Result<(), FleetError> {
        let mut attempt = 1;
        loop {
            match self.save(exec) {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= 4 => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "retrying the execution's save");
                    std::thread::sleep(crate::invoke::backoff(attempt));
                    attempt += 1;
                }
            }
        }
    }

    /// Runs `exec` until it ends or the invocation's time is nearly up.
    fn run(
        &self,
        mut exec: Execution,
        initial: Vec<Event>,
        task_token: Option<String>,
        inv: &Invocation<'_>,
    ) -> Result<Value, FleetError> {
        let name = exec.info.name.clone();
        if exec.is_finished() && initial.is_empty() {
            self.answer_token(&exec, task_token.as_deref());
            return Ok(describe_execution(&exec));
        }
        let (text, machine) = parse_machine(&exec.definition)?;
        exec.attach(Arc::new(machine));
        if !self
            .table
            .acquire_lease(&name, inv.request_id, lease_for(inv))?
        {
            return Err(FleetError::ExecutionAlreadyRunning(name));
        }
        // Saved before anything runs: a retried invocation finds it.
        let result = self
            .save(&exec)
            .and_then(|()| self.drive(&mut exec, initial, text, task_token.as_deref(), inv));
        let _ = self.table.release_lease(&name, inv.request_id);
        let stopped = result?;
        if exec.is_finished() {
            self.answer_token(&exec, task_token.as_deref());
        } else if stopped {
            self.continue_later(&name, task_token.as_deref(), inv.budget)?;
        }
        Ok(describe_execution(&exec))
    }

    /// Drives the execution; true when it stopped for a continuation.
    fn drive(
        &self,
        exec: &mut Execution,
        initial: Vec<Event>,
        definition_text: String,
        task_token: Option<&str>,
        inv: &Invocation<'_>,
    ) -> Result<bool, FleetError> {
        let fleet = LambdaFleet {
            invoker: self.lambda.clone(),
            recorded: self.checkpoints.recorded.clone(),
            store: self.store.clone(),
            worker_function: self.config.worker_function.clone(),
            writer_function: self.config.writer_function.clone(),
            definition: definition_text,
            state_bucket: self.config.state_bucket.clone(),
            concurrency: self.config.concurrency,
            children_per_invoke: self.config.children_per_invoke,
            max_result_file_bytes: self.config.max_result_file_bytes,
        };
        // The reserve, or a third of the invocation when that is short.
        let remaining = inv.deadline.saturating_duration_since(Instant::now());
        let reserve = self.config.reserve.min(remaining / 3);
        let stop_at = inv
            .deadline
            .checked_sub(reserve)
            .unwrap_or_else(Instant::now);
        tracing::info!(
            execution = %exec.info.name,
            remaining_ms = remaining.as_millis() as u64,
            reserve_ms = reserve.as_millis() as u64,
            "running"
        );
        let stopped = AtomicBool::new(false);
        // Set when the execution cannot be checkpointed: it stops where it is.
        let save_error: std::sync::Mutex<Option<FleetError>> = std::sync::Mutex::new(None);
        let unsaved = || save_error.lock().map(|e| e.is_some()).unwrap_or(true);
        let stop = || {
            let s = Instant::now() >= stop_at;
            if s {
                stopped.store(true, Ordering::SeqCst);
            }
            s || unsaved()
        };
        let ports = MapRunPorts {
            store: self.store.clone(),
            checkpoints: self.checkpoints.as_ref(),
            workers: 0,
            progress: None,
            max_result_file_bytes: self.config.max_result_file_bytes,
            fleet: Some(&fleet),
            stop: Some(&stop),
        };
        let mut last_save = Instant::now();
        let mut saved_map_runs = exec.map_runs_in_flight();
        let mut checkpoint = |e: &Execution| {
            if e.is_finished()
                || last_save.elapsed() >= Duration::from_secs(1)
                || e.map_runs_in_flight() != saved_map_runs
            {
                saved_map_runs = e.map_runs_in_flight();
                if let Err(err) = self.save_retrying(e) {
                    tracing::error!(error = %err, "cannot save the execution; stopping it");
                    if let Ok(mut slot) = save_error.lock() {
                        slot.get_or_insert(err);
                    }
                }
                last_save = Instant::now();
            }
        };
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            if let Some(token) = task_token {
                let done = &done;
                scope.spawn(move || self.heartbeat(token, done));
            }
            run_to_completion(
                exec,
                initial,
                RunOptions {
                    time: TimeMode::Real(&SystemClock),
                    entropy: &OsEntropy,
                    invoker: self.tasks.as_ref(),
                    callbacks: None,
                    on_change: Some(&mut checkpoint),
                    map_runs: Some(&ports),
                    stop: Some(&stop),
                },
            );
            done.store(true, Ordering::SeqCst);
        });
        // An execution that could not be checkpointed does not go on as if it were: it fails
        // this invocation with States.Runtime naming the save (its last saved state resumes).
        if let Some(e) = save_error.into_inner().ok().flatten() {
            return Err(FleetError::States {
                error: "States.Runtime".into(),
                cause: format!(
                    "the execution '{}' could not be checkpointed: {e}; it stopped where it was \
                     (send {{\"action\": \"continue\"}} once the table can be written)",
                    exec.info.name
                ),
            });
        }
        self.save_retrying(exec)?;
        Ok(stopped.load(Ordering::SeqCst) && !exec.is_finished())
    }

    fn heartbeat(&self, token: &str, done: &AtomicBool) {
        let mut last = Instant::now();
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            if last.elapsed() >= self.config.heartbeat_every {
                last = Instant::now();
                let call = self.sfn.send_task_heartbeat().task_token(token).send();
                if let Err(e) = self.runtime.block_on(call) {
                    tracing::warn!(error = %aws_smithy_types::error::display::DisplayErrorContext(&e), "SendTaskHeartbeat failed");
                }
            }
        }
    }

    /// SendTaskSuccess with the output, or SendTaskFailure with the error and cause.
    fn answer_token(&self, exec: &Execution, token: Option<&str>) {
        let Some(token) = token else { return };
        let result = match exec.status {
            ExecutionStatus::Succeeded => {
                let output = exec.output.clone().unwrap_or(Value::Null).to_string();
                self.runtime
                    .block_on(
                        self.sfn
                            .send_task_success()
                            .task_token(token)
                            .output(output)
                            .send(),
                    )
                    .map(|_| ())
                    .map_err(|e| {
                        aws_smithy_types::error::display::DisplayErrorContext(&e).to_string()
                    })
            }
            _ => {
                let mut call = self.sfn.send_task_failure().task_token(token);
                if let Some(e) = &exec.error {
                    call = call.error(e);
                }
                if let Some(c) = &exec.cause {
                    call = call.cause(c);
                }
                self.runtime.block_on(call.send()).map(|_| ()).map_err(|e| {
                    aws_smithy_types::error::display::DisplayErrorContext(&e).to_string()
                })
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot answer the task token");
        }
    }

    /// Queues a new invocation of this function that continues the execution.
    fn continue_later(
        &self,
        name: &str,
        task_token: Option<&str>,
        budget: Option<Duration>,
    ) -> Result<(), FleetError> {
        let Some(function) = &self.config.self_function else {
            tracing::warn!(name, "stopped before the time limit; send {{\"action\":\"continue\"}} to go on (no MAPFLEET_COORDINATOR_FUNCTION)");
            return Ok(());
        };
        let mut req = json!({ "action": "continue", "name": name });
        if let Some(t) = task_token {
            req["taskToken"] = json!(t);
        }
        if let Some(b) = budget {
            req["budgetSeconds"] = json!(b.as_secs_f64());
        }
        tracing::info!(name, function = %function, "continuing in a new invocation");
        self.lambda
            .invoke(function, req.to_string().into_bytes(), true)
            .map(|_| ())
            .map_err(|e| FleetError::dependency(e.name().to_string(), e))
    }
}

/// A lease outlives the invocation that holds it by a minute (its workers may still answer).
fn lease_for(inv: &Invocation<'_>) -> Duration {
    inv.deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(60))
        + Duration::from_secs(60)
}

/// Region and account into the execution's ARNs (the engine's local default is
/// us-east-1/123456789012).
fn localize(info: &mut ExecutionInfo, region: &str, account: Option<&str>) {
    use mapfleet_core::engine::context::{DEFAULT_ACCOUNT, DEFAULT_REGION};
    let fix = |s: &mut String| {
        let mut t = s.replacen(&format!(":{DEFAULT_REGION}:"), &format!(":{region}:"), 1);
        if let Some(a) = account {
            t = t.replacen(&format!(":{DEFAULT_ACCOUNT}:"), &format!(":{a}:"), 1);
        }
        *s = t;
    };
    fix(&mut info.execution_arn);
    fix(&mut info.state_machine_arn);
    if let Some(a) = account {
        info.role_arn = info.role_arn.replacen(DEFAULT_ACCOUNT, a, 1);
    }
}

/// An execution name from a request id (names are at most 80 characters).
fn uuid_like(request_id: &str) -> String {
    let s: String = request_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(80)
        .collect();
    if s.is_empty() {
        format!("run-{}", SystemClock.now().timestamp_millis())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_by_action_and_shape() {
        let job = json!({"definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}, "input": {"x": 1}, "name": "n"});
        match Request::parse(&job).unwrap() {
            Request::Start {
                job: JobSource::Inline(j),
                task_token: None,
            } => {
                assert_eq!(j.name.as_deref(), Some("n"));
                assert_eq!(j.input, json!({"x": 1}));
            }
            other => panic!("{other:?}"),
        }
        let tokened = json!({"taskToken": "T", "job": job});
        assert!(matches!(
            Request::parse(&tokened).unwrap(),
            Request::Start { task_token: Some(t), job: JobSource::Inline(_) } if t == "T"
        ));
        assert_eq!(
            Request::parse(&json!({"jobRef": "s3://b/k.json"})).unwrap(),
            Request::Start {
                job: JobSource::Ref {
                    at: S3Ref {
                        bucket: "b".into(),
                        key: "k.json".into()
                    },
                    name: None
                },
                task_token: None
            }
        );
        assert_eq!(
            Request::parse(&json!({"action": "redrive", "name": "n"})).unwrap(),
            Request::Redrive {
                name: "n".into(),
                task_token: None
            }
        );
        assert_eq!(
            Request::from_eventbridge_detail(&json!({})).unwrap(),
            Request::Start {
                job: JobSource::Default,
                task_token: None
            }
        );
        for (bad, needle) in [
            (json!([1]), "JSON object"),
            (json!({"hello": 1}), "no 'definition'"),
            (json!({"action": "redrive"}), "'name'"),
            (json!({"action": "explode"}), "unknown action"),
            (json!({"jobRef": "http://x"}), "s3://"),
        ] {
            let e = Request::parse(&bad).unwrap_err();
            assert_eq!(e.name(), "mapfleet.InvalidRequest");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn a_bare_map_state_becomes_a_machine_and_bad_definitions_are_named() {
        let map = json!({"Type": "Map", "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "Next": "X"});
        let def = normalize_definition(&map).unwrap();
        assert_eq!(def["StartAt"], "Map");
        assert_eq!(def["States"]["Map"]["End"], true);
        assert!(def["States"]["Map"].get("Next").is_none());
        assert!(parse_machine(&def).is_ok());
        let text = Value::String(def.to_string());
        assert_eq!(normalize_definition(&text).unwrap(), def);
        let bad = json!({"StartAt": "Nope", "States": {"A": {"Type": "Pass", "End": true}}});
        let e = parse_machine(&bad).unwrap_err();
        assert_eq!(e.name(), "States.ValidationError");
        assert!(e.to_string().contains("Nope"), "{e}");
        assert_eq!(
            normalize_definition(&json!("{oops")).unwrap_err().name(),
            "States.ValidationError"
        );
    }

    #[test]
    fn arns_take_the_functions_region_and_account() {
        let mut info = ExecutionInfo::local(
            "m",
            "n",
            json!({}),
            SystemClock.now(),
            ExecutionType::Standard,
        );
        localize(&mut info, "eu-west-1", Some("999988887777"));
        assert_eq!(
            info.execution_arn,
            "arn:aws:states:eu-west-1:999988887777:execution:m:n"
        );
        assert_eq!(
            info.state_machine_arn,
            "arn:aws:states:eu-west-1:999988887777:stateMachine:m"
        );
    }
}
