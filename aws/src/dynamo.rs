//! DynamoDB as the fleet's table ([`FleetTable`]): the Map Run records, their listing, leases
//! and execution snapshots. No child is an item: children are in S3 batch objects
//! ([`crate::fleet::state`]).
//!
//! One table, `pk` (S, HASH) + `sk` (S, RANGE), on-demand, TTL on `expires_at`:
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | run record | `RUN#<mapRunArn>` | `RUN` | `record` (the run record's JSON), `version`, `expires_at` |
//! | run listing | `EXEC#<executionArn>` | `MAPRUN#<start>#<mapRunArn>` | summary fields |
//! | lease | `LEASE#<name>` | `LEASE` | `owner`, `lease_until` (epoch ms) |
//! | execution snapshot | `EXECUTION#<name>` | `SNAPSHOT` (+ `SNAPSHOT#<gen>#<n>` chunks) | `snapshot` or `chunks`/`gen` |
//!
//! The run record is written with a version condition, so two coordinators can never both
//! advance the same run.
//!
//! Blocking over the async SDK: call from plain threads or `spawn_blocking` threads.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement, KeyType,
    PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, WriteRequest,
};
use futures_util::stream::{self, StreamExt};
use mapfleet_core::maprun::checkpoint::{CheckpointError, MapRunSummary};
use rand::Rng;
use tokio::runtime::Handle;

use crate::config::Aws;
use crate::fleet::table::{FleetTable, TableError, Versioned};

/// BatchWriteItem: at most 25 items per request.
pub const MAX_BATCH_WRITE_ITEMS: usize = 25;
/// BatchWriteItem: at most 16 MB per request.
pub const MAX_BATCH_WRITE_BYTES: usize = 16 * 1024 * 1024;
/// BatchGetItem: at most 100 keys per request.
pub const MAX_BATCH_GET_KEYS: usize = 100;
/// TransactWriteItems: at most 100 actions per transaction.
pub const MAX_TRANSACT_ACTIONS: usize = 100;
/// TransactWriteItems: at most 4 MB per transaction.
pub const MAX_TRANSACT_BYTES: usize = 4 * 1024 * 1024;
/// A DynamoDB item is at most 400 KB (attribute names included).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Execution snapshots longer than this are split into chunk items of this size.
pub const SNAPSHOT_CHUNK_BYTES: usize = 350 * 1024;

/// Attempts for unprocessed items/keys and conflicting transactions before giving up.
const MAX_ATTEMPTS: u32 = 12;
/// BatchWriteItem requests of one save in flight at once.
const WRITE_CONCURRENCY: usize = 4;

const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    /// An error response (or a transport failure) from DynamoDB.
    #[error("DynamoDB {operation}: {code}: {message}")]
    Aws {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// The run record's version was not the one this store last read or wrote: another
    /// coordinator saved the run.
    #[error("DynamoDB save: ConditionalCheckFailed: the Map Run {map_run_arn} was saved by another coordinator (expected version {expected})")]
    VersionConflict {
        map_run_arn: String,
        expected: String,
    },
    #[error("DynamoDB {operation}: {remaining} request items still unprocessed after {attempts} attempts")]
    Unprocessed {
        operation: &'static str,
        remaining: usize,
        attempts: u32,
    },
    #[error("DynamoDB: item {key} is about {size} bytes, over the 400 KB item limit")]
    ItemTooLarge { key: String, size: usize },
    #[error("DynamoDB: corrupt item {key}: {message}")]
    Corrupt { key: String, message: String },
    #[error("DynamoDB {operation}: {message}")]
    Invalid {
        operation: &'static str,
        message: String,
    },
}

impl DynamoError {
    /// The AWS error code (or a descriptive one for local failures).
    pub fn code(&self) -> &str {
        match self {
            DynamoError::Aws { code, .. } => code,
            DynamoError::VersionConflict { .. } => CONDITION_FAILED,
            DynamoError::Unprocessed { .. } => "Unprocessed",
            DynamoError::ItemTooLarge { .. } => "ItemTooLarge",
            DynamoError::Corrupt { .. } => "Corrupt",
            DynamoError::Invalid { .. } => "Invalid",
        }
    }

    /// A `ConditionalCheckFailed` of any kind.
    pub fn is_condition_failed(&self) -> bool {
        self.code() == CONDITION_FAILED
    }
}

impl From<DynamoError> for CheckpointError {
    fn from(e: DynamoError) -> Self {
        match e {
            DynamoError::Corrupt { key, message } => CheckpointError::Corrupt { key, message },
            other => CheckpointError::Store(other.to_string()),
        }
    }
}

fn aws_err<E>(operation: &'static str, e: &SdkError<E, HttpResponse>) -> DynamoError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e.code() {
        Some(code) => DynamoError::Aws {
            operation,
            code: code.to_string(),
            message: e.message().unwrap_or_default().to_string(),
        },
        None => DynamoError::Aws {
            operation,
            code: "Unknown".into(),
            message: DisplayErrorContext(e).to_string(),
        },
    }
}

fn build_err(operation: &'static str, e: impl std::fmt::Display) -> DynamoError {
    DynamoError::Invalid {
        operation,
        message: e.to_string(),
    }
}

// ------------------------------------------------------------------ table

/// Creates the table (`pk`/`sk` strings, on demand) and enables TTL on `expires_at`.
/// Idempotent: an existing table is fine. Waits until the table is ACTIVE.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<(), DynamoError> {
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(|e| build_err("CreateTable", e))
    };
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| build_err("CreateTable", e))
    };
    let res = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .send()
        .await;
    if let Err(e) = res {
        if e.code() != Some("ResourceInUseException") {
            return Err(aws_err("CreateTable", &e));
        }
    }
    // A new table is CREATING for a few seconds in AWS.
    for _ in 0..300 {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| aws_err("DescribeTable", &e))?;
        match out.table().and_then(|t| t.table_status()) {
            Some(TableStatus::Active) | None => break,
            Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name("expires_at")
        .build()
        .map_err(|e| build_err("UpdateTimeToLive", e))?;
    let res = client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await;
    if let Err(e) = res {
        let err = aws_err("UpdateTimeToLive", &e);
        let text = err.to_string().to_ascii_lowercase();
        // Already enabled, or an endpoint without TTL support: both fine.
        let ignorable = text.contains("already")
            || text.contains("not supported")
            || text.contains("not implemented")
            || text.contains("unknownoperation")
            || text.contains("unsupported");
        if !ignorable {
            return Err(err);
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ helpers

type Item = HashMap<String, AttributeValue>;

/// A condition expression with its attribute names and values.
type Condition<'a> = (&'a str, Option<HashMap<String, String>>, Option<Item>);

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn get_n(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn names(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn values(pairs: Vec<(&str, AttributeValue)>) -> Option<Item> {
    Some(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// DynamoDB's item size rule: attribute names plus values (numbers counted as their text,
/// which over-estimates slightly).
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(x) | AttributeValue::N(x) => x.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(xs) | AttributeValue::Ns(xs) => {
            3 + xs.iter().map(|x| x.len()).sum::<usize>()
        }
        AttributeValue::Bs(xs) => 3 + xs.iter().map(|x| x.as_ref().len()).sum::<usize>(),
        AttributeValue::L(xs) => 3 + xs.iter().map(|x| 1 + value_size(x)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, x)| 1 + k.len() + value_size(x))
                .sum::<usize>()
        }
        _ => 0,
    }
}

fn checked_size(item: &Item) -> Result<usize, DynamoError> {
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(DynamoError::ItemTooLarge {
            key: format!(
                "{}/{}",
                get_s(item, "pk").unwrap_or_default(),
                get_s(item, "sk").unwrap_or_default()
            ),
            size,
        });
    }
    Ok(size)
}

/// Splits `items` into requests of at most `max_count` items and `max_bytes` bytes (an item
/// larger than `max_bytes` alone still gets its own chunk), keeping their order.
pub fn chunk_by<T>(
    items: impl IntoIterator<Item = T>,
    max_count: usize,
    max_bytes: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let max_count = max_count.max(1);
    let mut out = Vec::new();
    let mut cur: Vec<T> = Vec::new();
    let mut bytes = 0usize;
    for item in items {
        let sz = size(&item);
        if !cur.is_empty() && (cur.len() >= max_count || bytes + sz > max_bytes) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += sz;
        cur.push(item);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Exponential backoff with full jitter: 25 ms · 2^attempt, capped at 2 s.
fn backoff(attempt: u32) -> Duration {
    let cap = 25u64.saturating_mul(1u64 << attempt.min(7)).min(2_000);
    Duration::from_millis(rand::thread_rng().gen_range(cap / 2..=cap))
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A start date that sorts as text (fixed nanosecond fraction).
fn sortable_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

fn request_token() -> String {
    let mut rng = rand::thread_rng();
    format!("{:016x}{:016x}", rng.gen::<u64>(), rng.gen::<u64>())
}

// ------------------------------------------------------------------ the store

/// The fleet's records in one DynamoDB table.
pub struct DynamoTable {
    client: aws_sdk_dynamodb::Client,
    handle: Handle,
    table: String,
    ttl_days: u32,
    writes: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
}

impl DynamoTable {
    pub fn new(aws: &Aws, table: impl Into<String>) -> Self {
        Self::from_client(aws.dynamodb(), aws.handle.clone(), table)
    }

    /// A store over an already configured client.
    pub fn from_client(
        client: aws_sdk_dynamodb::Client,
        handle: Handle,
        table: impl Into<String>,
    ) -> Self {
        DynamoTable {
            client,
            handle,
            table: table.into(),
            ttl_days: 30,
            writes: Arc::new(AtomicU64::new(0)),
            reads: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Days the records of a run live after their last write (TTL on `expires_at`).
    pub fn with_ttl_days(mut self, days: u32) -> Self {
        self.ttl_days = days;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// Items written so far (each item of a BatchWriteItem/TransactWriteItems, each
    /// PutItem/UpdateItem/DeleteItem counts one).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Read requests sent so far (GetItem, each Query page, each BatchGetItem).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn wrote(&self, items: usize) {
        self.writes.fetch_add(items as u64, Ordering::Relaxed);
        crate::metrics::DYNAMODB_WRITES.fetch_add(items as u64, Ordering::Relaxed);
    }

    fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        crate::metrics::DYNAMODB_READS.fetch_add(1, Ordering::Relaxed);
    }

    fn block<F: Future>(&self, f: F) -> F::Output {
        self.handle.block_on(f)
    }

    fn expires_at(&self) -> u64 {
        epoch_secs() + u64::from(self.ttl_days) * 86_400
    }

    // -------------------------------------------------------------- low-level requests

    async fn get_item(&self, key: Item) -> Result<Option<Item>, DynamoError> {
        self.get_item_projected(key, None).await
    }

    async fn get_item_projected(
        &self,
        key: Item,
        projection: Option<(&str, Option<HashMap<String, String>>)>,
    ) -> Result<Option<Item>, DynamoError> {
        self.read();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .set_projection_expression(projection.as_ref().map(|(p, _)| p.to_string()))
            .set_expression_attribute_names(projection.and_then(|(_, names)| names))
            .send()
            .await
            .map_err(|e| aws_err("GetItem", &e))?;
        Ok(out.item)
    }

    /// One Query page: items of `pk` (optionally with `sk` starting with `sk_prefix`, and a
    /// `status` in `statuses`), from `start`.
    async fn query_page(
        &self,
        pk: &str,
        sk_prefix: Option<&str>,
        statuses: Option<&[&str]>,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), DynamoError> {
        let mut vals: Item = HashMap::from([(":pk".to_string(), s(pk))]);
        let mut key_cond = "pk = :pk".to_string();
        if let Some(p) = sk_prefix {
            key_cond.push_str(" AND begins_with(sk, :p)");
            vals.insert(":p".into(), s(p));
        }
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(key_cond)
            .consistent_read(true)
            .set_exclusive_start_key(start);
        if let Some(st) = statuses {
            let placeholders: Vec<String> = (0..st.len()).map(|i| format!(":s{i}")).collect();
            for (p, v) in placeholders.iter().zip(st) {
                vals.insert(p.clone(), s(*v));
            }
            req = req
                .filter_expression(format!("#st IN ({})", placeholders.join(", ")))
                .expression_attribute_names("#st", "status");
        }
        self.read();
        let out = req
            .set_expression_attribute_values(Some(vals))
            .send()
            .await
            .map_err(|e| aws_err("Query", &e))?;
        let lek = out.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((out.items.unwrap_or_default(), lek))
    }

    /// Every item of a partition (optionally under an `sk` prefix), paginated.
    async fn query_all(&self, pk: &str, sk_prefix: Option<&str>) -> Result<Vec<Item>, DynamoError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self.query_page(pk, sk_prefix, None, start).await?;
            out.extend(items);
            match next {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    /// PutItem with an optional condition; `Ok(false)` when the condition failed.
    async fn put_item(
        &self,
        item: Item,
        condition: Option<Condition<'_>>,
    ) -> Result<bool, DynamoError> {
        checked_size(&item)?;
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        if let Some((expr, names, vals)) = condition {
            req = req
                .condition_expression(expr)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(vals);
        }
        match req.send().await {
            Ok(_) => {
                self.wrote(1);
                Ok(true)
            }
            Err(e) if e.code() == Some(CONDITION_FAILED) => Ok(false),
            Err(e) => Err(aws_err("PutItem", &e)),
        }
    }

    /// BatchWriteItem of one chunk (≤ 25 requests, ≤ 16 MB), retrying unprocessed items.
    async fn batch_write_chunk(&self, mut requests: Vec<WriteRequest>) -> Result<(), DynamoError> {
        let mut attempt = 0u32;
        loop {
            let sent = requests.len();
            let out = self
                .client
                .batch_write_item()
                .request_items(self.table.clone(), requests)
                .send()
                .await
                .map_err(|e| aws_err("BatchWriteItem", &e))?;
            let left: Vec<WriteRequest> = out
                .unprocessed_items
                .and_then(|mut m| m.remove(&self.table))
                .unwrap_or_default();
            self.wrote(sent.saturating_sub(left.len()));
            if left.is_empty() {
                return Ok(());
            }
            attempt += 1;
            if attempt >= MAX_ATTEMPTS {
                return Err(DynamoError::Unprocessed {
                    operation: "BatchWriteItem",
                    remaining: left.len(),
                    attempts: attempt,
                });
            }
            // Progress resets nothing: unprocessed items mean throttling, so back off.
            tokio::time::sleep(backoff(attempt)).await;
            requests = left;
        }
    }

    /// Writes `items` (each with its size) with BatchWriteItem: chunks of ≤ 25 items and
    /// ≤ 16 MB, a few requests in flight.
    async fn batch_put(&self, items: Vec<(Item, usize)>) -> Result<(), DynamoError> {
        let mut requests = Vec::with_capacity(items.len());
        for (item, size) in items {
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| build_err("BatchWriteItem", e))?;
            requests.push((WriteRequest::builder().put_request(put).build(), size));
        }
        self.batch_write(requests).await
    }

    async fn batch_delete(&self, keys: Vec<Item>) -> Result<(), DynamoError> {
        let mut requests = Vec::with_capacity(keys.len());
        for k in keys {
            let size = item_size(&k);
            let del = DeleteRequest::builder()
                .set_key(Some(k))
                .build()
                .map_err(|e| build_err("BatchWriteItem", e))?;
            requests.push((WriteRequest::builder().delete_request(del).build(), size));
        }
        self.batch_write(requests).await
    }

    async fn batch_write(&self, requests: Vec<(WriteRequest, usize)>) -> Result<(), DynamoError> {
        let chunks = chunk_by(
            requests,
            MAX_BATCH_WRITE_ITEMS,
            MAX_BATCH_WRITE_BYTES,
            |(_, size)| *size,
        );
        let results: Vec<Result<(), DynamoError>> = stream::iter(chunks)
            .map(|chunk| self.batch_write_chunk(chunk.into_iter().map(|(r, _)| r).collect()))
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    // -------------------------------------------------------------- Map Run records

    fn run_pk(arn: &str) -> String {
        format!("RUN#{arn}")
    }

    fn get_run_record(&self, arn: &str) -> Result<Option<Versioned>, DynamoError> {
        let Some(item) = self.block(self.get_item(key(Self::run_pk(arn), "RUN")))? else {
            return Ok(None);
        };
        let text = get_s(&item, "record").ok_or_else(|| DynamoError::Corrupt {
            key: Self::run_pk(arn),
            message: "no record attribute".into(),
        })?;
        Ok(Some(Versioned {
            version: get_n(&item, "version").unwrap_or(0),
            text: text.to_string(),
        }))
    }

    /// The run record, written if nobody else wrote it since version `expected`.
    fn put_run_record(
        &self,
        arn: &str,
        record: &str,
        expected: Option<u64>,
    ) -> Result<u64, DynamoError> {
        let conflict = || DynamoError::VersionConflict {
            map_run_arn: arn.to_string(),
            expected: expected
                .map(|v| v.to_string())
                .unwrap_or_else(|| "none: the run is new".into()),
        };
        let next = expected.unwrap_or(0) + 1;
        let item = HashMap::from([
            ("pk".to_string(), s(Self::run_pk(arn))),
            ("sk".to_string(), s("RUN")),
            ("record".to_string(), s(record)),
            ("version".to_string(), n(next)),
            ("expires_at".to_string(), n(self.expires_at())),
        ]);
        checked_size(&item)?;
        let (cond, vals) = match expected {
            None => ("attribute_not_exists(pk)", None),
            Some(v) => ("#v = :expected", values(vec![(":expected", n(v))])),
        };
        let res = self.block(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(cond)
                .set_expression_attribute_names(
                    expected.map(|_| HashMap::from([("#v".to_string(), "version".to_string())])),
                )
                .set_expression_attribute_values(vals)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send(),
        );
        match res {
            Ok(_) => self.wrote(1),
            Err(e) if e.code() == Some(CONDITION_FAILED) => {
                // A retried request whose first attempt did succeed finds its own write.
                let ours = e
                    .as_service_error()
                    .and_then(|se| match se {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => c.item(),
                        _ => None,
                    })
                    .is_some_and(|old| {
                        get_n(old, "version") == Some(next) && get_s(old, "record") == Some(record)
                    });
                if !ours {
                    return Err(conflict());
                }
                self.wrote(1);
            }
            Err(e) => return Err(aws_err("PutItem", &e)),
        }
        Ok(next)
    }

    fn put_listing_item(&self, run: &MapRunSummary) -> Result<(), DynamoError> {
        let mut item = HashMap::from([
            ("pk".to_string(), s(format!("EXEC#{}", run.execution_arn))),
            (
                "sk".to_string(),
                s(format!(
                    "MAPRUN#{}#{}",
                    chrono::DateTime::parse_from_rfc3339(&run.start_date)
                        .map(|d| sortable_date(d.with_timezone(&chrono::Utc)))
                        .unwrap_or_else(|_| run.start_date.clone()),
                    run.map_run_arn
                )),
            ),
            ("map_run_arn".to_string(), s(run.map_run_arn.as_str())),
            ("execution_arn".to_string(), s(run.execution_arn.as_str())),
            (
                "state_machine_arn".to_string(),
                s(run.state_machine_arn.as_str()),
            ),
            ("start_date".to_string(), s(run.start_date.as_str())),
            ("expires_at".to_string(), n(self.expires_at())),
        ]);
        if let Some(stop) = &run.stop_date {
            item.insert("stop_date".into(), s(stop.as_str()));
        }
        self.block(self.put_item(item, None)).map(|_| ())
    }

    fn list_runs(&self, execution_arn: &str) -> Result<Vec<MapRunSummary>, DynamoError> {
        let items =
            self.block(self.query_all(&format!("EXEC#{execution_arn}"), Some("MAPRUN#")))?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let field = |name: &str| -> Result<String, DynamoError> {
                get_s(item, name)
                    .map(str::to_string)
                    .ok_or_else(|| DynamoError::Corrupt {
                        key: format!(
                            "EXEC#{execution_arn}/{}",
                            get_s(item, "sk").unwrap_or_default()
                        ),
                        message: format!("no {name} attribute"),
                    })
            };
            out.push(MapRunSummary {
                map_run_arn: field("map_run_arn")?,
                execution_arn: field("execution_arn")?,
                state_machine_arn: field("state_machine_arn")?,
                start_date: field("start_date")?,
                stop_date: get_s(item, "stop_date").map(str::to_string),
            });
        }
        Ok(out)
    }

    /// Takes (or extends) the lease `name` for `owner` for `ttl`; false when someone else
    /// holds an unexpired lease.
    pub fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, DynamoError> {
        let now = epoch_millis();
        let until = now.saturating_add(ttl.as_millis() as u64);
        let item = HashMap::from([
            ("pk".to_string(), s(format!("LEASE#{name}"))),
            ("sk".to_string(), s("LEASE")),
            ("owner".to_string(), s(owner)),
            ("lease_until".to_string(), n(until)),
            ("expires_at".to_string(), n(until / 1000 + 86_400)),
        ]);
        self.block(self.put_item(
            item,
            Some((
                "attribute_not_exists(pk) OR #o = :me OR #u < :now",
                names(&[("#o", "owner"), ("#u", "lease_until")]),
                values(vec![(":me", s(owner)), (":now", n(now))]),
            )),
        ))
    }

    /// Gives the lease back if `owner` holds it.
    pub fn release_lease(&self, name: &str, owner: &str) -> Result<(), DynamoError> {
        let res = self.block(
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(format!("LEASE#{name}"), "LEASE")))
                .condition_expression("#o = :me")
                .set_expression_attribute_names(names(&[("#o", "owner")]))
                .set_expression_attribute_values(values(vec![(":me", s(owner))]))
                .send(),
        );
        match res {
            Ok(_) => {
                self.wrote(1);
                Ok(())
            }
            Err(e) if e.code() == Some(CONDITION_FAILED) => Ok(()),
            Err(e) => Err(aws_err("DeleteItem", &e)),
        }
    }

    // -------------------------------------------------------------- execution snapshots

    fn execution_pk(name: &str) -> String {
        format!("EXECUTION#{name}")
    }

    async fn put_execution_async(
        &self,
        name: &str,
        snapshot: &str,
        finished: bool,
    ) -> Result<(), DynamoError> {
        let pk = Self::execution_pk(name);
        let expires = finished.then(|| self.expires_at());
        let mut head = key(pk.clone(), "SNAPSHOT");
        head.insert("finished".into(), AttributeValue::Bool(finished));
        head.insert("bytes".into(), n(snapshot.len()));
        if let Some(e) = expires {
            head.insert("expires_at".into(), n(e));
        }
        if snapshot.len() <= SNAPSHOT_CHUNK_BYTES {
            head.insert("snapshot".into(), s(snapshot));
        } else {
            // Chunks under a fresh generation first, so a crash before the head is written
            // leaves the previous snapshot whole; then the head that points at them.
            let generation = request_token();
            let parts = split_utf8(snapshot, SNAPSHOT_CHUNK_BYTES);
            let mut items = Vec::with_capacity(parts.len());
            for (i, part) in parts.iter().enumerate() {
                let mut item = key(pk.clone(), format!("SNAPSHOT#{generation}#{i:06}"));
                item.insert("data".into(), s(*part));
                if let Some(e) = expires {
                    item.insert("expires_at".into(), n(e));
                }
                let size = checked_size(&item)?;
                items.push((item, size));
            }
            self.batch_put(items).await?;
            head.insert("chunks".into(), n(parts.len()));
            head.insert("gen".into(), s(generation));
        }
        checked_size(&head)?;
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(head.clone()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| aws_err("PutItem", &e))?;
        self.wrote(1);
        // The previous generation's chunks are garbage now.
        if let Some(old) = out.attributes {
            if let (Some(g), Some(count)) = (get_s(&old, "gen"), get_n(&old, "chunks")) {
                if get_s(&head, "gen") != Some(g) {
                    let keys = (0..count)
                        .map(|i| key(pk.clone(), format!("SNAPSHOT#{g}#{i:06}")))
                        .collect();
                    if let Err(e) = self.batch_delete(keys).await {
                        tracing::warn!("deleting old snapshot chunks of {name}: {e}");
                    }
                }
            }
        }
        Ok(())
    }

    /// Saves the parent execution's snapshot (split over several items beyond ~350 KB); a
    /// finished one expires after the TTL.
    pub fn put_execution(
        &self,
        name: &str,
        snapshot: &str,
        finished: bool,
    ) -> Result<(), DynamoError> {
        self.block(self.put_execution_async(name, snapshot, finished))
    }

    async fn get_execution_async(&self, name: &str) -> Result<Option<String>, DynamoError> {
        let pk = Self::execution_pk(name);
        let Some(head) = self.get_item(key(pk.clone(), "SNAPSHOT")).await? else {
            return Ok(None);
        };
        if let Some(text) = get_s(&head, "snapshot") {
            return Ok(Some(text.to_string()));
        }
        let corrupt = |message: String| DynamoError::Corrupt {
            key: format!("{pk}/SNAPSHOT"),
            message,
        };
        let (Some(generation), Some(count)) = (get_s(&head, "gen"), get_n(&head, "chunks")) else {
            return Err(corrupt("neither snapshot nor chunks".into()));
        };
        let items = self
            .query_all(&pk, Some(&format!("SNAPSHOT#{generation}#")))
            .await?;
        if items.len() as u64 != count {
            return Err(corrupt(format!("{} of {count} chunks found", items.len())));
        }
        let mut parts = BTreeMap::new();
        for item in &items {
            let sk = get_s(item, "sk").unwrap_or_default();
            let data =
                get_s(item, "data").ok_or_else(|| corrupt(format!("chunk {sk} has no data")))?;
            parts.insert(sk.to_string(), data);
        }
        let mut out = String::with_capacity(get_n(&head, "bytes").unwrap_or(0) as usize);
        for data in parts.values() {
            out.push_str(data);
        }
        Ok(Some(out))
    }

    /// The saved snapshot of an execution, reassembled.
    pub fn get_execution(&self, name: &str) -> Result<Option<String>, DynamoError> {
        self.block(self.get_execution_async(name))
    }
}

/// Cuts `text` into pieces of at most `max` bytes at character boundaries.
fn split_utf8(text: &str, max: usize) -> Vec<&str> {
    let max = max.max(4);
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(max);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out
}

impl FleetTable for DynamoTable {
    fn get_run(&self, map_run_arn: &str) -> Result<Option<Versioned>, TableError> {
        Ok(self.get_run_record(map_run_arn)?)
    }

    fn put_run(
        &self,
        map_run_arn: &str,
        text: &str,
        expected: Option<u64>,
    ) -> Result<u64, TableError> {
        Ok(self.put_run_record(map_run_arn, text, expected)?)
    }

    fn put_listing(&self, run: &MapRunSummary) -> Result<(), TableError> {
        Ok(self.put_listing_item(run)?)
    }

    fn list_runs(&self, execution_arn: &str) -> Result<Vec<MapRunSummary>, TableError> {
        Ok(DynamoTable::list_runs(self, execution_arn)?)
    }

    fn acquire_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, TableError> {
        Ok(DynamoTable::acquire_lease(self, name, owner, ttl)?)
    }

    fn release_lease(&self, name: &str, owner: &str) -> Result<(), TableError> {
        Ok(DynamoTable::release_lease(self, name, owner)?)
    }

    fn put_execution(&self, name: &str, snapshot: &str, finished: bool) -> Result<(), TableError> {
        Ok(DynamoTable::put_execution(self, name, snapshot, finished)?)
    }

    fn get_execution(&self, name: &str) -> Result<Option<String>, TableError> {
        Ok(DynamoTable::get_execution(self, name)?)
    }
}

impl From<DynamoError> for TableError {
    fn from(e: DynamoError) -> Self {
        match e {
            DynamoError::Corrupt { key, message } => TableError::Corrupt { key, message },
            DynamoError::VersionConflict {
                map_run_arn,
                expected,
            } => TableError::VersionConflict {
                key: map_run_arn,
                expected,
            },
            DynamoError::ItemTooLarge { key, size } => TableError::TooLarge { key, size },
            other => TableError::Service {
                operation: "DynamoDB".into(),
                code: other.code().to_string(),
                message: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_count_and_bytes() {
        let items: Vec<usize> = vec![1; 60];
        let c = chunk_by(items, MAX_BATCH_WRITE_ITEMS, MAX_BATCH_WRITE_BYTES, |x| *x);
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), vec![25, 25, 10]);

        let keys: Vec<u32> = (0..250).collect();
        let c = chunk_by(keys, MAX_BATCH_GET_KEYS, usize::MAX, |_| 0);
        assert_eq!(
            c.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        assert_eq!(c.concat(), (0..250).collect::<Vec<_>>(), "order is kept");

        let actions: Vec<u32> = (0..201).collect();
        let c = chunk_by(actions, MAX_TRANSACT_ACTIONS, MAX_TRANSACT_BYTES, |_| 10);
        assert!(c.iter().all(|x| x.len() <= MAX_TRANSACT_ACTIONS));
        assert_eq!(c.len(), 3);

        // 400 KB items: 16 MB holds 40 of them, but 25 is the limit; 4 MB holds 10.
        let big: Vec<usize> = vec![400 * 1024; 60];
        let c = chunk_by(
            big.clone(),
            MAX_BATCH_WRITE_ITEMS,
            MAX_BATCH_WRITE_BYTES,
            |x| *x,
        );
        assert!(c
            .iter()
            .all(|x| x.len() <= 25 && x.iter().sum::<usize>() <= MAX_BATCH_WRITE_BYTES));
        let c = chunk_by(big, MAX_TRANSACT_ACTIONS, MAX_TRANSACT_BYTES, |x| *x);
        assert!(c
            .iter()
            .all(|x| x.iter().sum::<usize>() <= MAX_TRANSACT_BYTES));
        assert_eq!(c[0].len(), 10);

        // Byte-bound before count-bound.
        let mixed = vec![10 * 1024 * 1024, 5 * 1024 * 1024, 2 * 1024 * 1024, 1];
        let c = chunk_by(mixed, MAX_BATCH_WRITE_ITEMS, MAX_BATCH_WRITE_BYTES, |x| *x);
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2]);

        // An oversized item still goes alone, nothing is empty.
        let c = chunk_by(vec![20 * 1024 * 1024, 1], 25, MAX_BATCH_WRITE_BYTES, |x| *x);
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 1]);
        assert!(chunk_by(Vec::<usize>::new(), 25, 10, |x| *x).is_empty());
    }

    #[test]
    fn utf8_split_keeps_characters() {
        let text = "aé€😀".repeat(1000);
        let parts = split_utf8(&text, 7);
        assert!(parts.iter().all(|p| p.len() <= 7 && !p.is_empty()));
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn listing_dates_sort_as_text() {
        let early =
            chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let later = chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 500_000_000)
            .unwrap_or_default();
        assert!(sortable_date(early) < sortable_date(later));
    }

    #[test]
    fn item_sizes() {
        let item = key("abc", "de");
        assert_eq!(item_size(&item), 2 + 3 + 2 + 2);
    }

    #[test]
    fn errors_become_checkpoint_errors() {
        let e = DynamoError::VersionConflict {
            map_run_arn: "arn".into(),
            expected: "3".into(),
        };
        let c: CheckpointError = e.into();
        assert!(matches!(&c, CheckpointError::Store(m) if m.contains("ConditionalCheckFailed")));
        let c: CheckpointError = DynamoError::Corrupt {
            key: "k".into(),
            message: "m".into(),
        }
        .into();
        assert!(matches!(c, CheckpointError::Corrupt { .. }));
    }
}
