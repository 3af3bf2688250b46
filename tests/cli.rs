//! End-to-end tests of the `mapfleet` binary: the CLI contract (output shape, exit codes),
//! task adapters, callbacks through the state folder, validation.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

/// target/<profile>/mapfleet, next to this test's own binary (built by `cargo build --workspace`
/// or `cargo test --workspace`).
fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join("mapfleet");
    assert!(
        p.exists(),
        "build the CLI first (cargo build -p mapfleet): {}",
        p.display()
    );
    p
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mapfleet-cli-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).expect("json")).expect("write");
    p
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn mapfleet");
    if let Some(s) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(s.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn bundled_example_succeeds_with_describe_execution_shape() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tmp("example");
    let o = run(
        &[
            "run",
            root.join("examples/orders/orders.asl.json")
                .to_str()
                .unwrap(),
            "--input",
            root.join("examples/orders/input.json").to_str().unwrap(),
            "--fast-forward",
            "--state",
            dir.to_str().unwrap(),
            "--name",
            "ex1",
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let d = stdout_json(&o);
    for k in [
        "executionArn",
        "stateMachineArn",
        "name",
        "status",
        "startDate",
        "stopDate",
        "input",
        "output",
    ] {
        assert!(d.get(k).is_some(), "missing {k} in {d}");
    }
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(d["name"], "ex1");
    let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
    assert_eq!(
        out,
        json!({"batch": "batch-42", "currency": "EUR", "orders": 4, "toReview": ["A-2", "A-4"],
               "decisions": ["APPROVED", "REVIEW", "APPROVED", "REVIEW"]})
    );
    // The same name again reports the finished execution without re-running it.
    let again = run(
        &[
            "describe-execution",
            "ex1",
            "--state",
            dir.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(stdout_json(&again)["status"], "SUCCEEDED");
}

#[test]
fn failure_exit_code_and_error_fields() {
    let dir = tmp("fail");
    let def = write(
        &dir,
        "f.json",
        &json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom", "Cause": "because"}}}),
    );
    let o = run(
        &[
            "run",
            def.to_str().unwrap(),
            "--state",
            dir.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let d = stdout_json(&o);
    assert_eq!(d["status"], "FAILED");
    assert_eq!(d["error"], "Boom");
    assert_eq!(d["cause"], "because");
}

#[test]
fn invalid_definition_and_input_exit_2() {
    let dir = tmp("invalid");
    let def = write(
        &dir,
        "bad.json",
        &json!({"StartAt": "Nope", "States": {"A": {"Type": "Pass", "End": true}}}),
    );
    let o = run(
        &[
            "run",
            def.to_str().unwrap(),
            "--state",
            dir.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("MISSING_TRANSITION_TARGET"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let v = run(&["validate", def.to_str().unwrap(), "--json"], None);
    assert_eq!(v.status.code(), Some(2));
    let diags = stdout_json(&v);
    assert_eq!(diags["result"], "FAIL");
    assert!(diags["diagnostics"][0]["location"].as_str().is_some());

    let ok = write(
        &dir,
        "ok.json",
        &json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}),
    );
    let o = run(
        &[
            "run",
            ok.to_str().unwrap(),
            "--input",
            "-",
            "--state",
            dir.to_str().unwrap(),
        ],
        Some("{not json"),
    );
    assert_eq!(o.status.code(), Some(2));
    let v = run(&["validate", ok.to_str().unwrap()], None);
    assert_eq!(v.status.code(), Some(0));
}

#[test]
fn task_command_success_and_error_mapping() {
    let dir = tmp("taskcmd");
    let def = write(
        &dir,
        "t.json",
        &json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:double",
                  "ResultPath": "$.r", "Next": "U"},
            "U": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:fail", "Catch": [{"ErrorEquals": ["CustomError"], "ResultPath": "$.err", "Next": "Done"}], "End": true},
            "Done": {"Type": "Succeed"}
        }}),
    );
    let o = run(
        &[
            "run",
            def.to_str().unwrap(),
            "--input",
            "-",
            "--state",
            dir.to_str().unwrap(),
            "--task-command",
            "arn:aws:lambda:us-east-1:123456789012:function:double=sed 's/\"x\":21/\"x\":42/'",
            "--task-command",
            "arn:aws:lambda:us-east-1:123456789012:function:fail=echo '{\"errorType\":\"CustomError\",\"errorMessage\":\"nope\"}'; exit 3",
        ],
        Some(r#"{"x":21}"#),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out: Value = serde_json::from_str(stdout_json(&o)["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["r"], json!({"x": 42}));
    assert_eq!(out["err"]["Error"], "CustomError");
    let cause: Value = serde_json::from_str(out["err"]["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["errorMessage"], "nope");
}

#[test]
fn wait_for_task_token_resumes_on_send_task_success() {
    let dir = tmp("token");
    let def = write(
        &dir,
        "w.json",
        &json!({"StartAt": "Ask", "States": {
            "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"token.$": "$$.Task.Token"}, "End": true}
        }}),
    );
    let mut child = Command::new(bin())
        .args([
            "run",
            def.to_str().unwrap(),
            "--state",
            dir.to_str().unwrap(),
            "--name",
            "w1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The run announces its token on stderr; read it as it comes.
    let stderr = child.stderr.take().expect("stderr");
    let mut reader = std::io::BufReader::new(stderr);
    let mut line = String::new();
    let token = loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut reader, &mut line).expect("read stderr");
        assert!(n > 0, "the run ended without announcing a token");
        if let Some(i) = line.find("--task-token ") {
            break line[i + 13..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
        }
    };
    let s = run(
        &[
            "send-task-success",
            "--task-token",
            &token,
            "--task-output",
            r#"{"approved":true}"#,
            "--state",
            dir.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(s.status.code(), Some(0));
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    let d = stdout_json(&out);
    assert_eq!(
        serde_json::from_str::<Value>(d["output"].as_str().unwrap()).unwrap(),
        json!({"approved": true})
    );
}

#[test]
fn trace_prints_history_with_aws_event_names() {
    let dir = tmp("trace");
    let def = write(
        &dir,
        "p.json",
        &json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}),
    );
    let o = run(
        &[
            "run",
            def.to_str().unwrap(),
            "--trace",
            "--state",
            dir.to_str().unwrap(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    let kinds: Vec<String> = err
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[test]
fn every_bundled_example_validates() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).expect("examples") {
        let dir = entry.expect("entry").path();
        for f in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = f.path();
            if p.to_string_lossy().ends_with(".asl.json") {
                let o = run(&["validate", p.to_str().unwrap()], None);
                assert_eq!(
                    o.status.code(),
                    Some(0),
                    "{}: {}",
                    p.display(),
                    String::from_utf8_lossy(&o.stdout)
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "only {checked} examples found");
}

/// An execution that cannot be checkpointed does not go on as if it were: the save is tried
/// again, then the run stops with `States.Runtime` naming the state folder, and exit 1.
#[test]
fn an_execution_that_cannot_be_checkpointed_stops_with_a_named_error() {
    let dir = tmp("unsaved");
    let def = write(
        &dir,
        "def.json",
        &json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
    );
    // The executions folder is a file: no checkpoint can be written there.
    let state = dir.join("state");
    std::fs::create_dir_all(&state).expect("state");
    std::fs::write(state.join("executions"), b"not a folder").expect("file");
    let o = run(
        &[
            "run",
            def.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--name",
            "n1",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("States.Runtime") && stderr.contains("could not be checkpointed"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
