//! A Distributed Map state hands its work to a Map Run: the execution emits
//! [`super::execution::Action::StartMapRun`] with a [`MapRunRequest`] (every field already
//! evaluated against the state's input), the driver runs the Map Run
//! ([`crate::maprun::driver`]) with in-process children ([`super::children`]), and feeds back
//! [`super::execution::Event::MapRunEnded`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::asl::jsonata::JsonataEnv;
use crate::asl::scope::Scope;
use crate::asl::{AslError, ExecutionType, StateId, StateKind, StateMachine, Template};
use crate::maprun::batch::BatchSpec;
use crate::maprun::checkpoint::CheckpointStore;
use crate::maprun::driver::{drive, ChildRunner, Items, Job, ResultsSink, StopSignal};
use crate::maprun::{MapRun, Settings};
use crate::ports::{Clock, Entropy};
use crate::reader::{Item, ReaderSpec};
use crate::storage::ObjectStore;
use crate::writer::WriterSpec;

use super::children::InProcessChildren;
use super::context::{context_object, ExecutionInfo, StateContext};
use super::driver::{CallbackSource, TaskInvoker};

/// Everything a Map Run needs, evaluated by the parent execution. Serializable: it is part of
/// the parent's checkpoint, so a resumed parent resumes the same Map Run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapRunRequest {
    /// The parent's id for this run (events refer to it).
    pub run: u64,
    pub map_run_arn: String,
    pub state_name: String,
    /// Where the Map state is: the path of its (sub)machine and its id there.
    pub path: Vec<(StateId, u32)>,
    pub state: StateId,
    /// The parent's identity at the time (children derive theirs from it).
    pub parent: ExecutionInfo,
    pub entered_time: DateTime<Utc>,
    /// Items from the state input; `None` when an ItemReader reads them.
    pub items: Option<Vec<Value>>,
    /// The ItemReader with its Parameters/Arguments and MaxItems evaluated.
    pub reader: Option<Value>,
    /// The ResultWriter with its Parameters/Arguments evaluated.
    pub writer: Option<Value>,
    pub batch_max_items: Option<u64>,
    pub batch_max_bytes: Option<u64>,
    pub batch_input: Option<Value>,
    pub batching: bool,
    pub settings: Settings,
    pub express_children: bool,
    /// `<stateMachineName>/<label>`.
    pub labelled_name: String,
    /// `$` for the ItemSelector: the Map's effective input.
    pub effective_input: Value,
    /// Variables visible to the ItemSelector (evaluated in the parent's scope).
    pub vars: Map<String, Value>,
    /// The parent was redriven: redrive this (existing) Map Run.
    #[serde(default)]
    pub redrive: bool,
}

/// The ports a Map Run needs beyond the parent's.
pub struct MapRunPorts<'a> {
    pub store: Arc<dyn ObjectStore>,
    pub checkpoints: &'a dyn CheckpointStore,
    /// Worker threads for children; 0 = choose (cores for side-effect-free processors).
    pub workers: usize,
    pub progress: Option<&'a (dyn Fn(&MapRun) + Sync)>,
    /// ResultWriter files roll over past this many bytes (default: AWS's 5 GB).
    pub max_result_file_bytes: Option<u64>,
    /// Children and results elsewhere (Lambda workers and the writer function); `None`:
    /// in-process children on `workers` threads and in-process result writing.
    pub fleet: Option<&'a dyn Fleet>,
    /// Asked now and then; `true` suspends the Map Run (it resumes from its checkpoint).
    pub stop: Option<StopSignal<'a>>,
}

impl<'a> MapRunPorts<'a> {
    /// In-process children and result writing over `store` and `checkpoints`.
    pub fn local(store: Arc<dyn ObjectStore>, checkpoints: &'a dyn CheckpointStore) -> Self {
        MapRunPorts {
            store,
            checkpoints,
            workers: 0,
            progress: None,
            max_result_file_bytes: None,
            fleet: None,
            stop: None,
        }
    }
}

/// Runs a Map Run's children and writes its results outside this process.
pub trait Fleet: Sync {
    /// The runner for the children of `req`'s Map Run.
    fn children<'s>(&'s self, req: &MapRunRequest) -> Box<dyn ChildRunner + 's>;
    /// Where its results are written; `None`: in-process.
    fn results<'s>(&'s self, req: &MapRunRequest) -> Option<Box<dyn ResultsSink + 's>>;
    /// Concurrent `run_batch` calls (worker invocations) per Map Run.
    fn concurrency(&self) -> usize;
}

/// What a worker needs to run children of a Map Run, besides the definition: the Map state's
/// place in it and the parent's identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildContext {
    pub map_run_arn: String,
    pub path: Vec<(StateId, u32)>,
    pub state: StateId,
    pub parent: ExecutionInfo,
    pub labelled_name: String,
    pub express_children: bool,
}

impl ChildContext {
    pub fn of(req: &MapRunRequest) -> Self {
        ChildContext {
            map_run_arn: req.map_run_arn.clone(),
            path: req.path.clone(),
            state: req.state,
            parent: req.parent.clone(),
            labelled_name: req.labelled_name.clone(),
            express_children: req.express_children,
        }
    }

    /// In-process children of this Map Run, in `root` (the parent's definition).
    #[allow(clippy::too_many_arguments)]
    pub fn children<'a>(
        &self,
        root: &StateMachine,
        invoker: &'a dyn TaskInvoker,
        callbacks: Option<&'a dyn CallbackSource>,
        entropy: &'a dyn Entropy,
        clock: &'a dyn Clock,
        fast_forward: bool,
    ) -> Result<InProcessChildren<'a>, String> {
        let map = find_map(root, &self.path, self.state).ok_or_else(|| {
            format!(
                "the Map state of {} is not in the definition",
                self.map_run_arn
            )
        })?;
        Ok(InProcessChildren::new(
            Arc::new((*map.item_processor).clone()),
            self.parent.clone(),
            self.labelled_name.clone(),
            if self.express_children {
                ExecutionType::Express
            } else {
                ExecutionType::Standard
            },
            invoker,
            callbacks,
            entropy,
            clock,
            fast_forward,
        ))
    }
}

/// Finds the Map state a request is about.
fn map_state<'m>(root: &'m StateMachine, req: &MapRunRequest) -> Option<&'m crate::asl::Map> {
    find_map(root, &req.path, req.state)
}

fn find_map<'m>(
    root: &'m StateMachine,
    path: &[(StateId, u32)],
    state: StateId,
) -> Option<&'m crate::asl::Map> {
    let mut m = root;
    for &(sid, idx) in path {
        m = match &m.states.get(sid)?.kind {
            StateKind::Parallel(p) => p.branches.get(idx as usize)?,
            StateKind::Map(map) => &map.item_processor,
            _ => return None,
        };
    }
    match &m.states.get(state)?.kind {
        StateKind::Map(map) => Some(map),
        _ => None,
    }
}

/// Sets `$$.Map.Item` in a context object to `item`'s. A block of items shares one context
/// object: after the first item, `Map.Item` keeps its keys and only its values change (no map
/// or key is allocated per item); the item's value moves in, not copied.
fn set_map_item(context: &mut Map<String, Value>, item: Item) {
    let same_shape = |m: &Map<String, Value>| {
        m.len() == if item.key.is_some() { 4 } else { 3 }
            && m.contains_key("Key") == item.key.is_some()
    };
    let reusable = match context.get_mut("Map") {
        Some(Value::Object(map)) if map.len() == 1 => match map.get_mut("Item") {
            Some(Value::Object(m)) if same_shape(m) => Some(m),
            _ => None,
        },
        _ => None,
    };
    let Some(m) = reusable else {
        let mut map = Map::with_capacity(1);
        map.insert("Item".into(), map_item(item));
        context.insert("Map".into(), Value::Object(map));
        return;
    };
    if let Some(v) = m.get_mut("Index") {
        *v = json!(item.index);
    }
    if let (Some(k), Some(v)) = (item.key, m.get_mut("Key")) {
        *v = Value::String(k);
    }
    if let Some(v) = m.get_mut("Source") {
        if v.as_str() != Some(&*item.source) {
            *v = json!(&*item.source);
        }
    }
    if let Some(v) = m.get_mut("Value") {
        *v = item.value;
    }
}

/// `$$.Map.Item` for one item.
fn map_item(item: Item) -> Value {
    let mut m = Map::new();
    m.insert("Index".into(), json!(item.index));
    if let Some(k) = item.key {
        m.insert("Key".into(), json!(k));
    }
    m.insert("Source".into(), json!(&*item.source));
    m.insert("Value".into(), item.value);
    Value::Object(m)
}

/// Evaluates the ItemSelector for a block of items, in the parent's scope, across cores.
/// `base` is the context object without `Map` (built once per Map Run); each worker copies it
/// once per piece of the block and then only swaps `Map.Item` per item.
fn select_block(
    template: &Template,
    req: &MapRunRequest,
    base: &Map<String, Value>,
    entropy: &dyn Entropy,
    items: Vec<Item>,
) -> Vec<Result<Value, AslError>> {
    use rayon::prelude::*;
    items
        .into_par_iter()
        .map_init(
            || Value::Object(base.clone()),
            |context, item| {
                if let Value::Object(m) = context {
                    set_map_item(m, item);
                }
                select(template, req, context, entropy)
            },
        )
        .collect()
}

/// Evaluates the ItemSelector for one item with its context object (`Map.Item` set).
fn select(
    template: &Template,
    req: &MapRunRequest,
    context: &Value,
    entropy: &dyn Entropy,
) -> Result<Value, AslError> {
    match template {
        Template::JsonPath(t) => t.eval(&Scope {
            input: &req.effective_input,
            context,
            vars: &req.vars,
            entropy,
        }),
        Template::Jsonata(t) => {
            let states = json!({"input": req.effective_input, "context": context});
            t.eval(
                &JsonataEnv {
                    states: &states,
                    vars: &req.vars,
                    entropy,
                },
                "ItemSelector",
            )
        }
    }
}

/// Runs (or resumes, from its checkpoint) the Map Run of `req`. Returns the Map state's result,
/// or the error and cause the Map state fails with.
#[allow(clippy::too_many_arguments)]
pub fn run_map_run(
    root: &Arc<StateMachine>,
    req: &MapRunRequest,
    ports: &MapRunPorts<'_>,
    invoker: &dyn TaskInvoker,
    callbacks: Option<&dyn CallbackSource>,
    entropy: &dyn Entropy,
    clock: &dyn Clock,
    fast_forward: bool,
) -> Result<Value, (String, String)> {
    let runtime = |m: String| ("States.Runtime".to_string(), m);
    let map = map_state(root, req).ok_or_else(|| {
        runtime(format!(
            "the Map state '{}' is not in the definition",
            req.state_name
        ))
    })?;
    let reader = match &req.reader {
        Some(r) => Some(ReaderSpec::from_json(r).map_err(|e| (e.error().to_string(), e.cause()))?),
        None => None,
    };
    let items = match (reader, &req.items) {
        (Some(spec), _) => Items::Reader(spec),
        (None, Some(v)) => Items::Inline(v.clone()),
        (None, None) => Items::Inline(Vec::new()),
    };
    let child_type = if req.express_children {
        ExecutionType::Express
    } else {
        ExecutionType::Standard
    };
    let writer = match &req.writer {
        Some(w) => {
            Some(WriterSpec::from_json(w).map_err(|e| (e.error_name().to_string(), e.cause()))?)
        }
        None => None,
    };
    let mut run = match ports.checkpoints.load(&req.map_run_arn) {
        Ok(Some(run)) => run,
        Ok(None) => MapRun::new(
            req.map_run_arn.clone(),
            req.parent.execution_arn.clone(),
            super::children::labelled_machine_arn(
                &req.parent.state_machine_arn,
                &req.labelled_name,
            ),
            child_type,
            req.settings.clone(),
            writer.as_ref().is_some_and(WriterSpec::exports),
            clock.now(),
        ),
        Err(e) => return Err(runtime(e.to_string())),
    };
    // The result file size a run started with is kept: a resumed or redriven run rolls its
    // files over at the same size (writing them again gives the same objects).
    if ports.max_result_file_bytes.is_some() {
        run.result_file_bytes = ports.max_result_file_bytes;
    }
    let writer = match (writer, run.result_file_bytes) {
        (Some(spec), Some(n)) => Some(spec.with_max_file_bytes(n)),
        (writer, _) => writer,
    };
    let children = InProcessChildren::new(
        Arc::new((*map.item_processor).clone()),
        req.parent.clone(),
        req.labelled_name.clone(),
        child_type,
        invoker,
        callbacks,
        entropy,
        clock,
        fast_forward,
    );
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let limit = if req.settings.max_concurrency == 0 {
        crate::maprun::DEFAULT_MAX_CONCURRENCY
    } else {
        req.settings.max_concurrency
    };
    let workers = match ports.workers {
        0 if super::execution::is_pure(&map.item_processor) => cores,
        0 => 64,
        n => n,
    }
    .min(limit as usize)
    .max(1);
    let selector = map.item_selector.as_ref();
    let base = match context_object(
        &req.parent,
        &StateContext {
            name: &req.state_name,
            entered_time: req.entered_time,
            retry_count: Some(0),
            task_token: None,
            map_item: None,
        },
    ) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let select_fn = |items: Vec<Item>| match selector {
        Some(t) => select_block(t, req, &base, entropy, items),
        None => items.into_iter().map(|i| Ok(i.value)).collect(),
    };
    let batch = req.batching.then(|| BatchSpec {
        max_items: req.batch_max_items,
        max_bytes: req.batch_max_bytes,
        batch_input: req.batch_input.clone(),
    });
    let redrive = if req.redrive {
        Some(crate::maprun::driver::Redrive {
            unsuccessful: ports
                .checkpoints
                .unsuccessful(&req.map_run_arn)
                .map_err(|e| runtime(e.to_string()))?,
            parent_redrive_count: req.parent.redrive_count,
        })
    } else {
        None
    };
    let fleet_children = ports.fleet.map(|f| f.children(req));
    let fleet_results = ports.fleet.and_then(|f| f.results(req));
    let (runner, workers): (&dyn ChildRunner, usize) = match (&fleet_children, ports.fleet) {
        (Some(r), Some(f)) => (r.as_ref(), f.concurrency().max(1)),
        _ => (&children, workers),
    };
    let outcome = drive(Job {
        redrive,
        run,
        items,
        select: Some(&select_fn),
        batch,
        writer,
        store: ports.store.clone(),
        checkpoints: ports.checkpoints,
        runner,
        clock,
        workers,
        progress: ports.progress,
        results: fleet_results.as_deref(),
        stop: ports.stop,
    });
    outcome.result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context object reused item after item holds exactly the `Map.Item` a fresh one
    /// would, whatever the items' shapes (with and without `Key`, sources changing).
    #[test]
    fn a_reused_context_holds_each_items_map_item() {
        let item = |index: u64, key: Option<&str>, source: &str, value: Value| Item {
            value,
            index,
            key: key.map(str::to_string),
            source: Arc::from(source),
        };
        let items = [
            item(0, None, "S3://b/k", json!({"a": "1"})),
            item(1, None, "S3://b/k", json!({"a": "2"})),
            item(2, Some("x"), "S3://b/k", json!([1])),
            item(3, Some("y"), "S3://b/k2", json!(null)),
            item(4, None, "S3://b/k2", json!("s")),
        ];
        let base: Map<String, Value> =
            serde_json::from_value(json!({"Execution": {"Id": "e"}, "State": {"Name": "M"}}))
                .unwrap();
        let mut reused = base.clone();
        for it in items {
            let mut fresh = base.clone();
            fresh.insert("Map".into(), json!({ "Item": map_item(it.clone()) }));
            set_map_item(&mut reused, it);
            assert_eq!(
                serde_json::to_string(&reused).unwrap(),
                serde_json::to_string(&fresh).unwrap(),
                "key order included"
            );
        }
    }
}
