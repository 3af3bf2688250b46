//! Error names and causes as Step Functions reports them for service integrations.
//!
//! AWS SDK integrations (`arn:aws:states:::aws-sdk:SERVICE:ACTION`) report
//! `<ServiceName>.<ExceptionName>` where both are the class names of the AWS SDK for Java 2.x:
//! the service prefix is the client's name (`S3`, `DynamoDb`, `Sqs`, `Sns`, `EventBridge`) and
//! the exception name always ends in `Exception` (`S3.NoSuchKeyException` for the S3 code
//! `NoSuchKey`); an error the service does not model is the service's base exception
//! (`DynamoDb.DynamoDbException`). Sources: the Step Functions developer guide, "Learning to
//! use AWS service SDK integrations in Step Functions"
//! (docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html: "ServiceName
//! .ErrorName … both in Pascal case", "add the Exception suffix … S3.BucketAlreadyExistsException",
//! "AcmPca.ResourceNotFoundException"), and names observed on AWS recorded in
//! shared/spec/distributed-map.md §11.7 (`S3.NoSuchKeyException`, `DynamoDb.ResourceNotFoundException`,
//! `DynamoDb.DynamoDbException`) and in public test suites run against TestState
//! (`Sqs.QueueDoesNotExistException`, `EventBridge.AccessDeniedException`).
//!
//! Optimized integrations (`arn:aws:states:::dynamodb:putItem`, `sqs:sendMessage`, …) keep the
//! older SDK for Java 1.x names: `DynamoDB.ConditionalCheckFailedException`,
//! `SQS.QueueDoesNotExistException`, generic `DynamoDB.AmazonDynamoDBException` (seen in
//! public state machines; the SNS and EventBridge generic names are inferred the same way and
//! are unconfirmed).
//!
//! Causes follow the observed form `<message> (Service: S3, Status Code: 404, Request ID: …,
//! Extended Request ID: …)` for SDK integrations and the 1.x form `<message> (Service:
//! AWSLambda; Status Code: 404; Error Code: ResourceNotFoundException; Request ID: …; Proxy:
//! null)` for optimized ones.

use std::fmt::Debug;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::RequestId;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use mapfleet_core::engine::TaskOutcome;

use super::sdk::Flavour;

/// A failed task: Step Functions' error name and cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

impl From<TaskError> for TaskOutcome {
    fn from(e: TaskError) -> Self {
        TaskOutcome::Failed {
            error: Some(e.error),
            cause: Some(e.cause),
        }
    }
}

/// How Step Functions names one service's errors.
#[derive(Debug)]
pub struct ServiceNames {
    /// The SDK for Java 2.x client prefix, for `aws-sdk` integrations (`DynamoDb`).
    pub sdk: &'static str,
    /// The optimized integration's prefix (`DynamoDB`).
    pub optimized: &'static str,
    /// The optimized integration's name for an unmodelled error (`AmazonDynamoDBException`).
    pub optimized_generic: &'static str,
    /// The SDK for Java 1.x service name in optimized causes (`AmazonDynamoDBv2`).
    pub v1_service: &'static str,
    /// The service's modelled errors (exception names), for codes an operation leaves
    /// unmodelled in the Rust SDK.
    pub modeled: &'static [&'static str],
    /// Legacy (query protocol) error codes and the shapes they stand for.
    pub legacy_codes: &'static [(&'static str, &'static str)],
}

pub const S3: ServiceNames = ServiceNames {
    sdk: "S3",
    optimized: "S3",
    optimized_generic: "AmazonS3Exception",
    v1_service: "Amazon S3",
    modeled: &[
        "AccessDeniedException",
        "BucketAlreadyExistsException",
        "BucketAlreadyOwnedByYouException",
        "EncryptionTypeMismatchException",
        "IdempotencyParameterMismatchException",
        "InvalidObjectStateException",
        "InvalidRequestException",
        "InvalidWriteOffsetException",
        "NoSuchBucketException",
        "NoSuchKeyException",
        "NoSuchUploadException",
        "ObjectAlreadyInActiveTierErrorException",
        "ObjectNotInActiveTierErrorException",
        "TooManyPartsException",
    ],
    legacy_codes: &[],
};

pub const DYNAMODB: ServiceNames = ServiceNames {
    sdk: "DynamoDb",
    optimized: "DynamoDB",
    optimized_generic: "AmazonDynamoDBException",
    v1_service: "AmazonDynamoDBv2",
    modeled: &[
        "BackupInUseException",
        "BackupNotFoundException",
        "ConditionalCheckFailedException",
        "ContinuousBackupsUnavailableException",
        "DuplicateItemException",
        "GlobalTableAlreadyExistsException",
        "GlobalTableNotFoundException",
        "IdempotentParameterMismatchException",
        "IndexNotFoundException",
        "InternalServerErrorException",
        "ItemCollectionSizeLimitExceededException",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "ReplicatedWriteConflictException",
        "RequestLimitExceededException",
        "ResourceInUseException",
        "ResourceNotFoundException",
        "TableAlreadyExistsException",
        "TableInUseException",
        "TableNotFoundException",
        "ThrottlingException",
        "TransactionCanceledException",
        "TransactionConflictException",
        "TransactionInProgressException",
    ],
    legacy_codes: &[],
};

pub const SQS: ServiceNames = ServiceNames {
    sdk: "Sqs",
    optimized: "SQS",
    optimized_generic: "AmazonSQSException",
    v1_service: "AmazonSQS",
    modeled: &[
        "BatchEntryIdsNotDistinctException",
        "BatchRequestTooLongException",
        "EmptyBatchRequestException",
        "InvalidAddressException",
        "InvalidAttributeNameException",
        "InvalidAttributeValueException",
        "InvalidBatchEntryIdException",
        "InvalidIdFormatException",
        "InvalidMessageContentsException",
        "InvalidSecurityException",
        "KmsAccessDeniedException",
        "KmsDisabledException",
        "KmsInvalidKeyUsageException",
        "KmsInvalidStateException",
        "KmsNotFoundException",
        "KmsOptInRequiredException",
        "KmsThrottledException",
        "MessageNotInflightException",
        "OverLimitException",
        "PurgeQueueInProgressException",
        "QueueDeletedRecentlyException",
        "QueueDoesNotExistException",
        "QueueNameExistsException",
        "ReceiptHandleIsInvalidException",
        "RequestThrottledException",
        "ResourceNotFoundException",
        "TooManyEntriesInBatchRequestException",
        "UnsupportedOperationException",
    ],
    // The `awsQueryError` codes SQS still answers with (x-amzn-query-error).
    legacy_codes: &[
        (
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            "BatchEntryIdsNotDistinct",
        ),
        (
            "AWS.SimpleQueueService.BatchRequestTooLong",
            "BatchRequestTooLong",
        ),
        (
            "AWS.SimpleQueueService.EmptyBatchRequest",
            "EmptyBatchRequest",
        ),
        (
            "AWS.SimpleQueueService.InvalidBatchEntryId",
            "InvalidBatchEntryId",
        ),
        (
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
        ),
        (
            "AWS.SimpleQueueService.PurgeQueueInProgress",
            "PurgeQueueInProgress",
        ),
        (
            "AWS.SimpleQueueService.QueueDeletedRecently",
            "QueueDeletedRecently",
        ),
        (
            "AWS.SimpleQueueService.UnsupportedOperation",
            "UnsupportedOperation",
        ),
        ("KMS.AccessDeniedException", "KmsAccessDenied"),
        ("KMS.DisabledException", "KmsDisabled"),
        ("KMS.InvalidKeyUsageException", "KmsInvalidKeyUsage"),
        ("KMS.InvalidStateException", "KmsInvalidState"),
        ("KMS.NotFoundException", "KmsNotFound"),
        ("KMS.OptInRequired", "KmsOptInRequired"),
        ("KMS.ThrottlingException", "KmsThrottled"),
        ("QueueAlreadyExists", "QueueNameExists"),
    ],
};

pub const SNS: ServiceNames = ServiceNames {
    sdk: "Sns",
    optimized: "SNS",
    optimized_generic: "AmazonSNSException",
    v1_service: "AmazonSNS",
    modeled: &[
        "AuthorizationErrorException",
        "ConcurrentAccessException",
        "EndpointDisabledException",
        "FilterPolicyLimitExceededException",
        "InternalErrorException",
        "InvalidParameterException",
        "InvalidParameterValueException",
        "InvalidSecurityException",
        "InvalidStateException",
        "KmsAccessDeniedException",
        "KmsDisabledException",
        "KmsInvalidStateException",
        "KmsNotFoundException",
        "KmsOptInRequiredException",
        "KmsThrottlingException",
        "NotFoundException",
        "OptedOutException",
        "PlatformApplicationDisabledException",
        "ReplayLimitExceededException",
        "ResourceNotFoundException",
        "StaleTagException",
        "SubscriptionLimitExceededException",
        "TagLimitExceededException",
        "TagPolicyException",
        "ThrottledException",
        "TopicLimitExceededException",
        "UserErrorException",
        "ValidationException",
        "VerificationException",
    ],
    // SNS (query protocol) codes whose shapes are named differently.
    legacy_codes: &[
        ("AuthorizationError", "AuthorizationErrorException"),
        ("ConcurrentAccess", "ConcurrentAccessException"),
        ("EndpointDisabled", "EndpointDisabledException"),
        ("InternalError", "InternalErrorException"),
        ("InvalidParameter", "InvalidParameterException"),
        ("InvalidSecurity", "InvalidSecurityException"),
        ("KMSAccessDenied", "KmsAccessDeniedException"),
        ("KMSDisabled", "KmsDisabledException"),
        ("KMSInvalidState", "KmsInvalidStateException"),
        ("KMSNotFound", "KmsNotFoundException"),
        ("KMSOptInRequired", "KmsOptInRequired"),
        ("KMSThrottling", "KmsThrottlingException"),
        ("NotFound", "NotFoundException"),
        ("ParameterValueInvalid", "InvalidParameterValueException"),
        ("Throttled", "ThrottledException"),
    ],
};

pub const EVENTBRIDGE: ServiceNames = ServiceNames {
    sdk: "EventBridge",
    optimized: "EventBridge",
    optimized_generic: "AmazonEventBridgeException",
    v1_service: "AmazonEventBridge",
    modeled: &[
        "AccessDeniedException",
        "ConcurrentModificationException",
        "IllegalStatusException",
        "InternalException",
        "InvalidEventPatternException",
        "InvalidStateException",
        "LimitExceededException",
        "ManagedRuleException",
        "OperationDisabledException",
        "PolicyLengthExceededException",
        "ResourceAlreadyExistsException",
        "ResourceNotFoundException",
        "ThrottlingException",
    ],
    legacy_codes: &[],
};

/// The SDK for Java exception name for an error shape: `Fault` becomes `Exception`, and
/// `Exception` is appended when missing (`NoSuchKey` → `NoSuchKeyException`).
pub fn java_exception_name(shape: &str) -> String {
    let base = shape.strip_suffix("Fault").unwrap_or(shape);
    if base.ends_with("Exception") {
        base.to_string()
    } else {
        format!("{base}Exception")
    }
}

/// Acronyms cased as words, as the SDKs name shapes: `KMSAccessDenied` → `KmsAccessDenied`,
/// `EC2Throttled` → `Ec2Throttled`.
pub fn pascal_words(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < chars.len() {
        let upper = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit();
        if upper(chars[i]) {
            let start = i;
            while i < chars.len() && upper(chars[i]) {
                i += 1;
            }
            let mut run: Vec<char> = chars[start..i].to_vec();
            // The last capital of a run followed by lower case starts the next word.
            let next_word = i < chars.len() && chars[i].is_ascii_lowercase() && run.len() > 1;
            let tail = if next_word { run.pop() } else { None };
            for (j, c) in run.iter().enumerate() {
                out.push(if j == 0 { *c } else { c.to_ascii_lowercase() });
            }
            if let Some(t) = tail {
                out.push(t);
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The exception name of a service error: the Rust SDK's modelled variant when there is one,
/// else the error code when the service models it, else `None` (the service's base exception).
pub fn exception_name(
    svc: &ServiceNames,
    variant: Option<&str>,
    code: Option<&str>,
) -> Option<String> {
    if let Some(v) = variant {
        return Some(java_exception_name(v));
    }
    let code = code?;
    let shape = svc
        .legacy_codes
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| pascal_words(code));
    let name = java_exception_name(&shape);
    svc.modeled.contains(&name.as_str()).then_some(name)
}

/// The full error name Step Functions reports for a service error.
pub fn error_name(
    svc: &ServiceNames,
    flavour: Flavour,
    variant: Option<&str>,
    code: Option<&str>,
) -> String {
    let exception = exception_name(svc, variant, code);
    match flavour {
        Flavour::Sdk => format!(
            "{}.{}",
            svc.sdk,
            exception.unwrap_or_else(|| format!("{}Exception", svc.sdk))
        ),
        Flavour::Optimized => format!(
            "{}.{}",
            svc.optimized,
            exception.unwrap_or_else(|| svc.optimized_generic.to_string())
        ),
    }
}

/// The name of a modelled error variant from the SDK error enum's derived `Debug`
/// (`NoSuchKey(NoSuchKey { … })` → `NoSuchKey`); `None` for `Unhandled`.
pub fn variant_name<E: Debug>(err: &E) -> Option<String> {
    let text = format!("{err:?}");
    let name: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    (!name.is_empty() && name != "Unhandled").then_some(name)
}

/// The task failure for an SDK call's error.
pub fn sdk_failure<E>(
    svc: &ServiceNames,
    flavour: Flavour,
    err: &SdkError<E, HttpResponse>,
    extended_request_id: Option<&str>,
) -> TaskError
where
    E: ProvideErrorMetadata + Debug + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let status = ctx.raw().status().as_u16();
            let code = e.code();
            let variant = variant_name(e);
            let error = error_name(svc, flavour, variant.as_deref(), code);
            let message = e
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| code.unwrap_or("Unknown error").to_string());
            let request_id = err.request_id().unwrap_or("null");
            let cause = match flavour {
                Flavour::Sdk => {
                    let ext = extended_request_id
                        .map(|x| format!(", Extended Request ID: {x}"))
                        .unwrap_or_default();
                    format!(
                        "{message} (Service: {}, Status Code: {status}, Request ID: {request_id}{ext})",
                        svc.sdk
                    )
                }
                Flavour::Optimized => format!(
                    "{message} (Service: {}; Status Code: {status}; Error Code: {}; Request ID: {request_id}; Proxy: null)",
                    svc.v1_service,
                    code.unwrap_or("null")
                ),
            };
            TaskError::new(error, cause)
        }
        SdkError::ConstructionFailure(_) => {
            // An invalid request (a missing required member): the service's base exception.
            let error = error_name(svc, flavour, None, None);
            TaskError::new(error, format!("Invalid request: {}", source_text(err)))
        }
        _ => {
            let prefix = match flavour {
                Flavour::Sdk => svc.sdk,
                Flavour::Optimized => svc.optimized,
            };
            TaskError::new(
                format!("{prefix}.SdkClientException"),
                format!("Unable to execute HTTP request: {}", source_text(err)),
            )
        }
    }
}

/// The error and its sources, joined.
pub fn source_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_names_follow_the_sdk_for_java() {
        assert_eq!(java_exception_name("NoSuchKey"), "NoSuchKeyException");
        assert_eq!(
            java_exception_name("ConditionalCheckFailedException"),
            "ConditionalCheckFailedException"
        );
        assert_eq!(
            java_exception_name("DBInstanceNotFoundFault"),
            "DBInstanceNotFoundException"
        );
        assert_eq!(pascal_words("KMSAccessDenied"), "KmsAccessDenied");
        assert_eq!(pascal_words("EC2Throttled"), "Ec2Throttled");
        assert_eq!(pascal_words("NoSuchKey"), "NoSuchKey");
        assert_eq!(pascal_words("ABC"), "Abc");
    }

    #[test]
    fn error_names_per_flavour() {
        let sdk = Flavour::Sdk;
        let opt = Flavour::Optimized;
        assert_eq!(
            error_name(&S3, sdk, Some("NoSuchKey"), Some("NoSuchKey")),
            "S3.NoSuchKeyException"
        );
        // GetObject does not model NoSuchBucket; S3 does.
        assert_eq!(
            error_name(&S3, sdk, None, Some("NoSuchBucket")),
            "S3.NoSuchBucketException"
        );
        assert_eq!(
            error_name(&S3, sdk, None, Some("SlowDown")),
            "S3.S3Exception"
        );
        assert_eq!(
            error_name(&DYNAMODB, sdk, None, Some("ValidationException")),
            "DynamoDb.DynamoDbException"
        );
        assert_eq!(
            error_name(
                &DYNAMODB,
                opt,
                Some("ConditionalCheckFailedException"),
                None
            ),
            "DynamoDB.ConditionalCheckFailedException"
        );
        assert_eq!(
            error_name(&DYNAMODB, opt, None, Some("ValidationException")),
            "DynamoDB.AmazonDynamoDBException"
        );
        assert_eq!(
            error_name(
                &SQS,
                sdk,
                None,
                Some("AWS.SimpleQueueService.NonExistentQueue")
            ),
            "Sqs.QueueDoesNotExistException"
        );
        assert_eq!(
            error_name(&SQS, opt, Some("QueueDoesNotExist"), None),
            "SQS.QueueDoesNotExistException"
        );
        assert_eq!(
            error_name(&SNS, sdk, None, Some("NotFound")),
            "Sns.NotFoundException"
        );
        assert_eq!(
            error_name(&EVENTBRIDGE, sdk, None, None),
            "EventBridge.EventBridgeException"
        );
    }

    #[test]
    fn variant_names_come_from_debug() {
        #[derive(Debug)]
        #[allow(dead_code)]
        enum E {
            NoSuchKey(String),
            Unhandled(String),
        }
        assert_eq!(
            variant_name(&E::NoSuchKey("x".into())).as_deref(),
            Some("NoSuchKey")
        );
        assert_eq!(variant_name(&E::Unhandled("x".into())), None);
    }
}
