//! What the tests against the stand-ins share: the environment `scripts/test.sh` sets
//! (through `scripts/stand-ins.sh`), function invocations through `cargo lambda watch`, S3 on
//! moto server.
#![allow(dead_code)]

use std::sync::OnceLock;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_s3::primitives::ByteStream;
use mapfleet_aws::config::Aws;
use mapfleet_aws::dynamo::create_table;
use serde_json::{json, Value};

pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub aws: Aws,
    pub lambda: aws_sdk_lambda::Client,
    pub state_bucket: String,
}

/// The outcomes the workers recorded for a Map Run (one attempt, or all), by child index.
pub fn recorded_outcomes(map_run_arn: &str, run_attempt: Option<u32>) -> Vec<u64> {
    let e = env();
    let store = mapfleet_aws::s3::S3Store::new(&e.aws);
    let batches = mapfleet_aws::fleet::outcomes::BatchOutcomes {
        store: &store,
        bucket: &e.state_bucket,
    };
    let mut indices: Vec<u64> = batches
        .all(map_run_arn, run_attempt)
        .expect("batch outcomes")
        .into_iter()
        .map(|(_, r)| r.index)
        .collect();
    indices.sort_unstable();
    indices
}

pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the fleet tests through `bash scripts/test.sh`, which starts moto server and cargo lambda watch")
    })
}

pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let moto = var("MAPFLEET_MOTO_ENDPOINT");
        let lambda_endpoint = var("MAPFLEET_LAMBDA_ENDPOINT");
        // Set once, before any SDK configuration is loaded (tests share this process).
        for (k, v) in [
            ("AWS_ENDPOINT_URL", moto.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            std::env::set_var(k, v);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let aws = Aws::load_blocking(rt.handle());
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&aws.sdk)
                .endpoint_url(lambda_endpoint)
                .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
                .build(),
        );
        let table = var("MAPFLEET_TEST_TABLE");
        rt.block_on(create_table(&aws.dynamodb(), &table))
            .expect("create the checkpoint table");
        let state_bucket = var("MAPFLEET_TEST_STATE_BUCKET");
        let _ = rt.block_on(aws.s3().create_bucket().bucket(&state_bucket).send());
        Env {
            rt,
            aws,
            lambda,
            state_bucket,
        }
    })
}

/// Invokes a function through cargo lambda watch: its answer, or its error document.
pub fn invoke(function: &str, payload: &Value) -> Result<Value, Value> {
    let e = env();
    let call = e
        .lambda
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload.to_string()))
        .send();
    match e.rt.block_on(call) {
        Ok(out) => {
            let body: Value = out
                .payload()
                .and_then(|b| serde_json::from_slice(b.as_ref()).ok())
                .unwrap_or(Value::Null);
            if out.function_error().is_some() {
                Err(body)
            } else {
                Ok(body)
            }
        }
        Err(aws_sdk_lambda::error::SdkError::ServiceError(se)) => {
            // cargo lambda watch answers a function error with HTTP 500 and the document.
            let body = se.raw().body().bytes().unwrap_or_default();
            Err(serde_json::from_slice(body).unwrap_or_else(
                |_| json!({"errorType": "transport", "errorMessage": String::from_utf8_lossy(body)}),
            ))
        }
        Err(other) => panic!("invoke {function}: {other:?}"),
    }
}

pub fn create_bucket(bucket: &str) {
    let e = env();
    let _ =
        e.rt.block_on(e.aws.s3().create_bucket().bucket(bucket).send());
}

pub fn put(bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
    let e = env();
    e.rt.block_on(
        e.aws
            .s3()
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.into()))
            .send(),
    )
    .expect("put object");
}
