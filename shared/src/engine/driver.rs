//! The driver: performs an [`Execution`]'s actions through ports and feeds the outcomes back
//! until the execution ends. Tasks run on their own threads; timers wait on the real clock,
//! or, on a virtual clock, make time jump forward as soon as nothing else can happen.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::ports::{Clock, Entropy, VirtualClock};

use super::distributed::{run_map_run, MapRunPorts};
use super::execution::{Action, Env, Event, Execution, IntegrationPattern, TaskRequest};

/// How a task ended, as the integration reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    /// The result (for `.waitForTaskToken`: the callback's output).
    Succeeded(Value),
    Failed {
        error: Option<String>,
        cause: Option<String>,
    },
    /// A `.waitForTaskToken` call went out; the result comes later as a [`Callback`].
    Submitted,
    /// The call never answers (a hung integration): only the task's timeout ends it.
    NoResponse,
}

/// Runs Task states: Lambda, HTTP, SDK integrations, local commands, in-process handlers.
pub trait TaskInvoker: Send + Sync {
    fn invoke(&self, request: &TaskRequest) -> TaskOutcome;
}

/// SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat.
#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    Success {
        token: String,
        output: Value,
    },
    Failure {
        token: String,
        error: Option<String>,
        cause: Option<String>,
    },
    Heartbeat {
        token: String,
    },
}

/// Where callbacks come from (the state folder locally, the Step Functions API in AWS).
pub trait CallbackSource: Send + Sync {
    /// Takes the pending callbacks whose token `owns` accepts (others stay for their run).
    fn poll(&self, owns: &dyn Fn(&str) -> bool) -> Vec<Callback>;
}

/// Which time the run lives in.
pub enum TimeMode<'a> {
    Real(&'a dyn Clock),
    /// Jumps to the next timer whenever nothing else is in flight.
    Virtual(&'a VirtualClock),
}

pub struct RunOptions<'a> {
    pub time: TimeMode<'a>,
    pub entropy: &'a dyn Entropy,
    pub invoker: &'a dyn TaskInvoker,
    pub callbacks: Option<&'a dyn CallbackSource>,
    /// Called after every applied event (checkpointing, progress).
    pub on_change: Option<&'a mut dyn FnMut(&Execution)>,
    /// Object store and checkpoint store for Distributed Maps (`None`: an in-memory checkpoint
    /// store and no buckets).
    pub map_runs: Option<&'a MapRunPorts<'a>>,
    /// Asked after every event: `true` leaves the execution where it is (unfinished, to be
    /// resumed from its checkpoint), after its Map Runs have checkpointed.
    pub stop: Option<crate::maprun::driver::StopSignal<'a>>,
}

impl RunOptions<'_> {
    fn now(&self) -> DateTime<Utc> {
        match &self.time {
            TimeMode::Real(c) => c.now(),
            TimeMode::Virtual(c) => c.now(),
        }
    }
}

const POLL: StdDuration = StdDuration::from_millis(100);

/// The checkpoint store of a Distributed Map whose caller gave none: SQLite in memory, or,
/// in a build without SQLite, none (the Map state then fails with a named error).
fn default_checkpoint_store() -> Option<Box<dyn crate::maprun::checkpoint::CheckpointStore>> {
    #[cfg(feature = "sqlite")]
    {
        crate::maprun::checkpoint::SqliteStore::in_memory()
            .ok()
            .map(|s| Box::new(s) as Box<dyn crate::maprun::checkpoint::CheckpointStore>)
    }
    #[cfg(not(feature = "sqlite"))]
    {
        None
    }
}

/// Drives `exec` until it finishes. `initial` is `[Event::Start]` for a new execution, or
/// empty for one loaded from a checkpoint (its pending tasks and timers are re-issued).
pub fn run_to_completion(exec: &mut Execution, initial: Vec<Event>, mut opts: RunOptions<'_>) {
    let (tx, rx) = mpsc::channel::<(u64, Done)>();
    // Defaults for Distributed Maps when the caller gave none, made on first use: most
    // executions (every Map Run child among them) never start a Map Run.
    let default_checkpoints: std::sync::OnceLock<
        Option<Box<dyn crate::maprun::checkpoint::CheckpointStore>>,
    > = std::sync::OnceLock::new();
    let default_ports: std::sync::OnceLock<Option<MapRunPorts<'_>>> = std::sync::OnceLock::new();
    let root = exec.machine_arc();
    let fast_forward = matches!(opts.time, TimeMode::Virtual(_));
    let mut timers: BTreeSet<(DateTime<Utc>, u64)> = BTreeSet::new();
    let mut timer_at: HashMap<u64, DateTime<Utc>> = HashMap::new();
    let mut in_flight: HashSet<u64> = HashSet::new();
    let mut awaiting_callback: HashSet<u64> = HashSet::new();
    let mut applied = 0u64;
    let mut suspended = false;

    std::thread::scope(|scope| {
        let mut pending: Vec<Action> = if initial.is_empty() {
            exec.pending_actions()
        } else {
            Vec::new()
        };
        let mut events: std::collections::VecDeque<Event> = initial.into();
        loop {
            // Perform actions.
            for action in pending.drain(..) {
                match action {
                    Action::InvokeTask(req) => {
                        in_flight.insert(req.task);
                        let tx = tx.clone();
                        let invoker = opts.invoker;
                        scope.spawn(move || {
                            let outcome = invoker.invoke(&req);
                            let _ = tx.send((req.task, Done::Task(outcome)));
                        });
                    }
                    Action::StartMapRun(req) => {
                        in_flight.insert(req.run);
                        let tx = tx.clone();
                        let (invoker, callbacks, entropy) =
                            (opts.invoker, opts.callbacks, opts.entropy);
                        let clock: &dyn Clock = match &opts.time {
                            TimeMode::Real(c) => *c,
                            TimeMode::Virtual(c) => *c,
                        };
                        let root = root.clone();
                        let ports = opts.map_runs.or_else(|| {
                            default_ports
                                .get_or_init(|| {
                                    let store: Arc<dyn crate::storage::ObjectStore> =
                                        Arc::new(crate::storage::LocalFolderStore::new(
                                            std::env::temp_dir().join("mapfleet-no-buckets"),
                                        ));
                                    default_checkpoints
                                        .get_or_init(default_checkpoint_store)
                                        .as_deref()
                                        .map(|c| MapRunPorts::local(store, c))
                                })
                                .as_ref()
                        });
                        match ports {
                            Some(ports) => {
                                scope.spawn(move || {
                                    let result = run_map_run(
                                        &root,
                                        &req,
                                        ports,
                                        invoker,
                                        callbacks,
                                        entropy,
                                        clock,
                                        fast_forward,
                                    );
                                    let _ = tx.send((req.run, Done::MapRun(result)));
                                });
                            }
                            None => {
                                let _ = tx.send((
                                    req.run,
                                    Done::MapRun(Err((
                                        "States.Runtime".into(),
                                        "no checkpoint store for the Map Run".into(),
                                    ))),
                                ));
                            }
                        }
                    }
                    Action::CancelMapRun { run } => {
                        in_flight.remove(&run);
                    }
                    Action::CancelTask { task } => {
                        in_flight.remove(&task);
                        awaiting_callback.remove(&task);
                    }
                    Action::StartTimer { timer, at } => {
                        timers.insert((at, timer));
                        timer_at.insert(timer, at);
                    }
                    Action::CancelTimer { timer } => {
                        if let Some(at) = timer_at.remove(&timer) {
                            timers.remove(&(at, timer));
                        }
                    }
                }
            }
            if exec.is_finished() && events.is_empty() {
                break;
            }
            // Stop only after some progress, so each resumed call moves the execution on.
            if suspended || (applied > 0 && opts.stop.is_some_and(|f| f())) {
                break;
            }
            // Next event: queued ones first, then completed tasks, callbacks, timers.
            let event = if let Some(e) = events.pop_front() {
                Some(e)
            } else if let Ok((task, outcome)) = rx.try_recv() {
                done_event(
                    task,
                    outcome,
                    &mut suspended,
                    &mut in_flight,
                    &mut awaiting_callback,
                    &mut events,
                    exec,
                )
            } else if let Some(e) = poll_callbacks(&opts, exec, &mut awaiting_callback, &mut events)
            {
                Some(e)
            } else {
                let next_timer = timers.iter().next().copied();
                let now = opts.now();
                match (&opts.time, next_timer) {
                    (_, Some((at, timer))) if at <= now => {
                        timers.remove(&(at, timer));
                        timer_at.remove(&timer);
                        Some(Event::TimerFired { timer })
                    }
                    (TimeMode::Virtual(clock), Some((at, timer)))
                        if in_flight.is_empty()
                            && (awaiting_callback.is_empty() || opts.callbacks.is_none()) =>
                    {
                        clock.advance_to(at);
                        timers.remove(&(at, timer));
                        timer_at.remove(&timer);
                        Some(Event::TimerFired { timer })
                    }
                    (_, next) => {
                        if in_flight.is_empty()
                            && (awaiting_callback.is_empty() || opts.callbacks.is_none())
                            && next.is_none()
                        {
                            // Nothing can ever happen again.
                            break;
                        }
                        let wait = match (&opts.time, next) {
                            (TimeMode::Real(_), Some((at, _))) => {
                                (at - now).to_std().unwrap_or(POLL).min(POLL)
                            }
                            _ => POLL,
                        };
                        match rx.recv_timeout(wait) {
                            Ok((task, outcome)) => done_event(
                                task,
                                outcome,
                                &mut suspended,
                                &mut in_flight,
                                &mut awaiting_callback,
                                &mut events,
                                exec,
                            ),
                            Err(_) => None,
                        }
                    }
                }
            };
            let Some(event) = event else { continue };
            let env = Env {
                now: opts.now(),
                entropy: opts.entropy,
            };
            pending = exec.apply(event, &env);
            applied += 1;
            if let Some(cb) = opts.on_change.as_mut() {
                cb(exec);
            }
        }
    });
}

/// What a worker thread reports: a task's outcome or a Map Run's end.
enum Done {
    Task(TaskOutcome),
    MapRun(Result<Value, (String, String)>),
}

fn done_event(
    id: u64,
    done: Done,
    suspended: &mut bool,
    in_flight: &mut HashSet<u64>,
    awaiting: &mut HashSet<u64>,
    queue: &mut std::collections::VecDeque<Event>,
    exec: &Execution,
) -> Option<Event> {
    match done {
        Done::Task(outcome) => outcome_event(id, outcome, in_flight, awaiting, queue, exec),
        Done::MapRun(result) => {
            if !in_flight.remove(&id) {
                return None;
            }
            // A Map Run that stopped on the stop signal is not over: the execution stops too,
            // and resumes it from its checkpoint.
            if matches!(&result, Err((e, _)) if e == crate::maprun::driver::SUSPENDED) {
                *suspended = true;
                return None;
            }
            Some(Event::MapRunEnded { run: id, result })
        }
    }
}

fn outcome_event(
    task: u64,
    outcome: TaskOutcome,
    in_flight: &mut HashSet<u64>,
    awaiting: &mut HashSet<u64>,
    queue: &mut std::collections::VecDeque<Event>,
    exec: &Execution,
) -> Option<Event> {
    if !in_flight.remove(&task) {
        return None;
    }
    // `.waitForTaskToken` and `.sync` tasks report TaskSubmitted before their result.
    let wait_for_token = matches!(
        exec.task_for_token_pattern(task),
        Some(IntegrationPattern::WaitForTaskToken | IntegrationPattern::Sync)
    );
    match outcome {
        TaskOutcome::Submitted => {
            awaiting.insert(task);
            Some(Event::TaskSubmitted { task })
        }
        TaskOutcome::NoResponse => {
            awaiting.insert(task);
            None
        }
        TaskOutcome::Succeeded(output) if wait_for_token => {
            queue.push_back(Event::TaskSucceeded { task, output });
            Some(Event::TaskSubmitted { task })
        }
        TaskOutcome::Succeeded(output) => Some(Event::TaskSucceeded { task, output }),
        TaskOutcome::Failed { error, cause } => Some(Event::TaskFailed { task, error, cause }),
    }
}

fn poll_callbacks(
    opts: &RunOptions<'_>,
    exec: &Execution,
    awaiting: &mut HashSet<u64>,
    queue: &mut std::collections::VecDeque<Event>,
) -> Option<Event> {
    if awaiting.is_empty() {
        return None;
    }
    let source = opts.callbacks?;
    for cb in source.poll(&|t| exec.task_for_token(t).is_some()) {
        let token = match &cb {
            Callback::Success { token, .. }
            | Callback::Failure { token, .. }
            | Callback::Heartbeat { token } => token,
        };
        let Some(task) = exec.task_for_token(token) else {
            continue;
        };
        let ev = match cb {
            Callback::Success { output, .. } => {
                awaiting.remove(&task);
                Event::TaskSucceeded { task, output }
            }
            Callback::Failure { error, cause, .. } => {
                awaiting.remove(&task);
                Event::TaskFailed { task, error, cause }
            }
            Callback::Heartbeat { .. } => Event::TaskHeartbeat { task },
        };
        queue.push_back(ev);
    }
    queue.pop_front()
}
