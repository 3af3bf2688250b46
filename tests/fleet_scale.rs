//! The fleet at 100,000 children on the stand-ins (moto server and `cargo lambda watch`, started
//! by `scripts/test.sh`): one CSV job, the coordinator continuing in new invocations, every
//! child in the result files once; prints the requests moto served for it (from moto's
//! request log, `MAPFLEET_MOTO_LOG`) per 1,000 children. Its own test binary, so no other
//! test's requests are counted.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::time::Instant;

use serde_json::{json, Value};

mod stand_ins;
use stand_ins::{create_bucket, env, invoke, put};

const CHILDREN: usize = 100_000;

/// Requests in moto's log from `offset` on, by kind.
fn requests_since(log: &str, offset: u64) -> BTreeMap<&'static str, u64> {
    let mut f = std::fs::File::open(log).expect("moto's log");
    f.seek(SeekFrom::Start(offset)).expect("seek");
    let mut out = BTreeMap::new();
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        let Some(req) = line.split('"').nth(1) else {
            continue;
        };
        // Colour codes around error lines.
        let req = req.trim_start_matches(|c: char| {
            c == '\u{1b}' || c == '[' || c.is_ascii_digit() || c == 'm'
        });
        let kind = if req.starts_with("POST / ") {
            "DynamoDB (POST /)"
        } else if req.starts_with("PUT ") || req.starts_with("POST ") {
            "S3 PUT/POST"
        } else if req.starts_with("GET ") && req.contains("list-type=2") {
            "S3 LIST"
        } else if req.starts_with("GET ") || req.starts_with("HEAD ") {
            "S3 GET/HEAD"
        } else {
            "other"
        };
        *out.entry(kind).or_default() += 1;
    }
    out
}

#[test]
fn a_hundred_thousand_children_on_the_stand_ins() {
    let log = std::env::var("MAPFLEET_MOTO_LOG")
        .expect("MAPFLEET_MOTO_LOG is not set: run through `bash scripts/test.sh`");
    let e = env();
    let bucket = format!("fleet-scale-{}", std::process::id());
    create_bucket(&bucket);
    let mut csv = String::from("id,kind\n");
    for i in 0..CHILDREN {
        csv.push_str(&format!(
            "{i},{}\n",
            if i % 2 == 0 { "even" } else { "odd" }
        ));
    }
    put(&bucket, "items.csv", csv);
    let def = json!({
        "StartAt": "Map",
        "States": {"Map": {
            "Type": "Map",
            "MaxConcurrency": 1000,
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                "Parameters": {"Bucket": bucket, "Key": "items.csv"}
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "Kind",
                "States": {
                    "Kind": {"Type": "Choice", "Choices": [{"Variable": "$.kind", "StringEquals": "even", "Next": "Even"}], "Default": "Odd"},
                    "Even": {"Type": "Pass", "Parameters": {"id.$": "$.id", "even": true}, "End": true},
                    "Odd": {"Type": "Pass", "Parameters": {"id.$": "$.id", "even": false}, "End": true}
                }
            },
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": bucket, "Prefix": "out"}},
            "End": true
        }}
    });
    let name = format!("scale-{}", std::process::id());
    let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let t = Instant::now();
    // Short invocations: the run continues in new ones, each reloading the Map Run.
    let first = invoke(
        "coordinator",
        &json!({"definition": def, "input": {}, "name": name, "budgetSeconds": 30}),
    )
    .expect("the coordinator answers");
    let mut out = first;
    while out["status"] == "RUNNING" {
        std::thread::sleep(std::time::Duration::from_millis(500));
        out =
            invoke("coordinator", &json!({"action": "describe", "name": name})).expect("describe");
    }
    let took = t.elapsed();
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let requests = requests_since(&log, offset);

    // Every child once in the SUCCEEDED files.
    let output: Value =
        serde_json::from_str(out["output"].as_str().expect("output")).expect("JSON");
    let manifest_key = output["ResultWriterDetails"]["Key"]
        .as_str()
        .expect("manifest key")
        .to_string();
    let get = |key: &str| -> Vec<u8> {
        e.rt.block_on(async {
            let got = e
                .aws
                .s3()
                .get_object()
                .bucket(&bucket)
                .key(key)
                .send()
                .await?;
            Ok::<_, Box<dyn std::error::Error>>(got.body.collect().await?.into_bytes().to_vec())
        })
        .expect("get")
    };
    let manifest: Value = serde_json::from_slice(&get(&manifest_key)).expect("manifest");
    let mut seen = vec![false; CHILDREN];
    for f in manifest["ResultFiles"]["SUCCEEDED"]
        .as_array()
        .expect("SUCCEEDED files")
    {
        let key = f["Key"].as_str().expect("key");
        let records: Vec<Value> = serde_json::from_slice(&get(key)).expect("records");
        for r in records {
            let input: Value =
                serde_json::from_str(r["Input"].as_str().expect("Input")).expect("input");
            let id: usize = input["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("id");
            assert!(!seen[id], "child {id} is recorded twice");
            seen[id] = true;
        }
    }
    assert!(
        seen.iter().all(|s| *s),
        "a child is missing from the result files"
    );

    let per_k = |n: u64| n as f64 * 1000.0 / CHILDREN as f64;
    eprintln!(
        "fleet on the stand-ins: {CHILDREN} children in {:.1} s ({:.0} children/s, debug builds under cargo lambda watch, moto as AWS)",
        took.as_secs_f64(),
        CHILDREN as f64 / took.as_secs_f64()
    );
    for (kind, n) in &requests {
        eprintln!(
            "  {kind:<20} {n:>8} requests, {:>8.2} per 1,000 children",
            per_k(*n)
        );
    }
    // One PUT per batch (a worker's records) and a GET for its duplicate check and one for the
    // writer, the run's own few besides: never a request per child, nor a table item.
    let per_invoke: u64 = std::env::var("MAPFLEET_CHILDREN_PER_INVOKE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let batches = (CHILDREN as u64).div_ceil(per_invoke);
    let count = |k: &str| requests.get(k).copied().unwrap_or(0);
    let (puts, gets, dynamodb) = (
        count("S3 PUT/POST"),
        count("S3 GET/HEAD"),
        count("DynamoDB (POST /)"),
    );
    eprintln!("  ({batches} batches of {per_invoke})");
    assert!(
        puts >= batches && puts < batches + 50,
        "{puts} S3 PUTs for {batches} batches"
    );
    assert!(
        gets < 2 * batches + 50,
        "{gets} S3 GETs for {batches} batches"
    );
    assert!(
        dynamodb < 300,
        "{dynamodb} DynamoDB requests for {CHILDREN} children"
    );
}
