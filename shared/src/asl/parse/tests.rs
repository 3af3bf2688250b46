//! Tests of definition parsing and validation.

use serde_json::{json, Value};

use super::super::diagnostic::Diagnostic;
use super::super::model::*;
use super::{parse_definition, parse_definition_str, validate, validate_str};

fn ok(def: Value) -> StateMachine {
    match parse_definition(&def) {
        Ok(m) => m,
        Err(d) => panic!("expected a valid definition, got:\n{}", render(&d)),
    }
}

fn render(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("  {d}\n")).collect()
}

/// Asserts that the definition is rejected with (at least) `code` at `location`.
fn fails(def: Value, code: &str, location: &str) -> Vec<Diagnostic> {
    let diags = validate(&def);
    assert!(
        diags
            .iter()
            .any(|d| d.code == code && d.location == location),
        "expected {code} at {location}, got:\n{}",
        render(&diags)
    );
    diags
}

/// Like [`fails`], and the message contains `text`.
fn fails_with(def: Value, code: &str, location: &str, text: &str) {
    let diags = validate(&def);
    assert!(
        diags
            .iter()
            .any(|d| d.code == code && d.location == location && d.message.contains(text)),
        "expected {code} at {location} containing {text:?}, got:\n{}",
        render(&diags)
    );
}

const SCHEMA: &str = "SCHEMA_VALIDATION_FAILED";
const TARGET: &str = "MISSING_TRANSITION_TARGET";

/// A machine whose start state is `state` named `S`, plus a `Done` Succeed state when `state`
/// refers to it.
fn one(state: Value) -> Value {
    let mut states = serde_json::Map::new();
    let uses_done = state.to_string().contains("\"Done\"");
    states.insert("S".to_string(), state);
    if uses_done {
        states.insert("Done".to_string(), json!({"Type": "Succeed"}));
    }
    json!({"StartAt": "S", "States": states})
}

/// Same, with a JSONata top level.
fn one_ja(state: Value) -> Value {
    let mut m = one(state);
    m["QueryLanguage"] = json!("JSONata");
    m
}

fn kind(m: &StateMachine, name: &str) -> StateKind {
    m.state(m.id_of(name).unwrap_or_else(|| panic!("no state {name}")))
        .kind
        .clone()
}

// ---------------------------------------------------------------------------------------------
// Valid definitions, per state type and query language
// ---------------------------------------------------------------------------------------------

#[test]
fn valid_pass_jsonpath() {
    let m = ok(json!({
        "Comment": "c", "Version": "1.0", "TimeoutSeconds": 30,
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.r", "InputPath": "$", "OutputPath": "$.r",
                   "Assign": {"v": 1, "w.$": "$.x"}, "Next": "B"},
            "B": {"Type": "Pass", "Parameters": {"a.$": "$.r", "b": "lit"}, "InputPath": null, "OutputPath": null, "ResultPath": null, "End": true}
        }
    }));
    assert_eq!(m.start_at, 0);
    assert_eq!(m.timeout_seconds, Some(30));
    assert_eq!(m.version.as_deref(), Some("1.0"));
    assert_eq!(m.comment.as_deref(), Some("c"));
    assert_eq!(m.query_language, QueryLanguage::JsonPath);
    let StateKind::Pass(a) = kind(&m, "A") else {
        panic!()
    };
    assert_eq!(a.result, Some(json!({"x": 1})));
    assert_eq!(a.transition, Transition::Next(1));
    assert!(matches!(a.io.result_path, PathField::Path(_)));
    assert!(matches!(a.io.assign, Some(Template::JsonPath(_))));
    let StateKind::Pass(b) = kind(&m, "B") else {
        panic!()
    };
    assert!(matches!(b.io.parameters, Some(Template::JsonPath(_))));
    assert!(matches!(b.io.input_path, PathField::Null));
    assert!(matches!(b.io.output_path, PathField::Null));
    assert!(matches!(b.io.result_path, PathField::Null));
    assert_eq!(b.transition, Transition::End);
}

#[test]
fn valid_pass_jsonata() {
    let m = ok(json!({
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Output": {"x": "{% $states.input.a %}"}, "Assign": {"v": "{% 1 + 1 %}"}, "Next": "B"},
            "B": {"Type": "Pass", "Output": "{% $v %}", "End": true}
        }
    }));
    assert_eq!(m.query_language, QueryLanguage::Jsonata);
    let a = m.state(0);
    assert_eq!(a.query_language, QueryLanguage::Jsonata);
    let StateKind::Pass(p) = &a.kind else {
        panic!()
    };
    assert!(p.io.output.is_some());
    assert!(matches!(p.io.assign, Some(Template::Jsonata(_))));
}

#[test]
fn valid_per_state_jsonata_in_jsonpath_machine() {
    let m = ok(json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% 1 %}", "Next": "B"},
            "B": {"Type": "Pass", "End": true}
        }
    }));
    assert_eq!(m.state(0).query_language, QueryLanguage::Jsonata);
    assert_eq!(m.state(1).query_language, QueryLanguage::JsonPath);
}

#[test]
fn valid_task_jsonpath() {
    let m = ok(one(json!({
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "f", "Payload.$": "$"},
        "Credentials": {"RoleArn.$": "$.role"},
        "ResultSelector": {"p.$": "$.Payload"},
        "ResultPath": "$.out", "OutputPath": "$.out",
        "TimeoutSecondsPath": "$.timeout", "HeartbeatSeconds": 5,
        "Retry": [
            {"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 1.5,
             "MaxDelaySeconds": 10, "JitterStrategy": "FULL", "Comment": "r"},
            {"ErrorEquals": ["States.ALL"]}
        ],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Done", "Assign": {"e.$": "$.Error"}}],
        "Next": "Done"
    })));
    let StateKind::Task(t) = kind(&m, "S") else {
        panic!()
    };
    assert_eq!(t.resource, "arn:aws:states:::lambda:invoke");
    assert!(matches!(t.timeout_seconds, Some(Dynamic::Path(_))));
    assert!(matches!(t.heartbeat_seconds, Some(Dynamic::Literal(5))));
    assert!(t.credentials.is_some());
    assert_eq!(t.retry.len(), 2);
    assert_eq!(t.retry[0].interval_seconds, 2);
    assert_eq!(t.retry[0].max_attempts, 4);
    assert_eq!(t.retry[0].backoff_rate, 1.5);
    assert_eq!(t.retry[0].max_delay_seconds, Some(10));
    assert_eq!(t.retry[0].jitter, Jitter::Full);
    assert_eq!(t.retry[1].interval_seconds, 1);
    assert_eq!(t.retry[1].max_attempts, 3);
    assert_eq!(t.retry[1].backoff_rate, 2.0);
    assert_eq!(t.retry[1].jitter, Jitter::None);
    assert_eq!(t.catch[0].next, 1);
    assert!(matches!(t.catch[0].result_path, PathField::Path(_)));
    assert_eq!(t.transition, Transition::Next(1));
}

#[test]
fn valid_task_jsonata() {
    let m = ok(one_ja(json!({
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Arguments": {"FunctionName": "f", "Payload": "{% $states.input %}"},
        "Output": "{% $states.result.Payload %}",
        "Assign": {"x": "{% $states.result %}"},
        "TimeoutSeconds": "{% 10 %}", "HeartbeatSeconds": 2,
        "Credentials": {"RoleArn": "{% $role %}"},
        "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 0}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Output": "{% $states.errorOutput %}", "Assign": {"err": "{% $states.errorOutput %}"}, "Next": "Done"}],
        "End": true
    })));
    let StateKind::Task(t) = kind(&m, "S") else {
        panic!()
    };
    assert!(matches!(t.io.parameters, Some(Template::Jsonata(_))));
    assert!(matches!(t.timeout_seconds, Some(Dynamic::Jsonata(_))));
    assert!(t.catch[0].output.is_some());
    assert_eq!(t.transition, Transition::End);
    // Arguments may be a single expression.
    ok(one_ja(
        json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Arguments": "{% $states.input %}", "Next": "Done"}),
    ));
}

#[test]
fn valid_choice_jsonpath() {
    let m = ok(json!({
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "InputPath": "$", "OutputPath": "$", "Assign": {"seen": true},
                  "Choices": [
                    {"Variable": "$.n", "NumericGreaterThan": 1, "Next": "A", "Assign": {"big": true}, "Comment": "c"},
                    {"And": [{"Variable": "$.s", "IsPresent": true}, {"Variable": "$.s", "StringMatches": "a*"}], "Next": "B"},
                    {"Not": {"Variable": "$$.Execution.Name", "StringEqualsPath": "$.name"}, "Next": "A"},
                    {"Or": [{"Variable": "$v", "BooleanEquals": false}, {"Variable": "$.t", "TimestampLessThan": "2024-01-01T00:00:00Z"}], "Next": "B"}
                  ],
                  "Default": "B"},
            "A": {"Type": "Succeed"},
            "B": {"Type": "Fail", "Error": "E", "Cause": "C"}
        }
    }));
    let StateKind::Choice(c) = kind(&m, "C") else {
        panic!()
    };
    assert_eq!(c.choices.len(), 4);
    assert_eq!(c.default, Some(2));
    assert_eq!(c.choices[0].next, 1);
    assert_eq!(c.choices[0].comment.as_deref(), Some("c"));
    assert!(c.choices[0].assign.is_some());
    assert!(matches!(
        &c.choices[0].rule,
        ChoiceRule::Compare {
            op: ComparisonOp::NumericGreaterThan,
            operand: Operand::Literal(_),
            ..
        }
    ));
    assert!(matches!(&c.choices[1].rule, ChoiceRule::And(v) if v.len() == 2));
    let ChoiceRule::Not(inner) = &c.choices[2].rule else {
        panic!()
    };
    assert!(matches!(
        **inner,
        ChoiceRule::Compare {
            op: ComparisonOp::StringEquals,
            operand: Operand::Path(_),
            ..
        }
    ));
    assert!(matches!(&c.choices[3].rule, ChoiceRule::Or(_)));
}

#[test]
fn valid_every_operator() {
    let mut choices = Vec::new();
    for op in ComparisonOp::ALL {
        let literal = match op.name() {
            n if n.starts_with("Boolean") || n.starts_with("Is") => json!(true),
            n if n.starts_with("Numeric") => json!(1.5),
            n if n.starts_with("Timestamp") => json!("2016-03-14T01:59:00Z"),
            _ => json!("x"),
        };
        choices.push(json!({"Variable": "$.v", op.name(): literal, "Next": "Done"}));
        if op.has_path_variant() {
            choices.push(
                json!({"Variable": "$.v", format!("{}Path", op.name()): "$.w", "Next": "Done"}),
            );
        }
    }
    assert_eq!(choices.len(), 23 + 16);
    ok(one(json!({"Type": "Choice", "Choices": choices})));
}

#[test]
fn valid_choice_jsonata() {
    let m = ok(json!({
        "QueryLanguage": "JSONata",
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Output": "{% $states.input %}", "Assign": {"a": 1},
                  "Choices": [
                    {"Condition": "{% $states.input.n > 1 %}", "Next": "A", "Assign": {"b": 2}, "Output": {"x": 1}, "Comment": "c"},
                    {"Condition": true, "Next": "A"}
                  ],
                  "Default": "A"},
            "A": {"Type": "Succeed", "Output": "{% 1 %}"}
        }
    }));
    let StateKind::Choice(c) = kind(&m, "C") else {
        panic!()
    };
    assert!(matches!(c.choices[0].rule, ChoiceRule::Condition(_)));
    assert!(c.choices[0].output.is_some());
    assert!(c.io.output.is_some());
}

#[test]
fn valid_wait_jsonpath() {
    for w in [
        json!({"Seconds": 0}),
        json!({"Seconds": 99999999}),
        json!({"SecondsPath": "$.s"}),
        json!({"Timestamp": "2016-03-14T01:59:00Z"}),
        json!({"Timestamp": "2016-03-05T21:29:29.243167252Z"}),
        json!({"Timestamp": "2016-03-14T01:59:00+02:00"}),
        json!({"TimestampPath": "$.t"}),
    ] {
        let mut state = json!({"Type": "Wait", "Next": "Done", "Assign": {"x": 1}, "InputPath": "$", "OutputPath": "$"});
        for (k, v) in w.as_object().unwrap() {
            state[k] = v.clone();
        }
        let m = ok(one(state));
        let StateKind::Wait(wait) = kind(&m, "S") else {
            panic!()
        };
        assert_eq!(wait.transition, Transition::Next(1));
    }
}

#[test]
fn valid_wait_jsonata() {
    for w in [
        json!({"Seconds": "{% $states.input.s %}"}),
        json!({"Seconds": 3}),
        json!({"Timestamp": "{% $states.input.t %}"}),
        json!({"Timestamp": "2016-03-14T01:59:00Z"}),
    ] {
        let mut state = json!({"Type": "Wait", "End": true, "Output": {"a": 1}});
        for (k, v) in w.as_object().unwrap() {
            state[k] = v.clone();
        }
        let m = ok(one_ja(state));
        let StateKind::Wait(wait) = kind(&m, "S") else {
            panic!()
        };
        assert!(wait.io.output.is_some());
    }
}

#[test]
fn valid_succeed_and_fail() {
    let m = ok(json!({
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": true, "Next": "S"}], "Default": "F1"},
            "S": {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b", "Comment": "ok"},
            "F1": {"Type": "Fail", "ErrorPath": "$.error", "CausePath": "States.Format('bad {}', $.x)", "Comment": "x"}
        }
    }));
    let _ = m;
}

#[test]
fn valid_fail_variants() {
    let m = ok(json!({
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": true, "Next": "F1"}, {"Variable": "$.x", "IsNull": false, "Next": "F3"}], "Default": "F2"},
            "F1": {"Type": "Fail", "Error": "E", "Cause": "C"},
            "F2": {"Type": "Fail", "ErrorPath": "$.error", "CausePath": "States.Format('bad {}', $.x)"},
            "F3": {"Type": "Fail"}
        }
    }));
    let StateKind::Fail(f1) = kind(&m, "F1") else {
        panic!()
    };
    assert!(matches!(f1.error, Some(DynString::Literal(ref s)) if s == "E"));
    let StateKind::Fail(f2) = kind(&m, "F2") else {
        panic!()
    };
    assert!(matches!(f2.error, Some(DynString::Path(_))));
    assert!(matches!(f2.cause, Some(DynString::Path(_))));
    let StateKind::Fail(f3) = kind(&m, "F3") else {
        panic!()
    };
    assert!(f3.error.is_none() && f3.cause.is_none());
    // Every allowed intrinsic.
    for f in [
        "States.Format('{}', $.a)",
        "States.JsonToString($.a)",
        "States.ArrayGetItem($.a, 0)",
        "States.Base64Encode($.a)",
        "States.Base64Decode($.a)",
        "States.Hash($.a, 'SHA-1')",
        "States.UUID()",
    ] {
        ok(json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "CausePath": f}}}));
    }
    // JSONata.
    let m = ok(
        json!({"QueryLanguage": "JSONata", "StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "{% 'E' & 'x' %}", "Cause": "plain"}}}),
    );
    let StateKind::Fail(f) = kind(&m, "F") else {
        panic!()
    };
    assert!(matches!(f.error, Some(DynString::Jsonata(_))));
    assert!(matches!(f.cause, Some(DynString::Literal(_))));
}

#[test]
fn valid_parallel_both_languages() {
    let m = ok(one(json!({
        "Type": "Parallel",
        "Parameters": {"a.$": "$.a"}, "ResultSelector": {"r.$": "$[0]"}, "ResultPath": "$.p",
        "Branches": [
            {"Comment": "b0", "StartAt": "B0", "States": {"B0": {"Type": "Pass", "Next": "B1"}, "B1": {"Type": "Succeed"}}},
            {"StartAt": "C0", "States": {"C0": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% 1 %}", "End": true}}}
        ],
        "Retry": [{"ErrorEquals": ["States.ALL"]}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}],
        "Next": "Done"
    })));
    let StateKind::Parallel(p) = kind(&m, "S") else {
        panic!()
    };
    assert_eq!(p.branches.len(), 2);
    assert_eq!(p.branches[0].comment.as_deref(), Some("b0"));
    assert_eq!(p.branches[0].start_at, 0);
    assert_eq!(p.branches[0].id_of("B1"), Some(1));
    let StateKind::Pass(b0) = &p.branches[0].states[0].kind else {
        panic!()
    };
    assert_eq!(b0.transition, Transition::Next(1));
    assert_eq!(
        p.branches[1].states[0].query_language,
        QueryLanguage::Jsonata
    );

    ok(one_ja(json!({
        "Type": "Parallel", "Arguments": {"a": "{% $states.input %}"}, "Output": "{% $states.result %}",
        "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Pass", "End": true}}}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}],
        "End": true
    })));
}

#[test]
fn valid_map_inline_jsonpath() {
    let m = ok(one(json!({
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1,
        "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "ResultSelector": {"n.$": "States.ArrayLength($)"},
        "ResultPath": "$.out",
        "Next": "Done"
    })));
    let StateKind::Map(map) = kind(&m, "S") else {
        panic!()
    };
    assert_eq!(map.processor_config.mode, ProcessorMode::Inline);
    assert!(matches!(map.items, Some(ItemsSource::Path(_))));
    assert!(matches!(map.item_selector, Some(Template::JsonPath(_))));
    assert!(matches!(map.max_concurrency, Some(Dynamic::Literal(1))));
    assert_eq!(map.item_processor.states.len(), 1);
    assert_eq!(
        map.item_processor.states[0].query_language,
        QueryLanguage::JsonPath
    );
}

#[test]
fn valid_map_legacy_iterator_parameters() {
    let m = ok(one(json!({
        "Type": "Map", "Parameters": {"v.$": "$$.Map.Item.Value"},
        "Iterator": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true
    })));
    let StateKind::Map(map) = kind(&m, "S") else {
        panic!()
    };
    assert!(map.item_selector.is_some());
    assert!(map.io.parameters.is_none());
    assert!(map.items.is_none());
    // Iterator with a ProcessorConfig runs distributed.
    let m = ok(one(json!({
        "Type": "Map",
        "Iterator": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true
    })));
    let StateKind::Map(map) = kind(&m, "S") else {
        panic!()
    };
    assert_eq!(map.processor_config.mode, ProcessorMode::Distributed);
    assert_eq!(map.processor_config.execution_type, ExecutionType::Express);
}

#[test]
fn valid_map_distributed_jsonpath() {
    let m = ok(one(json!({
        "Type": "Map", "Label": "TestMap",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "b"], "CSVDelimiter": "PIPE", "MaxItemsPath": "$.max"},
                       "Parameters": {"Bucket.$": "$.bucket", "Key": "k"}},
        "ItemBatcher": {"MaxItemsPerBatchPath": "$.n", "MaxInputBytesPerBatch": 1000, "BatchInput": {"a": 1}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b", "Prefix": "p"},
                         "WriterConfig": {"OutputType": "JSONL", "Transformation": "FLATTEN"}},
        "ToleratedFailurePercentagePath": "$.pct", "ToleratedFailureCount": 3, "MaxConcurrencyPath": "$.mc",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true
    })));
    let StateKind::Map(map) = kind(&m, "S") else {
        panic!()
    };
    assert_eq!(map.processor_config.mode, ProcessorMode::Distributed);
    assert_eq!(map.processor_config.execution_type, ExecutionType::Standard);
    assert_eq!(map.label.as_deref(), Some("TestMap"));
    assert!(map.item_reader.is_some() && map.item_batcher.is_some() && map.result_writer.is_some());
    assert!(matches!(
        map.tolerated_failure_percentage,
        Some(Dynamic::Path(_))
    ));
    assert!(matches!(
        map.tolerated_failure_count,
        Some(Dynamic::Literal(3))
    ));
    assert!(matches!(map.max_concurrency, Some(Dynamic::Path(_))));
    // WriterConfig alone; listing.
    ok(one(json!({
        "Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "b", "Prefix": "p"}},
        "ResultWriter": {"WriterConfig": {"OutputType": "JSON"}},
        "ToleratedFailurePercentage": 12.5,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true
    })));
}

#[test]
fn valid_map_jsonata() {
    let m = ok(one_ja(json!({
        "Type": "Map", "Items": "{% $states.input.items %}", "MaxConcurrency": "{% 2 %}",
        "ItemSelector": {"v": "{% $states.context.Map.Item.Value %}"},
        "ToleratedFailurePercentage": "{% 5 %}", "ToleratedFailureCount": 1,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Output": "{% $states.input %}", "End": true}}},
        "Output": "{% $states.result %}", "Assign": {"r": "{% $states.result %}"},
        "End": true
    })));
    let StateKind::Map(map) = kind(&m, "S") else {
        panic!()
    };
    assert!(matches!(map.items, Some(ItemsSource::Jsonata(_))));
    assert!(matches!(map.max_concurrency, Some(Dynamic::Jsonata(_))));
    assert!(matches!(
        map.tolerated_failure_percentage,
        Some(Dynamic::Jsonata(_))
    ));
    assert!(matches!(map.item_selector, Some(Template::Jsonata(_))));
    assert_eq!(
        map.item_processor.states[0].query_language,
        QueryLanguage::Jsonata
    );
    // Literal Items.
    ok(one_ja(json!({
        "Type": "Map", "Items": [1, "{% 2 %}", 3],
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true
    })));
}

#[test]
fn nested_states_take_the_top_level_language() {
    // A JSONata Map in a JSONPath machine: its processor's states default to JSONPath.
    let m = ok(one(json!({
        "Type": "Map", "QueryLanguage": "JSONata", "Items": [1],
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "End": true}}},
        "End": true
    })));
    let StateKind::Map(map) = kind(&m, "S") else {
        panic!()
    };
    assert_eq!(
        map.item_processor.states[0].query_language,
        QueryLanguage::JsonPath
    );
    assert_eq!(map.item_processor.query_language, QueryLanguage::JsonPath);
}

#[test]
fn appendix_a_reference_definitions() {
    ok(json!({
      "Comment": "Distributed Map reference (JSONPath)",
      "StartAt": "ProcessRatings",
      "States": {
        "ProcessRatings": {
          "Type": "Map",
          "Label": "Ratings",
          "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "CSVDelimiter": "COMMA", "MaxItemsPath": "$.limit"},
            "Parameters": { "Bucket.$": "$.bucket", "Key.$": "$.key" }
          },
          "ItemSelector": {
            "rowIndex.$": "$$.Map.Item.Index",
            "userId.$": "$$.Map.Item.Value.userId",
            "rating.$": "States.StringToJson($$.Map.Item.Value.rating)",
            "runId.$": "$$.Execution.Name"
          },
          "ItemBatcher": {"MaxItemsPerBatch": 100, "MaxInputBytesPerBatch": 131072, "BatchInput": { "source": "ratings.csv" }},
          "MaxConcurrency": 500,
          "ToleratedFailurePercentage": 5,
          "ItemProcessor": {
            "ProcessorConfig": { "Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS" },
            "StartAt": "ScoreBatch",
            "States": {
              "ScoreBatch": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": { "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:score", "Payload.$": "$" },
                "OutputPath": "$.Payload",
                "Retry": [
                  { "ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"],
                    "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2, "JitterStrategy": "FULL" }
                ],
                "End": true
              }
            }
          },
          "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": { "Bucket": "amzn-s3-demo-destination-bucket", "Prefix": "ratings-results" },
            "WriterConfig": { "OutputType": "JSON", "Transformation": "NONE" }
          },
          "ResultPath": "$.mapResult",
          "Catch": [ { "ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "ResultPath": "$.error", "Next": "Report" } ],
          "Next": "Report"
        },
        "Report": { "Type": "Pass", "End": true }
      }
    }));
    ok(json!({
      "QueryLanguage": "JSONata",
      "StartAt": "Audit",
      "States": {
        "Audit": {
          "Type": "Map",
          "ItemReader": {
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "ReaderConfig": { "InputType": "JSONL", "Transformation": "LOAD_AND_FLATTEN", "MaxItems": "{% $states.input.max %}" },
            "Arguments": { "Bucket": "amzn-s3-demo-bucket1", "Prefix": "{% $states.input.prefix %}" }
          },
          "ItemSelector": {
            "record": "{% $states.context.Map.Item.Value %}",
            "source": "{% $states.context.Map.Item.Source %}",
            "index": "{% $states.context.Map.Item.Index %}"
          },
          "MaxConcurrency": "{% $states.input.concurrency %}",
          "ToleratedFailureCount": 10,
          "ItemProcessor": {
            "ProcessorConfig": { "Mode": "DISTRIBUTED", "ExecutionType": "STANDARD" },
            "StartAt": "Check",
            "States": {
              "Check": {
                "Type": "Choice",
                "Choices": [ { "Condition": "{% $states.input.record.level = 'ERROR' %}", "Next": "Alert" } ],
                "Default": "Ok"
              },
              "Alert": {
                "Type": "Task",
                "Resource": "arn:aws:states:::http:invoke",
                "Arguments": {
                  "ApiEndpoint": "https://hooks.example.com/alert",
                  "Method": "POST",
                  "InvocationConfig": { "ConnectionArn": "arn:aws:events:us-east-1:123456789012:connection/alerts/abc" },
                  "RequestBody": "{% $states.input %}"
                },
                "Retry": [ { "ErrorEquals": ["States.Http.StatusCode.429", "States.Http.StatusCode.503"], "MaxAttempts": 5, "JitterStrategy": "FULL" } ],
                "Output": "{% {'alerted': true, 'source': $states.input.source} %}",
                "End": true
              },
              "Ok": { "Type": "Succeed", "Output": "{% {'alerted': false} %}" }
            }
          },
          "Output": "{% {'alerts': $count($states.result[alerted]), 'total': $count($states.result)} %}",
          "End": true
        }
      }
    }));
}

// ---------------------------------------------------------------------------------------------
// Top level
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_non_object_definition() {
    fails_with(
        json!([1]),
        SCHEMA,
        "/",
        "Definition must be a valid JSON object",
    );
    fails_with(
        json!("x"),
        SCHEMA,
        "/",
        "Definition must be a valid JSON object",
    );
}

#[test]
fn rejects_missing_required_top_level_fields() {
    fails_with(
        json!({}),
        SCHEMA,
        "/",
        "These fields are required: [States, StartAt]",
    );
    fails_with(
        json!({"States": {"A": {"Type": "Succeed"}}}),
        SCHEMA,
        "/",
        "These fields are required: [StartAt]",
    );
}

#[test]
fn rejects_unknown_top_level_field() {
    fails_with(
        json!({"StartAt": "A", "Foo": 1, "States": {"A": {"Type": "Succeed"}}}),
        SCHEMA,
        "/Foo",
        "Field 'Foo' is not supported",
    );
}

#[test]
fn rejects_bad_top_level_values() {
    fails(
        json!({"StartAt": "A", "TimeoutSeconds": -1, "States": {"A": {"Type": "Succeed"}}}),
        SCHEMA,
        "/TimeoutSeconds",
    );
    fails(
        json!({"StartAt": "A", "TimeoutSeconds": "5", "States": {"A": {"Type": "Succeed"}}}),
        SCHEMA,
        "/TimeoutSeconds",
    );
    fails(
        json!({"StartAt": "A", "Version": "2.0", "States": {"A": {"Type": "Succeed"}}}),
        SCHEMA,
        "/Version",
    );
    fails(
        json!({"StartAt": "A", "Comment": 3, "States": {"A": {"Type": "Succeed"}}}),
        SCHEMA,
        "/Comment",
    );
    fails_with(
        json!({"StartAt": "A", "QueryLanguage": "jsonata", "States": {"A": {"Type": "Succeed"}}}),
        SCHEMA,
        "/QueryLanguage",
        "[JSONPath, JSONata]",
    );
    fails(
        json!({"StartAt": 1, "States": {"A": {"Type": "Succeed"}}}),
        SCHEMA,
        "/StartAt",
    );
    fails(json!({"StartAt": "A", "States": []}), SCHEMA, "/States");
}

#[test]
fn rejects_jsonpath_state_in_jsonata_machine() {
    fails_with(
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}}),
        SCHEMA,
        "/States/A",
        "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine",
    );
}

// ---------------------------------------------------------------------------------------------
// State fields
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_missing_or_bad_type() {
    fails_with(
        one(json!({"End": true})),
        SCHEMA,
        "/States/S",
        "These fields are required: [Type]",
    );
    fails(
        one(json!({"Type": "Sleep", "End": true})),
        SCHEMA,
        "/States/S/Type",
    );
    fails(one(json!("Pass")), SCHEMA, "/States/S");
}

#[test]
fn rejects_unknown_and_misplaced_fields() {
    fails_with(
        one(json!({"Type": "Pass", "Foo": 1, "End": true})),
        SCHEMA,
        "/States/S/Foo",
        "Field 'Foo' is not supported",
    );
    fails(
        one(json!({"Type": "Pass", "Retry": [], "End": true})),
        SCHEMA,
        "/States/S/Retry",
    );
    fails(
        one(json!({"Type": "Pass", "Resource": "arn:aws:states:::x:y", "End": true})),
        SCHEMA,
        "/States/S/Resource",
    );
    fails(
        one(json!({"Type": "Wait", "Seconds": 1, "ResultPath": "$.x", "End": true})),
        SCHEMA,
        "/States/S/ResultPath",
    );
    fails(
        one(json!({"Type": "Pass", "Arguments": {}, "End": true})),
        SCHEMA,
        "/States/S/Arguments",
    );
    fails(
        one(json!({"Type": "Succeed", "ResultPath": "$.x"})),
        SCHEMA,
        "/States/S/ResultPath",
    );
    fails(
        one(
            json!({"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": true, "Next": "Done"}], "ResultPath": "$"}),
        ),
        SCHEMA,
        "/States/S/ResultPath",
    );
    fails(
        one(
            json!({"Type": "Map", "Arguments": {}, "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true}),
        ),
        SCHEMA,
        "/States/S/Arguments",
    );
    fails(
        one(
            json!({"Type": "Parallel", "Items": [], "Branches": [{"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}], "End": true}),
        ),
        SCHEMA,
        "/States/S/Items",
    );
}

#[test]
fn rejects_assign_on_succeed_and_fail() {
    fails(
        one(json!({"Type": "Succeed", "Assign": {"x": 1}})),
        SCHEMA,
        "/States/S/Assign",
    );
    fails(
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Assign": {"x": 1}}}}),
        SCHEMA,
        "/States/F/Assign",
    );
}

#[test]
fn fail_accepts_only_its_fields() {
    for f in [
        "InputPath",
        "OutputPath",
        "Output",
        "Next",
        "End",
        "ResultPath",
    ] {
        let mut state = json!({"Type": "Fail", "Error": "E"});
        state[f] = json!("$");
        fails(
            json!({"StartAt": "F", "States": {"F": state}}),
            SCHEMA,
            &format!("/States/F/{f}"),
        );
    }
}

#[test]
fn rejects_jsonpath_only_fields_in_jsonata_states() {
    for (field, value) in [
        ("InputPath", json!("$")),
        ("OutputPath", json!("$")),
        ("ResultPath", json!("$")),
        ("Parameters", json!({})),
        ("ResultSelector", json!({})),
        ("Result", json!(1)),
    ] {
        let mut state =
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true});
        if field == "Result" {
            state = json!({"Type": "Pass", "End": true});
        }
        state[field] = value;
        fails_with(
            one_ja(state),
            SCHEMA,
            "/States/S",
            &format!("field '{field}' is only supported for the 'JSONPath' QueryLanguage"),
        );
    }
    fails(
        one_ja(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSecondsPath": "$.t", "End": true}),
        ),
        SCHEMA,
        "/States/S",
    );
    fails(
        one_ja(json!({"Type": "Wait", "SecondsPath": "$.t", "End": true})),
        SCHEMA,
        "/States/S",
    );
    fails(
        one_ja(
            json!({"Type": "Map", "ItemsPath": "$.t", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true}),
        ),
        SCHEMA,
        "/States/S",
    );
    fails(
        json!({"QueryLanguage": "JSONata", "StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e"}}}),
        SCHEMA,
        "/States/F",
    );
}

#[test]
fn rejects_jsonata_only_fields_in_jsonpath_states() {
    fails_with(
        one(json!({"Type": "Pass", "Output": {}, "End": true})),
        SCHEMA,
        "/States/S",
        "The QueryLanguage is set to 'JSONPath', but field 'Output' is only supported for the 'JSONata' QueryLanguage",
    );
    fails(
        one(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Arguments": {}, "End": true}),
        ),
        SCHEMA,
        "/States/S",
    );
    fails(
        one(
            json!({"Type": "Map", "Items": [], "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true}),
        ),
        SCHEMA,
        "/States/S",
    );
}

#[test]
fn dollar_keys_are_literal_in_jsonata_payloads() {
    // AWS keeps `a.$` as a plain key in JSONata payloads (conformance case BASE_LITERALS)...
    ok(one_ja(
        json!({"Type": "Pass", "Output": {"a.$": "$.x"}, "End": true}),
    ));
    ok(one_ja(
        json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Arguments": {"p": {"b.$": "$"}}, "End": true}),
    ));
    // ...but a variable name cannot contain a dot.
    fails(
        one_ja(json!({"Type": "Pass", "Assign": {"a.$": 1}, "End": true})),
        SCHEMA,
        "/States/S/Assign/a.$",
    );
}

#[test]
fn rejects_malformed_jsonata_delimiters() {
    fails_with(
        one_ja(json!({"Type": "Pass", "Output": {"a": "{% $x"}, "End": true})),
        SCHEMA,
        "/States/S/Output/a",
        "must start with {% and end with %}",
    );
    fails(
        one_ja(json!({"Type": "Wait", "Seconds": "{% 1", "End": true})),
        SCHEMA,
        "/States/S/Seconds",
    );
}

#[test]
fn rejects_literal_strings_for_numbers_in_jsonata() {
    fails_with(
        one_ja(json!({"Type": "Wait", "Seconds": "10", "End": true})),
        SCHEMA,
        "/States/S/Seconds",
        "Integer",
    );
    fails(
        one_ja(
            json!({"Type": "Map", "MaxConcurrency": "2", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true}),
        ),
        SCHEMA,
        "/States/S/MaxConcurrency",
    );
}

#[test]
fn rejects_jsonata_strings_in_jsonpath_number_fields() {
    fails(
        one(json!({"Type": "Wait", "Seconds": "{% 1 %}", "End": true})),
        SCHEMA,
        "/States/S/Seconds",
    );
}

// ---------------------------------------------------------------------------------------------
// Transitions
// ---------------------------------------------------------------------------------------------

#[test]
fn requires_exactly_one_of_next_and_end() {
    fails_with(
        one(json!({"Type": "Pass", "Next": "Done", "End": true})),
        SCHEMA,
        "/States/S",
        "[Next, End]",
    );
    fails_with(
        one(json!({"Type": "Pass"})),
        SCHEMA,
        "/States/S",
        "[Next, End]",
    );
    fails(
        one(json!({"Type": "Pass", "End": false})),
        SCHEMA,
        "/States/S",
    );
    fails(
        one(json!({"Type": "Pass", "End": "yes"})),
        SCHEMA,
        "/States/S/End",
    );
    // End false with Next is a plain Next.
    ok(one(json!({"Type": "Pass", "End": false, "Next": "Done"})));
}

#[test]
fn rejects_next_or_end_on_terminal_and_choice_states() {
    fails(
        one(
            json!({"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": true, "Next": "Done"}], "End": true}),
        ),
        SCHEMA,
        "/States/S/End",
    );
    fails(
        one(
            json!({"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": true, "Next": "Done"}], "Next": "Done"}),
        ),
        SCHEMA,
        "/States/S/Next",
    );
    fails(
        json!({"StartAt": "A", "States": {"A": {"Type": "Succeed", "Next": "A"}}}),
        SCHEMA,
        "/States/A/Next",
    );
    fails(
        json!({"StartAt": "A", "States": {"A": {"Type": "Fail", "End": true}}}),
        SCHEMA,
        "/States/A/End",
    );
}

#[test]
fn rejects_missing_transition_targets() {
    fails_with(
        one(json!({"Type": "Pass", "Next": "Nope"})),
        TARGET,
        "/States/S/Next",
        "Missing 'Next' target: Nope",
    );
    fails(
        json!({"StartAt": "Nope", "States": {"A": {"Type": "Succeed"}}}),
        TARGET,
        "/StartAt",
    );
    fails(
        one(
            json!({"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": true, "Next": "Done"}], "Default": "Nope"}),
        ),
        TARGET,
        "/States/S/Default",
    );
    fails(
        one(
            json!({"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": true, "Next": "Nope"}], "Default": "Done"}),
        ),
        TARGET,
        "/States/S/Choices/0/Next",
    );
    fails(
        one(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Nope"}], "Next": "Done"}),
        ),
        TARGET,
        "/States/S/Catch/0/Next",
    );
}

#[test]
fn transitions_never_leave_a_branch() {
    fails(
        one(
            json!({"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "Next": "Done"}}}], "Next": "Done"}),
        ),
        TARGET,
        "/States/S/Branches/0/States/B/Next",
    );
    fails(
        one(
            json!({"Type": "Map", "ItemProcessor": {"StartAt": "Done", "States": {"B": {"Type": "Succeed"}}}, "End": true}),
        ),
        TARGET,
        "/States/S/ItemProcessor/StartAt",
    );
}

#[test]
fn rejects_unreachable_states() {
    fails_with(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}, "B": {"Type": "Pass", "Next": "A"}}}),
        TARGET,
        "/States/B",
        "State \"B\" is not reachable.",
    );
    fails(
        one(
            json!({"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Succeed"}, "C": {"Type": "Succeed"}}}], "End": true}),
        ),
        TARGET,
        "/States/S/Branches/0/States/C",
    );
    // Reachable through Catch and Default.
    ok(json!({"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}], "Next": "B"},
        "B": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": true, "Next": "D"}], "Default": "E"},
        "C": {"Type": "Succeed"}, "D": {"Type": "Succeed"}, "E": {"Type": "Succeed"}
    }}));
}

#[test]
fn rejects_machine_without_terminal_state() {
    fails_with(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}}),
        "MISSING_END_STATE",
        "/",
        "Workflow has no terminal state",
    );
}

#[test]
fn rejects_long_state_names() {
    let long = "x".repeat(81);
    fails(
        json!({"StartAt": long.clone(), "States": {long.clone(): {"Type": "Succeed"}}}),
        "INVALID_STATE_NAME",
        &format!("/States/{long}"),
    );
    let ok80 = "y".repeat(80);
    ok(json!({"StartAt": ok80.clone(), "States": {ok80: {"Type": "Succeed"}}}));
}

#[test]
fn rejects_duplicate_state_names_across_branches() {
    fails_with(
        json!({"StartAt": "A", "States": {
            "A": {"Type": "Parallel", "Branches": [
                {"StartAt": "X", "States": {"X": {"Type": "Succeed"}}},
                {"StartAt": "X", "States": {"X": {"Type": "Succeed"}}}
            ], "End": true}
        }}),
        "DUPLICATE_STATE_NAME",
        "/States/A/Branches/1/States/X",
        "Duplicate State name: X",
    );
    fails(
        one(
            json!({"Type": "Map", "ItemProcessor": {"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}, "End": true}),
        ),
        "DUPLICATE_STATE_NAME",
        "/States/S/ItemProcessor/States/S",
    );
}

#[test]
fn rejects_duplicate_state_names_in_text() {
    let text = r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}, "A": {"Type": "Succeed"}}}"#;
    let diags = validate_str(text);
    assert!(
        diags
            .iter()
            .any(|d| d.code == "DUPLICATE_STATE_NAME" && d.location == "/States/A"),
        "{}",
        render(&diags)
    );
    // Duplicates elsewhere are not state names.
    let text = r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"k": 1, "k": 2}, "End": true}}}"#;
    assert!(parse_definition_str(text).is_ok());
}

#[test]
fn reports_text_errors() {
    let diags = validate_str("not a definition");
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, "INVALID_JSON_DESCRIPTION");
    let diags = validate_str("");
    assert_eq!(diags[0].code, SCHEMA);
    assert_eq!(diags[0].message, "Definition must be a valid JSON object");
    assert!(
        parse_definition_str(r#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}"#).is_ok()
    );
}

#[test]
fn rejects_too_deep_nesting() {
    let mut inner = json!({"StartAt": "L", "States": {"L": {"Type": "Succeed"}}});
    for i in 0..40 {
        inner = json!({"StartAt": format!("P{i}"), "States": {format!("P{i}"): {"Type": "Parallel", "Branches": [inner], "End": true}}});
    }
    let diags = validate(&inner);
    assert!(
        diags.iter().any(|d| d.code == "TOO_DEEPLY_NESTED"),
        "{}",
        render(&diags)
    );
}

// ---------------------------------------------------------------------------------------------
// Mutually exclusive fields and ranges
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_mutually_exclusive_fields() {
    let task = |extra: Value| {
        let mut s =
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        one(s)
    };
    fails_with(
        task(json!({"TimeoutSeconds": 5, "TimeoutSecondsPath": "$.t"})),
        SCHEMA,
        "/States/S",
        "[TimeoutSeconds, TimeoutSecondsPath]",
    );
    fails_with(
        task(json!({"HeartbeatSeconds": 5, "HeartbeatSecondsPath": "$.t"})),
        SCHEMA,
        "/States/S",
        "[HeartbeatSeconds, HeartbeatSecondsPath]",
    );
    let map = |extra: Value| {
        let mut s = json!({"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        one(s)
    };
    fails(
        map(json!({"MaxConcurrency": 1, "MaxConcurrencyPath": "$.m"})),
        SCHEMA,
        "/States/S",
    );
    fails(
        map(json!({"ToleratedFailurePercentage": 1, "ToleratedFailurePercentagePath": "$.m"})),
        SCHEMA,
        "/States/S",
    );
    fails(
        map(json!({"ToleratedFailureCount": 1, "ToleratedFailureCountPath": "$.m"})),
        SCHEMA,
        "/States/S",
    );
    fails_with(
        map(json!({"ItemSelector": {}, "Parameters": {}})),
        SCHEMA,
        "/States/S",
        "[ItemSelector, Parameters]",
    );
    fails_with(
        map(json!({"Iterator": {"StartAt": "Q", "States": {"Q": {"Type": "Succeed"}}}})),
        SCHEMA,
        "/States/S",
        "[ItemProcessor, Iterator]",
    );
    fails_with(
        one(json!({"Type": "Map", "End": true})),
        SCHEMA,
        "/States/S",
        "[ItemProcessor, Iterator]",
    );
    let fail = |extra: Value| json!({"StartAt": "F", "States": {"F": extra}});
    fails(
        fail(json!({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"})),
        SCHEMA,
        "/States/F",
    );
    fails(
        fail(json!({"Type": "Fail", "Cause": "E", "CausePath": "$.e"})),
        SCHEMA,
        "/States/F",
    );
    fails_with(
        one(
            json!({"Type": "Wait", "Seconds": 1, "Timestamp": "2016-03-14T01:59:00Z", "End": true}),
        ),
        SCHEMA,
        "/States/S",
        "There should only be one of the following fields",
    );
    fails(
        one(json!({"Type": "Wait", "SecondsPath": "$.a", "TimestampPath": "$.b", "End": true})),
        SCHEMA,
        "/States/S",
    );
    fails_with(
        one(json!({"Type": "Wait", "End": true})),
        SCHEMA,
        "/States/S",
        "[Seconds, Timestamp, SecondsPath, TimestampPath]",
    );
}

#[test]
fn heartbeat_must_be_smaller_than_timeout() {
    fails(
        one(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": 5, "HeartbeatSeconds": 5, "End": true}),
        ),
        SCHEMA,
        "/States/S/HeartbeatSeconds",
    );
    ok(one(
        json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": 6, "HeartbeatSeconds": 5, "End": true}),
    ));
}

#[test]
fn rejects_out_of_range_literals() {
    let task = |k: &str, v: Value| {
        let mut s =
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true});
        s[k] = v;
        one(s)
    };
    fails_with(
        task("TimeoutSeconds", json!(0)),
        SCHEMA,
        "/States/S/TimeoutSeconds",
        "Minimum value is 1",
    );
    fails_with(
        task("TimeoutSeconds", json!(100_000_000)),
        SCHEMA,
        "/States/S/TimeoutSeconds",
        "Maximum value is 99999999",
    );
    fails(
        task("TimeoutSeconds", json!(1.5)),
        SCHEMA,
        "/States/S/TimeoutSeconds",
    );
    fails(
        task("HeartbeatSeconds", json!(-3)),
        SCHEMA,
        "/States/S/HeartbeatSeconds",
    );
    fails(
        task("TimeoutSeconds", json!("5")),
        SCHEMA,
        "/States/S/TimeoutSeconds",
    );
    fails(
        one(json!({"Type": "Wait", "Seconds": -1, "End": true})),
        SCHEMA,
        "/States/S/Seconds",
    );
    fails(
        one(json!({"Type": "Wait", "Seconds": 100_000_000, "End": true})),
        SCHEMA,
        "/States/S/Seconds",
    );
    let map = |k: &str, v: Value| {
        let mut s = json!({"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true});
        s[k] = v;
        one(s)
    };
    fails(
        map("MaxConcurrency", json!(-1)),
        SCHEMA,
        "/States/S/MaxConcurrency",
    );
    fails(
        map("MaxConcurrency", json!(1.5)),
        SCHEMA,
        "/States/S/MaxConcurrency",
    );
    fails_with(
        map("ToleratedFailurePercentage", json!(101)),
        SCHEMA,
        "/States/S/ToleratedFailurePercentage",
        "Maximum value is 100",
    );
    fails(
        map("ToleratedFailurePercentage", json!(-0.5)),
        SCHEMA,
        "/States/S/ToleratedFailurePercentage",
    );
    fails(
        map("ToleratedFailureCount", json!(-1)),
        SCHEMA,
        "/States/S/ToleratedFailureCount",
    );
    ok(map("MaxConcurrency", json!(0)));
    ok(map("ToleratedFailurePercentage", json!(100)));
}

#[test]
fn rejects_bad_timestamps() {
    for bad in [
        "2016-03-14 01:59:00Z",
        "2016-03-14T01:59:00",
        "2016-13-14T01:59:00Z",
        "2016-03-14T25:59:00Z",
        "14-03-2016T01:59:00Z",
    ] {
        fails_with(
            one(json!({"Type": "Wait", "Timestamp": bad, "End": true})),
            SCHEMA,
            "/States/S/Timestamp",
            "String does not match RFC3339 timestamp",
        );
    }
    fails(
        one(json!({"Type": "Wait", "Timestamp": 5, "End": true})),
        SCHEMA,
        "/States/S/Timestamp",
    );
    // JSONata literal timestamps are checked too.
    fails(
        one_ja(json!({"Type": "Wait", "Timestamp": "yesterday", "End": true})),
        SCHEMA,
        "/States/S/Timestamp",
    );
}

// ---------------------------------------------------------------------------------------------
// Paths and templates
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_invalid_paths() {
    fails_with(
        one(json!({"Type": "Pass", "InputPath": "foo", "End": true})),
        SCHEMA,
        "/States/S/InputPath",
        "must be a valid JSONPath",
    );
    fails(
        one(json!({"Type": "Pass", "OutputPath": 3, "End": true})),
        SCHEMA,
        "/States/S/OutputPath",
    );
    fails_with(
        one(json!({"Type": "Pass", "ResultPath": "$.a[*]", "End": true})),
        SCHEMA,
        "/States/S/ResultPath",
        "Reference Path",
    );
    fails(
        one(json!({"Type": "Pass", "ResultPath": "$$.Execution", "End": true})),
        SCHEMA,
        "/States/S/ResultPath",
    );
    fails(
        one(json!({"Type": "Pass", "ResultPath": "$var", "End": true})),
        SCHEMA,
        "/States/S/ResultPath",
    );
    fails(
        one(
            json!({"Type": "Map", "ItemsPath": "$..a", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true}),
        ),
        SCHEMA,
        "/States/S/ItemsPath",
    );
    fails(
        one(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSecondsPath": "$.a[?(@.x)]", "End": true}),
        ),
        SCHEMA,
        "/States/S/TimeoutSecondsPath",
    );
    fails(
        one(json!({"Type": "Wait", "SecondsPath": "nope", "End": true})),
        SCHEMA,
        "/States/S/SecondsPath",
    );
    fails(
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.a[*]"}}}),
        SCHEMA,
        "/States/F/ErrorPath",
    );
    fails(
        one(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$$.x", "Next": "Done"}], "End": true}),
        ),
        SCHEMA,
        "/States/S/Catch/0/ResultPath",
    );
    // Indefinite paths are fine in InputPath/OutputPath; variables and the context elsewhere.
    ok(one(
        json!({"Type": "Pass", "InputPath": "$.a[0:2]", "OutputPath": "$..b", "End": true}),
    ));
    ok(one(
        json!({"Type": "Wait", "SecondsPath": "$$.Execution.Input.s", "End": true}),
    ));
    ok(one(
        json!({"Type": "Map", "ItemsPath": "$items", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true}),
    ));
}

#[test]
fn rejects_fail_paths_with_unsupported_intrinsics() {
    fails(
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "States.ArrayLength($.a)"}}}),
        SCHEMA,
        "/States/F/ErrorPath",
    );
    fails(
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "CausePath": 1}}}),
        SCHEMA,
        "/States/F/CausePath",
    );
}

#[test]
fn rejects_invalid_payload_templates() {
    let diags = validate(&one(
        json!({"Type": "Pass", "Parameters": {"a.$": "foo"}, "End": true}),
    ));
    assert!(
        diags
            .iter()
            .any(|d| d.code == SCHEMA && d.location.starts_with("/States/S/Parameters")),
        "{}",
        render(&diags)
    );
    fails(
        one(json!({"Type": "Pass", "Parameters": [1], "End": true})),
        SCHEMA,
        "/States/S/Parameters",
    );
    fails(
        one(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "ResultSelector": 5, "End": true}),
        ),
        SCHEMA,
        "/States/S/ResultSelector",
    );
}

#[test]
fn task_resource_and_credentials() {
    fails_with(
        one(json!({"Type": "Task", "End": true})),
        SCHEMA,
        "/States/S",
        "These fields are required: [Resource]",
    );
    fails(
        one(json!({"Type": "Task", "Resource": 5, "End": true})),
        SCHEMA,
        "/States/S/Resource",
    );
    fails(
        one(json!({"Type": "Task", "Resource": "lambda", "End": true})),
        SCHEMA,
        "/States/S/Resource",
    );
    fails_with(
        one(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Credentials": {}, "End": true}),
        ),
        SCHEMA,
        "/States/S/Credentials",
        "RoleArn",
    );
    fails(
        one(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Credentials": {"RoleArn": "r", "X": 1}, "End": true}),
        ),
        SCHEMA,
        "/States/S/Credentials/X",
    );
    ok(one(
        json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Credentials": {"RoleArn": "arn:aws:iam::1:role/r"}, "End": true}),
    ));
}

// ---------------------------------------------------------------------------------------------
// Variables
// ---------------------------------------------------------------------------------------------

#[test]
fn rejects_bad_variable_names() {
    for bad in ["x.y", "1abc", "states", "a-b", "", "$x", "_x"] {
        let mut assign = serde_json::Map::new();
        assign.insert(bad.to_string(), json!(1));
        fails(
            one(json!({"Type": "Pass", "Assign": assign, "End": true})),
            SCHEMA,
            &format!("/States/S/Assign/{bad}"),
        );
    }
    let long = "v".repeat(81);
    fails(
        one(json!({"Type": "Pass", "Assign": {long.clone(): 1}, "End": true})),
        SCHEMA,
        &format!("/States/S/Assign/{long}"),
    );
    // A JSONata variable name cannot end in .$.
    fails(
        one_ja(json!({"Type": "Pass", "Assign": {"a.$": 1}, "End": true})),
        SCHEMA,
        "/States/S/Assign/a.$",
    );
    ok(one(
        json!({"Type": "Pass", "Assign": {"a.$": "$.x", "b_1": 1, "été": 2, "v".repeat(80): 3}, "End": true}),
    ));
    fails(
        one(json!({"Type": "Pass", "Assign": [1], "End": true})),
        SCHEMA,
        "/States/S/Assign",
    );
}

// ---------------------------------------------------------------------------------------------
// Choice rules
// ---------------------------------------------------------------------------------------------

fn choice(rule: Value) -> Value {
    one(json!({"Type": "Choice", "Choices": [rule], "Default": "Done"}))
}

#[test]
fn rejects_bad_choice_rules() {
    fails(
        one(json!({"Type": "Choice", "Choices": []})),
        SCHEMA,
        "/States/S/Choices",
    );
    fails(one(json!({"Type": "Choice"})), SCHEMA, "/States/S");
    fails(
        choice(json!({"Variable": "$.x", "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0",
    );
    fails(
        choice(json!({"Variable": "$.x", "IsNull": true, "IsString": true, "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0",
    );
    fails(
        choice(json!({"Variable": "$.x", "NumericEquals": "1", "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/NumericEquals",
    );
    fails(
        choice(json!({"Variable": "$.x", "BooleanEquals": 1, "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/BooleanEquals",
    );
    fails(
        choice(json!({"Variable": "$.x", "IsNull": "yes", "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/IsNull",
    );
    fails(
        choice(json!({"Variable": "$.x", "StringEquals": 1, "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/StringEquals",
    );
    fails_with(
        choice(json!({"Variable": "$.x", "TimestampEquals": "yesterday", "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/TimestampEquals",
        "RFC3339",
    );
    fails(
        choice(json!({"Variable": "$.x", "NumericEqualsPath": "$.a[*]", "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/NumericEqualsPath",
    );
    fails(
        choice(json!({"Variable": "$.x", "IsNullPath": "$.y", "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/IsNullPath",
    );
    fails(
        choice(json!({"Variable": "$.x", "StringMatchesPath": "$.y", "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/StringMatchesPath",
    );
    fails(
        choice(json!({"Variable": "$.a[*]", "IsNull": true, "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/Variable",
    );
    fails(
        choice(json!({"And": [], "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/And",
    );
    fails(
        choice(json!({"Or": {"Variable": "$.x", "IsNull": true}, "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/Or",
    );
    fails(
        choice(json!({"Not": [{"Variable": "$.x", "IsNull": true}], "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/Not",
    );
    fails(
        choice(
            json!({"And": [{"Variable": "$.x", "IsNull": true}], "Variable": "$.y", "IsNull": true, "Next": "Done"}),
        ),
        SCHEMA,
        "/States/S/Choices/0",
    );
    fails_with(
        choice(
            json!({"And": [{"Variable": "$.x", "IsNull": true, "Next": "Done"}], "Next": "Done"}),
        ),
        SCHEMA,
        "/States/S/Choices/0/And/0/Next",
        "Field 'Next' is not supported",
    );
    fails(
        choice(json!({"Not": {"Variable": "$.x", "IsNull": true, "Next": "Done"}, "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/Not/Next",
    );
    fails_with(
        choice(json!({"Variable": "$.x", "IsNull": true})),
        SCHEMA,
        "/States/S/Choices/0",
        "These fields are required: [Next]",
    );
    fails(
        choice(json!({"Variable": "$.x", "IsNull": true, "Next": "Done", "Foo": 1})),
        SCHEMA,
        "/States/S/Choices/0/Foo",
    );
    fails(
        choice(json!({"Variable": "$.x", "IsNull": true, "Next": "Done", "Condition": true})),
        SCHEMA,
        "/States/S/Choices/0",
    );
    // Nested rules stay valid without Next.
    ok(choice(
        json!({"Not": {"And": [{"Or": [{"Variable": "$.x", "IsNull": true}]}]}, "Next": "Done"}),
    ));
}

#[test]
fn rejects_bad_jsonata_choice_rules() {
    let ja = |rule: Value| one_ja(json!({"Type": "Choice", "Choices": [rule], "Default": "Done"}));
    fails_with(
        ja(json!({"Variable": "$.x", "IsNull": true, "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0",
        "field 'Variable' is only supported for the 'JSONPath' QueryLanguage",
    );
    fails_with(
        ja(json!({"Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0",
        "These fields are required: [Condition]",
    );
    fails(
        ja(json!({"Condition": "x > 1", "Next": "Done"})),
        SCHEMA,
        "/States/S/Choices/0/Condition",
    );
    fails(
        ja(json!({"Condition": "{% true %}"})),
        SCHEMA,
        "/States/S/Choices/0",
    );
    fails(
        ja(json!({"Condition": "{% true %}", "Next": "Done", "Foo": 1})),
        SCHEMA,
        "/States/S/Choices/0/Foo",
    );
}

// ---------------------------------------------------------------------------------------------
// Retry and Catch
// ---------------------------------------------------------------------------------------------

fn task_with(field: &str, value: Value) -> Value {
    let mut s =
        json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "Done"});
    s[field] = value;
    one(s)
}

#[test]
fn rejects_bad_retriers() {
    fails(task_with("Retry", json!({})), SCHEMA, "/States/S/Retry");
    fails(
        task_with("Retry", json!([{"ErrorEquals": []}])),
        SCHEMA,
        "/States/S/Retry/0/ErrorEquals",
    );
    fails(
        task_with("Retry", json!([{"MaxAttempts": 1}])),
        SCHEMA,
        "/States/S/Retry/0",
    );
    fails(
        task_with("Retry", json!([{"ErrorEquals": [1]}])),
        SCHEMA,
        "/States/S/Retry/0/ErrorEquals/0",
    );
    fails(
        task_with("Retry", json!([{"ErrorEquals": ["States.ALL", "X"]}])),
        SCHEMA,
        "/States/S/Retry/0/ErrorEquals",
    );
    fails(
        task_with(
            "Retry",
            json!([{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]),
        ),
        SCHEMA,
        "/States/S/Retry/0/ErrorEquals",
    );
    fails(
        task_with(
            "Retry",
            json!([{"ErrorEquals": ["X"], "IntervalSeconds": -1}]),
        ),
        SCHEMA,
        "/States/S/Retry/0/IntervalSeconds",
    );
    fails(
        task_with(
            "Retry",
            json!([{"ErrorEquals": ["X"], "IntervalSeconds": 100_000_000}]),
        ),
        SCHEMA,
        "/States/S/Retry/0/IntervalSeconds",
    );
    fails(
        task_with("Retry", json!([{"ErrorEquals": ["X"], "MaxAttempts": -1}])),
        SCHEMA,
        "/States/S/Retry/0/MaxAttempts",
    );
    fails(
        task_with(
            "Retry",
            json!([{"ErrorEquals": ["X"], "MaxAttempts": 100_000_000}]),
        ),
        SCHEMA,
        "/States/S/Retry/0/MaxAttempts",
    );
    fails_with(
        task_with("Retry", json!([{"ErrorEquals": ["X"], "BackoffRate": 0.5}])),
        SCHEMA,
        "/States/S/Retry/0/BackoffRate",
        "Minimum value is 1",
    );
    fails(
        task_with(
            "Retry",
            json!([{"ErrorEquals": ["X"], "MaxDelaySeconds": 0}]),
        ),
        SCHEMA,
        "/States/S/Retry/0/MaxDelaySeconds",
    );
    fails(
        task_with(
            "Retry",
            json!([{"ErrorEquals": ["X"], "MaxDelaySeconds": 31_622_401}]),
        ),
        SCHEMA,
        "/States/S/Retry/0/MaxDelaySeconds",
    );
    fails(
        task_with(
            "Retry",
            json!([{"ErrorEquals": ["X"], "JitterStrategy": "HALF"}]),
        ),
        SCHEMA,
        "/States/S/Retry/0/JitterStrategy",
    );
    fails(
        task_with("Retry", json!([{"ErrorEquals": ["X"], "Next": "Done"}])),
        SCHEMA,
        "/States/S/Retry/0/Next",
    );
    ok(task_with(
        "Retry",
        json!([{"ErrorEquals": ["X"], "IntervalSeconds": 0, "MaxDelaySeconds": 31_622_400, "BackoffRate": 1}]),
    ));
}

#[test]
fn rejects_bad_catchers() {
    fails_with(
        task_with("Catch", json!([{"ErrorEquals": ["X"]}])),
        SCHEMA,
        "/States/S/Catch/0",
        "These fields are required: [Next]",
    );
    fails(
        task_with("Catch", json!([{"Next": "Done"}])),
        SCHEMA,
        "/States/S/Catch/0",
    );
    fails(
        task_with(
            "Catch",
            json!([{"ErrorEquals": ["States.ALL"], "Next": "Done"}, {"ErrorEquals": ["X"], "Next": "Done"}]),
        ),
        SCHEMA,
        "/States/S/Catch/0/ErrorEquals",
    );
    fails(
        task_with(
            "Catch",
            json!([{"ErrorEquals": ["X"], "Next": "Done", "Output": {}}]),
        ),
        SCHEMA,
        "/States/S/Catch/0",
    );
    fails(
        task_with(
            "Catch",
            json!([{"ErrorEquals": ["X"], "Next": "Done", "MaxAttempts": 1}]),
        ),
        SCHEMA,
        "/States/S/Catch/0/MaxAttempts",
    );
    fails(
        one_ja(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Catch": [{"ErrorEquals": ["X"], "Next": "Done", "ResultPath": "$.e"}], "End": true}),
        ),
        SCHEMA,
        "/States/S/Catch/0",
    );
    fails(
        task_with(
            "Catch",
            json!([{"ErrorEquals": ["X"], "Next": "Done", "Assign": {"a.b": 1}}]),
        ),
        SCHEMA,
        "/States/S/Catch/0/Assign/a.b",
    );
}

// ---------------------------------------------------------------------------------------------
// Map and Distributed mode
// ---------------------------------------------------------------------------------------------

fn dmap(extra: Value) -> Value {
    let mut s = json!({
        "Type": "Map",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "P", "States": {"P": {"Type": "Succeed"}}},
        "End": true
    });
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    one(s)
}

#[test]
fn rejects_bad_processor_config() {
    let proc_with = |pc: Value| {
        one(
            json!({"Type": "Map", "ItemProcessor": {"ProcessorConfig": pc, "StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true}),
        )
    };
    fails_with(
        proc_with(json!({"Mode": "DISTRIBUTED"})),
        SCHEMA,
        "/States/S/ItemProcessor/ProcessorConfig",
        "These fields are required: [ExecutionType]",
    );
    fails(
        proc_with(json!({"Mode": "PARALLEL"})),
        SCHEMA,
        "/States/S/ItemProcessor/ProcessorConfig/Mode",
    );
    fails(
        proc_with(json!({"Mode": "DISTRIBUTED", "ExecutionType": "FAST"})),
        SCHEMA,
        "/States/S/ItemProcessor/ProcessorConfig/ExecutionType",
    );
    fails(
        proc_with(json!({"Mode": "INLINE", "ExecutionType": "STANDARD"})),
        SCHEMA,
        "/States/S/ItemProcessor/ProcessorConfig/ExecutionType",
    );
    fails(
        proc_with(json!({"Foo": 1})),
        SCHEMA,
        "/States/S/ItemProcessor/ProcessorConfig/Foo",
    );
    fails(
        one(
            json!({"Type": "Map", "ItemProcessor": {"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true}),
        ),
        SCHEMA,
        "/States/S/ItemProcessor/QueryLanguage",
    );
    fails(
        one(
            json!({"Type": "Parallel", "Branches": [{"ProcessorConfig": {}, "StartAt": "P", "States": {"P": {"Type": "Succeed"}}}], "End": true}),
        ),
        SCHEMA,
        "/States/S/Branches/0/ProcessorConfig",
    );
    fails(
        one(json!({"Type": "Parallel", "Branches": [], "End": true})),
        SCHEMA,
        "/States/S/Branches",
    );
    fails(
        one(json!({"Type": "Parallel", "End": true})),
        SCHEMA,
        "/States/S",
    );
}

#[test]
fn rejects_bad_labels() {
    fails_with(
        dmap(json!({"Label": "x".repeat(41)})),
        "INVALID_LABEL_NAME",
        "/States/S/Label",
        "40-character",
    );
    fails(
        dmap(json!({"Label": ""})),
        "INVALID_LABEL_NAME",
        "/States/S/Label",
    );
    fails(
        dmap(json!({"Label": "a b"})),
        "INVALID_LABEL_NAME",
        "/States/S/Label",
    );
    fails(
        dmap(json!({"Label": "a:b"})),
        "INVALID_LABEL_NAME",
        "/States/S/Label",
    );
    fails_with(
        json!({"StartAt": "A", "States": {
            "A": {"Type": "Map", "Label": "L", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "Next": "B"},
            "B": {"Type": "Map", "Label": "L", "ItemProcessor": {"StartAt": "Q", "States": {"Q": {"Type": "Succeed"}}}, "End": true}
        }}),
        "DUPLICATE_LABEL_NAME",
        "/States/B/Label",
        "Duplicate Label name: L",
    );
}

#[test]
fn rejects_bad_item_readers() {
    fails(
        dmap(json!({"ItemReader": {"Resource": "arn:aws:states:::s3:putObject"}})),
        SCHEMA,
        "/States/S/ItemReader/Resource",
    );
    fails(
        dmap(json!({"ItemReader": {}})),
        SCHEMA,
        "/States/S/ItemReader",
    );
    fails(
        dmap(json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Foo": 1}})),
        SCHEMA,
        "/States/S/ItemReader/Foo",
    );
    fails(
        dmap(json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Arguments": {}}})),
        SCHEMA,
        "/States/S/ItemReader",
    );
    fails(
        dmap(
            json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "XML"}}}),
        ),
        SCHEMA,
        "/States/S/ItemReader/ReaderConfig/InputType",
    );
    fails(
        dmap(
            json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN"}}}),
        ),
        SCHEMA,
        "/States/S/ItemReader/ReaderConfig",
    );
    fails(
        dmap(
            json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON", "CSVHeaderLocation": "FIRST_ROW"}}}),
        ),
        SCHEMA,
        "/States/S/ItemReader/ReaderConfig/CSVHeaderLocation",
    );
    fails(
        dmap(
            json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON", "MaxItems": 100_000_001}}}),
        ),
        SCHEMA,
        "/States/S/ItemReader/ReaderConfig/MaxItems",
    );
    fails(
        dmap(
            json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON", "MaxItems": 1, "MaxItemsPath": "$.m"}}}),
        ),
        SCHEMA,
        "/States/S/ItemReader/ReaderConfig",
    );
    fails(
        dmap(
            json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"CSVDelimiter": "DASH"}}}),
        ),
        SCHEMA,
        "/States/S/ItemReader/ReaderConfig/CSVDelimiter",
    );
    fails(
        dmap(
            json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"ManifestType": "S3_INVENTORY", "InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}}}),
        ),
        SCHEMA,
        "/States/S/ItemReader/ReaderConfig/InputType",
    );
    ok(dmap(
        json!({"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "MANIFEST"}, "Parameters": {"Bucket": "b", "Key": "k"}}}),
    ));
    ok(dmap(
        json!({"ItemReader": {"Resource": "arn:aws-us-gov:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON", "ItemsPointer": "/a/b"}, "Parameters": {"Bucket": "b", "Key": "k"}}}),
    ));
}

#[test]
fn rejects_bad_item_batchers() {
    fails(
        dmap(json!({"ItemBatcher": {}})),
        SCHEMA,
        "/States/S/ItemBatcher",
    );
    fails(
        dmap(json!({"ItemBatcher": {"BatchInput": {}}})),
        SCHEMA,
        "/States/S/ItemBatcher",
    );
    fails(
        dmap(json!({"ItemBatcher": {"MaxItemsPerBatch": 0}})),
        SCHEMA,
        "/States/S/ItemBatcher/MaxItemsPerBatch",
    );
    fails(
        dmap(json!({"ItemBatcher": {"MaxItemsPerBatch": 1, "MaxItemsPerBatchPath": "$.x"}})),
        SCHEMA,
        "/States/S/ItemBatcher",
    );
    fails(
        dmap(json!({"ItemBatcher": {"MaxInputBytesPerBatch": 262_145}})),
        SCHEMA,
        "/States/S/ItemBatcher/MaxInputBytesPerBatch",
    );
    fails(
        dmap(json!({"ItemBatcher": {"MaxItemsPerBatch": 1, "Foo": 1}})),
        SCHEMA,
        "/States/S/ItemBatcher/Foo",
    );
    ok(dmap(
        json!({"ItemBatcher": {"MaxInputBytesPerBatch": 262_144}}),
    ));
}

#[test]
fn rejects_bad_result_writers() {
    fails(
        dmap(json!({"ResultWriter": {}})),
        SCHEMA,
        "/States/S/ResultWriter",
    );
    fails(
        dmap(json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject"}})),
        SCHEMA,
        "/States/S/ResultWriter",
    );
    fails(
        dmap(
            json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b"}}}),
        ),
        SCHEMA,
        "/States/S/ResultWriter/Resource",
    );
    fails(
        dmap(
            json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Prefix": "p"}}}),
        ),
        SCHEMA,
        "/States/S/ResultWriter/Parameters",
    );
    fails(
        dmap(json!({"ResultWriter": {"WriterConfig": {"Transformation": "NONE"}}})),
        SCHEMA,
        "/States/S/ResultWriter/WriterConfig",
    );
    fails(
        dmap(json!({"ResultWriter": {"WriterConfig": {"OutputType": "CSV"}}})),
        SCHEMA,
        "/States/S/ResultWriter/WriterConfig/OutputType",
    );
    fails(
        dmap(
            json!({"ResultWriter": {"WriterConfig": {"OutputType": "JSON", "Transformation": "ZIP"}}}),
        ),
        SCHEMA,
        "/States/S/ResultWriter/WriterConfig/Transformation",
    );
}

#[test]
fn rejects_bad_items_in_jsonata() {
    let jmap = |items: Value| {
        one_ja(
            json!({"Type": "Map", "Items": items, "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true}),
        )
    };
    fails(jmap(json!(5)), SCHEMA, "/States/S/Items");
    fails(jmap(json!("abc")), SCHEMA, "/States/S/Items");
    ok(jmap(json!({"a": 1})));
}

// ---------------------------------------------------------------------------------------------
// Collecting everything
// ---------------------------------------------------------------------------------------------

#[test]
fn collects_all_diagnostics() {
    let diags = validate(&json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Foo": 1, "Next": "Nope"},
            "B": {"Type": "Wait", "Seconds": -1, "End": true},
            "C": {"Type": "Task", "End": true}
        }
    }));
    let find = |code: &str, loc: &str| diags.iter().any(|d| d.code == code && d.location == loc);
    assert!(find(SCHEMA, "/States/A/Foo"), "{}", render(&diags));
    assert!(find(TARGET, "/States/A/Next"), "{}", render(&diags));
    assert!(find(SCHEMA, "/States/B/Seconds"), "{}", render(&diags));
    assert!(find(SCHEMA, "/States/C"), "{}", render(&diags));
    assert!(find(TARGET, "/States/B"), "{}", render(&diags));
    assert!(find(TARGET, "/States/C"), "{}", render(&diags));
}

#[test]
fn validate_is_empty_for_valid_definitions() {
    assert!(validate(&json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})).is_empty());
}

// ---------------------------------------------------------------------------------------------
// The conformance corpus: every definition there was accepted by AWS.
// ---------------------------------------------------------------------------------------------

fn corpus_file(name: &str) -> Option<std::path::PathBuf> {
    let candidates = [
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/conformance")
            .join(name),
        std::path::PathBuf::from("/work/shared/conformance").join(name),
    ];
    candidates.into_iter().find(|p| p.exists())
}

fn check_corpus(name: &str) {
    let Some(path) = corpus_file(name) else {
        eprintln!("corpus {name} not found; skipped");
        return;
    };
    let text = std::fs::read_to_string(&path).expect("read corpus");
    let mut total = 0;
    let mut failed = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("corpus line is JSON");
        let Some(def) = case.get("definition") else {
            continue;
        };
        total += 1;
        if let Err(diags) = parse_definition(def) {
            failed.push((case["id"].as_str().unwrap_or("?").to_string(), diags));
        }
    }
    let mut report = String::new();
    for (id, diags) in failed.iter().take(25) {
        report.push_str(&format!("{id}\n{}", render(diags)));
    }
    eprintln!(
        "{name}: {} of {total} definitions parse",
        total - failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {total} corpus definitions rejected:\n{report}",
        failed.len()
    );
}

#[test]
fn corpus_cases_parse() {
    check_corpus("cases.jsonl");
}

#[test]
fn corpus_cases_needing_services_parse() {
    check_corpus("cases_needs_service.jsonl");
}

/// TestState requests: single states (wrapped into a machine, with `Succeed` states for their
/// transition targets) or whole machines. AWS accepted all of them.
#[test]
fn corpus_test_state_definitions_parse() {
    let Some(path) = corpus_file("test_state_cases.jsonl") else {
        return;
    };
    let text = std::fs::read_to_string(&path).expect("read corpus");
    let (mut total, mut bad) = (0, Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("corpus line is JSON");
        let def = &case["request"]["definition"];
        let machine = if def.get("States").is_some() {
            def.clone()
        } else {
            let mut states = serde_json::Map::new();
            states.insert("S".into(), def.clone());
            let mut targets = vec![def.get("Next").cloned(), def.get("Default").cloned()];
            for f in ["Choices", "Catch"] {
                for c in def
                    .get(f)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    targets.push(c.get("Next").cloned());
                }
            }
            for t in targets.into_iter().flatten() {
                if let Some(t) = t.as_str() {
                    states.insert(t.to_string(), json!({"Type": "Succeed"}));
                }
            }
            json!({"StartAt": "S", "States": states})
        };
        total += 1;
        if let Err(d) = parse_definition(&machine) {
            bad.push(format!("{}\n{}", case["id"], render(&d)));
        }
    }
    eprintln!(
        "test_state_cases.jsonl: {} of {total} definitions parse",
        total - bad.len()
    );
    assert!(
        bad.is_empty(),
        "{} of {total} rejected:\n{}",
        bad.len(),
        bad.join("")
    );
}
