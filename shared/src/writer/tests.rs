//! ResultWriter tests: record schemas, JSON/JSONL, transformations, rollover, manifest order,
//! redrive manifests, determinism and storage failures, on a `LocalFolderStore` in a temp dir.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

use super::*;
use crate::storage::{
    GetObject, ListPage, LocalFolderStore, ObjectMeta, ObjectStore, ObjectWriter, StoreError,
};

const MAP_RUN_ARN: &str =
    "arn:aws:states:us-east-1:123456789012:mapRun:orderProcessing/getOrders:4977ded7-b097-3bee-81e1-7863c5660f29";
const RUN_ID: &str = "4977ded7-b097-3bee-81e1-7863c5660f29";
const SM_ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:orderProcessing/getOrders";
const BUCKET: &str = "result-bucket";

/// A bucket in a fresh temp folder, removed on drop.
struct TempStore {
    root: PathBuf,
    store: LocalFolderStore,
}

impl TempStore {
    fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let root = std::env::temp_dir().join(format!(
            "mapfleet-writer-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        TempStore {
            store: LocalFolderStore::new(&root),
            root,
        }
    }

    fn read(&self, key: &str) -> Vec<u8> {
        let mut out = Vec::new();
        self.store
            .get(&GetObject {
                bucket: BUCKET,
                key,
                ..Default::default()
            })
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn text(&self, key: &str) -> String {
        String::from_utf8(self.read(key)).unwrap()
    }

    /// Every object under the bucket: (key, bytes), sorted by key.
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let page = self.store.list(BUCKET, "", None, 10_000).unwrap();
        page.objects
            .iter()
            .map(|o| (o.key.clone(), self.read(&o.key)))
            .collect()
    }

    fn keys(&self) -> Vec<String> {
        self.store
            .list(BUCKET, "", None, 10_000)
            .unwrap()
            .objects
            .into_iter()
            .map(|o| o.key)
            .collect()
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 2, 4, 1, 49, 50).unwrap() + chrono::Duration::milliseconds(ms)
}

fn name(i: u64) -> String {
    format!("00000000-0000-5000-8000-{i:012}")
}

fn succeeded(i: u64, input: Value, output: Value) -> ChildRecord {
    ChildRecord::finished(
        format!(
            "arn:aws:states:us-east-1:123456789012:execution:orderProcessing/getOrders:{}",
            name(i)
        ),
        name(i),
        SM_ARN,
        input,
        ChildStatus::Succeeded,
        at(99),
        at(163),
        0,
        false,
    )
    .with_output(output)
}

fn unsuccessful(i: u64, status: ChildStatus, input: Value) -> ChildRecord {
    ChildRecord::finished(
        format!(
            "arn:aws:states:us-east-1:123456789012:execution:orderProcessing/getOrders:{}",
            name(i)
        ),
        name(i),
        SM_ARN,
        input,
        status,
        at(99),
        at(163),
        0,
        false,
    )
    .with_error(Some("States.TaskFailed".into()), Some("boom".into()))
}

fn export_spec(config: Option<Value>) -> WriterSpec {
    let mut rw = json!({
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": BUCKET, "Prefix": "mapJobs"}
    });
    if let Some(c) = config {
        rw["WriterConfig"] = c;
    }
    WriterSpec::from_json(&rw).unwrap()
}

fn key(name: &str) -> String {
    format!("mapJobs/{RUN_ID}/{name}")
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

// ---------------------------------------------------------------- record schema (§3.3)

#[test]
fn succeeded_record_matches_the_aws_example_byte_for_byte() {
    let r = ChildRecord::finished(
        "arn:aws:states:us-east-1:123456789012:execution:orderProcessing/getOrders:da4e9fc7-abab-3b27-9a77-a277e463b709",
        "da4e9fc7-abab-3b27-9a77-a277e463b709",
        SM_ARN,
        json!({"customer_id": "145538"}),
        ChildStatus::Succeeded,
        at(99),
        at(163),
        0,
        false,
    )
    .with_output(json!([{"customer_id":"145538","order_id":"100000"},{"customer_id":"898037","order_id":"100001"}]));
    let expected = r#"{"ExecutionArn":"arn:aws:states:us-east-1:123456789012:execution:orderProcessing/getOrders:da4e9fc7-abab-3b27-9a77-a277e463b709","Input":"{\"customer_id\":\"145538\"}","InputDetails":{"Included":true},"Name":"da4e9fc7-abab-3b27-9a77-a277e463b709","Output":"[{\"customer_id\":\"145538\",\"order_id\":\"100000\"},{\"customer_id\":\"898037\",\"order_id\":\"100001\"}]","OutputDetails":{"Included":true},"RedriveCount":0,"RedriveStatus":"NOT_REDRIVABLE","RedriveStatusReason":"Execution is SUCCEEDED and cannot be redriven","StartDate":"2025-02-04T01:49:50.099Z","StateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:orderProcessing/getOrders","Status":"SUCCEEDED","StopDate":"2025-02-04T01:49:50.163Z"}"#;
    assert_eq!(serde_json::to_string(&r.to_record()).unwrap(), expected);
}

/// The direct writer gives exactly the bytes of the record map, for every kind of record.
#[test]
fn written_records_are_the_record_maps_bytes() {
    let mut aliased = succeeded(3, json!({"a": "\"q\"\n"}), json!(null));
    aliased.state_machine_alias_arn = Some(format!("{SM_ARN}:prod"));
    aliased.state_machine_version_arn = Some(format!("{SM_ARN}:7"));
    aliased.output = None;
    let mut leap = succeeded(4, json!(1), json!([1, 2]));
    leap.start_date = Some(
        Utc.with_ymd_and_hms(2016, 12, 31, 23, 59, 59).unwrap()
            + chrono::Duration::nanoseconds(1_999_000_000),
    );
    let records = [
        succeeded(
            1,
            json!({"k": "v", "n": [1, 2.5]}),
            json!({"out": "é\u{1}"}),
        ),
        unsuccessful(2, ChildStatus::Failed, json!("x")),
        unsuccessful(5, ChildStatus::TimedOut, json!({})),
        unsuccessful(6, ChildStatus::Aborted, json!([])),
        ChildRecord::pending(json!({"p": 1})),
        unsuccessful(7, ChildStatus::Failed, json!({"k": "\\ \u{7f} \u{1f}"})).with_error(
            Some("Err \"x\" \\".into()),
            Some("line\nnext\ttab \u{0} ü".into()),
        ),
        aliased,
        leap,
    ];
    for r in records {
        let mut direct = Vec::new();
        r.write_record(&mut direct).unwrap();
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            serde_json::to_string(&r.to_record()).unwrap()
        );
    }
}

/// Quoted JSON text is what serde_json writes between the quotes of the same text as a
/// string, for every byte that it escapes and runs of every length around them.
#[test]
fn quoted_json_text_is_serde_jsons_string_escaping() {
    let mut samples: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
    samples.extend([
        String::new(),
        r#"{"a":"b\"c","d":[1,"\\"]}"#.to_string(),
        "ü€𝄞 \"\"\\\\ plain text with no escapes at all".to_string(),
        "\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f}x\"".to_string(),
    ]);
    for s in samples {
        let mut quoted = Vec::new();
        quote_json_text(s.as_bytes(), &mut quoted);
        let serde = serde_json::to_string(&s).unwrap();
        assert_eq!(
            String::from_utf8(quoted).unwrap(),
            serde[1..serde.len() - 1],
            "{s:?}"
        );
    }
}

#[test]
fn dates_have_milliseconds_always() {
    assert_eq!(record::format_date(at(0)), "2025-02-04T01:49:50.000Z");
    assert_eq!(record::format_date(at(7)), "2025-02-04T01:49:50.007Z");
    assert_eq!(
        record::format_date(Utc.with_ymd_and_hms(999, 1, 2, 3, 4, 5).unwrap()),
        "0999-01-02T03:04:05.000Z"
    );
}

/// The fast date parser reads what chrono writes (any fraction length, none at all) and hands
/// anything else to chrono's parser; it agrees with chrono on every form.
#[test]
fn stored_dates_parse_as_chrono_parses_them() {
    let t = Utc.with_ymd_and_hms(2026, 11, 22, 3, 37, 57).unwrap();
    for nanos in [0u32, 7_000_000, 604_123_456, 999_999_999, 1_500_000_000] {
        let d = t + chrono::Duration::nanoseconds(i64::from(nanos));
        let text = serde_json::to_value(d).unwrap();
        let text = text.as_str().unwrap();
        assert_eq!(record::parse_date(text), Some(d), "{text}");
    }
    assert_eq!(
        record::parse_date("2026-11-22T03:37:57.6Z"),
        Some(t + chrono::Duration::milliseconds(600))
    );
    // Offsets and lowercase forms go through chrono's parser.
    assert_eq!(record::parse_date("2026-11-22T04:37:57+01:00"), Some(t));
    assert_eq!(record::parse_date("2026-11-22t03:37:57z"), Some(t));
    for bad in [
        "",
        "2026-11-22",
        "2026-13-22T03:37:57Z",
        "2026-11-22T03:37:57.Z",
        "x026-11-22T03:37:57Z",
    ] {
        assert_eq!(record::parse_date(bad), None, "{bad}");
    }
}

#[test]
fn failed_record_has_cause_and_error_first_and_no_output() {
    let r = unsuccessful(1, ChildStatus::Failed, json!({"a": 1})).with_output(json!("ignored"));
    let rec = r.to_record();
    let keys: Vec<&str> = rec
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "Cause",
            "Error",
            "ExecutionArn",
            "Input",
            "InputDetails",
            "Name",
            "RedriveCount",
            "RedriveStatus",
            "StartDate",
            "StateMachineArn",
            "Status",
            "StopDate"
        ]
    );
    assert_eq!(rec["Status"], "FAILED");
    assert_eq!(rec["RedriveStatus"], "REDRIVABLE");
    assert_eq!(rec["Input"], "{\"a\":1}");
    assert_eq!(rec["Cause"], "boom");
}

#[test]
fn timed_out_and_aborted_records_keep_their_status() {
    assert_eq!(
        unsuccessful(1, ChildStatus::TimedOut, json!(1)).to_record()["Status"],
        "TIMED_OUT"
    );
    assert_eq!(
        unsuccessful(1, ChildStatus::Aborted, json!(1)).to_record()["Status"],
        "ABORTED"
    );
    assert_eq!(ChildStatus::TimedOut.family(), Family::Failed);
    assert_eq!(ChildStatus::Aborted.family(), Family::Failed);
    assert_eq!(ChildStatus::Pending.family(), Family::Pending);
}

#[test]
fn pending_record_shape() {
    let r = ChildRecord::pending(json!({"Items": [1, 2]}));
    assert_eq!(
        serde_json::to_string(&r.to_record()).unwrap(),
        r#"{"Input":"{\"Items\":[1,2]}","InputDetails":{"Included":true},"Status":"PENDING"}"#
    );
}

#[test]
fn express_redrive_defaults() {
    use RedriveStatus::*;
    assert_eq!(
        ChildRecord::default_redrive(ChildStatus::Failed, true),
        (Some(RedrivableByMapRun), None)
    );
    assert_eq!(
        ChildRecord::default_redrive(ChildStatus::TimedOut, true),
        (Some(RedrivableByMapRun), None)
    );
    assert_eq!(
        ChildRecord::default_redrive(ChildStatus::Aborted, true),
        (Some(NotRedrivable), None)
    );
    assert_eq!(
        ChildRecord::default_redrive(ChildStatus::Aborted, false),
        (Some(Redrivable), None)
    );
    assert_eq!(
        ChildRecord::default_redrive(ChildStatus::Succeeded, true),
        (Some(NotRedrivable), Some(SUCCEEDED_REDRIVE_REASON))
    );
}

#[test]
fn dates_always_have_milliseconds() {
    assert_eq!(format_date(at(0)), "2025-02-04T01:49:50.000Z");
    let micro = at(0) + chrono::Duration::microseconds(1_999);
    assert_eq!(format_date(micro), "2025-02-04T01:49:50.001Z");
}

#[test]
fn numbers_and_key_order_survive_in_json_text() {
    let r = succeeded(
        0,
        json!({"z": 1.0, "a": [1, 2.5]}),
        json!({"b": 1, "a": 0.0}),
    );
    let rec = r.to_record();
    assert_eq!(rec["Input"], r#"{"z":1.0,"a":[1,2.5]}"#);
    assert_eq!(rec["Output"], r#"{"b":1,"a":0.0}"#);
}

// ---------------------------------------------------------------- spec (§2.8)

#[test]
fn spec_defaults() {
    let s = export_spec(None);
    assert_eq!(s.output_type, OutputType::Json);
    assert_eq!(s.transformation, Transformation::None);
    assert_eq!(s.max_file_bytes, 5 * 1024 * 1024 * 1024);
    assert_eq!(
        s.destination,
        Some(Destination {
            bucket: BUCKET.into(),
            prefix: "mapJobs".into()
        })
    );

    let s = export_spec(Some(json!({"OutputType": "JSONL"})));
    assert_eq!(
        (s.output_type, s.transformation),
        (OutputType::Jsonl, Transformation::None)
    );

    let only = WriterSpec::from_json(&json!({"WriterConfig": {"OutputType": "JSON"}})).unwrap();
    assert!(!only.exports());
    assert_eq!(only.transformation, Transformation::Compact);
    assert_eq!(only.state_result(MAP_RUN_ARN), None);

    let flat = WriterSpec::from_json(
        &json!({"WriterConfig": {"OutputType": "JSON", "Transformation": "FLATTEN"}}),
    )
    .unwrap();
    assert_eq!(
        WriterSpec::inline_transformation(Some(&flat)),
        Transformation::Flatten
    );
    assert_eq!(
        WriterSpec::inline_transformation(None),
        Transformation::Compact
    );
    // Exporting: the state's result is the pointer, the transformation applies to the files.
    let exp = export_spec(Some(
        json!({"OutputType": "JSON", "Transformation": "FLATTEN"}),
    ));
    assert_eq!(
        WriterSpec::inline_transformation(Some(&exp)),
        Transformation::Compact
    );

    // JSONata: Arguments.
    let ja = WriterSpec::from_json(
        &json!({"Resource": "arn:aws:states:::s3:putObject", "Arguments": {"Bucket": "b"}}),
    )
    .unwrap();
    assert_eq!(
        ja.destination,
        Some(Destination {
            bucket: "b".into(),
            prefix: String::new()
        })
    );
}

#[test]
fn spec_errors() {
    for bad in [
        json!({}),
        json!([]),
        json!({"Resource": "arn:aws:states:::s3:putObject"}),
        json!({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Prefix": "p"}}),
        json!({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": 3}}),
        json!({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": ""}}),
        json!({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b", "Prefix": 1}}),
        json!({"WriterConfig": {"Transformation": "NONE"}}),
        json!({"WriterConfig": {"OutputType": "CSV"}}),
        json!({"WriterConfig": {"OutputType": "JSON", "Transformation": "ZIP"}}),
    ] {
        let e = WriterSpec::from_json(&bad).unwrap_err();
        assert!(matches!(e, WriterError::InvalidSpec { .. }), "{bad}: {e:?}");
        assert_eq!(e.error_name(), "States.Runtime");
    }
}

#[test]
fn manifest_key_and_prefix_joining() {
    let spec = |prefix: Value| {
        WriterSpec::from_json(
            &json!({"Resource": "r", "Parameters": {"Bucket": "b", "Prefix": prefix}}),
        )
        .unwrap()
    };
    assert_eq!(
        spec(json!("mapJobs")).manifest_key(MAP_RUN_ARN).unwrap(),
        format!("mapJobs/{RUN_ID}/manifest.json")
    );
    assert_eq!(
        spec(json!("a/b/")).manifest_key(MAP_RUN_ARN).unwrap(),
        format!("a/b/{RUN_ID}/manifest.json")
    );
    assert_eq!(
        spec(json!("")).manifest_key(MAP_RUN_ARN).unwrap(),
        format!("{RUN_ID}/manifest.json")
    );
    assert_eq!(
        spec(Value::Null).manifest_key(MAP_RUN_ARN).unwrap(),
        format!("{RUN_ID}/manifest.json")
    );
    assert_eq!(map_run_id(MAP_RUN_ARN), RUN_ID);
}

#[test]
fn state_result_matches_the_observed_vector() {
    // §12.2: Label TestMap, Bucket result-bucket, Prefix mapJobs.
    let arn = "arn:aws:states:us-east-1:111111111111:mapRun:sm/TestMap:3c39a231-69bb-3d89-8607-9e124eddbb0b";
    let out = export_spec(None).state_result(arn).unwrap();
    assert_eq!(
        serde_json::to_string(&out).unwrap(),
        format!(
            r#"{{"MapRunArn":"{arn}","ResultWriterDetails":{{"Bucket":"result-bucket","Key":"mapJobs/3c39a231-69bb-3d89-8607-9e124eddbb0b/manifest.json"}}}}"#
        )
    );
}

// ---------------------------------------------------------------- inline results (§2.8, §3.4)

#[test]
fn inline_results_per_transformation() {
    let orders = json!([{"customer_id":"145538","order_id":"100000"},{"customer_id":"898037","order_id":"100001"}]);
    let recs = [
        succeeded(0, json!(0), orders.clone()),
        succeeded(1, json!(1), json!("scalar")),
        unsuccessful(2, ChildStatus::Failed, json!(2)),
        succeeded(3, json!(3), json!([])),
    ];
    let compact = inline_result(&recs, Transformation::Compact);
    assert_eq!(compact, json!([orders, "scalar", recs[2].to_record(), []]));
    let flat = inline_result(&recs, Transformation::Flatten);
    assert_eq!(
        flat,
        json!([orders[0], orders[1], "scalar", recs[2].to_record()])
    );
    let none = inline_result(&recs, Transformation::None);
    assert_eq!(none.as_array().unwrap().len(), 4);
    assert_eq!(none[0]["Output"], serde_json::to_string(&orders).unwrap());
    assert_eq!(inline_result(&[], Transformation::Compact), json!([]));
}

// ---------------------------------------------------------------- files (§3.1, §3.2)

#[test]
fn json_files_and_manifest_exact_bytes() {
    let ts = TempStore::new();
    let recs = [
        succeeded(0, json!("Hello"), json!("Hello")),
        unsuccessful(1, ChildStatus::Failed, json!("World")),
        succeeded(2, json!("!"), json!("!")),
    ];
    let out = write_results(
        &ts.store,
        &export_spec(None),
        MAP_RUN_ARN,
        PriorResults::default(),
        &recs,
    )
    .unwrap();

    let succ = ts.text(&key("SUCCEEDED_0.json"));
    let expected_succ = format!(
        "[{},{}]",
        serde_json::to_string(&recs[0].to_record()).unwrap(),
        serde_json::to_string(&recs[2].to_record()).unwrap()
    );
    assert_eq!(succ, expected_succ);
    let failed = ts.text(&key("FAILED_0.json"));
    assert_eq!(
        failed,
        format!("[{}]", serde_json::to_string(&recs[1].to_record()).unwrap())
    );
    assert_eq!(
        ts.keys(),
        [
            key("FAILED_0.json"),
            key("SUCCEEDED_0.json"),
            key("manifest.json")
        ]
    );

    let manifest = ts.text(&key("manifest.json"));
    assert_eq!(
        manifest,
        format!(
            r#"{{"DestinationBucket":"result-bucket","MapRunArn":"{MAP_RUN_ARN}","ResultFiles":{{"FAILED":[{{"Key":"mapJobs/{RUN_ID}/FAILED_0.json","Size":{}}}],"PENDING":[],"SUCCEEDED":[{{"Key":"mapJobs/{RUN_ID}/SUCCEEDED_0.json","Size":{}}}]}}}}"#,
            failed.len(),
            succ.len()
        )
    );
    assert_eq!(parse(manifest.as_bytes()), out.manifest);
    assert_eq!(out.manifest_key, key("manifest.json"));
    assert_eq!(out.records, 3);
    assert_eq!(
        out.files,
        [
            ResultFile {
                key: key("FAILED_0.json"),
                size: failed.len() as u64
            },
            ResultFile {
                key: key("SUCCEEDED_0.json"),
                size: succ.len() as u64
            },
        ]
    );
}

#[test]
fn jsonl_files_have_one_record_per_line() {
    let ts = TempStore::new();
    let recs = [
        succeeded(0, json!({"a": 1}), json!({"a": 1})),
        succeeded(1, json!({"a": 2}), json!({"a": 2})),
        ChildRecord::pending(json!({"a": 3})),
    ];
    let spec = export_spec(Some(
        json!({"OutputType": "JSONL", "Transformation": "COMPACT"}),
    ));
    let out = write_results(
        &ts.store,
        &spec,
        MAP_RUN_ARN,
        PriorResults::default(),
        &recs,
    )
    .unwrap();
    assert_eq!(ts.text(&key("SUCCEEDED_0.json")), "{\"a\":1}\n{\"a\":2}\n");
    assert_eq!(
        ts.text(&key("PENDING_0.json")),
        "{\"Input\":\"{\\\"a\\\":3}\",\"InputDetails\":{\"Included\":true},\"Status\":\"PENDING\"}\n"
    );
    assert_eq!(
        out.manifest["ResultFiles"]["PENDING"][0]["Key"],
        key("PENDING_0.json")
    );
    assert_eq!(out.manifest["ResultFiles"]["FAILED"], json!([]));
}

#[test]
fn compact_and_flatten_in_files_keep_failures_as_full_records() {
    let orders = json!([{"customer_id":"145538","order_id":"100000"},{"customer_id":"898037","order_id":"100001"}]);
    let recs = [
        succeeded(0, json!(0), orders.clone()),
        unsuccessful(1, ChildStatus::TimedOut, json!(1)),
        succeeded(2, json!(2), orders.clone()),
        unsuccessful(3, ChildStatus::Aborted, json!(3)),
    ];
    let failed_expected = json!([recs[1].to_record(), recs[3].to_record()]);

    let ts = TempStore::new();
    let spec = export_spec(Some(
        json!({"OutputType": "JSON", "Transformation": "COMPACT"}),
    ));
    write_results(
        &ts.store,
        &spec,
        MAP_RUN_ARN,
        PriorResults::default(),
        &recs,
    )
    .unwrap();
    assert_eq!(
        parse(&ts.read(&key("SUCCEEDED_0.json"))),
        json!([orders, orders])
    );
    assert_eq!(parse(&ts.read(&key("FAILED_0.json"))), failed_expected);

    let ts = TempStore::new();
    let spec = export_spec(Some(
        json!({"OutputType": "JSON", "Transformation": "FLATTEN"}),
    ));
    let out = write_results(
        &ts.store,
        &spec,
        MAP_RUN_ARN,
        PriorResults::default(),
        &recs,
    )
    .unwrap();
    assert_eq!(
        parse(&ts.read(&key("SUCCEEDED_0.json"))),
        json!([orders[0], orders[1], orders[0], orders[1]])
    );
    assert_eq!(parse(&ts.read(&key("FAILED_0.json"))), failed_expected);
    assert_eq!(out.records, 4);

    // FLATTEN + JSONL: one spliced element per line.
    let ts = TempStore::new();
    let spec = export_spec(Some(
        json!({"OutputType": "JSONL", "Transformation": "FLATTEN"}),
    ));
    write_results(
        &ts.store,
        &spec,
        MAP_RUN_ARN,
        PriorResults::default(),
        &recs[..1],
    )
    .unwrap();
    assert_eq!(
        ts.text(&key("SUCCEEDED_0.json")),
        "{\"customer_id\":\"145538\",\"order_id\":\"100000\"}\n{\"customer_id\":\"898037\",\"order_id\":\"100001\"}\n"
    );
}

#[test]
fn empty_run_writes_only_the_manifest() {
    let ts = TempStore::new();
    let out = write_results(
        &ts.store,
        &export_spec(None),
        MAP_RUN_ARN,
        PriorResults::default(),
        &[],
    )
    .unwrap();
    assert_eq!(ts.keys(), [key("manifest.json")]);
    assert_eq!(
        out.manifest["ResultFiles"],
        json!({"FAILED": [], "PENDING": [], "SUCCEEDED": []})
    );
    assert!(out.files.is_empty());
    // FLATTEN of empty arrays only: no SUCCEEDED file either.
    let ts = TempStore::new();
    let spec = export_spec(Some(
        json!({"OutputType": "JSON", "Transformation": "FLATTEN"}),
    ));
    let out = write_results(
        &ts.store,
        &spec,
        MAP_RUN_ARN,
        PriorResults::default(),
        &[succeeded(0, json!(0), json!([]))],
    )
    .unwrap();
    assert_eq!(out.manifest["ResultFiles"]["SUCCEEDED"], json!([]));
    assert_eq!(out.records, 1);
}

fn check_rollover(output_type: &str) {
    let ts = TempStore::new();
    // Inputs and outputs of equal width: every record has the same size.
    let recs: Vec<ChildRecord> = (0..20)
        .map(|i| succeeded(i, json!({"i": i + 10}), json!({"i": i + 10})))
        .collect();
    let one = serde_json::to_vec(&recs[0].to_record()).unwrap().len() as u64;
    // Room for three records per file, not four.
    let max = 3 * (one + 1) + 2;
    let spec = export_spec(Some(json!({"OutputType": output_type}))).with_max_file_bytes(max);
    let out = write_results(
        &ts.store,
        &spec,
        MAP_RUN_ARN,
        PriorResults::default(),
        &recs,
    )
    .unwrap();
    let listed = out.manifest["ResultFiles"]["SUCCEEDED"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(listed.len(), 7, "{listed:?}");
    let mut all = Vec::new();
    for (n, f) in listed.iter().enumerate() {
        let k = f["Key"].as_str().unwrap();
        assert_eq!(k, key(&format!("SUCCEEDED_{n}.json")));
        let bytes = ts.read(k);
        assert_eq!(f["Size"].as_u64().unwrap(), bytes.len() as u64);
        assert_eq!(
            ts.store.head(BUCKET, k, None).unwrap().size,
            bytes.len() as u64
        );
        assert!(bytes.len() as u64 <= max, "{k} is {} bytes", bytes.len());
        let entries: Vec<Value> = if output_type == "JSON" {
            parse(&bytes).as_array().unwrap().clone()
        } else {
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.ends_with('\n'));
            text.lines().map(|l| parse(l.as_bytes())).collect()
        };
        assert_eq!(entries.len(), if n < 6 { 3 } else { 2 });
        all.extend(entries);
    }
    let expected: Vec<Value> = recs.iter().map(ChildRecord::to_record).collect();
    assert_eq!(all, expected);
    assert_eq!(out.files.len(), 7);
}

#[test]
fn rollover_json() {
    check_rollover("JSON");
}

#[test]
fn rollover_jsonl() {
    check_rollover("JSONL");
}

#[test]
fn rollover_boundary_is_exact() {
    // A JSON file of exactly max bytes is kept; one more byte rolls over.
    let recs: Vec<ChildRecord> = (0..2).map(|i| succeeded(i, json!(i), json!(i))).collect();
    let one = serde_json::to_vec(&recs[0].to_record()).unwrap().len() as u64;
    let exact = 1 + one + 1 + one + 1;
    for (max, files) in [(exact, 1), (exact - 1, 2)] {
        let ts = TempStore::new();
        let spec = export_spec(None).with_max_file_bytes(max);
        let out = write_results(
            &ts.store,
            &spec,
            MAP_RUN_ARN,
            PriorResults::default(),
            &recs,
        )
        .unwrap();
        assert_eq!(
            out.manifest["ResultFiles"]["SUCCEEDED"]
                .as_array()
                .unwrap()
                .len(),
            files,
            "max {max}"
        );
    }
}

#[test]
fn an_oversized_record_gets_a_file_of_its_own() {
    let ts = TempStore::new();
    let recs: Vec<ChildRecord> = (0..3).map(|i| succeeded(i, json!(i), json!(i))).collect();
    let spec = export_spec(None).with_max_file_bytes(10);
    let out = write_results(
        &ts.store,
        &spec,
        MAP_RUN_ARN,
        PriorResults::default(),
        &recs,
    )
    .unwrap();
    let listed = out.manifest["ResultFiles"]["SUCCEEDED"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for (n, f) in listed.iter().enumerate() {
        assert_eq!(
            parse(&ts.read(f["Key"].as_str().unwrap())),
            json!([recs[n].to_record()])
        );
    }
}

/// Records the order in which objects become visible.
struct Recording {
    inner: LocalFolderStore,
    log: Arc<Mutex<Vec<String>>>,
}

struct RecordingWriter {
    inner: Box<dyn ObjectWriter>,
    key: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Write for RecordingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl ObjectWriter for RecordingWriter {
    fn complete(self: Box<Self>) -> Result<u64, StoreError> {
        let size = self.inner.complete()?;
        self.log.lock().unwrap().push(self.key.clone());
        Ok(size)
    }
}

impl ObjectStore for Recording {
    fn head(&self, bucket: &str, key: &str, v: Option<&str>) -> Result<ObjectMeta, StoreError> {
        self.inner.head(bucket, key, v)
    }
    fn get(&self, req: &GetObject<'_>) -> Result<Box<dyn Read + Send>, StoreError> {
        self.inner.get(req)
    }
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<&str>,
        max: usize,
    ) -> Result<ListPage, StoreError> {
        self.inner.list(bucket, prefix, token, max)
    }
    fn put(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), StoreError> {
        self.inner.put(bucket, key, body)?;
        self.log.lock().unwrap().push(key.to_string());
        Ok(())
    }
    fn writer(&self, bucket: &str, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        Ok(Box::new(RecordingWriter {
            inner: self.inner.writer(bucket, key)?,
            key: key.into(),
            log: self.log.clone(),
        }))
    }
}

#[test]
fn manifest_is_written_last_and_files_stream() {
    let ts = TempStore::new();
    let rec = Recording {
        inner: LocalFolderStore::new(&ts.root),
        log: Arc::default(),
    };
    let recs: Vec<ChildRecord> = (0..6)
        .map(|i| {
            if i % 2 == 0 {
                succeeded(i, json!(i), json!(i))
            } else {
                unsuccessful(i, ChildStatus::Failed, json!(i))
            }
        })
        .collect();
    let one = serde_json::to_vec(&recs[0].to_record()).unwrap().len() as u64;
    let spec = export_spec(None).with_max_file_bytes(one + 2);
    let mut w = ResultWriter::new(&rec, &spec, MAP_RUN_ARN).unwrap();
    for r in &recs {
        w.write(r).unwrap();
    }
    // Rolled-over files are complete before finish; the manifest is not there yet.
    let before = rec.log.lock().unwrap().clone();
    assert_eq!(
        before,
        [
            key("SUCCEEDED_0.json"),
            key("FAILED_0.json"),
            key("SUCCEEDED_1.json"),
            key("FAILED_1.json")
        ]
    );
    assert!(ts.store.head(BUCKET, &key("manifest.json"), None).is_err());
    w.finish().unwrap();
    let log = rec.log.lock().unwrap().clone();
    assert_eq!(log.len(), 7);
    assert_eq!(log.last().unwrap(), &key("manifest.json"));
}

// ---------------------------------------------------------------- redrive (§5)

#[test]
fn redrive_manifest_references_all_successes_and_only_this_attempts_failures() {
    let ts = TempStore::new();
    let spec = export_spec(None);
    // Attempt 0: children 0 and 2 succeed, 1 fails, 3 never starts.
    let first = [
        succeeded(0, json!(0), json!(0)),
        unsuccessful(1, ChildStatus::Failed, json!(1)),
        succeeded(2, json!(2), json!(2)),
        ChildRecord::pending(json!(3)),
    ];
    let prior0 = load_prior(&ts.store, &spec, MAP_RUN_ARN).unwrap();
    assert_eq!(prior0, PriorResults::default());
    let out0 = write_results(&ts.store, &spec, MAP_RUN_ARN, prior0, &first).unwrap();
    let failed0 = ts.read(&key("FAILED_0.json"));

    // Attempt 1 (redrive): child 1 succeeds now, child 3 fails.
    let prior1 = load_prior(&ts.store, &spec, MAP_RUN_ARN).unwrap();
    assert_eq!(prior1.succeeded, [out0.files[2].clone()]);
    assert_eq!(prior1.next_index, [1, 1, 1]);
    let mut second = [
        succeeded(1, json!(1), json!(1)),
        unsuccessful(3, ChildStatus::Failed, json!(3)),
    ];
    for r in &mut second {
        r.redrive_count = Some(1);
    }
    let out1 = write_results(&ts.store, &spec, MAP_RUN_ARN, prior1.clone(), &second).unwrap();
    let files = &out1.manifest["ResultFiles"];
    let keys = |f: &Value| {
        f.as_array()
            .unwrap()
            .iter()
            .map(|e| e["Key"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(&files["SUCCEEDED"]),
        [key("SUCCEEDED_0.json"), key("SUCCEEDED_1.json")]
    );
    assert_eq!(keys(&files["FAILED"]), [key("FAILED_1.json")]);
    assert_eq!(files["PENDING"], json!([]));
    // Earlier attempts' files are untouched; every listed size is the object's size.
    assert_eq!(ts.read(&key("FAILED_0.json")), failed0);
    for fam in ["FAILED", "PENDING", "SUCCEEDED"] {
        for f in files[fam].as_array().unwrap() {
            assert_eq!(
                f["Size"].as_u64().unwrap(),
                ts.read(f["Key"].as_str().unwrap()).len() as u64
            );
        }
    }
    assert_eq!(
        parse(&ts.read(&key("SUCCEEDED_1.json")))[0]["RedriveCount"],
        1
    );

    // Re-running attempt 1 with the prior it captured is byte-identical.
    let snap = ts.snapshot();
    let again = write_results(&ts.store, &spec, MAP_RUN_ARN, prior1, &second).unwrap();
    assert_eq!(again, out1);
    assert_eq!(ts.snapshot(), snap);

    // Attempt 2: all successes from attempts 0 and 1 still listed; no failures left.
    let prior2 = load_prior(&ts.store, &spec, MAP_RUN_ARN).unwrap();
    assert_eq!(prior2.next_index, [2, 0, 2]);
    let out2 = write_results(
        &ts.store,
        &spec,
        MAP_RUN_ARN,
        prior2,
        &[succeeded(3, json!(3), json!(3))],
    )
    .unwrap();
    assert_eq!(
        keys(&out2.manifest["ResultFiles"]["SUCCEEDED"]),
        [
            key("SUCCEEDED_0.json"),
            key("SUCCEEDED_1.json"),
            key("SUCCEEDED_2.json")
        ]
    );
    assert_eq!(out2.manifest["ResultFiles"]["FAILED"], json!([]));
}

#[test]
fn prior_from_manifest_errors_and_indices() {
    assert!(PriorResults::from_manifest(&json!({})).is_err());
    assert!(PriorResults::from_manifest(&json!({"ResultFiles": {"SUCCEEDED": {}}})).is_err());
    assert!(
        PriorResults::from_manifest(&json!({"ResultFiles": {"SUCCEEDED": [{"Key": "x"}]}}))
            .is_err()
    );
    let p = PriorResults::from_manifest(&json!({"ResultFiles": {
        "FAILED": [{"Key": "p/id/FAILED_4.json", "Size": 3}],
        "PENDING": [],
        "SUCCEEDED": [{"Key": "p/id/SUCCEEDED_0.json", "Size": 1}, {"Key": "p/id/SUCCEEDED_7.json", "Size": 2}]
    }}))
    .unwrap();
    assert_eq!(p.next_index, [5, 0, 8]);
    assert_eq!(p.succeeded.len(), 2);

    let ts = TempStore::new();
    let spec = export_spec(None);
    ts.store
        .put(BUCKET, &key("manifest.json"), b"not json")
        .unwrap();
    let e = load_prior(&ts.store, &spec, MAP_RUN_ARN).unwrap_err();
    assert!(matches!(e, WriterError::Manifest { .. }));
    assert_eq!(e.error_name(), "States.ResultWriterFailed");
}

#[test]
fn rewriting_the_same_records_is_byte_identical() {
    let recs: Vec<ChildRecord> = (0..10)
        .map(|i| match i % 3 {
            0 => succeeded(i, json!({"i": i}), json!([i, i])),
            1 => unsuccessful(i, ChildStatus::TimedOut, json!({"i": i})),
            _ => ChildRecord::pending(json!({"i": i})),
        })
        .collect();
    let spec = export_spec(Some(
        json!({"OutputType": "JSON", "Transformation": "FLATTEN"}),
    ))
    .with_max_file_bytes(300);
    let ts = TempStore::new();
    let a = write_results(
        &ts.store,
        &spec,
        MAP_RUN_ARN,
        PriorResults::default(),
        &recs,
    )
    .unwrap();
    let snap = ts.snapshot();
    let b = write_results(
        &ts.store,
        &spec,
        MAP_RUN_ARN,
        PriorResults::default(),
        &recs,
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(ts.snapshot(), snap);
    let other = TempStore::new();
    write_results(
        &other.store,
        &spec,
        MAP_RUN_ARN,
        PriorResults::default(),
        &recs,
    )
    .unwrap();
    assert_eq!(other.snapshot(), snap);
}

// ---------------------------------------------------------------- failures

#[test]
fn missing_bucket_fails_with_result_writer_failed() {
    let ts = TempStore::new();
    let spec = WriterSpec::from_json(
        &json!({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "nope", "Prefix": "p"}}),
    )
    .unwrap();
    let w = ResultWriter::new(&ts.store, &spec, MAP_RUN_ARN).unwrap();
    let e = w.check_destination().unwrap_err();
    assert_eq!(e.error_name(), "States.ResultWriterFailed");

    let mut w = ResultWriter::new(&ts.store, &spec, MAP_RUN_ARN).unwrap();
    let e = w.write(&succeeded(0, json!(0), json!(0))).unwrap_err();
    match &e {
        WriterError::Store {
            bucket,
            key,
            source,
        } => {
            assert_eq!(bucket, "nope");
            assert_eq!(key, &format!("p/{RUN_ID}/SUCCEEDED_0.json"));
            assert!(matches!(source, StoreError::NoSuchBucket { .. }));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.error_name(), "States.ResultWriterFailed");
    let cause = e.cause();
    assert!(
        cause.contains("s3://nope/p/") && cause.contains("bucket does not exist"),
        "{cause}"
    );

    // Nothing to write still needs the manifest: the failure names it.
    let e = write_results(&ts.store, &spec, MAP_RUN_ARN, PriorResults::default(), &[]).unwrap_err();
    assert!(
        e.cause()
            .contains(&format!("s3://nope/p/{RUN_ID}/manifest.json")),
        "{}",
        e.cause()
    );
    let e = load_prior(&ts.store, &spec, MAP_RUN_ARN).unwrap_err();
    assert!(matches!(
        e,
        WriterError::Store {
            source: StoreError::NoSuchBucket { .. },
            ..
        }
    ));
}

#[test]
fn a_writer_needs_a_destination() {
    let ts = TempStore::new();
    let spec = WriterSpec::from_json(&json!({"WriterConfig": {"OutputType": "JSON"}})).unwrap();
    assert!(matches!(
        ResultWriter::new(&ts.store, &spec, MAP_RUN_ARN),
        Err(WriterError::InvalidSpec { .. })
    ));
    assert_eq!(
        load_prior(&ts.store, &spec, MAP_RUN_ARN).unwrap(),
        PriorResults::default()
    );
}
