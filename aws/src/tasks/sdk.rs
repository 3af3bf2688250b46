//! AWS SDK integrations (`arn:aws:states:::aws-sdk:SERVICE:ACTION`) and the optimized
//! integrations for the same calls (`arn:aws:states:::dynamodb:putItem`, `sqs:sendMessage`,
//! `sns:publish`, `events:putEvents`).
//!
//! Parameters are the API's members in PascalCase; results are the API responses in
//! PascalCase, members that are absent left out (S3 `Body` as text, DynamoDB attribute values
//! in their wire form, timestamps as ISO 8601). Optimized results also carry
//! `SdkHttpMetadata`/`SdkResponseMetadata` (as for `lambda:invoke`), except `events:putEvents`;
//! an optimized `putEvents` with failed entries fails with `EventBridge.FailedEntry` (the
//! Step Functions guide, "Add EventBridge events with Step Functions"). The optimized
//! integration's automatic `Resources` (execution and state machine ARNs) are not added: the
//! task request does not carry them. Error names: see [`super::errors`].

use std::collections::HashMap;

use aws_sdk_s3::operation::{RequestId, RequestIdExt};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::{Blob, DateTime};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mapfleet_core::engine::TaskOutcome;
use serde_json::{json, Map, Value};

use super::attr::{self, AttrError};
use super::errors::{self, error_name, sdk_failure, ServiceNames, TaskError};
use super::{Clients, Params};

/// Which kind of integration a resource names: they differ in error names and result extras.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `arn:aws:states:::aws-sdk:SERVICE:ACTION`
    Sdk,
    /// `arn:aws:states:::SERVICE:ACTION`
    Optimized,
}

/// The `aws-sdk` integrations implemented here.
pub const SUPPORTED_SDK: &[&str] = &[
    "s3:getObject",
    "s3:putObject",
    "dynamodb:getItem",
    "dynamodb:putItem",
    "dynamodb:updateItem",
    "dynamodb:deleteItem",
    "sqs:sendMessage",
    "sns:publish",
    "eventbridge:putEvents",
];

/// The optimized integrations implemented here.
pub const SUPPORTED_OPTIMIZED: &[&str] = &[
    "dynamodb:getItem",
    "dynamodb:putItem",
    "dynamodb:updateItem",
    "dynamodb:deleteItem",
    "sqs:sendMessage",
    "sns:publish",
    "events:putEvents",
];

pub fn supported(service: &str, action: &str, flavour: Flavour) -> bool {
    let list = match flavour {
        Flavour::Sdk => SUPPORTED_SDK,
        Flavour::Optimized => SUPPORTED_OPTIMIZED,
    };
    list.iter()
        .any(|s| s.split_once(':') == Some((service, action)))
}

fn names(service: &str) -> &'static ServiceNames {
    match service {
        "s3" => &errors::S3,
        "dynamodb" => &errors::DYNAMODB,
        "sqs" => &errors::SQS,
        "sns" => &errors::SNS,
        _ => &errors::EVENTBRIDGE,
    }
}

/// Performs one supported call (check [`supported`] first).
pub(crate) fn call(
    clients: &Clients,
    flavour: Flavour,
    service: &str,
    action: &str,
    input: &Value,
) -> TaskOutcome {
    let svc = names(service);
    let p = Params::new(input, error_name(svc, flavour, None, None));
    let cx = Cx {
        clients,
        flavour,
        svc,
        p,
    };
    let handle = &clients.handle;
    let result = match (service, action) {
        ("s3", "getObject") => handle.block_on(s3_get_object(&cx)),
        ("s3", "putObject") => handle.block_on(s3_put_object(&cx)),
        ("dynamodb", "getItem") => handle.block_on(ddb_get_item(&cx)),
        ("dynamodb", "putItem") => handle.block_on(ddb_put_item(&cx)),
        ("dynamodb", "updateItem") => handle.block_on(ddb_update_item(&cx)),
        ("dynamodb", "deleteItem") => handle.block_on(ddb_delete_item(&cx)),
        ("sqs", "sendMessage") => handle.block_on(sqs_send_message(&cx)),
        ("sns", "publish") => handle.block_on(sns_publish(&cx)),
        ("eventbridge" | "events", "putEvents") => handle.block_on(events_put_events(&cx)),
        _ => Err(TaskError::new(
            "States.Runtime",
            format!("mapfleet does not implement {service}:{action}"),
        )),
    };
    match result {
        Ok(v) => TaskOutcome::Succeeded(v),
        Err(e) => e.into(),
    }
}

/// One call's context.
struct Cx<'a> {
    clients: &'a Clients,
    flavour: Flavour,
    svc: &'static ServiceNames,
    p: Params<'a>,
}

impl Cx<'_> {
    fn fail<E>(&self, err: &aws_sdk_s3::error::SdkError<E>) -> TaskError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata
            + std::fmt::Debug
            + std::error::Error
            + 'static,
    {
        sdk_failure(self.svc, self.flavour, err, None)
    }

    fn attr_fail(&self, e: AttrError) -> TaskError {
        self.p.fail(e.to_string())
    }

    /// Optimized results carry the SDK's HTTP metadata, as `lambda:invoke` does.
    fn finish(&self, mut out: Map<String, Value>, request_id: Option<&str>) -> Value {
        if self.flavour == Flavour::Optimized {
            out.insert("SdkHttpMetadata".into(), json!({"HttpStatusCode": 200}));
            out.insert(
                "SdkResponseMetadata".into(),
                match request_id {
                    Some(id) => json!({"RequestId": id}),
                    None => json!({}),
                },
            );
        }
        Value::Object(out)
    }
}

/// Builds a result object from optional members.
#[derive(Default)]
struct Out(Map<String, Value>);

impl Out {
    fn put(&mut self, name: &str, v: Option<Value>) -> &mut Self {
        if let Some(v) = v {
            self.0.insert(name.to_string(), v);
        }
        self
    }

    fn s(&mut self, name: &str, v: Option<&str>) -> &mut Self {
        self.put(name, v.map(|s| json!(s)))
    }
}

fn timestamp(t: Option<&DateTime>) -> Option<Value> {
    t.and_then(|t| t.fmt(Format::DateTime).ok())
        .map(Value::String)
}

// ---------------------------------------------------------------------------------------- S3

async fn s3_get_object(cx: &Cx<'_>) -> Result<Value, TaskError> {
    let p = &cx.p;
    let res = cx
        .clients
        .s3()
        .get_object()
        .bucket(p.req_str("Bucket")?)
        .key(p.req_str("Key")?)
        .set_version_id(p.str("VersionId")?.map(str::to_string))
        .set_range(p.str("Range")?.map(str::to_string))
        .set_if_match(p.str("IfMatch")?.map(str::to_string))
        .set_if_none_match(p.str("IfNoneMatch")?.map(str::to_string))
        .send()
        .await;
    let out = match res {
        Ok(o) => o,
        Err(e) => {
            return Err(sdk_failure(cx.svc, cx.flavour, &e, e.extended_request_id()));
        }
    };
    let mut o = Out::default();
    o.s("AcceptRanges", out.accept_ranges())
        .s("CacheControl", out.cache_control())
        .s("ContentDisposition", out.content_disposition())
        .s("ContentEncoding", out.content_encoding())
        .s("ContentLanguage", out.content_language())
        .put("ContentLength", out.content_length().map(|n| json!(n)))
        .s("ContentRange", out.content_range())
        .s("ContentType", out.content_type())
        .put("DeleteMarker", out.delete_marker().map(|b| json!(b)))
        .s("ETag", out.e_tag())
        .s("Expiration", out.expiration())
        .put("LastModified", timestamp(out.last_modified()))
        .put(
            "Metadata",
            Some(json!(out.metadata().cloned().unwrap_or_default())),
        )
        .put("PartsCount", out.parts_count().map(|n| json!(n)))
        .s(
            "ServerSideEncryption",
            out.server_side_encryption().map(|s| s.as_str()),
        )
        .s("StorageClass", out.storage_class().map(|s| s.as_str()))
        .put("TagCount", out.tag_count().map(|n| json!(n)))
        .s("VersionId", out.version_id())
        .s("ChecksumCRC32", out.checksum_crc32())
        .s("ChecksumCRC32C", out.checksum_crc32_c())
        .s("ChecksumSHA1", out.checksum_sha1())
        .s("ChecksumSHA256", out.checksum_sha256());
    let request_id = out.request_id().map(str::to_string);
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| {
            TaskError::new(
                format!("{}.SdkClientException", cx.svc.sdk),
                format!(
                    "Unable to read the object body: {}",
                    errors::source_text(&e)
                ),
            )
        })?
        .into_bytes();
    o.put(
        "Body",
        Some(Value::String(String::from_utf8_lossy(&bytes).to_string())),
    );
    let mut m = o.0;
    m.sort_keys();
    Ok(cx.finish(m, request_id.as_deref()))
}

async fn s3_put_object(cx: &Cx<'_>) -> Result<Value, TaskError> {
    let p = &cx.p;
    let body = p.text("Body").unwrap_or_default();
    let res = cx
        .clients
        .s3()
        .put_object()
        .bucket(p.req_str("Bucket")?)
        .key(p.req_str("Key")?)
        .body(aws_sdk_s3::primitives::ByteStream::from(body.into_bytes()))
        .set_content_type(p.str("ContentType")?.map(str::to_string))
        .set_content_encoding(p.str("ContentEncoding")?.map(str::to_string))
        .set_content_disposition(p.str("ContentDisposition")?.map(str::to_string))
        .set_content_language(p.str("ContentLanguage")?.map(str::to_string))
        .set_cache_control(p.str("CacheControl")?.map(str::to_string))
        .set_metadata(p.string_map("Metadata")?)
        .set_storage_class(
            p.str("StorageClass")?
                .map(aws_sdk_s3::types::StorageClass::from),
        )
        .set_tagging(p.str("Tagging")?.map(str::to_string))
        .send()
        .await;
    let out = match res {
        Ok(o) => o,
        Err(e) => return Err(sdk_failure(cx.svc, cx.flavour, &e, e.extended_request_id())),
    };
    let mut o = Out::default();
    o.s("ChecksumCRC32", out.checksum_crc32())
        .s("ChecksumCRC32C", out.checksum_crc32_c())
        .s("ChecksumSHA1", out.checksum_sha1())
        .s("ChecksumSHA256", out.checksum_sha256())
        .s("ETag", out.e_tag())
        .s("Expiration", out.expiration())
        .s(
            "ServerSideEncryption",
            out.server_side_encryption().map(|s| s.as_str()),
        )
        .s("VersionId", out.version_id());
    Ok(cx.finish(o.0, out.request_id()))
}

// ---------------------------------------------------------------------------------- DynamoDB

/// The members DynamoDB item calls share.
struct DdbParams {
    table: String,
    names: Option<HashMap<String, String>>,
    values: Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    condition: Option<String>,
    return_values: Option<aws_sdk_dynamodb::types::ReturnValue>,
    consumed: Option<aws_sdk_dynamodb::types::ReturnConsumedCapacity>,
    metrics: Option<aws_sdk_dynamodb::types::ReturnItemCollectionMetrics>,
    on_failure: Option<aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure>,
}

fn ddb_params(cx: &Cx<'_>) -> Result<DdbParams, TaskError> {
    let p = &cx.p;
    Ok(DdbParams {
        table: p.req_str("TableName")?.to_string(),
        names: p.string_map("ExpressionAttributeNames")?,
        values: p
            .get("ExpressionAttributeValues")
            .map(attr::item_from_json)
            .transpose()
            .map_err(|e| cx.attr_fail(e))?,
        condition: p.str("ConditionExpression")?.map(str::to_string),
        return_values: p
            .str("ReturnValues")?
            .map(aws_sdk_dynamodb::types::ReturnValue::from),
        consumed: p
            .str("ReturnConsumedCapacity")?
            .map(aws_sdk_dynamodb::types::ReturnConsumedCapacity::from),
        metrics: p
            .str("ReturnItemCollectionMetrics")?
            .map(aws_sdk_dynamodb::types::ReturnItemCollectionMetrics::from),
        on_failure: p
            .str("ReturnValuesOnConditionCheckFailure")?
            .map(aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::from),
    })
}

fn ddb_item(
    cx: &Cx<'_>,
    name: &str,
) -> Result<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, TaskError> {
    let v =
        cx.p.get(name)
            .ok_or_else(|| cx.p.fail(format!("Missing required parameter '{name}'")))?;
    attr::item_from_json(v).map_err(|e| cx.attr_fail(e))
}

fn consumed_json(c: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) -> Option<Value> {
    c.map(|c| {
        let mut o = Out::default();
        o.put("CapacityUnits", c.capacity_units().map(|n| json!(n)))
            .put(
                "ReadCapacityUnits",
                c.read_capacity_units().map(|n| json!(n)),
            )
            .s("TableName", c.table_name())
            .put(
                "WriteCapacityUnits",
                c.write_capacity_units().map(|n| json!(n)),
            );
        Value::Object(o.0)
    })
}

fn metrics_json(m: Option<&aws_sdk_dynamodb::types::ItemCollectionMetrics>) -> Option<Value> {
    m.map(|m| {
        let mut o = Out::default();
        o.put(
            "ItemCollectionKey",
            m.item_collection_key().map(attr::item_to_json),
        )
        .put(
            "SizeEstimateRangeGB",
            Some(json!(m.size_estimate_range_gb())),
        );
        Value::Object(o.0)
    })
}

async fn ddb_get_item(cx: &Cx<'_>) -> Result<Value, TaskError> {
    let p = &cx.p;
    let d = ddb_params(cx)?;
    let res = cx
        .clients
        .dynamodb()
        .get_item()
        .table_name(d.table)
        .set_key(Some(ddb_item(cx, "Key")?))
        .set_consistent_read(p.bool("ConsistentRead")?)
        .set_projection_expression(p.str("ProjectionExpression")?.map(str::to_string))
        .set_expression_attribute_names(d.names)
        .set_return_consumed_capacity(d.consumed)
        .send()
        .await
        .map_err(|e| cx.fail(&e))?;
    let mut o = Out::default();
    o.put("ConsumedCapacity", consumed_json(res.consumed_capacity()))
        .put("Item", res.item().map(attr::item_to_json));
    Ok(cx.finish(o.0, res.request_id()))
}

async fn ddb_put_item(cx: &Cx<'_>) -> Result<Value, TaskError> {
    let d = ddb_params(cx)?;
    let res = cx
        .clients
        .dynamodb()
        .put_item()
        .table_name(d.table)
        .set_item(Some(ddb_item(cx, "Item")?))
        .set_condition_expression(d.condition)
        .set_expression_attribute_names(d.names)
        .set_expression_attribute_values(d.values)
        .set_return_values(d.return_values)
        .set_return_consumed_capacity(d.consumed)
        .set_return_item_collection_metrics(d.metrics)
        .set_return_values_on_condition_check_failure(d.on_failure)
        .send()
        .await
        .map_err(|e| cx.fail(&e))?;
    let mut o = Out::default();
    o.put("Attributes", res.attributes().map(attr::item_to_json))
        .put("ConsumedCapacity", consumed_json(res.consumed_capacity()))
        .put(
            "ItemCollectionMetrics",
            metrics_json(res.item_collection_metrics()),
        );
    Ok(cx.finish(o.0, res.request_id()))
}

async fn ddb_update_item(cx: &Cx<'_>) -> Result<Value, TaskError> {
    let d = ddb_params(cx)?;
    let res = cx
        .clients
        .dynamodb()
        .update_item()
        .table_name(d.table)
        .set_key(Some(ddb_item(cx, "Key")?))
        .set_update_expression(cx.p.str("UpdateExpression")?.map(str::to_string))
        .set_condition_expression(d.condition)
        .set_expression_attribute_names(d.names)
        .set_expression_attribute_values(d.values)
        .set_return_values(d.return_values)
        .set_return_consumed_capacity(d.consumed)
        .set_return_item_collection_metrics(d.metrics)
        .set_return_values_on_condition_check_failure(d.on_failure)
        .send()
        .await
        .map_err(|e| cx.fail(&e))?;
    let mut o = Out::default();
    o.put("Attributes", res.attributes().map(attr::item_to_json))
        .put("ConsumedCapacity", consumed_json(res.consumed_capacity()))
        .put(
            "ItemCollectionMetrics",
            metrics_json(res.item_collection_metrics()),
        );
    Ok(cx.finish(o.0, res.request_id()))
}

async fn ddb_delete_item(cx: &Cx<'_>) -> Result<Value, TaskError> {
    let d = ddb_params(cx)?;
    let res = cx
        .clients
        .dynamodb()
        .delete_item()
        .table_name(d.table)
        .set_key(Some(ddb_item(cx, "Key")?))
        .set_condition_expression(d.condition)
        .set_expression_attribute_names(d.names)
        .set_expression_attribute_values(d.values)
        .set_return_values(d.return_values)
        .set_return_consumed_capacity(d.consumed)
        .set_return_item_collection_metrics(d.metrics)
        .set_return_values_on_condition_check_failure(d.on_failure)
        .send()
        .await
        .map_err(|e| cx.fail(&e))?;
    let mut o = Out::default();
    o.put("Attributes", res.attributes().map(attr::item_to_json))
        .put("ConsumedCapacity", consumed_json(res.consumed_capacity()))
        .put(
            "ItemCollectionMetrics",
            metrics_json(res.item_collection_metrics()),
        );
    Ok(cx.finish(o.0, res.request_id()))
}

// -------------------------------------------------------------------------------- SQS / SNS

/// `MessageAttributes` as (name, DataType, StringValue, BinaryValue) — the same shape for SQS
/// and SNS.
type Attribute = (String, String, Option<String>, Option<Blob>);

fn message_attributes(p: &Params<'_>) -> Result<Vec<Attribute>, TaskError> {
    let Some(m) = p.object("MessageAttributes")? else {
        return Ok(Vec::new());
    };
    m.iter()
        .map(|(name, v)| {
            let data_type = v
                .get("DataType")
                .and_then(Value::as_str)
                .ok_or_else(|| p.fail(format!("MessageAttributes.{name} needs a DataType")))?;
            let string = v
                .get("StringValue")
                .and_then(Value::as_str)
                .map(str::to_string);
            let binary = match v.get("BinaryValue").and_then(Value::as_str) {
                Some(b) => Some(Blob::new(STANDARD.decode(b).map_err(|e| {
                    p.fail(format!(
                        "MessageAttributes.{name}.BinaryValue is not base64: {e}"
                    ))
                })?)),
                None => None,
            };
            Ok((name.clone(), data_type.to_string(), string, binary))
        })
        .collect()
}

async fn sqs_send_message(cx: &Cx<'_>) -> Result<Value, TaskError> {
    let p = &cx.p;
    let body = p
        .text("MessageBody")
        .ok_or_else(|| p.fail("Missing required parameter 'MessageBody'"))?;
    let mut attributes = HashMap::new();
    for (name, data_type, string, binary) in message_attributes(p)? {
        let a = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type(data_type)
            .set_string_value(string)
            .set_binary_value(binary)
            .build()
            .map_err(|e| p.fail(e.to_string()))?;
        attributes.insert(name, a);
    }
    let res = cx
        .clients
        .sqs()
        .send_message()
        .queue_url(p.req_str("QueueUrl")?)
        .message_body(body)
        .set_delay_seconds(p.i32("DelaySeconds")?)
        .set_message_group_id(p.str("MessageGroupId")?.map(str::to_string))
        .set_message_deduplication_id(p.str("MessageDeduplicationId")?.map(str::to_string))
        .set_message_attributes((!attributes.is_empty()).then_some(attributes))
        .send()
        .await
        .map_err(|e| cx.fail(&e))?;
    let mut o = Out::default();
    o.s("MD5OfMessageAttributes", res.md5_of_message_attributes())
        .s("MD5OfMessageBody", res.md5_of_message_body())
        .s(
            "MD5OfMessageSystemAttributes",
            res.md5_of_message_system_attributes(),
        )
        .s("MessageId", res.message_id())
        .s("SequenceNumber", res.sequence_number());
    Ok(cx.finish(o.0, res.request_id()))
}

async fn sns_publish(cx: &Cx<'_>) -> Result<Value, TaskError> {
    let p = &cx.p;
    let message = p
        .text("Message")
        .ok_or_else(|| p.fail("Missing required parameter 'Message'"))?;
    let mut attributes = HashMap::new();
    for (name, data_type, string, binary) in message_attributes(p)? {
        let a = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type(data_type)
            .set_string_value(string)
            .set_binary_value(binary)
            .build()
            .map_err(|e| p.fail(e.to_string()))?;
        attributes.insert(name, a);
    }
    let res = cx
        .clients
        .sns()
        .publish()
        .set_topic_arn(p.str("TopicArn")?.map(str::to_string))
        .set_target_arn(p.str("TargetArn")?.map(str::to_string))
        .set_phone_number(p.str("PhoneNumber")?.map(str::to_string))
        .message(message)
        .set_subject(p.str("Subject")?.map(str::to_string))
        .set_message_structure(p.str("MessageStructure")?.map(str::to_string))
        .set_message_group_id(p.str("MessageGroupId")?.map(str::to_string))
        .set_message_deduplication_id(p.str("MessageDeduplicationId")?.map(str::to_string))
        .set_message_attributes((!attributes.is_empty()).then_some(attributes))
        .send()
        .await
        .map_err(|e| cx.fail(&e))?;
    let mut o = Out::default();
    o.s("MessageId", res.message_id())
        .s("SequenceNumber", res.sequence_number());
    Ok(cx.finish(o.0, res.request_id()))
}

// ------------------------------------------------------------------------------- EventBridge

fn event_entry(
    p: &Params<'_>,
    n: usize,
    v: &Value,
) -> Result<aws_sdk_eventbridge::types::PutEventsRequestEntry, TaskError> {
    let e = Params::new(v, p.error.clone());
    let time = match e.get("Time") {
        None => None,
        Some(Value::String(s)) => {
            Some(DateTime::from_str(s, Format::DateTime).map_err(|err| {
                p.fail(format!("Entries[{n}].Time '{s}' is not a timestamp: {err}"))
            })?)
        }
        Some(Value::Number(secs)) => secs.as_f64().map(DateTime::from_secs_f64),
        Some(other) => {
            return Err(p.fail(format!(
                "Entries[{n}].Time must be a timestamp, not {other}"
            )))
        }
    };
    Ok(aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .set_source(e.str("Source")?.map(str::to_string))
        .set_detail_type(e.str("DetailType")?.map(str::to_string))
        .set_detail(e.text("Detail"))
        .set_event_bus_name(e.str("EventBusName")?.map(str::to_string))
        .set_resources(e.string_list("Resources")?)
        .set_trace_header(e.str("TraceHeader")?.map(str::to_string))
        .set_time(time)
        .build())
}

async fn events_put_events(cx: &Cx<'_>) -> Result<Value, TaskError> {
    let p = &cx.p;
    let entries = match p.get("Entries") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(n, v)| event_entry(p, n, v))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(p.fail(format!("Entries must be a list, not {other}"))),
        None => return Err(p.fail("Missing required parameter 'Entries'")),
    };
    let res = cx
        .clients
        .eventbridge()
        .put_events()
        .set_entries(Some(entries))
        .set_endpoint_id(p.str("EndpointId")?.map(str::to_string))
        .send()
        .await
        .map_err(|e| cx.fail(&e))?;
    let entries: Vec<Value> = res
        .entries()
        .iter()
        .map(|e| {
            let mut o = Out::default();
            o.s("ErrorCode", e.error_code())
                .s("ErrorMessage", e.error_message())
                .s("EventId", e.event_id());
            Value::Object(o.0)
        })
        .collect();
    let failed = res.failed_entry_count();
    let out = json!({"Entries": entries, "FailedEntryCount": failed});
    if cx.flavour == Flavour::Optimized && failed > 0 {
        return Err(TaskError::new("EventBridge.FailedEntry", out.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_lists() {
        assert!(supported("s3", "getObject", Flavour::Sdk));
        assert!(!supported("s3", "getObject", Flavour::Optimized));
        assert!(supported("events", "putEvents", Flavour::Optimized));
        assert!(supported("eventbridge", "putEvents", Flavour::Sdk));
        assert!(!supported("s3", "listObjectsV2", Flavour::Sdk));
    }
}
