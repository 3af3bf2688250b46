//! SDK configuration from the standard AWS environment (`AWS_ENDPOINT_URL`, per-service
//! overrides such as `AWS_ENDPOINT_URL_S3`, region, credentials), so the same binaries run in
//! AWS, against moto server and under `cargo lambda watch`.

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use tokio::runtime::Handle;

/// Shared SDK clients plus the runtime they run on.
#[derive(Clone)]
pub struct Aws {
    pub handle: Handle,
    pub sdk: aws_config::SdkConfig,
}

impl Aws {
    /// Loads the configuration: standard retry mode (exponential backoff with jitter on
    /// throttling such as S3 SlowDown and Lambda TooManyRequestsException, and on 5xx).
    pub async fn load() -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .load()
            .await;
        Aws {
            handle: Handle::current(),
            sdk,
        }
    }

    /// Loads the configuration from a blocking thread.
    pub fn load_blocking(handle: &Handle) -> Self {
        let mut aws = handle.block_on(Self::load());
        aws.handle = handle.clone();
        aws
    }

    /// Whether an endpoint override is set (moto, LocalStack, s3s-fs): S3 then needs
    /// path-style addressing.
    pub fn endpoint_overridden(service_env: &str) -> bool {
        std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os(format!("AWS_ENDPOINT_URL_{service_env}")).is_some()
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(
                Self::endpoint_overridden("S3")
                    || std::env::var("MAPFLEET_S3_PATH_STYLE").is_ok_and(|v| v == "true"),
            )
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    /// Lambda without SDK retries on function errors (a function error is an outcome, not a
    /// transport failure); throttling is retried by the caller with its own backoff.
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        let conf = aws_sdk_lambda::config::Builder::from(&self.sdk)
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_lambda::Client::from_conf(conf)
    }

    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.sdk)
    }
}
