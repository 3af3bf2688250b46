//! The S3 object store, the DynamoDB table and the fleet's checkpoint store (run records in
//! DynamoDB, children in S3 batch objects) against a real moto server.
//!
//! Uses `MAPFLEET_MOTO_ENDPOINT` when the test command started moto; otherwise starts
//! `moto_server` on a free port for this process (stopped when the process exits).

use std::io::{Read, Write};
use std::process::{Child as Process, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use mapfleet_aws::config::Aws;
use mapfleet_aws::dynamo::{create_table, DynamoError, DynamoTable, SNAPSHOT_CHUNK_BYTES};
use mapfleet_aws::fleet::state::FleetCheckpoints;
use mapfleet_aws::s3::{S3Store, PART_SIZE};
use mapfleet_core::asl::ExecutionType;
use mapfleet_core::maprun::checkpoint::CheckpointStore;
use mapfleet_core::maprun::{ChildStatus, MapRun, MapRunAction, MapRunEvent, Settings};
use mapfleet_core::reader::{self, ReaderSpec};
use mapfleet_core::storage::{GetObject, ObjectStore, StoreError};
use serde_json::{json, Value};

// ---------------------------------------------------------------- fixture

struct Moto {
    endpoint: String,
    /// The wrapper shell that runs moto_server; it kills moto (by its PID) when our end of
    /// its stdin closes, which the OS does when this process exits.
    _guard: Option<MotoGuard>,
}

struct MotoGuard {
    child: Process,
}

impl Drop for MotoGuard {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

struct Fixture {
    moto: Moto,
    _rt: tokio::runtime::Runtime,
    aws: Aws,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();
static SEQ: AtomicU64 = AtomicU64::new(0);

fn wait_ready(endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
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
        assert!(Instant::now() < deadline, "moto at {endpoint} is not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_moto() -> Moto {
    if let Ok(endpoint) = std::env::var("MAPFLEET_MOTO_ENDPOINT") {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        wait_ready(&endpoint);
        return Moto {
            endpoint,
            _guard: None,
        };
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "moto_server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; read _ignored; kill $m"
        ))
        .stdin(Stdio::piped())
        .spawn()
        .expect("moto_server (pip install 'moto[server]') must be on PATH");
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_ready(&endpoint);
    Moto {
        endpoint,
        _guard: Some(MotoGuard { child }),
    }
}

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let moto = start_moto();
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ] {
            std::env::set_var(k, v);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let aws = Aws::load_blocking(rt.handle());
        Fixture { moto, _rt: rt, aws }
    })
}

fn unique(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

fn bucket(prefix: &str) -> (S3Store, String) {
    let f = fixture();
    let name = unique(prefix);
    f.aws
        .handle
        .block_on(f.aws.s3().create_bucket().bucket(&name).send())
        .unwrap();
    (S3Store::new(&f.aws), name)
}

fn table(prefix: &str) -> String {
    let f = fixture();
    let name = unique(prefix);
    f.aws
        .handle
        .block_on(create_table(&f.aws.dynamodb(), &name))
        .unwrap();
    // Idempotent.
    f.aws
        .handle
        .block_on(create_table(&f.aws.dynamodb(), &name))
        .unwrap();
    name
}

fn read_all(mut r: Box<dyn Read + Send>) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

fn get(store: &S3Store, bucket: &str, key: &str, start: u64, end: Option<u64>) -> Vec<u8> {
    read_all(
        store
            .get(&GetObject {
                bucket,
                key,
                start,
                end,
                ..Default::default()
            })
            .unwrap(),
    )
}

fn get_err(store: &S3Store, bucket: &str, key: &str, start: u64) -> StoreError {
    match store.get(&GetObject {
        bucket,
        key,
        start,
        ..Default::default()
    }) {
        Ok(_) => panic!("expected an error for s3://{bucket}/{key} from {start}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------- S3

#[test]
fn s3_put_get_ranges_head_and_errors() {
    let (s, b) = bucket("basic");
    let before = s.requests();
    s.put(&b, "dir/x.txt", b"hello world").unwrap();
    s.put(&b, "empty", b"").unwrap();
    assert_eq!(get(&s, &b, "dir/x.txt", 0, None), b"hello world");
    assert_eq!(
        get(&s, &b, "dir/x.txt", 6, None),
        b"world",
        "from the middle"
    );
    assert_eq!(get(&s, &b, "dir/x.txt", 0, Some(4)), b"hello");
    assert_eq!(get(&s, &b, "dir/x.txt", 4, Some(6)), b"o w");
    assert_eq!(
        get(&s, &b, "empty", 0, None),
        b"",
        "an empty object reads from 0"
    );
    assert_eq!(s.requests() - before, 7);

    let meta = s.head(&b, "dir/x.txt", None).unwrap();
    assert_eq!(meta.key, "dir/x.txt");
    assert_eq!(meta.size, 11);
    assert_eq!(meta.etag, "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
    assert_eq!(meta.storage_class, "STANDARD");
    assert!(meta.last_modified > Utc::now() - chrono::Duration::minutes(10));

    assert!(matches!(
        s.head(&b, "missing", None),
        Err(StoreError::NoSuchKey { key, .. }) if key == "missing"
    ));
    assert!(matches!(
        s.head("no-such-bucket-mapfleet", "k", None),
        Err(StoreError::NoSuchBucket { bucket }) if bucket == "no-such-bucket-mapfleet"
    ));
    assert!(matches!(
        get_err(&s, &b, "missing", 0),
        StoreError::NoSuchKey { .. }
    ));
    assert!(matches!(
        get_err(&s, "no-such-bucket-mapfleet", "k", 0),
        StoreError::NoSuchBucket { .. }
    ));
    assert!(matches!(
        s.list("no-such-bucket-mapfleet", "", None, 10),
        Err(StoreError::NoSuchBucket { .. })
    ));
    let e = get_err(&s, &b, "dir/x.txt", 50);
    assert!(
        matches!(e, StoreError::InvalidRange { start: 50, .. }),
        "{e:?}"
    );
    assert_eq!(e.code(), "InvalidRange");
}

/// PutObject with `If-None-Match: *`: the first writer wins, a second finds the object and
/// leaves it as it was (S3's 412 Precondition Failed).
#[test]
fn s3_put_if_absent_lets_the_first_writer_win() {
    use mapfleet_core::storage::PutIfAbsent;
    let (s, b) = bucket("cond");
    assert_eq!(
        s.put_if_absent(&b, "runs/r/b-0.jsonl", b"first").unwrap(),
        PutIfAbsent::Created
    );
    assert_eq!(
        s.put_if_absent(&b, "runs/r/b-0.jsonl", b"second").unwrap(),
        PutIfAbsent::Exists
    );
    assert_eq!(get(&s, &b, "runs/r/b-0.jsonl", 0, None), b"first");
}

#[test]
fn s3_list_pages_with_continuation_tokens() {
    let (s, b) = bucket("list");
    for i in 0..7 {
        s.put(
            &b,
            &format!("file_{i}.txt"),
            format!("{i}HelloWorld!").as_bytes(),
        )
        .unwrap();
    }
    s.put(&b, "other/x.txt", b"x").unwrap();
    let mut keys = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let page = s.list(&b, "file_", token.as_deref(), 3).unwrap();
        pages += 1;
        assert!(page.objects.len() <= 3);
        for o in &page.objects {
            assert_eq!(o.size, 12);
            assert!(o.etag.starts_with('"') && o.etag.ends_with('"') && o.etag.len() == 34);
            assert_eq!(o.storage_class, "STANDARD");
            keys.push(o.key.clone());
        }
        match page.next_continuation_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        keys,
        (0..7).map(|i| format!("file_{i}.txt")).collect::<Vec<_>>()
    );
    let all = s.list(&b, "", None, 1000).unwrap();
    assert_eq!(all.objects.len(), 8);
    assert!(all.next_continuation_token.is_none());
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn multipart_uploads(b: &str) -> usize {
    let f = fixture();
    let out = f
        .aws
        .handle
        .block_on(f.aws.s3().list_multipart_uploads().bucket(b).send())
        .unwrap();
    out.uploads().len()
}

#[test]
fn s3_multipart_writer_and_single_put_writer() {
    let (s, b) = bucket("writer");
    let total = 12 * 1024 * 1024;
    let data = pattern(total);
    let before = s.requests();
    let mut w = s.writer(&b, "big.bin").unwrap();
    for chunk in data.chunks(1024 * 1024 + 7) {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(w.complete().unwrap(), total as u64);
    // Create, two parts, complete.
    assert_eq!(s.requests() - before, 4);
    let meta = s.head(&b, "big.bin", None).unwrap();
    assert_eq!(meta.size, total as u64);
    assert!(
        meta.etag.ends_with("-2\""),
        "a two-part ETag: {}",
        meta.etag
    );
    let back = get(&s, &b, "big.bin", 0, None);
    assert!(back == data, "the object reads back whole");
    // A ranged read across the part boundary.
    let from = PART_SIZE as u64 - 10;
    assert_eq!(
        get(&s, &b, "big.bin", from, Some(from + 19)),
        data[from as usize..from as usize + 20].to_vec()
    );
    assert_eq!(multipart_uploads(&b), 0);

    let before = s.requests();
    let mut w = s.writer(&b, "small.json").unwrap();
    w.write_all(b"{\"a\":").unwrap();
    w.write_all(b"1}").unwrap();
    assert_eq!(w.complete().unwrap(), 7);
    assert_eq!(s.requests() - before, 1, "one PutObject");
    assert_eq!(get(&s, &b, "small.json", 0, None), b"{\"a\":1}");
    assert!(!s.head(&b, "small.json", None).unwrap().etag.contains('-'));

    // An empty writer makes an empty object.
    let w = s.writer(&b, "nothing").unwrap();
    assert_eq!(w.complete().unwrap(), 0);
    assert_eq!(s.head(&b, "nothing", None).unwrap().size, 0);
}

#[test]
fn s3_writer_dropped_unfinished_aborts_its_upload() {
    let (s, b) = bucket("abort");
    {
        let mut w = s.writer(&b, "partial.bin").unwrap();
        w.write_all(&pattern(PART_SIZE + 100)).unwrap();
        assert_eq!(multipart_uploads(&b), 1, "one part is uploaded");
    }
    assert_eq!(multipart_uploads(&b), 0, "dropping aborted the upload");
    assert!(matches!(
        s.head(&b, "partial.bin", None),
        Err(StoreError::NoSuchKey { .. })
    ));
    // Writing to a missing bucket fails on complete (single put) with NoSuchBucket.
    let mut w = s.writer("no-such-bucket-mapfleet", "k").unwrap();
    w.write_all(b"x").unwrap();
    assert!(matches!(w.complete(), Err(StoreError::NoSuchBucket { .. })));
}

#[test]
fn s3_expected_bucket_owner_is_sent() {
    let (s, b) = bucket("owner");
    s.put(&b, "k", b"v").unwrap();
    // moto's account is 123456789012; a request naming it as owner succeeds.
    let owned = s
        .clone()
        .with_expected_bucket_owner(Some("123456789012".into()));
    assert_eq!(get(&owned, &b, "k", 0, None), b"v");
    owned.put(&b, "k2", b"w").unwrap();
    assert_eq!(owned.head(&b, "k2", None).unwrap().size, 1);
    // (moto does not check ExpectedBucketOwner, so a wrong owner cannot be tested here.)
}

#[test]
fn core_reader_streams_csv_and_listings_from_s3() {
    let (s, b) = bucket("reader");
    let mut csv = String::from("id,name\n");
    for i in 0..50 {
        csv.push_str(&format!("{i},name-{i}\n"));
    }
    s.put(&b, "data/items.csv", csv.as_bytes()).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(s.clone());
    let spec = ReaderSpec::from_json(&json!({
        "Resource": "arn:aws:states:::s3:getObject",
        "Parameters": {"Bucket": b, "Key": "data/items.csv"},
        "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}
    }))
    .unwrap();
    let items: Vec<reader::Item> = reader::open(store.clone(), &spec, None)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(items.len(), 50);
    assert_eq!(items[0].value, json!({"id": "0", "name": "name-0"}));
    assert_eq!(items[49].value, json!({"id": "49", "name": "name-49"}));
    assert_eq!(items[7].index, 7);
    assert_eq!(&*items[0].source, format!("S3://{b}/data/items.csv"));

    // Resume from a checkpoint (a ranged GET from the middle of the object).
    let mut st = reader::open(store.clone(), &spec, None).unwrap();
    for _ in 0..20 {
        st.next().unwrap().unwrap();
    }
    let pos = st.checkpoint();
    let rest: Vec<Value> = reader::open(store.clone(), &spec, Some(&pos))
        .unwrap()
        .map(|r| r.unwrap().value)
        .collect();
    assert_eq!(rest.len(), 30);
    assert_eq!(rest[0], json!({"id": "20", "name": "name-20"}));

    // A listing.
    let listing = ReaderSpec::from_json(&json!({
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": b, "Prefix": "data/"}
    }))
    .unwrap();
    let items: Vec<reader::Item> = reader::open(store.clone(), &listing, None)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].value["Key"], json!("data/items.csv"));
    assert_eq!(items[0].value["Size"], json!(csv.len()));
    assert_eq!(items[0].value["StorageClass"], json!("STANDARD"));

    // A missing object fails when the stream opens.
    let missing = ReaderSpec::from_json(&json!({
        "Resource": "arn:aws:states:::s3:getObject",
        "Parameters": {"Bucket": b, "Key": "nope.csv"},
        "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}
    }))
    .unwrap();
    assert!(reader::open(store, &missing, None).is_err());
}

// ---------------------------------------------------------------- DynamoDB

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn new_run(execution: &str, max_concurrency: u64, start: DateTime<Utc>) -> MapRun {
    let id = unique("run");
    MapRun::new(
        format!("arn:aws:states:us-east-1:123456789012:mapRun:sm/Map:{id}"),
        execution.to_string(),
        "arn:aws:states:us-east-1:123456789012:stateMachine:sm/Map".into(),
        ExecutionType::Standard,
        Settings {
            max_concurrency,
            tolerated_failure_count: Some(1_000_000),
            tolerated_failure_percentage: None,
        },
        false,
        start,
    )
}

fn execution_arn() -> String {
    format!(
        "arn:aws:states:us-east-1:123456789012:execution:sm:{}",
        unique("e")
    )
}

fn started(actions: &[MapRunAction]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            MapRunAction::StartChild { index, .. } => Some(*index),
            _ => None,
        })
        .collect()
}

/// A run that has read `n` children and started all of them.
fn run_with_children(n: u64) -> MapRun {
    let mut r = new_run(&execution_arn(), 10_000, t0());
    r.apply(MapRunEvent::Start, t0());
    let a = r.apply(
        MapRunEvent::ChildrenRead {
            inputs: (0..n).map(|i| (json!({"i": i}), 1)).collect(),
            position: json!({"byte": n * 10}),
            done: true,
        },
        t0(),
    );
    assert_eq!(started(&a).len() as u64, n);
    r
}

fn dynamo(table: &str) -> DynamoTable {
    DynamoTable::new(&fixture().aws, table)
}

/// A fleet checkpoint store over the table and a state bucket (one per table).
fn store_with(table: &str) -> (FleetCheckpoints, Arc<DynamoTable>) {
    static BUCKETS: OnceLock<std::sync::Mutex<std::collections::HashMap<String, String>>> =
        OnceLock::new();
    let buckets = BUCKETS.get_or_init(Default::default);
    let name = {
        let mut m = buckets.lock().unwrap();
        m.entry(table.to_string())
            .or_insert_with(|| bucket("state").1)
            .clone()
    };
    let t = Arc::new(dynamo(table));
    let store = FleetCheckpoints::new(
        t.clone(),
        Arc::new(S3Store::new(&fixture().aws)),
        name,
        Default::default(),
    );
    (store, t)
}

fn store(table: &str) -> FleetCheckpoints {
    store_with(table).0
}

#[test]
fn fleet_checkpoint_round_trip_resumes_running_children() {
    let t = table("ckpt");
    let store = store(&t);
    let mut r = new_run(&execution_arn(), 2, t0());
    r.apply(MapRunEvent::Start, t0());
    r.apply(
        MapRunEvent::ChildrenRead {
            inputs: (0..3).map(|i| (json!({"i": i}), 1)).collect(),
            position: json!({"byte": 42}),
            done: true,
        },
        t0(),
    );
    for index in [0, 2] {
        r.apply(
            MapRunEvent::ChildSucceeded {
                index,
                output: json!("done"),
            },
            t0(),
        );
    }
    store.save(&mut r).unwrap();
    assert!(r.dirty.is_empty());
    assert!(r.child(0).is_none(), "the saved finished child left memory");
    assert_eq!(r.window.len(), 1);

    // Another process (a fresh store) loads it.
    let other = self::store(&t);
    let mut loaded = other.load(&r.map_run_arn).unwrap().unwrap();
    assert!(
        loaded.window.is_empty(),
        "unfinished children are not stored: they are read again"
    );
    assert_eq!(loaded.item_counts().succeeded, 2);
    assert_eq!(loaded.item_counts().pending, 1);
    assert_eq!(loaded.reader_position, None, "back to the block's start");
    assert!(!loaded.reading && !loaded.writing);
    let mut saved = Vec::new();
    other
        .for_each_child(&r.map_run_arn, &mut |c| {
            saved.push((c.index, c.status, c.output))
        })
        .unwrap();
    assert_eq!(
        saved,
        vec![
            (0, ChildStatus::Succeeded, Some(json!("done"))),
            (2, ChildStatus::Succeeded, Some(json!("done")))
        ]
    );
    // Read again, child 1 (it was RUNNING) runs again; children 0 and 2 do not.
    loaded.apply(MapRunEvent::Start, t0());
    let a = loaded.apply(
        MapRunEvent::ChildrenRead {
            inputs: (0..3).map(|i| (json!({"i": i}), 1)).collect(),
            position: json!({"byte": 42}),
            done: true,
        },
        t0(),
    );
    assert_eq!(started(&a), vec![1]);
    assert_eq!(loaded.item_counts().total, 3);
    // The loader holds the version: it may save.
    other.save(&mut loaded).unwrap();
    assert!(other
        .load("arn:aws:states:us-east-1:123456789012:mapRun:sm/Map:none")
        .unwrap()
        .is_none());
}

/// Children are S3 objects, a batch each; a save writes two DynamoDB items (the run record
/// and, the first time, its listing) however many children finished.
#[test]
fn fleet_children_stream_in_index_order_and_cost_no_table_writes() {
    let t = table("order");
    let (store, dynamo) = store_with(&t);
    let mut r = new_run(&execution_arn(), 10_000, t0());
    r.dispatch_unit = 10;
    r.apply(MapRunEvent::Start, t0());
    let a = r.apply(
        MapRunEvent::ChildrenRead {
            inputs: (0..83).map(|i| (json!({"i": i}), 1)).collect(),
            position: json!({"byte": 830}),
            done: true,
        },
        t0(),
    );
    assert_eq!(started(&a).len(), 83);
    let writes = dynamo.writes();
    // Finish them out of order, in a few saves.
    for i in (1..83u64).rev().filter(|i| i % 2 == 1) {
        r.apply(
            MapRunEvent::ChildSucceeded {
                index: i,
                output: json!({"out": i}),
            },
            t0(),
        );
    }
    store.save(&mut r).unwrap();
    assert_eq!(
        dynamo.writes() - writes,
        2,
        "the listing item and the run record"
    );
    for i in (2..83).step_by(2) {
        r.apply(
            MapRunEvent::ChildFailed {
                index: i,
                status: if i % 4 == 0 {
                    ChildStatus::TimedOut
                } else {
                    ChildStatus::Failed
                },
                error: Some("E".into()),
                cause: Some("c".into()),
                snapshot: None,
            },
            t0(),
        );
    }
    store.save(&mut r).unwrap();
    assert_eq!(dynamo.writes() - writes, 3, "the run record again");
    let mut seen = Vec::new();
    store
        .for_each_child(&r.map_run_arn, &mut |c| {
            seen.push((c.index, c.status, c.output))
        })
        .unwrap();
    assert_eq!(
        seen.iter().map(|x| x.0).collect::<Vec<_>>(),
        (1..83).collect::<Vec<_>>(),
        "child 0 never finished: it is not stored"
    );
    assert_eq!(seen[0].1, ChildStatus::Succeeded);
    assert_eq!(seen[0].2, Some(json!({"out": 1})));

    let other = self::store(&t);
    let bad = other.unsuccessful(&r.map_run_arn).unwrap();
    let expected: Vec<u64> = (2..83).step_by(2).collect();
    assert_eq!(bad.iter().map(|c| c.index).collect::<Vec<_>>(), expected);
    assert!(bad
        .iter()
        .all(|c| matches!(c.status, ChildStatus::Failed | ChildStatus::TimedOut)));
    assert_eq!(
        bad.iter()
            .filter(|c| c.status == ChildStatus::TimedOut)
            .count(),
        expected.iter().filter(|i| *i % 4 == 0).count()
    );

    // Loaded, the run reads its one block again: the finished children (the run record's
    // ranges) are skipped, child 0 runs again.
    let mut loaded = other.load(&r.map_run_arn).unwrap().unwrap();
    assert!(loaded.window.is_empty());
    assert_eq!(loaded.resume_mark().index, 0);
    loaded.apply(MapRunEvent::Start, t0());
    let a = loaded.apply(
        MapRunEvent::ChildrenRead {
            inputs: (0..83).map(|i| (json!({"i": i}), 1)).collect(),
            position: json!({"done": true}),
            done: true,
        },
        t0(),
    );
    assert_eq!(started(&a), vec![0]);
    assert_eq!(loaded.execution_counts().total, 83);
}

/// A redrive's list is stored once; a resumed redrive holds what of it has not finished.
#[test]
fn fleet_redrive_resumes_with_its_unfinished_list() {
    let t = table("redrive");
    let store = store(&t);
    let mut r = new_run(&execution_arn(), 10_000, t0());
    r.dispatch_unit = 4;
    r.apply(MapRunEvent::Start, t0());
    r.apply(
        MapRunEvent::ChildrenRead {
            inputs: (0..12).map(|i| (json!({"i": i}), 1)).collect(),
            position: json!({"byte": 120}),
            done: true,
        },
        t0(),
    );
    r.settings.tolerated_failure_count = Some(3);
    // The successes, then four failures: the fourth fails the run.
    let order = (0..12u64).filter(|i| i % 3 != 0).chain([0, 3, 6, 9]);
    for i in order {
        let e = if i % 3 == 0 {
            MapRunEvent::ChildFailed {
                index: i,
                status: ChildStatus::Failed,
                error: Some("E".into()),
                cause: Some("c".into()),
                snapshot: None,
            }
        } else {
            MapRunEvent::ChildSucceeded {
                index: i,
                output: json!(i),
            }
        };
        r.apply(e, t0());
    }
    store.save(&mut r).unwrap();
    assert_ne!(r.status, mapfleet_core::maprun::MapRunStatus::Running);
    let unsuccessful = store.unsuccessful(&r.map_run_arn).unwrap();
    assert_eq!(
        unsuccessful.iter().map(|c| c.index).collect::<Vec<_>>(),
        vec![0, 3, 6, 9]
    );
    let mut run = store.load(&r.map_run_arn).unwrap().unwrap();
    let a = run.apply(
        MapRunEvent::Redrive {
            unsuccessful,
            parent_redrive_count: 1,
        },
        t0(),
    );
    assert_eq!(started(&a), vec![0, 3, 6, 9]);
    // Child 3 finishes before the save; 0, 6 and 9 are running when the coordinator stops.
    run.apply(
        MapRunEvent::ChildSucceeded {
            index: 3,
            output: json!("again"),
        },
        t0(),
    );
    store.save(&mut run).unwrap();
    let mut resumed = self::store(&t).load(&r.map_run_arn).unwrap().unwrap();
    let held: Vec<u64> = resumed.window.keys().copied().collect();
    assert_eq!(held, vec![0, 6, 9]);
    let a = resumed.apply(MapRunEvent::Start, t0());
    assert_eq!(started(&a), vec![0, 6, 9]);
    let mut seen = Vec::new();
    store
        .for_each_child(&r.map_run_arn, &mut |c| {
            seen.push((c.index, c.run_attempt, c.status))
        })
        .unwrap();
    assert_eq!(seen.len(), 12);
    assert_eq!(
        seen[3],
        (3, 1, ChildStatus::Succeeded),
        "the redrive's record stands"
    );
    assert_eq!(seen[0], (0, 0, ChildStatus::Failed));
}

#[test]
fn fleet_lists_runs_of_an_execution_oldest_first() {
    let t = table("list");
    let store = store(&t);
    let exec = execution_arn();
    let later = t0() + chrono::Duration::milliseconds(1500);
    let mut second = new_run(&exec, 10, later);
    let mut first = new_run(&exec, 10, t0());
    store.save(&mut second).unwrap();
    store.save(&mut first).unwrap();
    let other = new_run(&execution_arn(), 10, t0());
    store.save(&mut other.clone()).unwrap();

    let listed = store.list(&exec).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].map_run_arn, first.map_run_arn);
    assert_eq!(listed[0].start_date, "2025-01-01T00:00:00Z");
    assert_eq!(listed[1].map_run_arn, second.map_run_arn);
    assert_eq!(listed[1].start_date, "2025-01-01T00:00:01.500Z");
    assert_eq!(listed[0].execution_arn, exec);
    assert_eq!(listed[0].state_machine_arn, first.state_machine_arn);
    assert!(listed.iter().all(|s| s.stop_date.is_none()));

    // The run finishes: its listing gets the stop date.
    first.apply(MapRunEvent::Start, t0());
    first.apply(
        MapRunEvent::ChildrenRead {
            inputs: vec![],
            position: json!(0),
            done: true,
        },
        t0() + chrono::Duration::seconds(5),
    );
    assert!(first.stop_date.is_some());
    store.save(&mut first).unwrap();
    let listed = store.list(&exec).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].stop_date.as_deref(), Some("2025-01-01T00:00:05Z"));
    assert!(store.list(&execution_arn()).unwrap().is_empty());
}

#[test]
fn fleet_version_conflict_between_coordinators() {
    let t = table("conflict");
    // Every save writes the run record (by default a running run's record is written every
    // 2 s, and by `sync`).
    let eager = |t: &str| {
        let mut s = store(t);
        s.save_every = Duration::ZERO;
        s
    };
    let a = eager(&t);
    let b = eager(&t);
    let mut run = run_with_children(3);
    a.save(&mut run).unwrap();
    a.save(&mut run).unwrap();

    let mut theirs = b.load(&run.map_run_arn).unwrap().unwrap();
    b.save(&mut theirs).unwrap();

    // A still holds the version it wrote last: another coordinator wrote since.
    let err = a.save(&mut run).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("ConditionalCheckFailed"), "{text}");
    assert!(text.contains(&run.map_run_arn), "{text}");

    // A third coordinator that never read the run cannot create it over B's.
    let c = eager(&t);
    let err = c.save(&mut run.clone()).unwrap_err();
    assert!(err.to_string().contains("ConditionalCheckFailed"));
    // B keeps going.
    b.save(&mut theirs).unwrap();
}

/// Between its 2-second writes, a save of a running run writes nothing to the table; `sync`
/// writes what it left.
#[test]
fn fleet_run_record_is_written_every_few_seconds_and_on_sync() {
    let t = table("throttle");
    let (store, dynamo) = store_with(&t);
    let mut run = run_with_children(4);
    store.save(&mut run).unwrap();
    // Children a worker recorded (their batch objects hold them) cost the table nothing
    // until the record is due.
    let finish = |run: &mut MapRun, index: u64| {
        store.recorded.mark(
            &run.map_run_arn,
            mapfleet_core::maprun::BatchKey {
                run_attempt: 0,
                first: index,
            },
        );
        run.apply(
            MapRunEvent::ChildSucceeded {
                index,
                output: json!(index),
            },
            t0(),
        );
    };
    let writes = dynamo.writes();
    for index in 0..2 {
        finish(&mut run, index);
        store.save(&mut run).unwrap();
        assert!(
            run.child(index).is_none(),
            "a saved finished child leaves memory"
        );
    }
    assert_eq!(dynamo.writes(), writes, "no record is due yet");
    store.sync().unwrap();
    assert_eq!(
        dynamo.writes(),
        writes + 1,
        "sync writes what the saves left"
    );
    store.sync().unwrap();
    assert_eq!(dynamo.writes(), writes + 1, "and nothing twice");
    for index in 2..4 {
        finish(&mut run, index);
    }
    // The run ended: an ending is written at once.
    assert_ne!(run.status, mapfleet_core::maprun::MapRunStatus::Running);
    store.save(&mut run).unwrap();
    assert_eq!(
        dynamo.writes(),
        writes + 3,
        "the run record and the listing's stop date"
    );
    let loaded = self::store(&t)
        .load_record(&run.map_run_arn)
        .unwrap()
        .unwrap();
    assert_eq!(loaded.item_counts().succeeded, 4);
}

#[test]
fn dynamo_lease_is_exclusive_until_it_expires() {
    let t = table("lease");
    let store = dynamo(&t);
    let job = unique("job");
    assert!(store
        .acquire_lease(&job, "A", Duration::from_millis(800))
        .unwrap());
    assert!(!store
        .acquire_lease(&job, "B", Duration::from_secs(60))
        .unwrap());
    // The owner may extend it.
    assert!(store
        .acquire_lease(&job, "A", Duration::from_millis(800))
        .unwrap());
    // Releasing someone else's lease does nothing.
    store.release_lease(&job, "B").unwrap();
    assert!(!store
        .acquire_lease(&job, "B", Duration::from_secs(60))
        .unwrap());
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        store
            .acquire_lease(&job, "B", Duration::from_secs(60))
            .unwrap(),
        "an expired lease is taken over"
    );
    assert!(!store
        .acquire_lease(&job, "A", Duration::from_secs(60))
        .unwrap());
    store.release_lease(&job, "B").unwrap();
    assert!(
        store
            .acquire_lease(&job, "A", Duration::from_secs(60))
            .unwrap(),
        "a released lease is free"
    );
}

#[test]
fn dynamo_execution_snapshots_round_trip_beyond_400_kb() {
    let t = table("snap");
    let store = dynamo(&t);
    let name = unique("exec");
    assert_eq!(store.get_execution(&name).unwrap(), None);

    store
        .put_execution(&name, r#"{"small":true}"#, false)
        .unwrap();
    assert_eq!(
        store.get_execution(&name).unwrap().as_deref(),
        Some(r#"{"small":true}"#)
    );

    // ~600 KB with multi-byte characters: two chunk items.
    let big: String = json!({
        "items": (0..40_000).map(|i| format!("é{i}€")).collect::<Vec<_>>()
    })
    .to_string();
    assert!(big.len() > 400 * 1024);
    store.put_execution(&name, &big, false).unwrap();
    assert_eq!(
        store.get_execution(&name).unwrap().as_deref(),
        Some(big.as_str())
    );

    // Another big one replaces it (a new generation of chunks).
    let bigger = format!("{big}{big}");
    store.put_execution(&name, &bigger, false).unwrap();
    assert_eq!(
        store.get_execution(&name).unwrap().as_deref(),
        Some(bigger.as_str())
    );

    let chunks = bigger.len().div_ceil(SNAPSHOT_CHUNK_BYTES);
    let items = snapshot_items(&t, &name);
    assert!(
        items == 1 + chunks || items == 2 + chunks,
        "the first generation's chunks are gone: {items} items for {chunks} chunks"
    );

    // Back to a small, finished one.
    store.put_execution(&name, "{}", true).unwrap();
    assert_eq!(store.get_execution(&name).unwrap().as_deref(), Some("{}"));
    assert_eq!(snapshot_items(&t, &name), 1);
}

/// Items of an execution snapshot (head and chunks).
fn snapshot_items(table: &str, name: &str) -> usize {
    let f = fixture();
    let client = f.aws.dynamodb();
    let mut count = 0;
    let mut start = None;
    loop {
        let out = f
            .aws
            .handle
            .block_on(
                client
                    .query()
                    .table_name(table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(
                        ":pk",
                        aws_sdk_dynamodb::types::AttributeValue::S(format!("EXECUTION#{name}")),
                    )
                    .select(aws_sdk_dynamodb::types::Select::Count)
                    .set_exclusive_start_key(start)
                    .send(),
            )
            .unwrap();
        count += out.count() as usize;
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return count,
        }
    }
}

#[test]
fn dynamo_errors_name_operation_and_code() {
    let store = dynamo(&unique("missing-table"));
    let err = store
        .acquire_lease("n", "owner", std::time::Duration::from_secs(60))
        .unwrap_err();
    assert!(matches!(err, DynamoError::Aws { .. }), "{err:?}");
    assert!(
        err.to_string().contains("ResourceNotFoundException"),
        "{err}"
    );
    let err = store.get_execution("n").unwrap_err();
    assert!(err.to_string().contains("GetItem"), "{err}");
}

#[test]
fn moto_endpoint_is_used() {
    assert!(fixture().moto.endpoint.starts_with("http://"));
}
