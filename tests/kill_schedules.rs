//! Seeded SIGKILL schedules for Distributed Map on the embedded default. Each schedule runs
//! one Distributed Map job through the real `mapfleet` binary, SIGKILLs it at random moments
//! (or while it writes its result files), runs the same `--name` again in the same
//! `--state`/`--data` folders until the execution ends, and compares the result files, item by
//! item, with a fault-free run of the same job (cached per job).
//!
//! ```sh
//! cargo build -p mapfleet && cargo test --test kill_schedules -- --nocapture
//! # the long run (release: build the binary first, the test then uses target/release/mapfleet)
//! cargo build --release -p mapfleet
//! MAPFLEET_KILL_SCHEDULES=200 cargo test --release --test kill_schedules -- --nocapture
//! # replay one schedule of a seed (every run prints its seed and each failure's command)
//! MAPFLEET_KILL_SEED=X MAPFLEET_KILL_ONLY=k cargo test --test kill_schedules -- --nocapture
//! ```
//!
//! `cargo test` does not rebuild the `mapfleet` binary: build it first. Environment:
//! `MAPFLEET_KILL_SEED` (u64, default from the clock), `MAPFLEET_KILL_SCHEDULES` (default 20),
//! `MAPFLEET_KILL_ONLY` (only schedule k of the seed), `MAPFLEET_KILL_HANG_SECS` (a run still
//! going after max(this, 20x the fault-free run) is a hang; default 30).
//!
//! A schedule's job (variant, item count, MaxConcurrency) and kills (how many; when, as a
//! fraction of the fault-free run's wall time, or while a result file is written, or as soon as
//! a manifest is) derive from the seed and the schedule number only. Variants: CSV with Standard
//! children; JSONL with Express children; ItemBatcher; tolerated failures; failures over the
//! threshold (the execution FAILS; which children ran before the Map Run stopped varies from run
//! to run, so a record must be PENDING or ABORTED with the item's input, or equal to the record
//! of a run that tolerates every failure); redrive (the first run fails on a blocked Task; the
//! harness unblocks it and redrives).
//!
//! A killed redrive is continued as a user would: the same `mapfleet redrive` again; once the
//! redrive was recorded the CLI refuses that (`ExecutionNotRedrivable`: the execution is RUNNING,
//! or already SUCCEEDED) and `mapfleet resume` takes it to the end.
//!
//! "Mismatched" counts items whose record differs plus schedule-level differences (final status
//! or error, records per status, manifest sizes, a run that exits unexpectedly). Failing
//! schedules keep their folder under the temp dir (`runs/NN.out|err`: every run's output).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use Variant::*;

const NAME: &str = "job";
const TASK_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:fix";

fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join("mapfleet")
}

/// splitmix64: one stream per (seed, schedule).
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Variant {
    CsvStandard,
    JsonlExpress,
    Batched,
    Tolerated,
    OverThreshold,
    Redrive,
}

const VARIANTS: [Variant; 6] = [
    CsvStandard,
    JsonlExpress,
    Batched,
    Tolerated,
    OverThreshold,
    Redrive,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Job {
    variant: Variant,
    items: usize,
    concurrency: u32,
    /// ToleratedFailurePercentage 100: the oracle for `OverThreshold`.
    tolerate_all: bool,
}

impl Job {
    /// The items that fail (Tolerated, OverThreshold) or go through the blocked Task (Redrive).
    fn bad(&self, i: usize) -> bool {
        let period = match self.variant {
            Tolerated => 53,
            OverThreshold => 8,
            Redrive => 97,
            _ => return false,
        };
        (i * 7919) % period == 1
    }

    fn csv(&self) -> bool {
        !matches!(self.variant, JsonlExpress | Batched)
    }

    /// Phase 0 runs the job; phase 1 (Redrive) redrives it.
    fn phases(&self) -> usize {
        1 + usize::from(self.variant == Redrive)
    }

    fn write_inputs(&self, dir: &Path) {
        let bkt = dir.join("data/bkt");
        fs::create_dir_all(&bkt).expect("data dir");
        fs::create_dir_all(dir.join("runs")).expect("runs dir");
        let mut text = String::new();
        if self.csv() {
            text.push_str("id,name,bad\n");
            for i in 0..self.items {
                let bad = if self.bad(i) { "yes" } else { "no" };
                text.push_str(&format!("i{i},name {i},{bad}\n"));
            }
        } else {
            for i in 0..self.items {
                let tags = ["t".to_string(), (i % 5).to_string()];
                text.push_str(&format!(
                    "{}\n",
                    json!({"id": format!("i{i}"), "v": i * 3, "tags": tags})
                ));
            }
        }
        fs::write(
            bkt.join(if self.csv() { "in.csv" } else { "in.jsonl" }),
            text,
        )
        .expect("input");
        fs::write(dir.join("def.json"), self.definition().to_string()).expect("definition");
        if self.variant == Redrive {
            fs::write(dir.join("blocked"), "").expect("blocked marker");
        }
    }

    fn definition(&self) -> Value {
        let selector = json!({
            "id.$": "$$.Map.Item.Value.id", "idx.$": "$$.Map.Item.Index",
            "name.$": "$$.Map.Item.Value.name", "bad.$": "$$.Map.Item.Value.bad"
        });
        let route = |bad: &str| json!({"Type": "Choice", "Choices": [{"Variable": "$.bad", "StringEquals": "yes", "Next": bad}], "Default": "Done"});
        let done = json!({"Type": "Pass", "Parameters": {"id.$": "$.id", "next.$": "States.MathAdd($.idx, 1)"}, "End": true});
        let tolerated = if self.tolerate_all { 100 } else { 5 };
        // (child execution type, the processor's states, more Map fields)
        let (kind, states, extra) = match self.variant {
            CsvStandard => (
                "STANDARD",
                json!({
                    "Shape": {"Type": "Pass", "Parameters": {"id.$": "$.id", "idx.$": "$.idx", "label.$": "States.Format('{}#{}', $.name, $.idx)"}, "Next": "Route"},
                    "Route": {"Type": "Choice", "Choices": [{"Variable": "$.label", "StringMatches": "*5#*", "Next": "Fives"}], "Default": "Others"},
                    "Fives": {"Type": "Pass", "Parameters": {"id.$": "$.id", "kind": "five", "next.$": "States.MathAdd($.idx, 1)"}, "End": true},
                    "Others": {"Type": "Pass", "Parameters": {"id.$": "$.id", "kind": "other", "label.$": "$.label"}, "End": true}
                }),
                json!({"ItemSelector": selector}),
            ),
            JsonlExpress => (
                "EXPRESS",
                json!({
                    "Sum": {"Type": "Pass", "Parameters": {"id.$": "$.id", "sum.$": "States.MathAdd($.v, 1)", "tag.$": "$.tags[1]"}, "End": true}
                }),
                json!({}),
            ),
            Batched => (
                "STANDARD",
                json!({
                    "Count": {"Type": "Pass", "Parameters": {"n.$": "States.ArrayLength($.Items)", "ids.$": "$.Items[*].id"}, "End": true}
                }),
                json!({"ItemBatcher": {"MaxItemsPerBatch": 7}}),
            ),
            Tolerated | OverThreshold => (
                "STANDARD",
                json!({
                    "Route": route("Bad"),
                    "Bad": {"Type": "Fail", "Error": "BadItem", "Cause": "the row is marked bad"},
                    "Done": done
                }),
                json!({"ItemSelector": selector, "ToleratedFailurePercentage": tolerated}),
            ),
            Redrive => (
                "STANDARD",
                json!({
                    "Route": route("Fix"),
                    "Fix": {"Type": "Task", "Resource": TASK_ARN, "ResultPath": "$.fix", "Next": "Done"},
                    "Done": done
                }),
                json!({"ItemSelector": selector}),
            ),
        };
        let (config, key) = match self.csv() {
            true => (
                json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}),
                "in.csv",
            ),
            false => (json!({"InputType": "JSONL"}), "in.jsonl"),
        };
        let start = states.as_object().and_then(|m| m.keys().next().cloned());
        let mut map = json!({
            "Type": "Map",
            "MaxConcurrency": self.concurrency,
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": config,
                "Parameters": {"Bucket": "bkt", "Key": key}
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": kind},
                "StartAt": start,
                "States": states
            },
            "ResultWriter": {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": "bkt", "Prefix": "out"}
            },
            "End": true
        });
        if let (Some(m), Value::Object(extra)) = (map.as_object_mut(), extra) {
            m.extend(extra);
        }
        json!({"StartAt": "M", "States": {"M": map}})
    }

    /// `run` (the definition) or `redrive`/`resume` (the saved execution), with the Task
    /// command of the redrive variant: it fails while `<dir>/blocked` exists.
    fn args(&self, dir: &Path, verb: &str) -> Vec<String> {
        let path = |p: &str| dir.join(p).display().to_string();
        let mut a = match verb {
            "run" => vec!["run".into(), path("def.json"), "--name".into(), NAME.into()],
            _ => vec![verb.into(), NAME.into()],
        };
        a.extend([
            "--state".into(),
            path("state"),
            "--data".into(),
            path("data"),
        ]);
        if self.variant == Redrive {
            a.push("--task-command".into());
            a.push(format!(
                "{TASK_ARN}=cat > /dev/null; if [ -e '{}' ]; then \
                 echo '{{\"errorType\":\"Blocked\",\"errorMessage\":\"the item is blocked\"}}'; exit 1; fi; \
                 echo '{{\"fixed\":true}}'",
                path("blocked")
            ));
        }
        a
    }
}

#[derive(Clone, Copy, Debug)]
enum Kill {
    /// After this fraction of the fault-free run's wall time.
    After(f64),
    /// When a result file is being written (a `.mapfleet-part` file, or SUCCEEDED_0 without a
    /// manifest, that was not there when the run started).
    Writing,
    /// As soon as a manifest is written (new or rewritten): the Map Run has ended, the parent
    /// execution may not have saved that yet.
    Manifest,
}

struct Schedule {
    job: Job,
    /// (phase, kill), in the order they happen.
    kills: Vec<(usize, Kill)>,
    writing: bool,
}

fn schedule(seed: u64, k: u64) -> Schedule {
    let mut rng = Rng::new(seed, k);
    let job = Job {
        variant: VARIANTS[((seed % 6 + k) % 6) as usize],
        items: [1500, 4000, 10_000][rng.below(3)],
        concurrency: [50, 200, 500][rng.below(3)],
        tolerate_all: false,
    };
    // One schedule in three kills while results are written or right after the manifest is:
    // its first kill, and each next one with probability 2/3.
    let writing = rng.below(3) == 0;
    let mut kills: Vec<(usize, Kill)> = (0..1 + rng.below(5))
        .map(|i| {
            let phase = rng.below(job.phases());
            let kill = match rng.below(3) {
                0 if writing => Kill::Writing,
                1 if writing => Kill::Manifest,
                2 if writing && i == 0 => Kill::Writing,
                _ => Kill::After(rng.unit()),
            };
            (phase, kill)
        })
        .collect();
    kills.sort_by_key(|(phase, _)| *phase);
    Schedule {
        job,
        kills,
        writing,
    }
}

/// Marks of result writing under `data/bkt/out`: "w:" a file being written, "m:" a manifest
/// (with its modification time).
fn writing_marks(out: &Path) -> BTreeSet<String> {
    let mut marks = BTreeSet::new();
    for folder in fs::read_dir(out).into_iter().flatten().flatten() {
        let (mut manifest, mut first) = (false, false);
        for f in fs::read_dir(folder.path()).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            let meta = f.metadata().ok();
            if name.ends_with(".mapfleet-part") {
                let len = meta.map(|m| m.len());
                marks.insert(format!("w:{}:{len:?}", f.path().display()));
            } else if name == "manifest.json" {
                let modified = meta.and_then(|m| m.modified().ok());
                marks.insert(format!("m:{}:{modified:?}", f.path().display()));
            }
            manifest |= name == "manifest.json";
            first |= name == "SUCCEEDED_0.json";
        }
        if first && !manifest {
            marks.insert(format!("w:{}: no manifest", folder.path().display()));
        }
    }
    marks
}

enum End {
    Done(Value),
    Killed,
    Hung,
    Refused,
    Error(String),
}

/// One process run, killed by `kill` or at `deadline`; its output goes to `runs/NN.out|err`.
fn run_once(
    args: &[String],
    dir: &Path,
    n: usize,
    kill: Option<Kill>,
    wall: Duration,
    deadline: Duration,
) -> End {
    let (out, err) = (
        dir.join(format!("runs/{n:02}.out")),
        dir.join(format!("runs/{n:02}.err")),
    );
    let results = dir.join("data/bkt/out");
    let before = writing_marks(&results);
    let new_mark = |kind: &str| {
        writing_marks(&results)
            .difference(&before)
            .any(|m| m.starts_with(kind))
    };
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawn mapfleet");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        let hung = start.elapsed() >= deadline;
        let fire = match kill {
            Some(Kill::After(f)) => start.elapsed() >= wall.mul_f64(f),
            Some(Kill::Writing) => new_mark("w:"),
            Some(Kill::Manifest) => new_mark("m:"),
            None => false,
        };
        if hung || fire {
            let _ = child.kill(); // SIGKILL
            let st = child.wait().expect("wait");
            if st.signal() == Some(9) {
                return if hung { End::Hung } else { End::Killed };
            }
            break st; // it ended on its own just before the kill
        }
        let pause = if matches!(kill, Some(Kill::After(_)) | None) {
            1000
        } else {
            200
        };
        std::thread::sleep(Duration::from_micros(pause));
    };
    let stdout = fs::read_to_string(&out).unwrap_or_default();
    let stderr = fs::read_to_string(&err).unwrap_or_default();
    let described: Option<Value> = serde_json::from_str(stdout.trim()).ok();
    match (status.code(), described) {
        (Some(0 | 1), Some(d)) if d["status"].as_str().is_some_and(|s| s != "RUNNING") => {
            End::Done(d)
        }
        (Some(2), _) if stderr.contains("ExecutionNotRedrivable") => End::Refused,
        (code, _) => End::Error(format!(
            "`mapfleet {}` exited {code:?} (signal {:?}): {} {}",
            args[0],
            status.signal(),
            stdout.trim(),
            stderr.trim()
        )),
    }
}

/// The last DescribeExecution of each phase, and the wall time of each phase's last run.
type Finals = (Vec<Value>, Vec<Duration>);

/// Runs every phase of `job` to its end, delivering `kills`; counts delivered kills in `kills_done`.
fn run_phases(
    job: &Job,
    dir: &Path,
    kills: &[(usize, Kill)],
    walls: &[Duration],
    deadlines: &[Duration],
    kills_done: &mut u64,
) -> Result<Finals, String> {
    let mut finals: Finals = (Vec::new(), Vec::new());
    let mut n = 0;
    for phase in 0..job.phases() {
        if phase == 1 {
            fs::remove_file(dir.join("blocked")).expect("unblock");
        }
        let planned: Vec<Kill> = kills
            .iter()
            .filter(|(p, _)| *p == phase)
            .map(|(_, k)| *k)
            .collect();
        let (mut next, mut verb) = (0, if phase == 0 { "run" } else { "redrive" });
        loop {
            n += 1;
            let start = Instant::now();
            let kill = planned.get(next).copied();
            match run_once(
                &job.args(dir, verb),
                dir,
                n,
                kill,
                walls[phase],
                deadlines[phase],
            ) {
                End::Done(d) => {
                    finals.0.push(d);
                    finals.1.push(start.elapsed());
                    break;
                }
                End::Killed => {
                    *kills_done += 1;
                    next += 1;
                }
                End::Hung => {
                    let limit = deadlines[phase];
                    return Err(format!(
                        "HANG: `mapfleet {verb}` (run {n}) still running after {limit:.0?}"
                    ));
                }
                End::Refused if verb == "redrive" && next > 0 => verb = "resume",
                End::Refused => return Err(format!("`mapfleet {verb}` (run {n}) refused")),
                End::Error(e) => return Err(format!("run {n}: {e}")),
            }
        }
    }
    Ok(finals)
}

/// The saved state of a hung run: the execution's status, its Map Runs and how many ended.
fn hang_state(dir: &Path) -> String {
    let state = dir.join("state").display().to_string();
    let cli = |verb: &str| -> Value {
        let o = Command::new(bin())
            .args([verb, NAME, "--state", &state])
            .output();
        o.ok()
            .and_then(|o| serde_json::from_slice(&o.stdout).ok())
            .unwrap_or(Value::Null)
    };
    let runs = cli("list-map-runs")["mapRuns"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ended = runs.iter().filter(|r| r.get("stopDate").is_some()).count();
    let status = cli("describe-execution")["status"].clone();
    format!(
        "saved: execution {status}, {} Map Run(s), {ended} ended",
        runs.len()
    )
}

/// The execution's end and every record the final manifest lists, normalized.
#[derive(Default)]
struct Outcome {
    status: String,
    error: String,
    records: Vec<Value>,
    problems: Vec<String>,
    notes: Vec<String>,
}

fn read_json(path: &Path) -> Result<Value, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_outcome(job: &Job, dir: &Path, described: &Value) -> Outcome {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let (status, error) = (text(&described["status"]), text(&described["error"]));
    let mut o = Outcome {
        status,
        error,
        ..Outcome::default()
    };
    let bkt = dir.join("data/bkt");
    let folders: Vec<PathBuf> = fs::read_dir(bkt.join("out"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    if folders.len() != 1 {
        o.problems
            .push(format!("{} Map Run result folders", folders.len()));
    }
    let output: Value =
        serde_json::from_str(described["output"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
    for folder in &folders {
        let id = folder
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if let Some(key) = output["ResultWriterDetails"]["Key"].as_str() {
            if key != format!("out/{id}/manifest.json") {
                o.problems.push(format!(
                    "the output names {key}, the results are in out/{id}"
                ));
            }
        }
        for f in fs::read_dir(folder).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if name.ends_with(".mapfleet-part") {
                o.notes.push(format!("leftover {name}"));
            }
        }
        let manifest = match read_json(&folder.join("manifest.json")) {
            Ok(m) => m,
            Err(e) => {
                o.problems.push(format!("no manifest: {e}"));
                continue;
            }
        };
        for kind in ["SUCCEEDED", "FAILED", "PENDING"] {
            for file in manifest["ResultFiles"][kind]
                .as_array()
                .into_iter()
                .flatten()
            {
                let key = file["Key"].as_str().unwrap_or_default();
                let path = bkt.join(key);
                let size = fs::metadata(&path).map(|m| m.len()).ok();
                if size != file["Size"].as_u64() {
                    o.problems.push(format!(
                        "{key}: {size:?} bytes, the manifest says {}",
                        file["Size"]
                    ));
                }
                let records = match read_json(&path) {
                    Ok(Value::Array(r)) => r,
                    Ok(_) => vec![],
                    Err(e) => {
                        o.problems.push(e);
                        continue;
                    }
                };
                for mut r in records {
                    let status = r["Status"].as_str().unwrap_or_default();
                    if kind != "FAILED" && status != kind {
                        o.problems.push(format!("a {status} record in {key}"));
                    }
                    // Redrive and threshold runs differ in which children ran (and were
                    // redriven) from run to run: their records' redrive fields are not compared.
                    let mut drop = vec!["StartDate", "StopDate", "ExecutionArn", "Name"];
                    if matches!(job.variant, Redrive | OverThreshold) {
                        drop.extend(["RedriveCount", "RedriveStatus", "RedriveStatusReason"]);
                    }
                    if let Value::Object(m) = &mut r {
                        m.retain(|k, _| !drop.contains(&k.as_str()));
                    }
                    o.records.push(r);
                }
            }
        }
    }
    o
}

/// A record per item id in its Input (a batch holds several items).
fn by_item(records: &[Value]) -> HashMap<String, Vec<&Value>> {
    let mut m: HashMap<String, Vec<&Value>> = HashMap::new();
    for r in records {
        let input: Value =
            serde_json::from_str(r["Input"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
        let items = input["Items"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![input]);
        for item in items {
            m.entry(item["id"].as_str().unwrap_or("?").to_string())
                .or_default()
                .push(r);
        }
    }
    m
}

fn status_counts(records: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(r["Status"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    m
}

struct Baseline {
    walls: Vec<Duration>,
    phase_status: Vec<Value>,
    outcome: Outcome,
    /// For OverThreshold: every item's record when every failure is tolerated.
    oracle: Option<Outcome>,
}

fn fault_free(job: &Job) -> (Finals, Outcome) {
    let (pid, v) = (std::process::id(), job.variant);
    let name = format!(
        "mapfleet-kill-base-{pid}-{v:?}-{}-{}-{}",
        job.items, job.concurrency, job.tolerate_all
    );
    let dir = std::env::temp_dir().join(name);
    let _ = fs::remove_dir_all(&dir);
    job.write_inputs(&dir);
    let long = [Duration::from_secs(300); 2];
    let finals = run_phases(job, &dir, &[], &long, &long, &mut 0)
        .unwrap_or_else(|e| panic!("fault-free run of {job:?} in {}: {e}", dir.display()));
    let outcome = read_outcome(job, &dir, finals.0.last().expect("a phase"));
    assert!(
        outcome.problems.is_empty(),
        "fault-free run of {job:?}: {:?}",
        outcome.problems
    );
    let _ = fs::remove_dir_all(&dir);
    (finals, outcome)
}

fn baseline(job: &Job) -> Baseline {
    let ((described, walls), outcome) = fault_free(job);
    let all = Job {
        tolerate_all: true,
        ..*job
    };
    Baseline {
        walls,
        phase_status: described.iter().map(|d| d["status"].clone()).collect(),
        outcome,
        oracle: (job.variant == OverThreshold).then(|| fault_free(&all).1),
    }
}

#[derive(Default)]
struct Tally {
    kills: u64,
    lost: u64,
    duplicated: u64,
    mismatched: u64,
    hangs: u64,
    /// What went wrong: schedule-level problems, and the first few items'.
    problems: Vec<String>,
    shown: usize,
}

impl Tally {
    fn item(&mut self, problem: String) {
        if self.shown < 3 {
            self.shown += 1;
            self.problems.push(problem);
        }
    }
    fn schedule(&mut self, problem: String) {
        self.mismatched += 1;
        self.problems.push(problem);
    }
    fn add(&mut self, o: &Tally) {
        self.kills += o.kills;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.mismatched += o.mismatched;
        self.hangs += o.hangs;
    }
}

/// The fields in which `got` differs from `want`.
fn diff(got: &Value, want: Option<&&Value>) -> String {
    let Some(want) = want else {
        return format!("{got}, not in the fault-free run");
    };
    let keys: BTreeSet<&String> = [got, *want]
        .iter()
        .filter_map(|v| v.as_object())
        .flat_map(|m| m.keys())
        .collect();
    let differ = keys
        .into_iter()
        .filter(|k| got[k.as_str()] != want[k.as_str()]);
    let shown: Vec<String> = differ
        .map(|k| format!("{k} {} (fault-free {})", got[k.as_str()], want[k.as_str()]))
        .collect();
    shown.join(", ")
}

fn compare(job: &Job, base: &Baseline, finals: &Finals, got: &Outcome, t: &mut Tally) {
    let expected = by_item(&base.outcome.records);
    let oracle = base.oracle.as_ref().map(|o| by_item(&o.records));
    let items = by_item(&got.records);
    for i in 0..job.items {
        let id = format!("i{i}");
        match items.get(&id).map(Vec::as_slice).unwrap_or(&[]) {
            [] => {
                t.lost += 1;
                t.item(format!("{id} lost"));
            }
            [r] => {
                // Over the threshold, a child may not have started (PENDING) or have been
                // stopped (ABORTED): then only its input is known.
                let want = oracle
                    .as_ref()
                    .unwrap_or(&expected)
                    .get(&id)
                    .and_then(|v| v.first());
                let partial =
                    oracle.is_some() && matches!(r["Status"].as_str(), Some("PENDING" | "ABORTED"));
                if !want.is_some_and(|w| {
                    if partial {
                        w["Input"] == r["Input"]
                    } else {
                        *w == *r
                    }
                }) {
                    t.mismatched += 1;
                    t.item(format!("{id}: {}", diff(r, want)));
                }
            }
            more => {
                t.duplicated += 1;
                t.item(format!("{id} in {} records", more.len()));
            }
        }
    }
    let unknown = items
        .keys()
        .filter(|id| !expected.contains_key(*id) && oracle.is_none())
        .count();
    if unknown > 0 {
        t.mismatched += unknown as u64;
        t.problems
            .push(format!("{unknown} records of unknown items"));
    }
    for p in &got.problems {
        t.schedule(p.clone());
    }
    let want = &base.outcome;
    if (&want.status, &want.error) != (&got.status, &got.error) {
        t.schedule(format!(
            "execution {} {}, fault-free {} {}",
            got.status, got.error, want.status, want.error
        ));
    }
    for (phase, d) in finals.0.iter().enumerate().take(finals.0.len() - 1) {
        if d["status"] != base.phase_status[phase] {
            t.schedule(format!(
                "phase {phase} ended {}, fault-free {}",
                d["status"], base.phase_status[phase]
            ));
        }
    }
    let counts = (status_counts(&got.records), status_counts(&want.records));
    if oracle.is_none() && counts.0 != counts.1 {
        t.schedule(format!(
            "records per status {:?}, fault-free {:?}",
            counts.0, counts.1
        ));
    }
}

/// How a schedule's kills print: `@120ms`, `@writing`, `@manifest`; `r@…` in the redrive.
fn describe_kills(kills: &[(usize, Kill)], walls: &[Duration]) -> String {
    let shown: Vec<String> = kills
        .iter()
        .map(|(p, k)| {
            let at = match k {
                Kill::After(f) => format!("{:.0?}", walls[*p].mul_f64(*f)),
                Kill::Writing => "writing".into(),
                Kill::Manifest => "manifest".into(),
            };
            format!("{}@{at}", if *p == 1 { "r" } else { "" })
        })
        .collect();
    shown.join(" ")
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v}: {e}")),
    )
}

#[test]
fn kill_schedules() {
    let b = bin();
    assert!(
        b.exists(),
        "{} is missing: cargo build [--release] -p mapfleet",
        b.display()
    );
    let clock = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64
    };
    let seed = env_u64("MAPFLEET_KILL_SEED").unwrap_or_else(clock);
    let count = env_u64("MAPFLEET_KILL_SCHEDULES").unwrap_or(20);
    let floor = Duration::from_secs(env_u64("MAPFLEET_KILL_HANG_SECS").unwrap_or(30));
    println!("kill schedules: seed {seed} ({})", b.display());
    let started = Instant::now();
    let mut cache: HashMap<Job, Baseline> = HashMap::new();
    let (mut total, mut sum, mut failing) = (0, Tally::default(), Vec::new());
    for k in env_u64("MAPFLEET_KILL_ONLY").map_or(0..count, |k| k..k + 1) {
        let s = schedule(seed, k);
        let job = s.job;
        let base = cache.entry(job).or_insert_with(|| baseline(&job));
        // The pid keeps a replay from overwriting a kept folder.
        let dir =
            std::env::temp_dir().join(format!("mapfleet-kill-{seed}-{k}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        job.write_inputs(&dir);
        let deadlines: Vec<Duration> = base.walls.iter().map(|w| floor.max(*w * 20)).collect();
        let (mut t, mut notes) = (Tally::default(), Vec::new());
        match run_phases(&job, &dir, &s.kills, &base.walls, &deadlines, &mut t.kills) {
            Ok(finals) => {
                let got = read_outcome(&job, &dir, finals.0.last().expect("a phase"));
                compare(&job, base, &finals, &got, &mut t);
                notes = got.notes;
            }
            Err(e) if e.starts_with("HANG") => {
                t.hangs += 1;
                let (state, d) = (hang_state(&dir), dir.display());
                let resume = format!(
                    "{} resume {NAME} --state {d}/state --data {d}/data",
                    b.display()
                );
                t.problems
                    .push(format!("{e} ({state}); state and data kept: {resume}"));
            }
            Err(e) => t.schedule(e),
        }
        total += 1;
        sum.add(&t);
        let ok = t.problems.is_empty();
        println!(
            "seed {seed} schedule {k}: {:?} {} items, MaxConcurrency {}{}, kills {}/{} [{}]: {}{}",
            job.variant,
            job.items,
            job.concurrency,
            if s.writing { ", writing" } else { "" },
            t.kills,
            s.kills.len(),
            describe_kills(&s.kills, &base.walls),
            if ok {
                "ok".to_string()
            } else {
                format!("FAILED: {}", t.problems.join("; "))
            },
            if notes.is_empty() {
                String::new()
            } else {
                format!(" (notes: {})", notes.join(", "))
            }
        );
        if ok {
            let _ = fs::remove_dir_all(&dir);
        } else {
            println!("  kept {}", dir.display());
            failing.push(k);
        }
    }
    println!(
        "wall time {:.1?} ({} fault-free jobs)",
        started.elapsed(),
        cache.len()
    );
    println!(
        "kill schedules: {total} schedules, {} kills, {} items lost, {} items duplicated, {} mismatched, {} hangs, seed {seed}",
        sum.kills, sum.lost, sum.duplicated, sum.mismatched, sum.hangs
    );
    for k in &failing {
        println!("replay: MAPFLEET_KILL_SEED={seed} MAPFLEET_KILL_ONLY={k} cargo test --test kill_schedules -- --nocapture");
    }
    assert!(
        sum.lost == 0 && sum.duplicated == 0 && sum.mismatched == 0 && sum.hangs == 0,
        "kill schedules failed: {} of {total} (seed {seed}), see above",
        failing.len()
    );
}
