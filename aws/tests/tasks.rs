//! `AwsTaskInvoker` against real servers: moto (S3, DynamoDB, SQS, SNS, EventBridge, Lambda's
//! missing-function error) and a small HTTP server on 127.0.0.1. No mocks.
//!
//! moto: `MAPFLEET_MOTO_ENDPOINT` when set (the project's test command starts one), else a
//! `moto_server` this test process starts on a free port and that a watchdog stops when the
//! process ends.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use chrono::{TimeZone, Utc};
use mapfleet_aws::config::Aws;
use mapfleet_aws::tasks::lambda::{is_disguised_function_error, lambda_outcome};
use mapfleet_aws::tasks::AwsTaskInvoker;
use mapfleet_core::asl::parse::parse_definition;
use mapfleet_core::asl::ExecutionType;
use mapfleet_core::engine::{
    run_to_completion, Event, Execution, ExecutionInfo, ExecutionStatus, HandlerRegistry,
    IntegrationPattern, RunOptions, TaskInvoker, TaskOutcome, TaskRequest, TimeMode,
};
use mapfleet_core::ports::{Clock, SeededEntropy, VirtualClock};
use serde_json::{json, Value};

// ------------------------------------------------------------------------------- fixtures

/// A moto server this process started; the watchdog shell stops it when the process exits.
struct Moto {
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Fixture {
    _moto: Option<Moto>,
    runtime: tokio::runtime::Runtime,
    aws: Aws,
    invoker: AwsTaskInvoker,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_ready(endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Any HTTP answer means it is up (`/moto-api/data.json` dumps every stored object
        // and grows slow on a long-lived server).
        if matches!(
            ureq::get(&format!("{endpoint}/moto-api/"))
                .timeout(Duration::from_secs(2))
                .call(),
            Ok(_) | Err(ureq::Error::Status(..))
        ) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "moto at {endpoint} never became ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_moto() -> (String, Moto) {
    let port = free_port();
    // The watchdog kills moto once this test process is gone (statics are never dropped).
    let script = format!(
        "moto_server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {pid} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; kill $m 2>/dev/null",
        pid = std::process::id()
    );
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .spawn()
        .expect("moto_server (pip install 'moto[server]') on PATH");
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_ready(&endpoint);
    (endpoint, Moto { child })
}

fn fx() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| {
        let (endpoint, moto) = match std::env::var("MAPFLEET_MOTO_ENDPOINT") {
            Ok(e) if !e.is_empty() => (e.trim_end_matches('/').to_string(), None),
            _ => {
                let (e, m) = start_moto();
                (e, Some(m))
            }
        };
        wait_ready(&endpoint);
        // Set once, before any SDK configuration is built.
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ] {
            std::env::set_var(k, v);
        }
        std::env::remove_var("AWS_PROFILE");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let aws = Aws::load_blocking(runtime.handle());
        let invoker = AwsTaskInvoker::new(&aws).with_bare_lambda_names(true);
        Fixture {
            _moto: moto,
            runtime,
            aws,
            invoker,
        }
    })
}

/// A name no other test (or test run against a shared moto) uses.
fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn request(resource: &str, input: Value) -> TaskRequest {
    let pattern = if resource.ends_with(".waitForTaskToken") {
        IntegrationPattern::WaitForTaskToken
    } else {
        IntegrationPattern::RequestResponse
    };
    TaskRequest {
        task: 1,
        state_name: "T".into(),
        resource: resource.into(),
        pattern,
        input,
        token: (pattern == IntegrationPattern::WaitForTaskToken).then(|| "token-1".to_string()),
        timeout_seconds: None,
        heartbeat_seconds: None,
        credentials: None,
    }
}

fn invoke(resource: &str, input: Value) -> TaskOutcome {
    fx().invoker.invoke(&request(resource, input))
}

fn succeeded(outcome: TaskOutcome) -> Value {
    match outcome {
        TaskOutcome::Succeeded(v) => v,
        other => panic!("expected success, got {other:?}"),
    }
}

/// (error, cause) of a failed outcome.
fn failed(outcome: TaskOutcome) -> (String, String) {
    match outcome {
        TaskOutcome::Failed { error, cause } => {
            (error.unwrap_or_default(), cause.unwrap_or_default())
        }
        other => panic!("expected failure, got {other:?}"),
    }
}

fn create_bucket() -> String {
    let f = fx();
    let bucket = unique("tasks");
    f.runtime
        .block_on(f.aws.s3().create_bucket().bucket(&bucket).send())
        .expect("bucket created");
    bucket
}

fn create_table() -> String {
    let f = fx();
    let table = unique("tasks");
    f.runtime
        .block_on(
            f.aws
                .dynamodb()
                .create_table()
                .table_name(&table)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("pk")
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .expect("attribute"),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("pk")
                        .key_type(KeyType::Hash)
                        .build()
                        .expect("key"),
                )
                .billing_mode(BillingMode::PayPerRequest)
                .send(),
        )
        .expect("table created");
    table
}

fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&fx().aws.sdk)
}

fn create_queue() -> String {
    let f = fx();
    let out = f
        .runtime
        .block_on(sqs().create_queue().queue_name(unique("tasks")).send())
        .expect("queue created");
    out.queue_url().expect("queue url").to_string()
}

fn receive_one(queue_url: &str) -> aws_sdk_sqs::types::Message {
    let f = fx();
    let out = f
        .runtime
        .block_on(
            sqs()
                .receive_message()
                .queue_url(queue_url)
                .message_attribute_names("All")
                .wait_time_seconds(1)
                .send(),
        )
        .expect("receive");
    out.messages().first().cloned().expect("one message")
}

/// Runs a one-machine definition with the AWS invoker; the finished execution.
fn run_machine(definition: Value, input: Value) -> Execution {
    let machine = Arc::new(parse_definition(&definition).expect("valid definition"));
    let clock = VirtualClock::new(
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
            .single()
            .expect("a time"),
    );
    let info = ExecutionInfo::local("M", "e", input, clock.now(), ExecutionType::Standard);
    let mut exec = Execution::new(machine, definition, info, false);
    let entropy = SeededEntropy::new(1);
    run_to_completion(
        &mut exec,
        vec![Event::Start],
        RunOptions {
            time: TimeMode::Virtual(&clock),
            entropy: &entropy,
            invoker: &fx().invoker,
            callbacks: None,
            on_change: None,
            map_runs: None,
            stop: None,
        },
    );
    exec
}

// -------------------------------------------------------------------------------------- S3

#[test]
fn s3_put_object_then_get_object() {
    let bucket = create_bucket();
    let put = succeeded(invoke(
        "arn:aws:states:::aws-sdk:s3:putObject",
        json!({"Bucket": bucket, "Key": "dir/a.txt", "Body": "hello", "ContentType": "text/plain",
               "Metadata": {"owner": "me"}}),
    ));
    let etag = put["ETag"].as_str().expect("an ETag").to_string();
    assert!(etag.starts_with('"'), "{put}");

    let got = succeeded(invoke(
        "arn:aws:states:::aws-sdk:s3:getObject",
        json!({"Bucket": bucket, "Key": "dir/a.txt"}),
    ));
    assert_eq!(got["Body"], json!("hello"));
    assert_eq!(got["ContentLength"], json!(5));
    assert_eq!(got["ContentType"], json!("text/plain"));
    assert_eq!(got["ETag"], json!(etag));
    assert_eq!(got["Metadata"], json!({"owner": "me"}));
    let modified = got["LastModified"].as_str().expect("LastModified");
    assert!(
        chrono::DateTime::parse_from_rfc3339(modified).is_ok() && modified.ends_with('Z'),
        "{modified}"
    );
    // Sorted PascalCase members, no SDK metadata for aws-sdk integrations.
    let keys: Vec<&String> = got.as_object().expect("object").keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(got.get("SdkHttpMetadata").is_none());

    // A JSON body is stored as its text.
    succeeded(invoke(
        "arn:aws:states:::aws-sdk:s3:putObject",
        json!({"Bucket": bucket, "Key": "j.json", "Body": {"a": [1, 2]}}),
    ));
    let got = succeeded(invoke(
        "arn:aws:states:::aws-sdk:s3:getObject",
        json!({"Bucket": bucket, "Key": "j.json", "Range": "bytes=0-4"}),
    ));
    assert_eq!(got["Body"], json!("{\"a\":"));
}

#[test]
fn s3_missing_key_and_bucket_errors() {
    let bucket = create_bucket();
    let (error, cause) = failed(invoke(
        "arn:aws:states:::aws-sdk:s3:getObject",
        json!({"Bucket": bucket, "Key": "nope"}),
    ));
    assert_eq!(error, "S3.NoSuchKeyException");
    assert!(
        cause.contains("(Service: S3, Status Code: 404, Request ID: "),
        "{cause}"
    );

    let (error, _) = failed(invoke(
        "arn:aws:states:::aws-sdk:s3:getObject",
        json!({"Bucket": unique("no-such-bucket"), "Key": "k"}),
    ));
    assert_eq!(error, "S3.NoSuchBucketException");

    let (error, cause) = failed(invoke(
        "arn:aws:states:::aws-sdk:s3:getObject",
        json!({"Key": "k"}),
    ));
    assert_eq!(error, "S3.S3Exception");
    assert!(cause.contains("Bucket"), "{cause}");
}

#[test]
fn s3_get_object_through_the_engine() {
    let bucket = create_bucket();
    succeeded(invoke(
        "arn:aws:states:::aws-sdk:s3:putObject",
        json!({"Bucket": bucket, "Key": "in.json", "Body": "{\"n\": 41}"}),
    ));
    let def = json!({"StartAt": "Get", "States": {
        "Get": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                "Parameters": {"Bucket.$": "$.bucket", "Key": "in.json"},
                "ResultSelector": {"doc.$": "States.StringToJson($.Body)", "len.$": "$.ContentLength"},
                "ResultPath": "$.got", "Next": "Missing"},
        "Missing": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                "Parameters": {"Bucket.$": "$.bucket", "Key": "absent"},
                "Catch": [{"ErrorEquals": ["S3.NoSuchKeyException"], "ResultPath": "$.caught", "Next": "Done"}],
                "Next": "Done"},
        "Done": {"Type": "Pass", "Parameters": {"n.$": "$.got.doc.n", "len.$": "$.got.len", "error.$": "$.caught.Error"}, "End": true}
    }});
    let exec = run_machine(def, json!({"bucket": bucket}));
    assert_eq!(
        exec.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        exec.error,
        exec.cause
    );
    assert_eq!(
        exec.output,
        Some(json!({"n": 41, "len": 9, "error": "S3.NoSuchKeyException"}))
    );
}

// -------------------------------------------------------------------------------- DynamoDB

#[test]
fn dynamodb_put_get_update_delete() {
    let table = create_table();
    let item = json!({"pk": {"S": "a"}, "n": {"N": "1"}, "tags": {"SS": ["x", "y"]},
                      "doc": {"M": {"ok": {"BOOL": true}, "list": {"L": [{"S": "v"}, {"NULL": true}]}}},
                      "bin": {"B": "aGk="}});
    let put = succeeded(invoke(
        "arn:aws:states:::aws-sdk:dynamodb:putItem",
        json!({"TableName": table, "Item": item}),
    ));
    assert_eq!(put, json!({}));

    let got = succeeded(invoke(
        "arn:aws:states:::aws-sdk:dynamodb:getItem",
        json!({"TableName": table, "Key": {"pk": {"S": "a"}}}),
    ));
    assert_eq!(got["Item"]["pk"], json!({"S": "a"}));
    assert_eq!(got["Item"]["n"], json!({"N": "1"}));
    assert_eq!(got["Item"]["doc"], item["doc"]);
    assert_eq!(got["Item"]["bin"], json!({"B": "aGk="}));
    let mut tags: Vec<String> =
        serde_json::from_value(got["Item"]["tags"]["SS"].clone()).expect("SS");
    tags.sort();
    assert_eq!(tags, ["x", "y"]);

    let updated = succeeded(invoke(
        "arn:aws:states:::aws-sdk:dynamodb:updateItem",
        json!({"TableName": table, "Key": {"pk": {"S": "a"}},
               "UpdateExpression": "SET #n = #n + :one, note = :note",
               "ExpressionAttributeNames": {"#n": "n"},
               "ExpressionAttributeValues": {":one": {"N": "1"}, ":note": {"S": "hi"}},
               "ReturnValues": "UPDATED_NEW"}),
    ));
    // (moto also answers ConsumedCapacity unasked; AWS only when asked.)
    assert_eq!(
        updated["Attributes"],
        json!({"n": {"N": "2"}, "note": {"S": "hi"}})
    );

    let (error, cause) = failed(invoke(
        "arn:aws:states:::aws-sdk:dynamodb:putItem",
        json!({"TableName": table, "Item": {"pk": {"S": "a"}},
               "ConditionExpression": "attribute_not_exists(pk)"}),
    ));
    assert_eq!(error, "DynamoDb.ConditionalCheckFailedException");
    assert!(
        cause.contains("(Service: DynamoDb, Status Code: 400, Request ID: "),
        "{cause}"
    );

    // The optimized integration names the same error the SDK for Java 1.x way.
    let (error, _) = failed(invoke(
        "arn:aws:states:::dynamodb:putItem",
        json!({"TableName": table, "Item": {"pk": {"S": "a"}},
               "ConditionExpression": "attribute_not_exists(pk)"}),
    ));
    assert_eq!(error, "DynamoDB.ConditionalCheckFailedException");

    let deleted = succeeded(invoke(
        "arn:aws:states:::aws-sdk:dynamodb:deleteItem",
        json!({"TableName": table, "Key": {"pk": {"S": "a"}}, "ReturnValues": "ALL_OLD"}),
    ));
    assert_eq!(deleted["Attributes"]["note"], json!({"S": "hi"}));
    let got = succeeded(invoke(
        "arn:aws:states:::aws-sdk:dynamodb:getItem",
        json!({"TableName": table, "Key": {"pk": {"S": "a"}}}),
    ));
    assert!(got.get("Item").is_none(), "{got}");
}

#[test]
fn dynamodb_errors_and_optimized_results() {
    let (error, _) = failed(invoke(
        "arn:aws:states:::aws-sdk:dynamodb:getItem",
        json!({"TableName": unique("no-such-table"), "Key": {"pk": {"S": "a"}}}),
    ));
    assert_eq!(error, "DynamoDb.ResourceNotFoundException");

    let table = create_table();
    let (error, cause) = failed(invoke(
        "arn:aws:states:::aws-sdk:dynamodb:putItem",
        json!({"TableName": table, "Item": {"pk": {"X": "a"}}}),
    ));
    assert_eq!(error, "DynamoDb.DynamoDbException");
    assert!(cause.contains("unknown AttributeValue type 'X'"), "{cause}");

    let put = succeeded(invoke(
        "arn:aws:states:::dynamodb:putItem",
        json!({"TableName": table, "Item": {"pk": {"S": "o"}, "v": {"N": "7"}}}),
    ));
    assert_eq!(put["SdkHttpMetadata"], json!({"HttpStatusCode": 200}));
    assert!(put["SdkResponseMetadata"].is_object(), "{put}");
    let got = succeeded(invoke(
        "arn:aws:states:::dynamodb:getItem",
        json!({"TableName": table, "Key": {"pk": {"S": "o"}}}),
    ));
    assert_eq!(got["Item"], json!({"pk": {"S": "o"}, "v": {"N": "7"}}));
}

#[test]
fn dynamodb_through_the_engine() {
    let table = create_table();
    let def = json!({"StartAt": "Put", "States": {
        "Put": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:putItem",
                "Parameters": {"TableName.$": "$.table", "Item": {"pk": {"S.$": "$.id"}, "count": {"N": "1"}},
                               "ConditionExpression": "attribute_not_exists(pk)"},
                "ResultPath": null, "Next": "PutAgain"},
        "PutAgain": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:putItem",
                "Parameters": {"TableName.$": "$.table", "Item": {"pk": {"S.$": "$.id"}},
                               "ConditionExpression": "attribute_not_exists(pk)"},
                "Catch": [{"ErrorEquals": ["DynamoDb.ConditionalCheckFailedException"], "ResultPath": "$.dup", "Next": "Get"}],
                "ResultPath": null, "Next": "Get"},
        "Get": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem",
                "Parameters": {"TableName.$": "$.table", "Key": {"pk": {"S.$": "$.id"}}},
                "ResultSelector": {"count.$": "$.Item.count.N"}, "ResultPath": "$.got", "End": true}
    }});
    let exec = run_machine(def, json!({"table": table, "id": "k1"}));
    assert_eq!(
        exec.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        exec.error,
        exec.cause
    );
    let out = exec.output.expect("output");
    assert_eq!(out["got"], json!({"count": "1"}));
    assert_eq!(
        out["dup"]["Error"],
        json!("DynamoDb.ConditionalCheckFailedException")
    );
}

// ------------------------------------------------------------------------------ SQS, SNS, EB

#[test]
fn sqs_send_message() {
    let queue = create_queue();
    let sent = succeeded(invoke(
        "arn:aws:states:::aws-sdk:sqs:sendMessage",
        json!({"QueueUrl": queue, "MessageBody": "hello",
               "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "greeting"}}}),
    ));
    assert_eq!(
        sent["MD5OfMessageBody"],
        json!("5d41402abc4b2a76b9719d911017c592")
    );
    assert!(sent["MessageId"].is_string(), "{sent}");
    assert!(sent["MD5OfMessageAttributes"].is_string(), "{sent}");
    let m = receive_one(&queue);
    assert_eq!(m.body(), Some("hello"));
    assert_eq!(
        m.message_attributes()
            .and_then(|a| a.get("kind"))
            .and_then(|a| a.string_value()),
        Some("greeting")
    );

    // .waitForTaskToken: the message goes out, the task waits; a JSON body is sent as text.
    let outcome = invoke(
        "arn:aws:states:::aws-sdk:sqs:sendMessage.waitForTaskToken",
        json!({"QueueUrl": queue, "MessageBody": {"token": "token-1"}}),
    );
    assert_eq!(outcome, TaskOutcome::Submitted);
    assert_eq!(receive_one(&queue).body(), Some("{\"token\":\"token-1\"}"));

    // The optimized integration adds SDK metadata.
    let sent = succeeded(invoke(
        "arn:aws:states:::sqs:sendMessage",
        json!({"QueueUrl": queue, "MessageBody": "x"}),
    ));
    assert_eq!(sent["SdkHttpMetadata"]["HttpStatusCode"], json!(200));
}

#[test]
fn sqs_missing_queue() {
    let missing = format!("{}-gone", create_queue());
    let (error, _) = failed(invoke(
        "arn:aws:states:::aws-sdk:sqs:sendMessage",
        json!({"QueueUrl": missing, "MessageBody": "x"}),
    ));
    assert_eq!(error, "Sqs.QueueDoesNotExistException");
    let (error, _) = failed(invoke(
        "arn:aws:states:::sqs:sendMessage",
        json!({"QueueUrl": missing, "MessageBody": "x"}),
    ));
    assert_eq!(error, "SQS.QueueDoesNotExistException");
}

#[test]
fn sns_publish() {
    let f = fx();
    let sns = aws_sdk_sns::Client::new(&f.aws.sdk);
    let topic = f
        .runtime
        .block_on(sns.create_topic().name(unique("tasks")).send())
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_string();
    let published = succeeded(invoke(
        "arn:aws:states:::aws-sdk:sns:publish",
        json!({"TopicArn": topic, "Message": {"hello": "world"}, "Subject": "s",
               "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "k"}}}),
    ));
    assert!(published["MessageId"].is_string(), "{published}");
    assert!(published.get("SdkHttpMetadata").is_none());

    let (error, cause) = failed(invoke(
        "arn:aws:states:::aws-sdk:sns:publish",
        json!({"TopicArn": format!("{topic}-gone"), "Message": "x"}),
    ));
    assert_eq!(error, "Sns.NotFoundException", "{cause}");
}

#[test]
fn eventbridge_put_events() {
    let out = succeeded(invoke(
        "arn:aws:states:::aws-sdk:eventbridge:putEvents",
        json!({"Entries": [
            {"Source": "mapfleet.test", "DetailType": "t", "Detail": "{\"a\":1}", "EventBusName": "default"},
            {"Source": "mapfleet.test", "DetailType": "t", "Detail": {"b": 2}, "Time": "2025-01-01T00:00:00Z"}
        ]}),
    ));
    assert_eq!(out["FailedEntryCount"], json!(0));
    let entries = out["Entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e["EventId"].is_string()), "{out}");

    let outcome = invoke(
        "arn:aws:states:::events:putEvents.waitForTaskToken",
        json!({"Entries": [{"Source": "mapfleet.test", "DetailType": "t", "Detail": {"TaskToken": "token-1"}}]}),
    );
    assert_eq!(outcome, TaskOutcome::Submitted);
}

// ------------------------------------------------------------------------------------ HTTP

/// A request as the test servers see it.
struct Req {
    method: String,
    path: String,
    query: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// An answer: status line, headers, body.
type Reply = (&'static str, Vec<(&'static str, String)>, String);

/// A tiny HTTP/1.1 server on 127.0.0.1 answering with `handler`; returns its base URL.
fn serve_with(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = handler.clone();
            std::thread::spawn(move || serve(stream, handler.as_ref()));
        }
    });
    url
}

fn serve(mut stream: TcpStream, handler: &(dyn Fn(&Req) -> Reply + Send + Sync)) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim().split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let req = Req {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body,
    };
    let (status, reply_headers, text) = handler(&req);
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        text.len()
    );
    for (k, v) in reply_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let _ = write!(stream, "{head}\r\n{text}");
}

/// `/json` echoes the request as JSON, `/text` answers text, anything else is 404.
fn http_server() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        serve_with(|r| {
            let json_type = ("Content-Type", "application/json".to_string());
            match r.path.as_str() {
                "/json" => (
                    "200 OK",
                    vec![json_type, ("X-Reply", "a".into())],
                    json!({"method": r.method, "query": r.query, "body": String::from_utf8_lossy(&r.body),
                           "contentType": r.headers.get("content-type"), "custom": r.headers.get("x-custom"),
                           "userAgent": r.headers.get("user-agent")})
                    .to_string(),
                ),
                "/text" => ("201 Created", vec![("Content-Type", "text/plain".into())], "plain words".into()),
                _ => ("404 Not Found", vec![json_type], "{\"message\":\"no such thing\"}".into()),
            }
        })
    })
    .clone()
}

#[test]
fn http_invoke_json_text_and_errors() {
    let base = http_server();
    let out = succeeded(invoke(
        "arn:aws:states:::http:invoke",
        json!({"ApiEndpoint": format!("{base}/json"), "Method": "POST",
               "Authentication": {"ConnectionArn": "arn:aws:events:us-east-1:123456789012:connection/c/1"},
               "Headers": {"X-Custom": "yes"},
               "QueryParameters": {"q": "a b", "many": ["1", "2"]},
               "RequestBody": {"k": "v"}}),
    ));
    assert_eq!(out["StatusCode"], json!(200));
    assert_eq!(out["StatusText"], json!("OK"));
    let headers = out["Headers"].as_object().expect("headers");
    let reply = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-reply"))
        .map(|(_, v)| v.clone());
    assert_eq!(reply, Some(json!(["a"])));
    let body = &out["ResponseBody"];
    assert_eq!(body["method"], json!("POST"));
    assert_eq!(body["query"], json!("q=a+b&many=1&many=2"));
    assert_eq!(body["body"], json!("{\"k\":\"v\"}"));
    assert_eq!(body["contentType"], json!("application/json"));
    assert_eq!(body["custom"], json!("yes"));
    assert_eq!(
        body["userAgent"],
        json!("Amazon|StepFunctions|HttpInvoke|us-east-1")
    );

    let out = succeeded(invoke(
        "arn:aws:states:::http:invoke",
        json!({"ApiEndpoint": format!("{base}/json"), "Method": "PUT",
               "RequestBody": {"a": ["x", "y"], "b": "c d"},
               "Transform": {"RequestBodyEncoding": "URL_ENCODED",
                             "RequestEncodingOptions": {"ArrayFormat": "REPEAT"}}}),
    ));
    assert_eq!(out["ResponseBody"]["body"], json!("a=x&a=y&b=c+d"));
    assert_eq!(
        out["ResponseBody"]["contentType"],
        json!("application/x-www-form-urlencoded")
    );

    let out = succeeded(invoke(
        "arn:aws:states:::http:invoke",
        json!({"ApiEndpoint": format!("{base}/text"), "Method": "GET"}),
    ));
    assert_eq!(out["ResponseBody"], json!("plain words"));
    assert_eq!(
        (out["StatusCode"].clone(), out["StatusText"].clone()),
        (json!(201), json!("Created"))
    );

    let (error, cause) = failed(invoke(
        "arn:aws:states:::http:invoke",
        json!({"ApiEndpoint": format!("{base}/missing"), "Method": "GET"}),
    ));
    assert_eq!(error, "States.Http.StatusCode.404");
    assert_eq!(cause, "Not Found");

    let (error, _) = failed(invoke(
        "arn:aws:states:::http:invoke",
        json!({"ApiEndpoint": format!("{base}/json"), "Method": "GET", "Headers": {"Authorization": "x"}}),
    ));
    assert_eq!(error, "States.Runtime");

    let (error, _) = failed(invoke(
        "arn:aws:states:::http:invoke",
        json!({"ApiEndpoint": format!("http://127.0.0.1:{}/", free_port()), "Method": "GET"}),
    ));
    assert_eq!(error, "States.Http.Socket");
}

#[test]
fn http_invoke_catches_status_errors_in_the_engine() {
    let base = http_server();
    let def = json!({"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                 "Parameters": {"ApiEndpoint.$": "$.url", "Method": "GET"},
                 "Catch": [{"ErrorEquals": ["States.Http.StatusCode.404"], "Next": "Gone"}],
                 "End": true},
        "Gone": {"Type": "Pass", "Result": "gone", "End": true}
    }});
    let exec = run_machine(def, json!({"url": format!("{base}/nothing")}));
    assert_eq!(exec.output, Some(json!("gone")));
}

// ---------------------------------------------------------------------------------- Lambda

#[test]
fn lambda_missing_function() {
    for resource in [
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
    ] {
        let (error, cause) = failed(invoke(
            resource,
            json!({"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:no-such-function",
                   "Payload": {"a": 1}}),
        ));
        assert_eq!(error, "Lambda.ResourceNotFoundException", "{cause}");
        assert!(
            cause.contains(
                "(Service: AWSLambda; Status Code: 404; Error Code: ResourceNotFoundException"
            ),
            "{cause}"
        );
    }
    let (error, _) = failed(invoke(
        "arn:aws:lambda:us-east-1:123456789012:function:no-such-function",
        json!({"a": 1}),
    ));
    assert_eq!(error, "Lambda.ResourceNotFoundException");
}

/// A stand-in speaking Lambda's Invoke wire protocol (`POST /2015-03-31/functions/NAME/
/// invocations`), for the SDK paths moto cannot show without Docker: function errors both as
/// AWS sends them (200 + `X-Amz-Function-Error`) and as `cargo lambda watch` does (HTTP 500),
/// throttling, service errors. Returns its URL and the calls per function.
fn lambda_stand_in() -> (String, Arc<Mutex<HashMap<String, u32>>>) {
    let calls: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let seen = calls.clone();
    let url = serve_with(move |r| {
        let name = r
            .path
            .trim_start_matches("/2015-03-31/functions/")
            .trim_end_matches("/invocations")
            .to_string();
        let n = {
            let mut c = seen.lock().expect("lock");
            let n = c.entry(name.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let json_type = ("Content-Type", "application/json".to_string());
        let error = r#"{"errorMessage":"bad input","errorType":"ValueError","requestId":"r","stackTrace":[]}"#;
        let throttle = (
            "429 Too Many Requests",
            vec![json_type.clone(), ("x-amzn-ErrorType", "TooManyRequestsException".to_string())],
            r#"{"message":"Rate exceeded","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#.to_string(),
        );
        match name.as_str() {
            "echo" => {
                let got: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                (
                    "200 OK",
                    vec![json_type, ("X-Amz-Executed-Version", "3".into())],
                    json!({"got": got, "query": r.query}).to_string(),
                )
            }
            "text" => ("200 OK", vec![], "HelloWorld!".into()),
            "fails" => (
                "200 OK",
                vec![json_type, ("X-Amz-Function-Error", "Unhandled".into())],
                error.into(),
            ),
            "watch-fails" => ("500 Internal Server Error", vec![json_type], error.into()),
            "throttled-once" if n == 1 => throttle,
            "throttled-once" => ("200 OK", vec![json_type], "{\"ok\":true}".into()),
            "throttled" => throttle,
            "broken" => (
                "500 Internal Server Error",
                vec![json_type, ("x-amzn-ErrorType", "ServiceException".into())],
                "{\"message\":\"oops\"}".into(),
            ),
            _ => (
                "404 Not Found",
                vec![
                    json_type,
                    ("x-amzn-ErrorType", "ResourceNotFoundException".into()),
                ],
                format!("{{\"message\":\"Function not found: {name}\",\"Type\":\"User\"}}"),
            ),
        }
    });
    (url, calls)
}

/// An invoker whose Lambda client talks to `url` (a fresh SDK configuration: the process's
/// AWS_ENDPOINT_URL would win over an endpoint set on the shared one).
fn lambda_invoker(url: &str) -> AwsTaskInvoker {
    let f = fx();
    let mut sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::SharedCredentialsProvider::new(
            aws_sdk_lambda::config::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .endpoint_url(url);
    sdk.set_sleep_impl(f.aws.sdk.sleep_impl());
    sdk.set_time_source(f.aws.sdk.time_source());
    let aws = Aws {
        handle: f.runtime.handle().clone(),
        sdk: sdk.build(),
    };
    AwsTaskInvoker::new(&aws)
        .with_bare_lambda_names(true)
        .with_lambda_throttle_retries(2)
}

#[test]
fn lambda_invoke_through_the_sdk() {
    let (url, calls) = lambda_stand_in();
    let inv = lambda_invoker(&url);
    let call = |resource: &str, input: Value| inv.invoke(&request(resource, input));
    let arn = |name: &str| format!("arn:aws:lambda:us-east-1:123456789012:function:{name}:live");

    let out = succeeded(call(
        "arn:aws:states:::lambda:invoke",
        json!({"FunctionName": arn("echo"), "Payload": {"a": 1}, "Qualifier": "7"}),
    ));
    assert_eq!(
        out,
        json!({"ExecutedVersion": "3", "Payload": {"got": {"a": 1}, "query": "Qualifier=7"},
               "SdkHttpMetadata": {"HttpStatusCode": 200}, "SdkResponseMetadata": {}, "StatusCode": 200})
    );
    // A function ARN as Resource: the input is the payload, the output the function's own.
    assert_eq!(
        succeeded(call(&arn("echo"), json!({"b": 2}))),
        json!({"got": {"b": 2}, "query": ""})
    );
    assert_eq!(
        succeeded(call(
            "arn:aws:states:::lambda:invoke",
            json!({"FunctionName": "text"})
        ))["Payload"],
        json!("HelloWorld!")
    );
    assert_eq!(
        call(
            "arn:aws:states:::lambda:invoke.waitForTaskToken",
            json!({"FunctionName": "echo", "Payload": {"token": "token-1"}})
        ),
        TaskOutcome::Submitted
    );

    // Function errors, as AWS reports them and as `cargo lambda watch` does.
    for name in ["fails", "watch-fails"] {
        let (error, cause) = failed(call(
            "arn:aws:states:::lambda:invoke",
            json!({"FunctionName": name}),
        ));
        assert_eq!(error, "ValueError", "{name}");
        let cause: Value = serde_json::from_str(&cause).expect("the error document");
        assert_eq!(cause["errorMessage"], json!("bad input"));
        let (error, _) = failed(call(&arn(name), json!({})));
        assert_eq!(error, "ValueError", "{name}");
    }

    // Throttling is retried, then reported.
    assert_eq!(
        succeeded(call(
            "arn:aws:states:::lambda:invoke",
            json!({"FunctionName": "throttled-once"})
        ))["Payload"],
        json!({"ok": true})
    );
    let (error, cause) = failed(call(
        "arn:aws:states:::lambda:invoke",
        json!({"FunctionName": "throttled"}),
    ));
    assert_eq!(error, "Lambda.TooManyRequestsException");
    assert!(cause.contains("Status Code: 429"), "{cause}");
    let (error, _) = failed(call(
        "arn:aws:states:::lambda:invoke",
        json!({"FunctionName": "broken"}),
    ));
    assert_eq!(error, "Lambda.ServiceException");
    let (error, _) = failed(call(
        "arn:aws:states:::lambda:invoke",
        json!({"Payload": {}}),
    ));
    assert_eq!(error, "States.Runtime");

    let calls = calls.lock().expect("lock");
    assert_eq!(calls.get("throttled-once"), Some(&2));
    assert_eq!(calls.get("throttled"), Some(&3));
    assert!(
        !calls.keys().any(|k| k.contains(':')),
        "bare names only: {calls:?}"
    );
    drop(calls);

    // Nobody listening.
    let dead = lambda_invoker(&format!("http://127.0.0.1:{}", free_port()));
    let (error, _) = failed(dead.invoke(&request(
        "arn:aws:states:::lambda:invoke",
        json!({"FunctionName": "f"}),
    )));
    assert_eq!(error, "Lambda.SdkClientException");
}

#[test]
fn lambda_response_mapping() {
    // lambda:invoke wraps the payload, as the CLI's local Lambda adapter does.
    assert_eq!(
        lambda_outcome(200, false, br#"{"x":1}"#, true),
        TaskOutcome::Succeeded(json!({
            "ExecutedVersion": "$LATEST",
            "Payload": {"x": 1},
            "SdkHttpMetadata": {"HttpStatusCode": 200},
            "SdkResponseMetadata": {},
            "StatusCode": 200
        }))
    );
    // A function ARN resource: the payload itself; text that is not JSON stays text.
    assert_eq!(
        lambda_outcome(200, false, br#"[1,2]"#, false),
        TaskOutcome::Succeeded(json!([1, 2]))
    );
    assert_eq!(
        lambda_outcome(200, false, b"HelloWorld!", false),
        TaskOutcome::Succeeded(json!("HelloWorld!"))
    );
    assert_eq!(
        lambda_outcome(202, false, b"", true),
        TaskOutcome::Succeeded(json!({
            "ExecutedVersion": "$LATEST", "Payload": "",
            "SdkHttpMetadata": {"HttpStatusCode": 202}, "SdkResponseMetadata": {}, "StatusCode": 202
        }))
    );
    // Function errors: errorType and the payload text.
    let err = br#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}"#;
    assert_eq!(
        lambda_outcome(200, true, err, true),
        TaskOutcome::Failed {
            error: Some("ValueError".into()),
            cause: Some(String::from_utf8_lossy(err).to_string())
        }
    );
    assert_eq!(
        lambda_outcome(200, true, b"{\"errorMessage\":\"x\"}", false),
        TaskOutcome::Failed {
            error: Some("Lambda.Unknown".into()),
            cause: Some("{\"errorMessage\":\"x\"}".into())
        }
    );
    // cargo lambda watch: HTTP 500, no error code, the error JSON.
    assert!(is_disguised_function_error(500, None, err));
    assert!(!is_disguised_function_error(
        500,
        Some("ServiceException"),
        err
    ));
    assert!(!is_disguised_function_error(500, None, b"internal"));
    assert!(!is_disguised_function_error(404, None, err));
}

// --------------------------------------------------------------------------------- fallback

#[test]
fn unknown_resources_fall_back() {
    let f = fx();
    // Without an inner invoker: the CLI's "no integration" failure, and States.Runtime for an
    // AWS SDK action this invoker does not implement.
    let (error, cause) = failed(invoke("arn:aws:states:::batch:submitJob.sync", json!({})));
    assert_eq!(error, "States.TaskFailed");
    assert!(cause.contains("No integration"), "{cause}");
    let (error, cause) = failed(invoke(
        "arn:aws:states:::aws-sdk:ec2:describeInstances",
        json!({}),
    ));
    assert_eq!(error, "States.Runtime");
    assert!(
        cause.contains("arn:aws:states:::aws-sdk:ec2:describeInstances"),
        "{cause}"
    );

    // With one: it gets everything this invoker does not run.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut registry = HandlerRegistry::new();
    for r in [
        "arn:aws:states:::batch:submitJob.sync",
        "arn:aws:states:::aws-sdk:ec2:describeInstances",
    ] {
        let seen = seen.clone();
        registry.register(r, move |req| {
            seen.lock().map(|mut s| s.push(req.resource.clone())).ok();
            Ok(json!({"handled": true}))
        });
    }
    let invoker = AwsTaskInvoker::new(&f.aws).with_inner(Box::new(registry));
    for r in [
        "arn:aws:states:::batch:submitJob.sync",
        "arn:aws:states:::aws-sdk:ec2:describeInstances",
    ] {
        assert_eq!(
            invoker.invoke(&request(r, json!({}))),
            TaskOutcome::Succeeded(json!({"handled": true}))
        );
    }
    assert_eq!(seen.lock().expect("lock").len(), 2);
}
