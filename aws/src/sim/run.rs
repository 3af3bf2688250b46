//! One simulated fleet run: a generated CSV of one-item children, a Distributed Map whose
//! children run a Choice and a Pass state, the coordinator, workers and writer of the fleet
//! over the metered stand-ins, continuing in new invocations every `budget`.

use std::collections::VecDeque;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mapfleet_core::engine::handlers::HandlerRegistry;
use mapfleet_core::storage::{GetObject, LocalFolderStore, ObjectStore};
use serde_json::{json, Value};

use super::lambda::SimLambda;
use super::meter::{express_cost, peak_rss, price, Function, Meter};
use super::store::{Faults, Latency, MeteredStore};
use super::table::MemoryTable;
use crate::fleet::coordinator::{
    Coordinator, CoordinatorConfig, Invocation, Job, JobSource, Request,
};
use crate::fleet::state::{FleetCheckpoints, RecordedBatches};
use crate::fleet::worker::Worker;
use crate::fleet::FleetError;

/// What to simulate (the template's defaults unless said otherwise).
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub children: u64,
    /// A scratch folder: the simulated S3's buckets.
    pub root: PathBuf,
    /// EXPRESS (true) or STANDARD children.
    pub express: bool,
    pub max_concurrency: u64,
    /// WorkerConcurrency and ChildrenPerInvoke.
    pub workers: usize,
    pub children_per_invoke: usize,
    /// Each coordinator invocation's time before it continues in a new one.
    pub budget: Duration,
    pub s3_latency: Latency,
    pub table_latency: Duration,
    /// Share of S3 requests failed with SlowDown, and the seed that picks them.
    pub fault_rate: f64,
    pub seed: u64,
    /// Coordinator, worker, writer memory (MB).
    pub memory_mb: [u64; 3],
    /// Check every child's record in the result files (small runs).
    pub verify: bool,
}

impl SimConfig {
    pub fn new(children: u64, root: PathBuf) -> Self {
        SimConfig {
            children,
            root,
            express: true,
            max_concurrency: 1000,
            workers: 16,
            children_per_invoke: 100,
            budget: Duration::from_secs(20),
            s3_latency: Latency::s3(),
            table_latency: Duration::from_millis(5),
            fault_rate: 0.0,
            seed: 1,
            memory_mb: [1024, 2048, 1024],
            verify: children <= 200_000,
        }
    }
}

/// A continuation's reload of the Map Run: how long, and how many children had finished.
#[derive(Debug, Clone, Copy)]
pub struct Reload {
    pub took: Duration,
    pub finished: u64,
}

#[derive(Debug)]
pub struct SimReport {
    pub config: SimConfig,
    pub meter: Arc<Meter>,
    pub wall: Duration,
    pub coordinator_invocations: u64,
    pub reloads: Vec<Reload>,
    pub peak_rss: u64,
    /// The peak of the heap in use, when the binary counts it (the simulation's own does).
    pub peak_heap: Option<u64>,
    pub status: String,
    /// Children found in the SUCCEEDED files exactly once (when verified).
    pub verified: Option<u64>,
}

fn sim_err(e: impl std::fmt::Display) -> FleetError {
    FleetError::dependency("mapfleet.Simulation", e)
}

/// The job: a Distributed Map over `data/items.csv`, results to `results/sim`.
fn job(c: &SimConfig) -> Job {
    let definition = json!({
        "StartAt": "Map",
        "States": {
            "Map": {
                "Type": "Map",
                "MaxConcurrency": c.max_concurrency,
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                    "Parameters": {"Bucket": "data", "Key": "items.csv"}
                },
                "ItemProcessor": {
                    "ProcessorConfig": {
                        "Mode": "DISTRIBUTED",
                        "ExecutionType": if c.express { "EXPRESS" } else { "STANDARD" }
                    },
                    "StartAt": "Kind",
                    "States": {
                        "Kind": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.kind", "StringEquals": "even", "Next": "Even"}],
                            "Default": "Odd"
                        },
                        "Even": {"Type": "Pass", "Parameters": {"id.$": "$.id", "even": true}, "End": true},
                        "Odd": {"Type": "Pass", "Parameters": {"id.$": "$.id", "even": false}, "End": true}
                    }
                },
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": "results", "Prefix": "sim"}
                },
                "End": true
            }
        }
    });
    Job {
        definition,
        input: json!({}),
        name: Some("fleet-sim".into()),
        state_machine_name: Some("fleet-sim".into()),
    }
}

/// The children's states each run: Choice and Pass (Standard's transitions per child).
pub const TRANSITIONS_PER_CHILD: u64 = 2;

fn write_items(c: &SimConfig) -> Result<(), FleetError> {
    let path = c.root.join("data/items.csv");
    let f = std::fs::File::create(&path).map_err(sim_err)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    w.write_all(b"id,kind\n").map_err(sim_err)?;
    for i in 0..c.children {
        writeln!(w, "{i},{}", if i % 2 == 0 { "even" } else { "odd" }).map_err(sim_err)?;
    }
    w.flush().map_err(sim_err)
}

pub fn run(config: SimConfig) -> Result<SimReport, FleetError> {
    for bucket in ["data", "results", "state"] {
        let dir = config.root.join(bucket);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(sim_err)?;
        }
        std::fs::create_dir_all(&dir).map_err(sim_err)?;
    }
    write_items(&config)?;
    let meter = Arc::new(Meter::default());
    let store: Arc<dyn ObjectStore> = Arc::new(MeteredStore {
        inner: Arc::new(LocalFolderStore::new(&config.root)),
        meter: meter.clone(),
        latency: config.s3_latency,
        faults: Faults::new(config.fault_rate, config.seed),
    });
    let table = Arc::new(MemoryTable::new(meter.clone(), config.table_latency));
    let checkpoints = Arc::new(FleetCheckpoints::new(
        table.clone(),
        store.clone(),
        "state",
        Arc::new(RecordedBatches::default()),
    ));
    let tasks = Arc::new(HandlerRegistry::new());
    let lambda = Arc::new(SimLambda {
        meter: meter.clone(),
        worker: Arc::new(Worker::new(
            store.clone(),
            Some("state".into()),
            tasks.clone(),
        )),
        writer: Arc::new(FleetCheckpoints::new(
            table.clone(),
            store.clone(),
            "state",
            Arc::new(RecordedBatches::default()),
        )),
        queued: Mutex::new(VecDeque::new()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(sim_err)?;
    let sfn = aws_sdk_sfn::Client::from_conf(
        aws_sdk_sfn::Config::builder()
            .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
            .region(aws_sdk_sfn::config::Region::new("us-east-1"))
            .build(),
    );
    let coordinator = Coordinator {
        config: CoordinatorConfig {
            worker_function: "worker".into(),
            writer_function: Some("writer".into()),
            self_function: Some("coordinator".into()),
            state_bucket: Some("state".into()),
            concurrency: config.workers,
            children_per_invoke: config.children_per_invoke,
            default_job: None,
            region: "us-east-1".into(),
            max_result_file_bytes: None,
            reserve: Duration::from_secs(330),
            heartbeat_every: Duration::from_secs(60),
        },
        store: store.clone(),
        table,
        checkpoints: checkpoints.clone(),
        lambda: lambda.clone(),
        tasks,
        sfn,
        runtime: runtime.handle().clone(),
    };

    let started = Instant::now();
    let mut request = Request::Start {
        job: JobSource::Inline(job(&config)),
        task_token: None,
    };
    let mut budget = Some(config.budget);
    let mut invocations = 0u64;
    let answer = loop {
        invocations += 1;
        let request_id = format!("sim-{invocations}");
        let inv = Invocation {
            request_id: &request_id,
            deadline: Instant::now() + Duration::from_secs(900),
            account: Some("123456789012".into()),
            budget,
        };
        let t = Instant::now();
        let answer = coordinator.handle(request, &inv);
        meter.invoked(Function::Coordinator, t.elapsed());
        let answer = answer?;
        match lambda.next_queued() {
            Some(next) => {
                budget = Invocation::budget_of(&next);
                request = Request::parse(&next)?;
            }
            None => break answer,
        }
    };
    let wall = started.elapsed();
    let status = answer
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let reloads = checkpoints
        .load_timings()
        .into_iter()
        .map(|(took, finished)| Reload { took, finished })
        .collect();
    let verified = if config.verify && status == "SUCCEEDED" {
        Some(verify(&config, &answer)?)
    } else {
        None
    };
    Ok(SimReport {
        config,
        meter,
        wall,
        coordinator_invocations: invocations,
        reloads,
        peak_rss: peak_rss(),
        peak_heap: None,
        status,
        verified,
    })
}

/// Reads the result files the manifest lists: each child's record once, ids 0..N.
fn verify(config: &SimConfig, answer: &Value) -> Result<u64, FleetError> {
    let output: Value = answer
        .get("output")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| sim_err(format!("the execution has no output: {answer}")))?;
    let details = &output["ResultWriterDetails"];
    let (Some(bucket), Some(key)) = (details["Bucket"].as_str(), details["Key"].as_str()) else {
        return Err(sim_err(format!("no ResultWriterDetails in {output}")));
    };
    let store = LocalFolderStore::new(&config.root);
    let read = |key: &str| -> Result<Value, FleetError> {
        let mut body = store
            .get(&GetObject {
                bucket,
                key,
                ..Default::default()
            })
            .map_err(sim_err)?;
        let mut bytes = Vec::new();
        body.read_to_end(&mut bytes).map_err(sim_err)?;
        serde_json::from_slice(&bytes).map_err(sim_err)
    };
    let manifest = read(key)?;
    let prefix = key.trim_end_matches("manifest.json");
    let mut seen = vec![false; config.children as usize];
    let mut records = 0u64;
    for (family, files) in manifest["ResultFiles"].as_object().into_iter().flatten() {
        for f in files.as_array().into_iter().flatten() {
            let Some(k) = f["Key"].as_str() else { continue };
            let k = if k.starts_with(prefix) {
                k.to_string()
            } else {
                format!("{prefix}{k}")
            };
            for r in read(&k)?.as_array().into_iter().flatten() {
                if family != "SUCCEEDED" {
                    return Err(sim_err(format!("a child is in {family}: {r}")));
                }
                let input: Value = r["Input"]
                    .as_str()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or(Value::Null);
                let id: usize = input["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| sim_err(format!("a record without an id: {r}")))?;
                match seen.get_mut(id) {
                    Some(s) if !*s => *s = true,
                    _ => return Err(sim_err(format!("child {id} is recorded twice"))),
                }
                records += 1;
            }
        }
    }
    if records != config.children {
        return Err(sim_err(format!(
            "{records} of {} children are in the result files",
            config.children
        )));
    }
    Ok(records)
}

impl SimReport {
    /// Dollars per million children, the fleet's.
    pub fn per_million(&self) -> f64 {
        self.meter.cost(self.config.memory_mb).total() * 1e6 / self.config.children as f64
    }

    pub fn children_per_second(&self) -> f64 {
        self.config.children as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The report: a table, then the summary line.
    pub fn print(&self) {
        let m = &self.meter;
        let c = &self.config;
        let n = c.children as f64;
        let per_m = |v: u64| v as f64 * 1e6 / n;
        let cost = m.cost(c.memory_mb);
        let g = Meter::get;
        println!(
            "fleet simulation: {} one-item {} children (Choice + Pass), MaxConcurrency {}, \
             {} workers x {} children per invoke, run record every {:?}",
            c.children,
            if c.express { "EXPRESS" } else { "STANDARD" },
            c.max_concurrency,
            c.workers,
            c.children_per_invoke,
            crate::fleet::state::SAVE_EVERY
        );
        println!(
            "  execution {}; {:.1} s wall, {:.0} children/s on this machine; {} coordinator invocations ({:?} budget each)",
            self.status,
            self.wall.as_secs_f64(),
            self.children_per_second(),
            self.coordinator_invocations,
            c.budget
        );
        if let Some(v) = self.verified {
            println!("  verified: {v} children, each once in the SUCCEEDED files");
        }
        println!("  per million children        requests      units       dollars");
        let s3_put = g(&m.s3_put) + g(&m.s3_list);
        println!(
            "  S3 PUT/LIST              {:>10.0}                 {:>10.4}",
            per_m(s3_put),
            s3_put as f64 * price::S3_PUT * 1e6 / n
        );
        println!(
            "  S3 GET                   {:>10.0}                 {:>10.4}",
            per_m(g(&m.s3_get)),
            g(&m.s3_get) as f64 * price::S3_GET * 1e6 / n
        );
        println!(
            "  DynamoDB writes          {:>10.0} {:>8.0} WRU   {:>10.4}",
            per_m(g(&m.dynamodb_writes)),
            per_m(g(&m.dynamodb_wru)),
            g(&m.dynamodb_wru) as f64 * price::DYNAMODB_WRU * 1e6 / n
        );
        println!(
            "  DynamoDB reads           {:>10.0} {:>8.0} RRU   {:>10.4}",
            per_m(g(&m.dynamodb_reads)),
            per_m(g(&m.dynamodb_rru)),
            g(&m.dynamodb_rru) as f64 * price::DYNAMODB_RRU * 1e6 / n
        );
        for f in Function::ALL {
            let i = f as usize;
            println!(
                "  Lambda {:<12}      {:>10.0} {:>8.1} GB-s  {:>10.4}",
                f.name(),
                per_m(g(&m.invocations[i])),
                cost.gb_s[i] * 1e6 / n,
                (g(&m.invocations[i]) as f64 * price::LAMBDA_REQUEST
                    + cost.gb_s[i] * price::LAMBDA_GB_S)
                    * 1e6
                    / n
            );
        }
        let fleet = self.per_million();
        let express = express_cost(1_000_000, 1.0);
        let standard = 1e6 * TRANSITIONS_PER_CHILD as f64 * price::STANDARD_TRANSITION;
        println!("  total                                                {fleet:>10.4}");
        println!(
            "  Step Functions Express: ${express:.4} per million children (one request and 100 ms at 64 MB each): the fleet is {:.1}%",
            fleet / express * 100.0
        );
        println!(
            "  Step Functions Standard: ${standard:.2} per million children ({TRANSITIONS_PER_CHILD} transitions each): the fleet is {:.2}% (${:.4} per million transitions)",
            fleet / standard * 100.0,
            fleet / TRANSITIONS_PER_CHILD as f64
        );
        println!(
            "  S3 bytes written: {:.1} per child; faults injected: {}",
            g(&m.s3_bytes_written) as f64 / n,
            g(&m.faults)
        );
        println!(
            "  process peak RSS (coordinator, workers in flight, writer): {:.0} MB{}",
            self.peak_rss as f64 / 1048576.0,
            match self.peak_heap {
                Some(h) => format!("; peak heap in use {:.0} MB", h as f64 / 1048576.0),
                None => String::new(),
            }
        );
        if self.reloads.is_empty() {
            println!("  continuation reloads: none (the run fit one invocation)");
        }
        for r in &self.reloads {
            println!(
                "  continuation reload: {:.2} ms with {} children finished",
                r.took.as_secs_f64() * 1000.0,
                r.finished
            );
        }
        println!(
            "fleet simulation: {} children, ${:.4} per million children ({:.1}% of Express), {:.0} children/s",
            c.children,
            fleet,
            fleet / express * 100.0,
            self.children_per_second()
        );
    }
}
