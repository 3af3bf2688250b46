//! End-to-end tests of the Lambda fleet against real local stand-ins, started by
//! `scripts/test.sh` (through `scripts/stand-ins.sh`): moto server (S3, DynamoDB, Step
//! Functions) and `cargo lambda watch` running our coordinator, worker and writer functions.
//!
//! The environment tells where they are: `MAPFLEET_MOTO_ENDPOINT`, `MAPFLEET_LAMBDA_ENDPOINT`,
//! `MAPFLEET_TEST_TABLE`, `MAPFLEET_TEST_STATE_BUCKET`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod stand_ins;
use aws_sdk_lambda::primitives::Blob;
use stand_ins::{create_bucket, env, invoke, put, recorded_outcomes, var};

/// Every object under `prefix`, keyed by its path after the Map Run id.
fn s3_results(bucket: &str, prefix: &str) -> BTreeMap<String, String> {
    let e = env();
    let s3 = e.aws.s3();
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let page =
            e.rt.block_on(
                s3.list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.clone())
                    .send(),
            )
            .expect("list");
        for o in page.contents() {
            let key = o.key().unwrap_or_default().to_string();
            let body =
                e.rt.block_on(async {
                    let got = s3.get_object().bucket(bucket).key(&key).send().await?;
                    Ok::<_, Box<dyn std::error::Error>>(got.body.collect().await?.into_bytes())
                })
                .expect("get");
            out.insert(tail(&key), String::from_utf8_lossy(&body).into_owned());
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    out
}

fn local_results(dir: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files
        .into_iter()
        .map(|p| {
            let key = p.to_string_lossy().replace('\\', "/");
            (
                tail(&key),
                std::fs::read_to_string(&p).expect("read result file"),
            )
        })
        .collect()
}

/// `…/results/<map run id>/SUCCEEDED_0.json` → `SUCCEEDED_0.json`.
fn tail(key: &str) -> String {
    key.rsplit('/').next().unwrap_or(key).to_string()
}

/// Dates, ARNs, ids and names that differ between two runs of the same job.
fn normalize(text: &str) -> String {
    static RES: OnceLock<Vec<(regex::Regex, &'static str)>> = OnceLock::new();
    let res = RES.get_or_init(|| {
        vec![
            (
                regex::Regex::new(r"arn:aws:states:[^\x22\\]*").expect("re"),
                "ARN",
            ),
            (
                regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
                    .expect("re"),
                "DATE",
            ),
            (
                regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
                    .expect("re"),
                "ID",
            ),
        ]
    });
    let mut t = text.to_string();
    for (re, with) in res {
        t = re.replace_all(&t, *with).into_owned();
    }
    t
}

fn mapfleet_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join("mapfleet")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mapfleet-fleet-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn orders_csv(rows: usize) -> String {
    let mut s = String::from("id,qty,region\n");
    for i in 0..rows {
        s.push_str(&format!(
            "o{i},{},{}\n",
            (i * 37) % 100,
            if i % 3 == 0 { "eu" } else { "us" }
        ));
    }
    s
}

/// A CSV job: ItemSelector, a Choice/Pass/Fail processor (quantities ≥ 97 fail), tolerated
/// failures, ItemBatcher-free one-item children, and a ResultWriter.
fn csv_job(bucket: &str) -> Value {
    json!({
        "StartAt": "Orders",
        "States": {
            "Orders": {
                "Type": "Map",
                "Label": "orders",
                "MaxConcurrency": 200,
                "ToleratedFailurePercentage": 10,
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                    "Parameters": {"Bucket": bucket, "Key.$": "$.key"}
                },
                "ItemSelector": {
                    "index.$": "$$.Map.Item.Index",
                    "id.$": "$$.Map.Item.Value.id",
                    "qty.$": "States.StringToJson($$.Map.Item.Value.qty)",
                    "region.$": "$$.Map.Item.Value.region"
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Kind",
                    "States": {
                        "Kind": {
                            "Type": "Choice",
                            "Choices": [
                                {"Variable": "$.qty", "NumericGreaterThanEquals": 97, "Next": "Too many"},
                                {"Variable": "$.qty", "NumericGreaterThanEquals": 50, "Next": "Bulk"}
                            ],
                            "Default": "Retail"
                        },
                        "Bulk": {"Type": "Pass", "Parameters": {"id.$": "$.id", "kind": "bulk", "region.$": "$.region"}, "End": true},
                        "Retail": {"Type": "Pass", "Parameters": {"id.$": "$.id", "kind": "retail", "region.$": "$.region"}, "End": true},
                        "Too many": {"Type": "Fail", "Error": "TooMany", "Cause": "quantity over 96"}
                    }
                },
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": bucket, "Prefix": "results"}
                },
                "End": true
            }
        }
    })
}

#[test]
fn a_fleet_map_run_writes_what_the_embedded_default_writes() {
    let bucket = format!("fleet-csv-{}", std::process::id());
    create_bucket(&bucket);
    let rows = 1000;
    let csv = orders_csv(rows);
    put(&bucket, "in/orders.csv", csv.clone());
    let def = csv_job(&bucket);
    let input = json!({"key": "in/orders.csv"});
    let name = format!("csv-{}", std::process::id());

    let t = Instant::now();
    let out = invoke(
        "coordinator",
        &json!({"definition": def, "input": input, "name": name}),
    )
    .expect("the coordinator answers");
    let fleet_time = t.elapsed();
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let output: Value =
        serde_json::from_str(out["output"].as_str().expect("output")).expect("output JSON");
    let map_run_arn = output["MapRunArn"].as_str().expect("MapRunArn").to_string();

    // The same job on the embedded default: a local folder as S3.
    let dir = tmp("csv");
    std::fs::create_dir_all(dir.join(format!("data/{bucket}/in"))).expect("mkdir");
    std::fs::write(dir.join(format!("data/{bucket}/in/orders.csv")), &csv).expect("write");
    // Named like the fleet's state machine, so ARNs (and file sizes) match.
    std::fs::write(dir.join("mapfleet.asl.json"), def.to_string()).expect("write");
    std::fs::write(dir.join("input.json"), input.to_string()).expect("write");
    let t = Instant::now();
    let local = Command::new(mapfleet_bin())
        .args(["run", "--name", &name, "--input"])
        .arg(dir.join("input.json"))
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--state")
        .arg(dir.join("state"))
        .arg(dir.join("mapfleet.asl.json"))
        .output()
        .expect("run mapfleet");
    let local_time = t.elapsed();
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    eprintln!(
        "fleet {rows} rows: {:.2}s; embedded: {:.2}s",
        fleet_time.as_secs_f64(),
        local_time.as_secs_f64()
    );

    let fleet_files = s3_results(&bucket, "results/");
    let local_files = local_results(&dir.join(format!("data/{bucket}/results")));
    assert_eq!(
        fleet_files.keys().collect::<Vec<_>>(),
        local_files.keys().collect::<Vec<_>>()
    );
    assert!(fleet_files.contains_key("manifest.json"));
    assert!(fleet_files.contains_key("SUCCEEDED_0.json"));
    assert!(fleet_files.contains_key("FAILED_0.json"));
    for (k, fleet) in &fleet_files {
        assert_eq!(
            normalize(fleet),
            normalize(&local_files[k]),
            "{k} differs between the fleet and the embedded default"
        );
    }
    let failed: Vec<Value> =
        serde_json::from_str(&fleet_files["FAILED_0.json"]).expect("FAILED_0 is JSON");
    let expect_failed = (0..rows).filter(|i| (i * 37) % 100 >= 97).count();
    assert_eq!(failed.len(), expect_failed);

    // The writer run again writes the same objects.
    let again = invoke(
        "writer",
        &json!({"mapRunArn": map_run_arn, "writer": def["States"]["Orders"]["ResultWriter"]}),
    )
    .expect("the writer answers");
    assert_eq!(again["records"], rows as u64, "{again}");
    assert_eq!(s3_results(&bucket, "results/"), fleet_files);

    // DescribeMapRun through the coordinator.
    let d = invoke(
        "coordinator",
        &json!({"action": "describeMapRun", "mapRunArn": map_run_arn}),
    )
    .expect("describeMapRun");
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(d["itemCounts"]["total"], rows as u64);
    assert_eq!(d["itemCounts"]["failed"], expect_failed as u64);
    let listed = invoke(
        "coordinator",
        &json!({"action": "listMapRuns", "name": name}),
    )
    .expect("listMapRuns");
    assert_eq!(listed["mapRuns"][0]["mapRunArn"], json!(map_run_arn));
}

#[test]
fn a_redrive_through_the_fleet_reruns_only_the_failed_children() {
    let pid = std::process::id();
    let bucket = format!("fleet-redrive-{pid}");
    create_bucket(&bucket);
    let items: Vec<Value> = (0..40).map(|i| json!({"id": format!("k{i}")})).collect();
    put(&bucket, "items.json", Value::Array(items).to_string());
    let put_flag = |i: usize| put(&bucket, &format!("flags/k{i}"), "{}");
    for i in 0..30 {
        put_flag(i);
    }
    // Each child reads its flag with an AWS SDK integration: a missing one fails the Task
    // (S3.NoSuchKeyException), which a redrive runs again.
    let def = json!({
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket": bucket, "Key": "items.json"}
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Flag",
                    "States": {
                        "Flag": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                            "Parameters": {"Bucket": bucket, "Key.$": "States.Format('flags/{}', $.id)"},
                            "ResultSelector": {"flagged": true},
                            "End": true
                        }
                    }
                },
                "End": true
            }
        }
    });
    let name = format!("redrive-{pid}");
    let first = invoke("coordinator", &json!({"definition": def, "name": name}))
        .expect("the coordinator answers");
    assert_eq!(first["status"], "FAILED", "{first}");
    assert_eq!(first["error"], "States.ExceedToleratedFailureThreshold");
    let runs = invoke(
        "coordinator",
        &json!({"action": "listMapRuns", "name": name}),
    )
    .expect("listMapRuns");
    let map_run_arn = runs["mapRuns"][0]["mapRunArn"]
        .as_str()
        .expect("a Map Run")
        .to_string();

    for i in 30..40 {
        put_flag(i);
    }
    let again = invoke("coordinator", &json!({"action": "redrive", "name": name}))
        .expect("the coordinator answers the redrive");
    assert_eq!(again["status"], "SUCCEEDED", "{again}");
    assert_eq!(again["redriveCount"], 1);
    let d = invoke(
        "coordinator",
        &json!({"action": "describeMapRun", "mapRunArn": map_run_arn}),
    )
    .expect("describeMapRun");
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(d["redriveCount"], 1, "{d}");
    assert_eq!(d["itemCounts"]["succeeded"], 40, "{d}");
    // Only the ten failed children ran in the redrive (the Map Run's attempt 1).
    assert_eq!(
        recorded_outcomes(&map_run_arn, Some(1)),
        (30..40).collect::<Vec<u64>>()
    );
    // A second redrive of a succeeded execution is refused, by name.
    let refused = invoke("coordinator", &json!({"action": "redrive", "name": name}))
        .expect_err("not redrivable");
    assert_eq!(refused["errorType"], "ExecutionNotRedrivable", "{refused}");
}

/// A Distributed Map over `$.items` whose Express children are one Pass state.
fn fan_out(parameters: Value) -> Value {
    json!({
        "StartAt": "Fan out",
        "States": {
            "Fan out": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                    "StartAt": "Each",
                    "States": {"Each": {"Type": "Pass", "Parameters": parameters, "End": true}}
                },
                "End": true
            }
        }
    })
}

#[test]
fn a_parent_state_machine_waits_on_the_coordinators_task_token() {
    let e = env();
    let pid = std::process::id();
    let sfn = e.aws.sfn();
    // moto runs the parent; its Lambda cannot run our function (no Docker), so the test
    // delivers the task's payload to the coordinator as Lambda would.
    let job = json!({
        "definition": fan_out(json!({"twice": "yes"})),
        "input": {"items": [1, 2, 3]},
        "name": format!("child-of-parent-{pid}")
    });
    let parent = json!({
        "StartAt": "Run the Map Run",
        "States": {
            "Run the Map Run": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": "coordinator",
                    "Payload": {"taskToken.$": "$$.Task.Token", "job": job}
                },
                "ResultPath": "$.fleet",
                "End": true
            }
        }
    });
    // moto's Lambda echoes instead of running Docker, for this test only.
    let _echo = MotoLambdaEcho::on();
    let lambda_in_moto = e.aws.lambda();
    let _ = e.rt.block_on(
        lambda_in_moto
            .create_function()
            .function_name("coordinator")
            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
            .role("arn:aws:iam::123456789012:role/mapfleet")
            .handler("bootstrap")
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(Blob::new(minimal_zip()))
                    .build(),
            )
            .send(),
    );
    let machine =
        e.rt.block_on(
            sfn.create_state_machine()
                .name(format!("parent-{pid}"))
                .definition(parent.to_string())
                .role_arn("arn:aws:iam::123456789012:role/mapfleet")
                .send(),
        )
        .expect("create the parent state machine");
    let started =
        e.rt.block_on(
            sfn.start_execution()
                .state_machine_arn(machine.state_machine_arn())
                .input("{\"order\":\"p1\"}")
                .send(),
        )
        .expect("start the parent");
    let arn = started.execution_arn().to_string();
    // The task's payload, with its token, as Step Functions scheduled it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let payload = loop {
        let history =
            e.rt.block_on(sfn.get_execution_history().execution_arn(&arn).send())
                .expect("history");
        let scheduled = history.events().iter().find_map(|ev| {
            ev.task_scheduled_event_details()
                .map(|d| d.parameters().to_string())
        });
        if let Some(params) = scheduled {
            let p: Value = serde_json::from_str(&params).expect("parameters are JSON");
            break p["Payload"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the parent never scheduled its task"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(payload["taskToken"].is_string(), "{payload}");
    let answered = invoke("coordinator", &payload).expect("the coordinator answers");
    assert_eq!(answered["status"], "SUCCEEDED", "{answered}");
    // The parent resumes with the Map state's output.
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let d =
            e.rt.block_on(sfn.describe_execution().execution_arn(&arn).send())
                .expect("describe the parent");
        if d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
            break d;
        }
        assert!(Instant::now() < deadline, "the parent never resumed");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        done.status(),
        &aws_sdk_sfn::types::ExecutionStatus::Succeeded,
        "{done:?}"
    );
    let output: Value = serde_json::from_str(done.output().unwrap_or("null")).expect("output");
    assert_eq!(output["order"], "p1");
    assert_eq!(
        output["fleet"],
        json!([{"twice": "yes"}, {"twice": "yes"}, {"twice": "yes"}])
    );
}

/// Sets moto's Lambda to echo payloads (no Docker) until dropped.
struct MotoLambdaEcho;

impl MotoLambdaEcho {
    fn on() -> Self {
        moto_lambda_config(false);
        MotoLambdaEcho
    }
}

impl Drop for MotoLambdaEcho {
    fn drop(&mut self) {
        moto_lambda_config(true);
    }
}

fn moto_lambda_config(use_docker: bool) {
    let url = format!("{}/moto-api/config", var("MAPFLEET_MOTO_ENDPOINT"));
    let body = json!({"lambda": {"use_docker": use_docker}}).to_string();
    let status = Command::new("curl")
        .args([
            "-fsS",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            &url,
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ])
        .status()
        .expect("curl");
    assert!(status.success(), "cannot configure moto's Lambda");
}

/// An empty zip archive: moto needs code to create a function it will only echo.
fn minimal_zip() -> Vec<u8> {
    let mut z = vec![0x50, 0x4b, 0x05, 0x06];
    z.extend([0u8; 18]);
    z
}

#[test]
fn every_sample_event_is_accepted_by_its_function() {
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let read = |p: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(events.join(p)).expect("event file"))
            .expect("event JSON")
    };
    create_bucket("mapfleet-demo");
    // The job reads data/orders.csv; the first run finds it missing and fails, to be redriven.
    let direct = read("coordinator/direct-job.json");
    let first = invoke("coordinator", &direct).expect("direct job");
    assert_eq!(first["status"], "FAILED", "{first}");
    assert_eq!(first["error"], "States.ItemReaderFailed", "{first}");
    let mut csv = String::from("order_id,quantity,price,region\n");
    for i in 0..120 {
        csv.push_str(&format!(
            "o{i},{},{}.5,{}\n",
            i % 70,
            i % 9,
            ["eu", "us", "apac"][i % 3]
        ));
    }
    put("mapfleet-demo", "data/orders.csv", csv);
    let job = json!({"definition": direct["definition"], "input": direct["input"]});
    put("mapfleet-demo", "jobs/orders.json", job.to_string());
    put("mapfleet-demo", "jobs/nightly.json", job.to_string());

    let order = [
        "coordinator/describe.json",
        "coordinator/list-map-runs.json",
        "coordinator/redrive.json",
        "coordinator/continue.json",
        "coordinator/job-ref.json",
        "coordinator/eventbridge-job.json",
        "coordinator/eventbridge-scheduled.json",
        "coordinator/task-token.json",
        "coordinator/describe-map-run.json",
        "worker/batch.json",
        "writer/write-results.json",
    ];
    let mut seen: Vec<String> = order.iter().map(|s| s.to_string()).collect();
    seen.push("coordinator/direct-job.json".into());
    for file in order {
        let function = file.split('/').next().expect("function folder");
        let answer = invoke(function, &read(file));
        match (file, answer) {
            // These name a Map Run of the user's own account.
            ("coordinator/describe-map-run.json" | "writer/write-results.json", Err(e)) => {
                assert_eq!(e["errorType"], "ResourceNotFound", "{file}: {e}")
            }
            (_, Err(e)) => panic!("{file} was refused: {e}"),
            ("coordinator/redrive.json", Ok(v)) => assert_eq!(v["status"], "SUCCEEDED", "{v}"),
            ("worker/batch.json", Ok(v)) => {
                assert_eq!(v["outcomes"].as_array().map(Vec::len), Some(3), "{v}")
            }
            (_, Ok(v)) => assert!(v.is_object(), "{file}: {v}"),
        }
    }
    // Every file in events/ was exercised.
    let mut on_disk = Vec::new();
    for f in ["coordinator", "worker", "writer"] {
        for entry in std::fs::read_dir(events.join(f))
            .expect("events dir")
            .flatten()
        {
            on_disk.push(format!("{f}/{}", entry.file_name().to_string_lossy()));
        }
    }
    on_disk.sort();
    seen.sort();
    assert_eq!(on_disk, seen);
    // A request that is not one is refused by name.
    let bad = invoke("coordinator", &json!({"hello": "world"})).expect_err("refused");
    assert_eq!(bad["errorType"], "mapfleet.InvalidRequest", "{bad}");
}

#[test]
fn a_coordinator_continues_in_new_invocations_without_losing_or_repeating_a_child() {
    let pid = std::process::id();
    let n = 600;
    let job = json!({
        "definition": fan_out(json!({"n.$": "$", "sq.$": "States.MathAdd($, 0)"})),
        "input": {"items": (0..n).collect::<Vec<u64>>()},
        "name": format!("continued-{pid}"),
        // Each invocation stops almost at once: one round of worker batches, then it hands
        // over to a new invocation of itself.
        "budgetSeconds": 0.05
    });
    let first = invoke("coordinator", &job).expect("the coordinator answers");
    assert_eq!(first["status"], "RUNNING", "{first}");
    let name = first["name"].as_str().expect("name").to_string();
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = loop {
        let d =
            invoke("coordinator", &json!({"action": "describe", "name": name})).expect("describe");
        if d["status"] != "RUNNING" {
            break d;
        }
        assert!(Instant::now() < deadline, "never finished: {d}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let output: Value =
        serde_json::from_str(done["output"].as_str().expect("output")).expect("JSON");
    let expected: Vec<Value> = (0..n).map(|i| json!({"n": i, "sq": i})).collect();
    assert_eq!(output, Value::Array(expected));
    let runs = invoke(
        "coordinator",
        &json!({"action": "listMapRuns", "name": name}),
    )
    .expect("listMapRuns");
    let arn = runs["mapRuns"][0]["mapRunArn"].as_str().expect("arn");
    let d = invoke(
        "coordinator",
        &json!({"action": "describeMapRun", "mapRunArn": arn}),
    )
    .expect("describeMapRun");
    assert_eq!(d["itemCounts"]["succeeded"], n, "{d}");
    assert_eq!(d["itemCounts"]["total"], n, "{d}");
    // Every child recorded once.
    assert_eq!(recorded_outcomes(arn, None), (0..n).collect::<Vec<u64>>());
}

#[test]
fn a_duplicated_start_never_runs_the_job_twice() {
    let pid = std::process::id();
    let n = 300u64;
    let job = json!({
        "definition": fan_out(json!({"n.$": "$"})),
        "input": {"items": (0..n).collect::<Vec<u64>>()},
        "name": format!("duplicated-{pid}")
    });
    // The same start, delivered twice at once (a retried or duplicated invocation).
    let answers: Vec<Result<Value, Value>> = std::thread::scope(|s| {
        let a = s.spawn(|| invoke("coordinator", &job));
        let b = s.spawn(|| invoke("coordinator", &job));
        vec![a.join().expect("thread"), b.join().expect("thread")]
    });
    for a in &answers {
        match a {
            Ok(d) => assert!(
                d["status"] == "SUCCEEDED" || d["status"] == "RUNNING",
                "{d}"
            ),
            Err(e) => assert_eq!(e["errorType"], "ExecutionAlreadyExists", "{e}"),
        }
    }
    assert!(answers.iter().any(Result::is_ok), "{answers:?}");
    let name = format!("duplicated-{pid}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d =
            invoke("coordinator", &json!({"action": "describe", "name": name})).expect("describe");
        if d["status"] == "SUCCEEDED" {
            break;
        }
        assert_eq!(d["status"], "RUNNING", "{d}");
        assert!(Instant::now() < deadline, "never finished: {d}");
        std::thread::sleep(Duration::from_millis(250));
    }
    let runs = invoke(
        "coordinator",
        &json!({"action": "listMapRuns", "name": name}),
    )
    .expect("listMapRuns");
    assert_eq!(
        runs["mapRuns"].as_array().map(Vec::len),
        Some(1),
        "one Map Run: {runs}"
    );
    let arn = runs["mapRuns"][0]["mapRunArn"].as_str().expect("arn");
    // Every child recorded once, at its first attempt.
    assert_eq!(
        recorded_outcomes(arn, Some(0)),
        (0..n).collect::<Vec<u64>>()
    );
}
