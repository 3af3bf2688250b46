//! End-to-end tests of Distributed Map on the embedded default, through the `mapfleet` binary:
//! a local folder as S3, SQLite checkpoints in the state folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join("mapfleet")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mapfleet-dist-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("data/bkt")).expect("temp dir");
    d
}

fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

fn run(dir: &Path, def: &Value, input: &Value, name: &str, extra: &[&str]) -> Output {
    write(&dir.join("def.json"), &def.to_string());
    write(&dir.join("input.json"), &input.to_string());
    let mut args = vec![
        "run".to_string(),
        dir.join("def.json").display().to_string(),
        "--input".into(),
        dir.join("input.json").display().to_string(),
        "--data".into(),
        dir.join("data").display().to_string(),
        "--state".into(),
        dir.join("state").display().to_string(),
        "--name".into(),
        name.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new(bin())
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run mapfleet")
}

fn describe(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn output_of(d: &Value) -> Value {
    serde_json::from_str(d["output"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .expect("json")
}

fn csv_map(writer: bool, extra: Value) -> Value {
    let mut map = json!({
        "Type": "Map",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
            "Parameters": {"Bucket": "bkt", "Key.$": "$.key"}
        },
        "ItemSelector": {"row.$": "$$.Map.Item.Index", "name.$": "$$.Map.Item.Value.name", "n.$": "$$.Map.Item.Value.n"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Check",
            "States": {
                "Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "StringEquals": "bad", "Next": "Bad"}], "Default": "Ok"},
                "Bad": {"Type": "Fail", "Error": "BadRow", "Cause": "row is bad"},
                "Ok": {"Type": "Pass", "Parameters": {"row.$": "$.row", "upper.$": "States.Format('{}!', $.name)"}, "End": true}
            }
        },
        "End": true
    });
    if writer {
        map["ResultWriter"] = json!({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "bkt", "Prefix": "out"}});
    }
    if let (Value::Object(m), Value::Object(e)) = (&mut map, extra) {
        m.extend(e);
    }
    json!({"StartAt": "M", "States": {"M": map}})
}

#[test]
fn csv_rows_to_children_and_results_in_the_aws_layout() {
    let dir = tmp("layout");
    write(
        &dir.join("data/bkt/in.csv"),
        "name,n\nada,1\nbob,bad\ncy,3\n",
    );
    let def = csv_map(true, json!({"ToleratedFailureCount": 1}));
    let o = run(&dir, &def, &json!({"key": "in.csv"}), "e1", &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = output_of(&describe(&o));
    let arn = out["MapRunArn"].as_str().expect("MapRunArn").to_string();
    let id = arn.rsplit(':').next().unwrap();
    assert!(arn.contains(":mapRun:def/M:"), "{arn}");
    assert_eq!(
        out["ResultWriterDetails"],
        json!({"Bucket": "bkt", "Key": format!("out/{id}/manifest.json")})
    );

    let folder = dir.join("data/bkt/out").join(id);
    let manifest = read_json(&folder.join("manifest.json"));
    assert_eq!(manifest["DestinationBucket"], "bkt");
    assert_eq!(manifest["MapRunArn"], json!(arn));
    let succeeded = read_json(&folder.join("SUCCEEDED_0.json"));
    let failed = read_json(&folder.join("FAILED_0.json"));
    assert_eq!(succeeded.as_array().unwrap().len(), 2);
    assert_eq!(failed.as_array().unwrap().len(), 1);
    let size = std::fs::metadata(folder.join("SUCCEEDED_0.json"))
        .unwrap()
        .len();
    assert_eq!(manifest["ResultFiles"]["SUCCEEDED"][0]["Size"], json!(size));
    let ok = &succeeded[0];
    for k in [
        "ExecutionArn",
        "Input",
        "InputDetails",
        "Name",
        "Output",
        "OutputDetails",
        "RedriveCount",
        "RedriveStatus",
        "StartDate",
        "StateMachineArn",
        "Status",
        "StopDate",
    ] {
        assert!(ok.get(k).is_some(), "missing {k} in {ok}");
    }
    assert_eq!(ok["Status"], "SUCCEEDED");
    assert_eq!(
        serde_json::from_str::<Value>(ok["Input"].as_str().unwrap()).unwrap(),
        json!({"row": 0, "name": "ada", "n": "1"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(ok["Output"].as_str().unwrap()).unwrap(),
        json!({"row": 0, "upper": "ada!"})
    );
    assert_eq!(failed[0]["Error"], "BadRow");
    assert_eq!(failed[0]["Status"], "FAILED");

    // DescribeMapRun from the checkpoint store.
    let d = Command::new(bin())
        .args([
            "describe-map-run",
            &arn,
            "--state",
            dir.join("state").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let d: Value = serde_json::from_slice(&d.stdout).unwrap();
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(d["itemCounts"]["succeeded"], 2);
    assert_eq!(d["itemCounts"]["failed"], 1);
    assert_eq!(d["itemCounts"]["total"], 3);
    assert_eq!(d["toleratedFailureCount"], 1);
}

#[test]
fn tolerance_boundaries_and_inline_results() {
    let dir = tmp("tolerance");
    write(
        &dir.join("data/bkt/in.csv"),
        "name,n\na,1\nb,bad\nc,bad\nd,4\n",
    );
    // 2 of 4 failed: 50% is tolerated, 49% is not; a count of 2 is, 1 is not.
    for (extra, ok) in [
        (json!({"ToleratedFailurePercentage": 50}), true),
        (json!({"ToleratedFailurePercentage": 49}), false),
        (json!({"ToleratedFailureCount": 2}), true),
        (json!({"ToleratedFailureCount": 1}), false),
    ] {
        let o = run(
            &dir,
            &csv_map(false, extra.clone()),
            &json!({"key": "in.csv"}),
            &format!("t{}", rand_name()),
            &[],
        );
        let d = describe(&o);
        if ok {
            assert_eq!(d["status"], "SUCCEEDED", "{extra}: {d}");
            let out = output_of(&d);
            assert_eq!(out.as_array().unwrap().len(), 4);
            assert_eq!(out[0], json!({"row": 0, "upper": "a!"}));
            assert_eq!(
                out[1]["Error"], "BadRow",
                "a tolerated failure is its error record"
            );
        } else {
            assert_eq!(d["status"], "FAILED", "{extra}: {d}");
            assert_eq!(d["error"], "States.ExceedToleratedFailureThreshold");
        }
    }
}

fn rand_name() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[test]
fn missing_object_is_an_item_reader_failure_that_catch_sees() {
    let dir = tmp("missing");
    let mut def = csv_map(false, json!({}));
    def["States"]["M"]["Catch"] =
        json!([{"ErrorEquals": ["States.ItemReaderFailed"], "Next": "Caught"}]);
    def["States"]["M"].as_object_mut().unwrap().remove("End");
    def["States"]["M"]["Next"] = json!("Done");
    def["States"]["Caught"] = json!({"Type": "Pass", "End": true});
    def["States"]["Done"] = json!({"Type": "Succeed"});
    let o = run(&dir, &def, &json!({"key": "nope.csv"}), "m1", &[]);
    let d = describe(&o);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let out = output_of(&d);
    assert_eq!(out["Error"], "States.ItemReaderFailed");
    assert!(out["Cause"].as_str().unwrap().contains("nope.csv"), "{out}");
}

#[test]
fn a_killed_run_resumes_without_redoing_finished_children() {
    let dir = tmp("resume");
    let rows: String = (0..12).map(|i| format!("r{i},{i}\n")).collect();
    write(&dir.join("data/bkt/in.csv"), &format!("name,n\n{rows}"));
    let log = dir.join("calls.log");
    let mut def = csv_map(true, json!({"MaxConcurrency": 1}));
    def["States"]["M"]["ItemProcessor"]["States"]["Ok"] = json!({
        "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:slow", "End": true
    });
    let cmd = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:slow=cat > /dev/null; echo x >> {}; sleep 0.15; echo '{{\"done\":true}}'",
        log.display()
    );
    write(&dir.join("def.json"), &def.to_string());
    write(
        &dir.join("input.json"),
        &json!({"key": "in.csv"}).to_string(),
    );
    let args = |name: &str| {
        vec![
            "run".to_string(),
            dir.join("def.json").display().to_string(),
            "--input".into(),
            dir.join("input.json").display().to_string(),
            "--data".into(),
            dir.join("data").display().to_string(),
            "--state".into(),
            dir.join("state").display().to_string(),
            "--name".into(),
            name.into(),
            "--task-command".into(),
            cmd.clone(),
            // Small result files: the resumed run (no flag) must roll over at the same size.
            "--result-file-bytes".into(),
            "1500".into(),
        ]
    };
    let mut child = Command::new(bin())
        .args(args("k1"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once several children finished (and were checkpointed).
    let start = Instant::now();
    loop {
        let calls = std::fs::read_to_string(&log)
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if calls >= 6 || start.elapsed() > Duration::from_secs(20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(400));
    child.kill().unwrap();
    let _ = child.wait();
    let before = std::fs::read_to_string(&log)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    assert!(
        before < 12,
        "the run finished before it could be killed ({before} calls)"
    );

    // `mapfleet resume` takes the saved definition and checkpoints.
    let o = Command::new(bin())
        .args([
            "resume",
            "k1",
            "--state",
            dir.join("state").to_str().unwrap(),
            "--data",
            dir.join("data").to_str().unwrap(),
            "--task-command",
            &cmd,
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let total = std::fs::read_to_string(&log).unwrap().lines().count();
    // At most the one child in flight at the kill runs twice.
    assert!(
        total <= 13,
        "{total} calls for 12 rows ({before} before the kill)"
    );
    let out = output_of(&describe(&o));
    let id = out["MapRunArn"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let manifest = read_json(&dir.join("data/bkt/out").join(&id).join("manifest.json"));
    let files = manifest["ResultFiles"]["SUCCEEDED"].as_array().unwrap();
    assert!(
        files.len() > 2,
        "rolled over at the size the run started with: {manifest}"
    );
    let records: Vec<Value> = files
        .iter()
        .flat_map(|f| {
            let file = read_json(&dir.join("data/bkt").join(f["Key"].as_str().unwrap()));
            file.as_array().unwrap().clone()
        })
        .collect();
    let rows: Vec<i64> = records
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(r["Input"].as_str().unwrap()).unwrap()["row"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        rows,
        (0..12).collect::<Vec<_>>(),
        "every row once, in order"
    );
}

#[test]
fn redrive_reruns_only_unsuccessful_children_and_the_manifest_covers_all_successes() {
    let dir = tmp("redrive");
    let rows: String = (0..8).map(|i| format!("r{i},{i}\n")).collect();
    write(&dir.join("data/bkt/in.csv"), &format!("name,n\n{rows}"));
    let log = dir.join("calls.log");
    let fixed = dir.join("fixed");
    let mut def = csv_map(true, json!({"MaxConcurrency": 1}));
    def["States"]["M"]["ItemProcessor"]["States"]["Ok"] = json!({
        "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:work", "End": true
    });
    // Row 2 fails until the "fixed" marker exists.
    let cmd = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:work=in=$(cat); echo \"$in\" >> {log}; \
         case \"$in\" in *'\"row\":2'*) [ -f {fixed} ] || {{ echo '{{\"errorType\":\"Flaky\",\"errorMessage\":\"not yet\"}}'; exit 1; }};; esac; \
         echo '{{\"ok\":true}}'",
        log = log.display(),
        fixed = fixed.display()
    );
    let o = run(
        &dir,
        &def,
        &json!({"key": "in.csv"}),
        "rd1",
        &["--task-command", &cmd],
    );
    let d = describe(&o);
    assert_eq!(d["status"], "FAILED", "{d}");
    assert_eq!(d["error"], "States.ExceedToleratedFailureThreshold");
    let first = std::fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(
        first, 3,
        "rows 0 and 1 succeed, row 2 fails, the rest never start"
    );

    // Redriving a succeeded execution is refused; this one is redrivable.
    std::fs::write(&fixed, "").unwrap();
    let state = dir.join("state").display().to_string();
    let data = dir.join("data").display().to_string();
    let o = Command::new(bin())
        .args([
            "redrive",
            "rd1",
            "--state",
            &state,
            "--data",
            &data,
            "--task-command",
            &cmd,
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let d = describe(&o);
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(d["redriveCount"], 1);
    let calls: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        calls.len(),
        3 + 6,
        "only row 2 and the 5 never-started rows run again"
    );
    assert!(!calls[3..]
        .iter()
        .any(|c| c.contains("\"row\":0") || c.contains("\"row\":1")));

    let out = output_of(&d);
    let id = out["MapRunArn"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let manifest = read_json(&dir.join("data/bkt/out").join(&id).join("manifest.json"));
    let mut rows = Vec::new();
    for f in manifest["ResultFiles"]["SUCCEEDED"].as_array().unwrap() {
        let key = f["Key"].as_str().unwrap();
        for r in read_json(&dir.join("data/bkt").join(key))
            .as_array()
            .unwrap()
        {
            rows.push(
                serde_json::from_str::<Value>(r["Input"].as_str().unwrap()).unwrap()["row"]
                    .as_i64()
                    .unwrap(),
            );
        }
    }
    rows.sort();
    assert_eq!(
        rows,
        (0..8).collect::<Vec<_>>(),
        "the manifest references every success across attempts, each once"
    );
    assert_eq!(manifest["ResultFiles"]["FAILED"], json!([]));

    let again = Command::new(bin())
        .args(["redrive", "rd1", "--state", &state])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("ExecutionNotRedrivable"));
}

#[test]
fn replay_reruns_one_recorded_child_and_checks_it_against_the_record() {
    let dir = tmp("replay");
    write(&dir.join("data/bkt/in.csv"), "name,n\nada,1\nbob,bad\n");
    let o = run(
        &dir,
        &csv_map(true, json!({"ToleratedFailureCount": 1})),
        &json!({"key": "in.csv"}),
        "rp1",
        &[],
    );
    let out = output_of(&describe(&o));
    let id = out["MapRunArn"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let folder = dir.join("data/bkt/out").join(&id);
    let state = dir.join("state").display().to_string();
    let ok = Command::new(bin())
        .args([
            "replay",
            folder.join("SUCCEEDED_0.json").to_str().unwrap(),
            "--index",
            "0",
            "--state",
            &state,
            "--trace",
        ])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let summary: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(summary["matchesRecord"], true);
    let kinds: Vec<String> = String::from_utf8_lossy(&ok.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("ExecutionStarted"));
    assert!(kinds.contains(&"PassStateExited".to_string()), "{kinds:?}");
    let failed = Command::new(bin())
        .args([
            "replay",
            folder.join("FAILED_0.json").to_str().unwrap(),
            "--index",
            "0",
            "--state",
            &state,
        ])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let summary: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(
        (
            summary["error"].as_str(),
            summary["matchesRecord"].as_bool()
        ),
        (Some("BadRow"), Some(true))
    );
    let missing = Command::new(bin())
        .args([
            "replay",
            folder.join("SUCCEEDED_0.json").to_str().unwrap(),
            "--index",
            "9",
            "--state",
            &state,
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn result_files_roll_over_at_the_configured_size() {
    let dir = tmp("rollover");
    let rows: String = (0..20).map(|i| format!("row{i},{i}\n")).collect();
    write(&dir.join("data/bkt/in.csv"), &format!("name,n\n{rows}"));
    let o = run(
        &dir,
        &csv_map(true, json!({})),
        &json!({"key": "in.csv"}),
        "ro1",
        &["--result-file-bytes", "2000"],
    );
    let out = output_of(&describe(&o));
    let id = out["MapRunArn"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let manifest = read_json(&dir.join("data/bkt/out").join(&id).join("manifest.json"));
    let files = manifest["ResultFiles"]["SUCCEEDED"].as_array().unwrap();
    assert!(files.len() > 1, "{manifest}");
    let mut total = 0;
    for (n, f) in files.iter().enumerate() {
        assert!(f["Key"]
            .as_str()
            .unwrap()
            .ends_with(&format!("SUCCEEDED_{n}.json")));
        let path = dir.join("data/bkt").join(f["Key"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            f["Size"].as_u64().unwrap()
        );
        assert!(f["Size"].as_u64().unwrap() <= 2000);
        total += read_json(&path).as_array().unwrap().len();
    }
    assert_eq!(total, 20);
}

#[test]
fn a_redriven_standard_child_resumes_from_the_state_that_failed() {
    let dir = tmp("inplace");
    write(&dir.join("data/bkt/in.csv"), "name,n\nonly,1\n");
    let log = dir.join("calls.log");
    let fixed = dir.join("fixed");
    let mut def = csv_map(false, json!({}));
    def["States"]["M"]["ItemProcessor"]["StartAt"] = json!("First");
    def["States"]["M"]["ItemProcessor"]["States"] = json!({
        "First": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:first", "ResultPath": "$.first", "Next": "Second"},
        "Second": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:second",
                   "Parameters": {"rc.$": "$$.Execution.RedriveCount"}, "End": true}
    });
    let first = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:first=cat > /dev/null; echo first >> {}; echo '\"one\"'",
        log.display()
    );
    let second = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:second=in=$(cat); echo \"second $in\" >> {log}; \
         [ -f {fixed} ] || {{ echo '{{\"errorType\":\"NotYet\",\"errorMessage\":\"x\"}}'; exit 1; }}; echo \"$in\"",
        log = log.display(),
        fixed = fixed.display()
    );
    let o = run(
        &dir,
        &def,
        &json!({"key": "in.csv"}),
        "ip1",
        &["--task-command", &first, "--task-command", &second],
    );
    assert_eq!(describe(&o)["status"], "FAILED");
    std::fs::write(&fixed, "").unwrap();
    let o = Command::new(bin())
        .args([
            "redrive",
            "ip1",
            "--state",
            dir.join("state").to_str().unwrap(),
            "--data",
            dir.join("data").to_str().unwrap(),
            "--task-command",
            &first,
            "--task-command",
            &second,
        ])
        .output()
        .unwrap();
    let d = describe(&o);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let calls: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        calls.iter().filter(|c| c.as_str() == "first").count(),
        1,
        "the child resumed at Second: {calls:?}"
    );
    assert!(calls.last().unwrap().contains("\"rc\":1"), "{calls:?}");
    assert_eq!(output_of(&d), json!([{"rc": 1}]));
}
