//! `mapfleet`: run, validate, describe and call back state machines on one machine.

mod invoke;
mod progress;
mod replay;
mod store;

/// The engine allocates many small JSON values: mimalloc is markedly faster at that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mapfleet_core::asl::parse::{parse_definition_str, validate_str};
use mapfleet_core::asl::ExecutionType;
use mapfleet_core::engine::{
    run_to_completion, test_state, ChainInvoker, Event, Execution, ExecutionInfo, ExecutionStatus,
    HandlerRegistry, RunOptions, TestStatePorts, TestStateRequest, TimeMode,
};
use mapfleet_core::ports::{Clock, OsEntropy, SystemClock, VirtualClock};
use serde_json::{json, Map, Value};

use mapfleet_core::engine::distributed::MapRunPorts;
use mapfleet_core::maprun::checkpoint::{CheckpointStore, SqliteStore};
use mapfleet_core::maprun::MapRun;
use mapfleet_core::storage::LocalFolderStore;

use crate::invoke::LocalInvoker;
use crate::store::StateDir;

#[derive(Parser)]
#[command(
    name = "mapfleet",
    version,
    about = "Run AWS Step Functions state machines (and Distributed Map) on one machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    #[value(name = "STANDARD")]
    Standard,
    #[value(name = "EXPRESS")]
    Express,
}

/// How a run does its work: shared by `run`, `resume`, `redrive` and `replay`.
#[derive(Args, Clone)]
struct Runtime {
    /// Where executions and checkpoints are kept (default .mapfleet/).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Local object store: s3://bucket/key ↔ DIR/bucket/key (default <state>/data).
    #[arg(long)]
    data: Option<PathBuf>,
    /// RESOURCE=COMMAND: run COMMAND for Task states with this Resource (repeatable).
    #[arg(long = "task-command")]
    task_command: Vec<String>,
    /// A Lambda Invoke API endpoint (e.g. cargo lambda watch).
    #[arg(long)]
    lambda_endpoint: Option<String>,
    /// Run Wait states, retry intervals and timeouts on a virtual clock that jumps ahead.
    #[arg(long)]
    fast_forward: bool,
    /// Print the execution history on stderr.
    #[arg(long)]
    trace: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a state machine; prints a DescribeExecution-shaped JSON object.
    Run {
        definition: PathBuf,
        /// Execution input: a file, or - for stdin (default: {}).
        #[arg(long)]
        input: Option<String>,
        #[arg(long = "type", value_enum, default_value = "STANDARD")]
        kind: Kind,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        rt: Runtime,
        /// Roll ResultWriter files over past this many bytes (default 5 GB, as AWS).
        #[arg(long)]
        result_file_bytes: Option<u64>,
    },
    /// Resume a run that was interrupted (killed), from its checkpoints.
    Resume {
        /// Execution name or ARN.
        execution: String,
        #[command(flatten)]
        rt: Runtime,
    },
    /// Validate a definition; exits 2 when it is invalid.
    Validate {
        definition: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print a saved execution (DescribeExecution shape).
    DescribeExecution {
        execution: String,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Redrive a FAILED, TIMED_OUT or ABORTED execution (RedriveExecution): only its
    /// unsuccessful states re-run; a Distributed Map re-runs only its unsuccessful children.
    Redrive {
        /// Execution name or ARN.
        execution: String,
        #[command(flatten)]
        rt: Runtime,
    },
    /// Re-run one recorded child from a SUCCEEDED_n / FAILED_n result file, showing its states
    /// one by one (with --trace) and whether it reproduces the record.
    Replay {
        result_file: PathBuf,
        #[arg(long)]
        index: usize,
        #[command(flatten)]
        rt: Runtime,
    },
    /// Print a Map Run (DescribeMapRun shape).
    DescribeMapRun {
        map_run_arn: String,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// List an execution's Map Runs (ListMapRuns shape).
    ListMapRuns {
        execution: String,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Print a saved execution's history events.
    GetExecutionHistory {
        execution: String,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Complete a .waitForTaskToken task successfully.
    SendTaskSuccess {
        #[arg(long)]
        task_token: String,
        #[arg(long)]
        task_output: String,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Fail a .waitForTaskToken task.
    SendTaskFailure {
        #[arg(long)]
        task_token: String,
        #[arg(long)]
        error: Option<String>,
        #[arg(long)]
        cause: Option<String>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Send a heartbeat for a .waitForTaskToken task.
    SendTaskHeartbeat {
        #[arg(long)]
        task_token: String,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Evaluate one state (the TestState API); prints a TestState-shaped JSON object.
    TestState {
        /// One state, or a state machine with --state-name.
        #[arg(long)]
        definition: PathBuf,
        /// The state's input: a file, or - for stdin (default: {}).
        #[arg(long)]
        input: Option<String>,
        #[arg(long)]
        state_name: Option<String>,
        #[arg(long, value_enum, default_value = "INFO")]
        inspection_level: Level,
        /// TestState's mock: {"result": "<JSON text>"} or {"errorOutput": {"error", "cause"}}.
        #[arg(long)]
        mock: Option<PathBuf>,
        /// A context object to use instead of the made-up one (a JSON file).
        #[arg(long)]
        context: Option<PathBuf>,
        /// Workflow variables the state starts with (a JSON object file).
        #[arg(long)]
        variables: Option<PathBuf>,
        /// TestState's stateConfiguration (a JSON file).
        #[arg(long)]
        state_configuration: Option<PathBuf>,
        #[arg(long)]
        role_arn: Option<String>,
        /// RESOURCE=COMMAND: run COMMAND for an unmocked Task with this Resource.
        #[arg(long = "task-command")]
        task_command: Vec<String>,
        /// A Lambda Invoke API endpoint for an unmocked Lambda task.
        #[arg(long)]
        lambda_endpoint: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Level {
    #[value(name = "INFO")]
    Info,
    #[value(name = "DEBUG")]
    Debug,
    #[value(name = "TRACE")]
    Trace,
}

fn state_dir(p: Option<PathBuf>) -> StateDir {
    StateDir::new(p.unwrap_or_else(|| PathBuf::from(".mapfleet")))
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("mapfleet: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run {
            definition,
            input,
            kind,
            name,
            rt,
            result_file_bytes,
        } => run(RunArgs {
            mode: Mode::Start,
            result_file_bytes,
            definition,
            input,
            kind,
            name,
            rt,
        }),
        Cmd::Validate { definition, json } => cmd_validate(&definition, json),
        Cmd::Resume { execution, rt } => run(RunArgs::existing(Mode::Resume, execution, rt)),
        Cmd::Redrive { execution, rt } => run(RunArgs::existing(Mode::Redrive, execution, rt)),
        Cmd::Replay {
            result_file,
            index,
            rt,
        } => {
            let Runtime {
                state,
                task_command,
                lambda_endpoint,
                fast_forward,
                trace,
                ..
            } = rt;
            let dir = state_dir(state);
            let record = match replay::read_record(&result_file, index) {
                Ok(r) => r,
                Err(e) => return usage(e),
            };
            let (processor, _) = match replay::processor_for(&result_file, &record, &dir) {
                Ok(p) => p,
                Err(e) => {
                    return usage(format!(
                        "cannot find the ItemProcessor for this record: {e}"
                    ))
                }
            };
            let commands = match task_commands(&task_command) {
                Ok(c) => c,
                Err(e) => return usage(e),
            };
            let invoker = LocalInvoker {
                commands,
                lambda_endpoint,
            };
            match replay::replay(processor, &record, &invoker, fast_forward) {
                Ok((exec, same)) => {
                    if trace {
                        for ev in &exec.history.events {
                            eprintln!("{}", serde_json::to_string(ev).unwrap_or_default());
                        }
                    }
                    println!("{}", replay::summary(&exec, same));
                    exit_for(exec.status)
                }
                Err(e) => usage(e),
            }
        }
        Cmd::DescribeMapRun { map_run_arn, state } => {
            let dir = state_dir(state);
            match SqliteStore::open(&dir.root().join("checkpoints.sqlite"))
                .map(|c| c.load(&map_run_arn))
            {
                Ok(Ok(Some(run))) => {
                    println!("{}", run.describe());
                    ExitCode::SUCCESS
                }
                Ok(Ok(None)) => usage(format!("ResourceNotFound: no Map Run '{map_run_arn}'")),
                Ok(Err(e)) | Err(e) => usage(format!("cannot read the checkpoint store: {e}")),
            }
        }
        Cmd::ListMapRuns { execution, state } => {
            let dir = state_dir(state);
            let arn = match dir.load(&execution) {
                Ok(Some(e)) => e.info.execution_arn.clone(),
                Ok(None) => {
                    return usage(format!("ExecutionDoesNotExist: no execution '{execution}'"))
                }
                Err(e) => return usage(format!("cannot read execution '{execution}': {e}")),
            };
            match SqliteStore::open(&dir.root().join("checkpoints.sqlite")).map(|c| c.list(&arn)) {
                Ok(Ok(runs)) => {
                    println!("{}", mapfleet_core::engine::describe::list_map_runs(&runs));
                    ExitCode::SUCCESS
                }
                Ok(Err(e)) | Err(e) => usage(format!("cannot read the checkpoint store: {e}")),
            }
        }
        Cmd::DescribeExecution { execution, state } => match state_dir(state).load(&execution) {
            Ok(Some(e)) => {
                println!("{}", describe(&e));
                ExitCode::SUCCESS
            }
            Ok(None) => usage(format!("ExecutionDoesNotExist: no execution '{execution}'")),
            Err(e) => usage(format!("cannot read execution '{execution}': {e}")),
        },
        Cmd::GetExecutionHistory { execution, state } => match state_dir(state).load(&execution) {
            Ok(Some(e)) => {
                println!("{}", json!({"events": e.history.events}));
                ExitCode::SUCCESS
            }
            Ok(None) => usage(format!("ExecutionDoesNotExist: no execution '{execution}'")),
            Err(e) => usage(format!("cannot read execution '{execution}': {e}")),
        },
        Cmd::SendTaskSuccess {
            task_token,
            task_output,
            state,
        } => {
            let output: Value = match serde_json::from_str(&task_output) {
                Ok(v) => v,
                Err(e) => return usage(format!("InvalidOutput: --task-output is not JSON: {e}")),
            };
            send(
                state,
                &task_token,
                json!({"kind": "success", "taskToken": task_token, "output": output}),
            )
        }
        Cmd::SendTaskFailure {
            task_token,
            error,
            cause,
            state,
        } => send(
            state,
            &task_token,
            json!({"kind": "failure", "taskToken": task_token, "error": error, "cause": cause}),
        ),
        Cmd::SendTaskHeartbeat { task_token, state } => send(
            state,
            &task_token,
            json!({"kind": "heartbeat", "taskToken": task_token}),
        ),
        Cmd::TestState {
            definition,
            input,
            state_name,
            inspection_level,
            mock,
            context,
            variables,
            state_configuration,
            role_arn,
            task_command,
            lambda_endpoint,
        } => {
            let level = match inspection_level {
                Level::Info => "INFO",
                Level::Debug => "DEBUG",
                Level::Trace => "TRACE",
            };
            cmd_test_state(TestStateArgs {
                definition,
                input,
                state_name,
                level,
                mock,
                context,
                variables,
                state_configuration,
                role_arn,
                task_command,
                lambda_endpoint,
            })
        }
    }
}

struct TestStateArgs {
    definition: PathBuf,
    input: Option<String>,
    state_name: Option<String>,
    level: &'static str,
    mock: Option<PathBuf>,
    context: Option<PathBuf>,
    variables: Option<PathBuf>,
    state_configuration: Option<PathBuf>,
    role_arn: Option<String>,
    task_command: Vec<String>,
    lambda_endpoint: Option<String>,
}

fn read_json_file(path: &PathBuf, what: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{what} {} is not JSON: {e}", path.display()))
}

/// `test-state`: prints the TestState response (output and inspection data as JSON text, as
/// AWS returns them). Exit 0 whenever there is a response, whatever its status; 2 for a bad
/// request or an invalid definition.
fn cmd_test_state(args: TestStateArgs) -> ExitCode {
    let (text, _) = match read_definition(&args.definition) {
        Ok(v) => v,
        Err(e) => return usage(e),
    };
    let mut request = Map::new();
    request.insert("definition".into(), json!(text));
    // As JSON text, as AWS takes it (a JSON string input stays a string).
    match read_input(&args.input) {
        Ok(v) => request.insert("input".into(), json!(v.to_string())),
        Err(e) => return usage(e),
    };
    request.insert("inspectionLevel".into(), json!(args.level));
    if let Some(n) = &args.state_name {
        request.insert("stateName".into(), json!(n));
    }
    if let Some(r) = &args.role_arn {
        request.insert("roleArn".into(), json!(r));
    }
    let files = [
        ("mock", &args.mock),
        ("context", &args.context),
        ("variables", &args.variables),
        ("stateConfiguration", &args.state_configuration),
    ];
    for (key, path) in files {
        if let Some(p) = path {
            match read_json_file(p, key) {
                Ok(v) => request.insert(key.into(), v),
                Err(e) => return usage(e),
            };
        }
    }
    let request = match TestStateRequest::from_json(&Value::Object(request)) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let commands = match task_commands(&args.task_command) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let invoker = ChainInvoker {
        registry: HandlerRegistry::new(),
        fallback: Some(Box::new(LocalInvoker {
            commands,
            lambda_endpoint: args.lambda_endpoint,
        })),
    };
    let ports = TestStatePorts {
        invoker: &invoker,
        entropy: &OsEntropy,
        now: SystemClock.now(),
    };
    match test_state(&request, &ports) {
        Ok(resp) => {
            println!("{}", resp.to_aws_json());
            ExitCode::SUCCESS
        }
        Err(e) => usage(e),
    }
}

fn send(state: Option<PathBuf>, token: &str, body: Value) -> ExitCode {
    match state_dir(state).put_callback(token, &body) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => usage(format!("cannot write the callback: {e}")),
    }
}

fn read_definition(path: &PathBuf) -> Result<(String, Value), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "INVALID_JSON_DESCRIPTION: {} is not JSON: {e} (line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    Ok((text, value))
}

fn cmd_validate(path: &PathBuf, as_json: bool) -> ExitCode {
    let (text, _) = match read_definition(path) {
        Ok(v) => v,
        Err(e) => return usage(e),
    };
    let diags = validate_str(&text);
    if as_json {
        let result = if diags.is_empty() { "OK" } else { "FAIL" };
        println!("{}", json!({"result": result, "diagnostics": diags}));
    } else if diags.is_empty() {
        println!("OK");
    } else {
        for d in &diags {
            println!("{d}");
        }
    }
    if diags.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// What `run` does with `name`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Start `definition` (or pick the execution up again if `name` exists).
    Start,
    /// Resume the saved execution `name` from its checkpoints.
    Resume,
    /// Redrive the saved execution `name`.
    Redrive,
}

struct RunArgs {
    mode: Mode,
    /// ResultWriter rollover size.
    result_file_bytes: Option<u64>,
    definition: PathBuf,
    input: Option<String>,
    kind: Kind,
    name: Option<String>,
    rt: Runtime,
}

impl RunArgs {
    /// An existing execution: its saved definition is used.
    fn existing(mode: Mode, execution: String, rt: Runtime) -> Self {
        RunArgs {
            mode,
            result_file_bytes: None,
            definition: PathBuf::new(),
            input: None,
            kind: Kind::Standard,
            name: Some(execution),
            rt,
        }
    }
}

/// `--task-command RESOURCE=COMMAND` flags.
fn task_commands(flags: &[String]) -> Result<HashMap<String, String>, String> {
    flags
        .iter()
        .map(|tc| match tc.split_once('=') {
            Some((r, c)) => Ok((r.to_string(), c.to_string())),
            None => Err(format!("--task-command takes RESOURCE=COMMAND, got '{tc}'")),
        })
        .collect()
}

fn read_input(arg: &Option<String>) -> Result<Value, String> {
    let text = match arg.as_deref() {
        None => return Ok(json!({})),
        Some("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            s
        }
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read input {path}: {e}"))?
        }
    };
    serde_json::from_str(&text)
        .map_err(|e| format!("InvalidExecutionInput: the input is not JSON: {e}"))
}

fn run(args: RunArgs) -> ExitCode {
    // A redrive runs the definition the execution was started with.
    let (text, def) = if args.mode != Mode::Start {
        let name = args.name.clone().unwrap_or_default();
        let name = name.rsplit(':').next().unwrap_or(&name).to_string();
        match state_dir(args.rt.state.clone()).load(&name) {
            Ok(Some(e)) => (e.definition.to_string(), e.definition.clone()),
            Ok(None) => return usage(format!("ExecutionDoesNotExist: no execution '{name}'")),
            Err(e) => return usage(format!("cannot read execution '{name}': {e}")),
        }
    } else {
        match read_definition(&args.definition) {
            Ok(v) => v,
            Err(e) => return usage(e),
        }
    };
    let machine = match parse_definition_str(&text) {
        Ok(m) => Arc::new(m),
        Err(diags) => {
            eprintln!("mapfleet: InvalidDefinition: {}", args.definition.display());
            for d in diags {
                eprintln!("  {d}");
            }
            return ExitCode::from(2);
        }
    };
    let input = match read_input(&args.input) {
        Ok(v) => v,
        Err(e) => return usage(e),
    };
    let commands = match task_commands(&args.rt.task_command) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let store = state_dir(args.rt.state.clone());
    let machine_name = args
        .definition
        .file_stem()
        .and_then(|s| s.to_str())
        .map(|s| s.trim_end_matches(".asl").to_string())
        .unwrap_or_else(|| "StateMachine".into());
    let name = args
        .name
        .as_deref()
        .map(|n| n.rsplit(':').next().unwrap_or(n).to_string())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let exec_type = match args.kind {
        Kind::Standard => ExecutionType::Standard,
        Kind::Express => ExecutionType::Express,
    };
    let real = SystemClock;
    let virt = VirtualClock::new(real.now());
    let time = if args.rt.fast_forward {
        TimeMode::Virtual(&virt)
    } else {
        TimeMode::Real(&real)
    };
    let now = real.now();

    // Same name in the same state folder: resume a running execution, or report a finished one.
    let (mut exec, initial) = match store.load(&name) {
        Ok(Some(mut existing)) if args.mode == Mode::Redrive => {
            if let Err(reason) = existing.redrivable() {
                return usage(format!("ExecutionNotRedrivable: {reason}"));
            }
            existing.attach(machine.clone());
            existing.history.record = args.rt.trace;
            (existing, vec![Event::Redrive])
        }
        Ok(None) if args.mode != Mode::Start => {
            return usage(format!("ExecutionDoesNotExist: no execution '{name}'"))
        }
        Ok(Some(mut existing)) => {
            if existing.is_finished() {
                println!("{}", describe(&existing));
                return exit_for(existing.status);
            }
            existing.attach(machine.clone());
            (existing, Vec::new())
        }
        Ok(None) => {
            let mut info = ExecutionInfo::local(&machine_name, &name, input, now, exec_type);
            // The CLI waits for the result: an Express run is a StartSyncExecution.
            info.sync_start = exec_type == ExecutionType::Express;
            (
                Execution::new(machine, def, info, args.rt.trace),
                vec![Event::Start],
            )
        }
        Err(e) => {
            return usage(format!(
                "cannot read the state folder {}: {e}",
                store.root().display()
            ))
        }
    };
    let invoker = ChainInvoker {
        registry: HandlerRegistry::new(),
        fallback: Some(Box::new(LocalInvoker {
            commands,
            lambda_endpoint: args.rt.lambda_endpoint.clone(),
        })),
    };
    let entropy = OsEntropy;
    // Distributed Maps: the local folder as S3, and Map Run checkpoints beside the executions.
    let data_dir = args
        .rt
        .data
        .clone()
        .unwrap_or_else(|| store.root().join("data"));
    let checkpoints = match SqliteStore::open(&store.root().join("checkpoints.sqlite")) {
        Ok(c) => c,
        Err(e) => return usage(format!("cannot open the checkpoint store: {e}")),
    };
    let progress = progress::Progress::new();
    let report = |r: &MapRun| progress.update(r);
    let map_ports = MapRunPorts {
        store: Arc::new(LocalFolderStore::new(data_dir)),
        checkpoints: &checkpoints,
        workers: 0,
        progress: Some(&report),
        max_result_file_bytes: args.result_file_bytes,
        fleet: None,
        stop: None,
    };
    let mut last_save = Instant::now();
    let mut saved_map_runs = 0;
    // Set when the execution cannot be checkpointed: it stops where it is (it does not go on
    // as if it were saved).
    let unsaved: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let mut checkpoint = |e: &Execution| {
        // Throttled, except when a Map Run starts or ends: a resumed execution must find it.
        if e.is_finished()
            || last_save.elapsed().as_millis() >= 250
            || e.map_runs_in_flight() != saved_map_runs
        {
            saved_map_runs = e.map_runs_in_flight();
            if let Err(err) = save_retrying(&store, e) {
                if let Ok(mut u) = unsaved.lock() {
                    u.get_or_insert(err);
                }
            }
            last_save = Instant::now();
        }
    };
    let stop_unsaved = || unsaved.lock().map(|u| u.is_some()).unwrap_or(true);
    run_to_completion(
        &mut exec,
        initial,
        RunOptions {
            time,
            entropy: &entropy,
            invoker: &invoker,
            callbacks: Some(&store),
            on_change: Some(&mut checkpoint),
            map_runs: Some(&map_ports),
            stop: Some(&stop_unsaved),
        },
    );
    progress.finish();
    let unsaved = match unsaved.into_inner() {
        Ok(None) => save_retrying(&store, &exec).err(),
        Ok(Some(err)) => Some(err),
        Err(_) => Some("the checkpoint flag's lock is poisoned".into()),
    };
    if let Some(err) = unsaved {
        eprintln!(
            "mapfleet: States.Runtime: the execution '{}' could not be checkpointed in {}: \
             {err}; it stopped where it was (resume it with `mapfleet resume` once the state \
             folder can be written)",
            exec.info.name,
            store.root().display()
        );
        println!("{}", describe(&exec));
        return ExitCode::from(1);
    }
    if args.rt.trace {
        for ev in &exec.history.events {
            eprintln!("{}", serde_json::to_string(ev).unwrap_or_default());
        }
    }
    println!("{}", describe(&exec));
    exit_for(exec.status)
}

/// Saves the execution, trying again with back-off; the last error when every attempt failed.
fn save_retrying(store: &StateDir, exec: &Execution) -> Result<(), String> {
    const ATTEMPTS: u32 = 4;
    let mut pause = std::time::Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        match store.save(exec) {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= ATTEMPTS => return Err(format!("{e} ({attempt} attempts)")),
            Err(_) => {
                std::thread::sleep(pause);
                pause *= 4;
                attempt += 1;
            }
        }
    }
}

fn exit_for(status: ExecutionStatus) -> ExitCode {
    match status {
        ExecutionStatus::Succeeded => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

fn describe(e: &Execution) -> Value {
    mapfleet_core::engine::describe::describe_execution(e)
}
