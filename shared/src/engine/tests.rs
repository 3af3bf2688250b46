//! Engine tests that the recorded corpus does not cover: the parallel path for pure inline
//! Maps, retries and timeouts on the virtual clock, callbacks, resuming a saved execution.

use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::*;
use crate::asl::parse::parse_definition;
use crate::asl::ExecutionType;
use crate::ports::{Clock, SeededEntropy, VirtualClock};

fn run_with(
    def: Value,
    input: Value,
    invoker: &dyn TaskInvoker,
    record: bool,
) -> (Execution, VirtualClock) {
    let machine = Arc::new(parse_definition(&def).expect("valid definition"));
    let clock = VirtualClock::new(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
    let info = ExecutionInfo::local("M", "e", input, clock.now(), ExecutionType::Standard);
    let mut exec = Execution::new(machine, def, info, record);
    let entropy = SeededEntropy::new(3);
    run_to_completion(
        &mut exec,
        vec![Event::Start],
        RunOptions {
            time: TimeMode::Virtual(&clock),
            entropy: &entropy,
            invoker,
            callbacks: None,
            on_change: None,
            map_runs: None,
            stop: None,
        },
    );
    (exec, clock)
}

fn pure_map(n: usize, fail_at: Option<usize>) -> (Value, Value) {
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items",
        "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index", "k.$": "$.k"},
        "ItemProcessor": {"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "NumericEquals": fail_at.map(|f| f as i64).unwrap_or(-1), "Next": "F"}], "Default": "P"},
            "P": {"Type": "Pass", "Parameters": {"s.$": "States.MathAdd($.v, $.i)", "k.$": "$.k"}, "End": true},
            "F": {"Type": "Fail", "Error": "Bad", "Cause": "item failed"}
        }},
        "ResultSelector": {"n.$": "States.ArrayLength($)", "last.$": "$[-1:]", "first.$": "$[0]"},
        "End": true}}});
    let items: Vec<usize> = (0..n).collect();
    (def, json!({"items": items, "k": "x"}))
}

#[test]
fn pure_inline_map_on_all_cores_matches_the_sequential_result() {
    struct Never;
    impl TaskInvoker for Never {
        fn invoke(&self, r: &TaskRequest) -> TaskOutcome {
            handlers::no_integration(r)
        }
    }
    let (def, input) = pure_map(2000, None);
    // Recording history forces the sequential path: both must agree, ids included.
    let (fast, _) = run_with(def.clone(), input.clone(), &Never, false);
    let (slow, _) = run_with(def, input, &Never, true);
    assert_eq!(fast.status, ExecutionStatus::Succeeded);
    assert_eq!(fast.output, slow.output);
    assert_eq!(fast.output.as_ref().unwrap()["n"], json!(2000));
    assert_eq!(
        fast.output.as_ref().unwrap()["first"],
        json!({"s": 0, "k": "x"})
    );
    assert_eq!(
        fast.output.as_ref().unwrap()["last"],
        json!([{"s": 3998, "k": "x"}])
    );
    assert_eq!(fast.history.last_id, slow.history.last_id);
}

#[test]
fn failing_iteration_falls_back_to_the_exact_path() {
    struct Never;
    impl TaskInvoker for Never {
        fn invoke(&self, r: &TaskRequest) -> TaskOutcome {
            handlers::no_integration(r)
        }
    }
    let (def, input) = pure_map(1500, Some(1234));
    let (fast, _) = run_with(def.clone(), input.clone(), &Never, false);
    let (slow, _) = run_with(def, input, &Never, true);
    assert_eq!(fast.status, ExecutionStatus::Failed);
    assert_eq!(fast.error.as_deref(), Some("Bad"));
    assert_eq!(
        (fast.error, fast.cause, fast.history.last_id),
        (slow.error, slow.cause, slow.history.last_id)
    );
}

/// Fails the first `n` calls, then succeeds; records when each call happened.
struct Flaky {
    left: Mutex<u32>,
    calls: Mutex<Vec<String>>,
}

impl TaskInvoker for Flaky {
    fn invoke(&self, r: &TaskRequest) -> TaskOutcome {
        let mut left = self.left.lock().unwrap();
        self.calls.lock().unwrap().push(r.input.to_string());
        if *left > 0 {
            *left -= 1;
            TaskOutcome::Failed {
                error: Some("Flaky".into()),
                cause: Some("try again".into()),
            }
        } else {
            TaskOutcome::Succeeded(json!({"ok": true}))
        }
    }
}

#[test]
fn retry_backoff_runs_on_the_virtual_clock() {
    let def = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "f", "Payload": {"attempt.$": "$$.State.RetryCount"}},
        "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 3}],
        "End": true}}});
    let flaky = Flaky {
        left: Mutex::new(2),
        calls: Mutex::new(Vec::new()),
    };
    let (exec, clock) = run_with(def, json!({}), &flaky, false);
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{:?}", exec.cause);
    let calls = flaky.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    assert!(calls[2].contains("\"attempt\":2"), "{calls:?}");
    // 2 s, then 6 s of back-off elapsed on the virtual clock.
    assert_eq!(
        (clock.now() - Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()).num_seconds(),
        8
    );
}

#[test]
fn exhausted_retries_go_to_catch() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": "f"},
              "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}],
              "Catch": [{"ErrorEquals": ["Flaky"], "ResultPath": "$.err", "Next": "Done"}],
              "End": true},
        "Done": {"Type": "Succeed"}}});
    let flaky = Flaky {
        left: Mutex::new(5),
        calls: Mutex::new(Vec::new()),
    };
    let (exec, _) = run_with(def, json!({"a": 1}), &flaky, false);
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    assert_eq!(
        exec.output,
        Some(json!({"a": 1, "err": {"Error": "Flaky", "Cause": "try again"}}))
    );
    assert_eq!(flaky.calls.lock().unwrap().len(), 2);
}

#[test]
fn task_timeout_and_execution_timeout() {
    struct Hang;
    impl TaskInvoker for Hang {
        fn invoke(&self, _r: &TaskRequest) -> TaskOutcome {
            TaskOutcome::NoResponse
        }
    }
    let def = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "f"},
        "TimeoutSeconds": 30, "End": true}}});
    let (exec, _) = run_with(def, json!({}), &Hang, false);
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert_eq!(exec.error.as_deref(), Some("States.Timeout"));

    let def = json!({"TimeoutSeconds": 5, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": true}}});
    let (exec, _) = run_with(def, json!({}), &Hang, false);
    assert_eq!(exec.status, ExecutionStatus::TimedOut);
}

#[test]
fn a_saved_execution_resumes_where_it_stopped() {
    // Run until the task is in flight, save, reload, and finish it.
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "T"},
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "f"},
              "ResultSelector": {"p.$": "$.Payload"}, "ResultPath": "$.t", "End": true}}});
    let machine = Arc::new(parse_definition(&def).unwrap());
    let now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let info = ExecutionInfo::local("M", "e", json!({}), now, ExecutionType::Standard);
    let mut exec = Execution::new(machine.clone(), def, info, true);
    let entropy = SeededEntropy::new(1);
    let env = Env {
        now,
        entropy: &entropy,
    };
    let actions = exec.apply(Event::Start, &env);
    let task = match &actions[..] {
        [Action::InvokeTask(req)] => req.task,
        other => panic!("expected one task, got {other:?}"),
    };
    let saved = serde_json::to_string(&exec).unwrap();
    let mut loaded: Execution = serde_json::from_str(&saved).unwrap();
    loaded.attach(machine);
    assert!(matches!(&loaded.pending_actions()[..], [Action::InvokeTask(r)] if r.task == task));
    loaded.apply(
        Event::TaskSucceeded {
            task,
            output: json!({"Payload": 7}),
        },
        &env,
    );
    assert_eq!(loaded.status, ExecutionStatus::Succeeded);
    assert_eq!(loaded.output, Some(json!({"a": 1, "t": {"p": 7}})));
    // A duplicate completion is ignored.
    assert!(loaded
        .apply(
            Event::TaskSucceeded {
                task,
                output: json!({})
            },
            &env
        )
        .is_empty());
}

#[test]
fn payload_limit_check_agrees_with_the_serialized_size() {
    use super::execution::{exceeds_payload_limit, json_size, PAYLOAD_LIMIT};
    let cases = [
        json!("x".repeat(PAYLOAD_LIMIT - 2)),
        json!("x".repeat(PAYLOAD_LIMIT - 1)),
        json!("\n".repeat(PAYLOAD_LIMIT / 2 - 1)),
        json!("\n".repeat(PAYLOAD_LIMIT / 2)),
        json!({"a": "é".repeat(60_000), "b": [1, 2.5, null, true]}),
        json!((0..40_000).collect::<Vec<_>>()),
    ];
    for v in cases {
        assert_eq!(
            exceeds_payload_limit(&v),
            json_size(&v) > PAYLOAD_LIMIT,
            "size {}",
            json_size(&v)
        );
    }
}

#[test]
fn lean_iterations_match_the_exact_path() {
    struct Never;
    impl TaskInvoker for Never {
        fn invoke(&self, r: &TaskRequest) -> TaskOutcome {
            handlers::no_integration(r)
        }
    }
    for n in [3usize, 700] {
        let def = json!({"StartAt": "M", "States": {"M": {
            "Type": "Map", "ItemsPath": "$.items",
            "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index", "state.$": "$$.State.Name"},
            "ItemProcessor": {"StartAt": "P", "States": {
                "P": {"Type": "Pass", "InputPath": "$", "Parameters": {"v.$": "$.v", "i.$": "$.i", "name.$": "$$.State.Name", "label.$": "States.Format('n{}', $.v)"}, "ResultPath": "$.p", "OutputPath": "$.p", "Next": "C"},
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "NumericGreaterThan": 5, "Next": "Big"}], "Default": "S"},
                "Big": {"Type": "Pass", "Result": {"size": "big"}, "ResultPath": "$.class", "Next": "S"},
                "S": {"Type": "Succeed", "OutputPath": "$"}
            }},
            "End": true}}});
        let items: Vec<usize> = (0..n).collect();
        let input = json!({"items": items});
        let (lean, _) = run_with(def.clone(), input.clone(), &Never, false);
        let (exact, _) = run_with(def, input, &Never, true);
        assert_eq!(lean.status, ExecutionStatus::Succeeded, "{:?}", lean.cause);
        assert_eq!(lean.output, exact.output);
        assert_eq!(
            lean.history.last_id, exact.history.last_id,
            "event ids must match for {n} items"
        );
    }
}

#[test]
fn lean_iterations_fall_back_exactly_on_errors() {
    struct Never;
    impl TaskInvoker for Never {
        fn invoke(&self, r: &TaskRequest) -> TaskOutcome {
            handlers::no_integration(r)
        }
    }
    // Item 600 matches no rule and there is no Default: States.NoChoiceMatched.
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items",
        "ItemProcessor": {"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericLessThan": 600, "Next": "S"},
                                                 {"Variable": "$", "NumericGreaterThan": 600, "Next": "S"}]},
            "S": {"Type": "Succeed"}
        }},
        "End": true}}});
    let items: Vec<usize> = (0..800).collect();
    let input = json!({"items": items});
    let (lean, _) = run_with(def.clone(), input.clone(), &Never, false);
    let (exact, _) = run_with(def, input, &Never, true);
    assert_eq!(lean.status, ExecutionStatus::Failed);
    assert_eq!(lean.error.as_deref(), Some("States.NoChoiceMatched"));
    assert_eq!(
        (&lean.error, &lean.cause, lean.history.last_id),
        (&exact.error, &exact.cause, exact.history.last_id)
    );
}

/// Fails the first call whose input has `"fail": true`; counts calls per input.
struct FailOnce {
    failed: Mutex<bool>,
    calls: Mutex<Vec<Value>>,
}

impl TaskInvoker for FailOnce {
    fn invoke(&self, r: &TaskRequest) -> TaskOutcome {
        self.calls.lock().unwrap().push(r.input.clone());
        let mut failed = self.failed.lock().unwrap();
        if r.input["fail"] == json!(true) && !*failed {
            *failed = true;
            return TaskOutcome::Failed {
                error: Some("Boom".into()),
                cause: Some("first time".into()),
            };
        }
        TaskOutcome::Succeeded(json!({"done": r.input["id"]}))
    }
}

fn redrive_once(def: Value, input: Value) -> (Execution, Vec<Value>, usize) {
    let invoker = FailOnce {
        failed: Mutex::new(false),
        calls: Mutex::new(Vec::new()),
    };
    let (mut exec, clock) = run_with(def, input, &invoker, false);
    assert_eq!(exec.status, ExecutionStatus::Failed, "{:?}", exec.cause);
    let first = invoker.calls.lock().unwrap().len();
    assert!(exec.redrivable().is_ok());
    let entropy = SeededEntropy::new(9);
    run_to_completion(
        &mut exec,
        vec![Event::Redrive],
        RunOptions {
            time: TimeMode::Virtual(&clock),
            entropy: &entropy,
            invoker: &invoker,
            callbacks: None,
            on_change: None,
            map_runs: None,
            stop: None,
        },
    );
    let calls = invoker.calls.lock().unwrap().clone();
    (exec, calls, first)
}

#[test]
fn redrive_reruns_only_the_failed_parallel_branch() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "a", "End": true}}},
        {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "f", "id": "t", "fail": true}, "End": true}}},
        {"StartAt": "C", "States": {"C": {"Type": "Pass", "Result": "c", "End": true}}}
    ]}}});
    let (exec, calls, first) = redrive_once(def, json!({}));
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{:?}", exec.cause);
    assert_eq!(exec.info.redrive_count, 1);
    assert_eq!(
        (first, calls.len()),
        (1, 2),
        "only the failed branch runs again"
    );
    assert_eq!(exec.output, Some(json!(["a", {"done": "t"}, "c"])));
}

#[test]
fn redrive_reruns_only_failed_and_unstarted_map_iterations() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, "End": true,
        "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "f", "id.$": "$.id", "fail.$": "$.fail"}, "End": true}}}}}});
    let input = json!({"items": [{"id": 1, "fail": false}, {"id": 2, "fail": true}, {"id": 3, "fail": false}]});
    let (exec, calls, first) = redrive_once(def, input);
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{:?}", exec.cause);
    assert_eq!(
        first, 2,
        "item 1 succeeded, item 2 failed, item 3 never started"
    );
    let rerun: Vec<i64> = calls[first..]
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(rerun, vec![2, 3]);
    assert_eq!(
        exec.output,
        Some(json!([{"done": 1}, {"done": 2}, {"done": 3}]))
    );
}

/// A stop signal suspends a Distributed Map's execution at a checkpoint (it stays RUNNING,
/// it does not fail); resumed, it finishes with every item's output, in order.
#[test]
fn a_stopped_execution_resumes_its_map_run_from_the_checkpoint() {
    use crate::engine::distributed::MapRunPorts;
    use crate::maprun::checkpoint::SqliteStore;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct NoTasks;
    impl TaskInvoker for NoTasks {
        fn invoke(&self, r: &TaskRequest) -> TaskOutcome {
            crate::engine::handlers::no_integration(r)
        }
    }
    let n = 400usize;
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 10,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v.$": "$"}, "End": true}}},
        "End": true}}});
    let input = json!({"items": (0..n).collect::<Vec<usize>>()});
    let machine = Arc::new(parse_definition(&def).expect("valid definition"));
    let clock = crate::ports::SystemClock;
    let info = ExecutionInfo::local("M", "e", input, clock.now(), ExecutionType::Standard);
    let mut exec = Execution::new(machine.clone(), def, info, false);
    let store = SqliteStore::in_memory().expect("store");
    let data: Arc<dyn crate::storage::ObjectStore> = Arc::new(
        crate::storage::LocalFolderStore::new(std::env::temp_dir().join("mapfleet-no-buckets")),
    );
    let entropy = SeededEntropy::new(5);
    let asked = AtomicUsize::new(0);
    let stop = || asked.fetch_add(1, Ordering::SeqCst) >= 5;
    let run =
        |exec: &mut Execution, initial: Vec<Event>, stop: Option<&(dyn Fn() -> bool + Sync)>| {
            let mut ports = MapRunPorts::local(data.clone(), &store);
            ports.workers = 2;
            ports.stop = stop;
            run_to_completion(
                exec,
                initial,
                RunOptions {
                    time: TimeMode::Real(&clock),
                    entropy: &entropy,
                    invoker: &NoTasks,
                    callbacks: None,
                    on_change: None,
                    map_runs: Some(&ports),
                    stop,
                },
            );
        };
    run(&mut exec, vec![Event::Start], Some(&stop));
    assert_eq!(exec.status, ExecutionStatus::Running, "{:?}", exec.error);
    // Resumed as a new process would: from the snapshot.
    let text = serde_json::to_string(&exec).expect("snapshot");
    let mut resumed: Execution = serde_json::from_str(&text).expect("snapshot");
    resumed.attach(machine);
    run(&mut resumed, Vec::new(), None);
    assert_eq!(
        resumed.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        resumed.cause
    );
    let expected: Vec<Value> = (0..n).map(|i| json!({"v": i})).collect();
    assert_eq!(resumed.output, Some(Value::Array(expected)));
}
