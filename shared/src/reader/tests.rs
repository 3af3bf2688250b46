//! End-to-end reader tests over [`LocalFolderStore`] in a temporary folder: every source kind,
//! resume-from-every-position equivalence, MaxItems, paging, compression, manifests, errors.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ::parquet::basic::{Compression as PqCompression, GzipLevel, ZstdLevel};
use serde_json::{json, Value};

use super::*;
use crate::storage::{GetObject, ListPage, LocalFolderStore, ObjectMeta, ObjectWriter, StoreError};

static COUNTER: AtomicU64 = AtomicU64::new(0);

struct TempStore {
    root: PathBuf,
    store: Arc<LocalFolderStore>,
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn temp_store() -> TempStore {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let root = std::env::temp_dir().join(format!(
        "mapfleet-reader-{}-{nanos}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(root.join("b")).unwrap();
    std::fs::create_dir_all(root.join("other")).unwrap();
    let store = Arc::new(LocalFolderStore::new(&root));
    TempStore { root, store }
}

impl TempStore {
    fn put(&self, key: &str, body: &[u8]) {
        self.store.put("b", key, body).unwrap();
    }
    fn dyn_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd_bytes(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

fn spec(v: Value) -> ReaderSpec {
    ReaderSpec::from_json(&v).unwrap()
}

fn get_spec(key: &str, cfg: Value) -> ReaderSpec {
    spec(
        json!({"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key": key}, "ReaderConfig": cfg}),
    )
}

fn read_all(store: Arc<dyn ObjectStore>, spec: &ReaderSpec) -> Vec<Item> {
    let s = open(store, spec, None).unwrap();
    s.map(|r| r.unwrap()).collect()
}

fn values(items: &[Item]) -> Vec<Value> {
    items.iter().map(|i| i.value.clone()).collect()
}

/// For every k: read k items, checkpoint (through JSON), reopen: the rest must match exactly.
fn check_resume(store: Arc<dyn ObjectStore>, spec: &ReaderSpec) -> Vec<Item> {
    let all = read_all(store.clone(), spec);
    for (i, item) in all.iter().enumerate() {
        assert_eq!(item.index, i as u64);
    }
    for k in 0..=all.len() {
        let mut s = open(store.clone(), spec, None).unwrap();
        for _ in 0..k {
            s.next().unwrap().unwrap();
        }
        let pos = s.checkpoint();
        assert_eq!(pos.items_read, k as u64);
        let text = serde_json::to_string(&pos).unwrap();
        let pos: Position = serde_json::from_str(&text).unwrap();
        let rest: Vec<Item> = open(store.clone(), spec, Some(&pos))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            rest,
            all[k..].to_vec(),
            "resuming after {k} items from {text}"
        );
    }
    // The end position is finished and yields nothing.
    let mut s = open(store.clone(), spec, None).unwrap();
    while s.next().is_some() {}
    let end = s.checkpoint();
    assert!(end.finished);
    assert_eq!(end.items_read, all.len() as u64);
    assert_eq!(open(store, spec, Some(&end)).unwrap().count(), 0);
    all
}

// ---------------------------------------------------------------- JSON

#[test]
fn json_array_items_in_order() {
    let t = temp_store();
    let doc = json!([
        {"verdict": "true", "statement_date": "6/11/2008", "statement_source": "speech"},
        {"verdict": "false", "statement_date": "6/7/2022", "statement_source": "television"},
        {"verdict": "mostly-true", "statement_date": "5/18/2016", "statement_source": "news"}
    ]);
    t.put("file.json", doc.to_string().as_bytes());
    let s = get_spec("file.json", json!({"InputType": "JSON"}));
    let items = check_resume(t.dyn_store(), &s);
    assert_eq!(values(&items), doc.as_array().unwrap().clone());
    assert_eq!(&*items[0].source, "S3://b/file.json");
    assert_eq!(items[2].index, 2);
    assert_eq!(items[0].key, None);
}

#[test]
fn json_top_level_object_fails_as_recorded() {
    let t = temp_store();
    t.put("file.json", br#"{"Hello":"world"}"#);
    let s = get_spec("file.json", json!({"InputType": "JSON"}));
    let mut st = open(t.dyn_store(), &s, None).unwrap();
    let e = st.next().unwrap().unwrap_err();
    assert_eq!(e.error(), "States.ItemReaderFailed");
    assert_eq!(e.cause(), "Attempting to map over non-iterable node.");
    assert!(st.next().is_none());
    assert_eq!(st.checkpoint(), Position::default());
}

#[test]
fn json_pointer_array_and_object_with_resume() {
    let t = temp_store();
    let doc = json!({"meta": {"n": 1}, "inventory": {"products": {"featured": [{"id": 1}, [2], "three", 4.5, null, {"id": 6}]}},
                     "byName": {"a": {"v": 1}, "b": {"v": 2}, "c": {"v": 3}}});
    t.put(
        "doc.json",
        serde_json::to_string_pretty(&doc).unwrap().as_bytes(),
    );
    let s = get_spec(
        "doc.json",
        json!({"InputType": "JSON", "ItemsPointer": "/inventory/products/featured"}),
    );
    let items = check_resume(t.dyn_store(), &s);
    assert_eq!(
        values(&items),
        doc["inventory"]["products"]["featured"]
            .as_array()
            .unwrap()
            .clone()
    );
    let s = get_spec(
        "doc.json",
        json!({"InputType": "JSON", "ItemsPointer": "/byName"}),
    );
    let items = check_resume(t.dyn_store(), &s);
    assert_eq!(
        values(&items),
        vec![json!({"v": 1}), json!({"v": 2}), json!({"v": 3})]
    );
    let keys: Vec<_> = items.iter().map(|i| i.key.clone().unwrap()).collect();
    assert_eq!(keys, vec!["a", "b", "c"]);
    let s = get_spec(
        "doc.json",
        json!({"InputType": "JSON", "ItemsPointer": "/inventory/missing"}),
    );
    let e = open(t.dyn_store(), &s, None)
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        e.cause(),
        "The ItemsPointer '/inventory/missing' does not match any node in s3://b/doc.json"
    );
}

#[test]
fn malformed_json_error_and_position_after_it() {
    let t = temp_store();
    t.put("bad.json", b"[1,\n2,\n3 4]");
    let s = get_spec("bad.json", json!({"InputType": "JSON"}));
    let mut st = open(t.dyn_store(), &s, None).unwrap();
    assert_eq!(st.next().unwrap().unwrap().value, json!(1));
    assert_eq!(st.next().unwrap().unwrap().value, json!(2));
    assert_eq!(st.next().unwrap().unwrap().value, json!(3));
    let e = st.next().unwrap().unwrap_err();
    assert!(
        e.cause().starts_with(
            "Malformed JSON in s3://b/bad.json (line 3, byte offset 9, item index 3): expected ',' or ']'"
        ),
        "{}",
        e.cause()
    );
    assert!(st.next().is_none());
    // The position still points after item 2; resuming meets the same error.
    let pos = st.checkpoint();
    assert_eq!(pos.items_read, 3);
    assert!(!pos.finished);
    let e2 = open(t.dyn_store(), &s, Some(&pos))
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(e2, e);
}

// ---------------------------------------------------------------- JSONL

#[test]
fn jsonl_with_blank_lines_and_resume() {
    let t = temp_store();
    t.put(
        "lines.jsonl",
        b"{\"n\":1}\n\n{\"n\":2}\r\n   \n\"x\"\n[1,2]\n{\"n\":3}",
    );
    let s = get_spec("lines.jsonl", json!({"InputType": "JSONL"}));
    let items = check_resume(t.dyn_store(), &s);
    assert_eq!(
        values(&items),
        vec![
            json!({"n":1}),
            json!({"n":2}),
            json!("x"),
            json!([1, 2]),
            json!({"n":3})
        ]
    );
}

#[test]
fn jsonl_malformed_line() {
    let t = temp_store();
    t.put("lines.jsonl", b"{\"n\":1}\n{\"n\":2,}\n");
    let s = get_spec("lines.jsonl", json!({"InputType": "JSONL"}));
    let got: Vec<_> = open(t.dyn_store(), &s, None).unwrap().collect();
    assert_eq!(got.len(), 2);
    let e = got[1].clone().unwrap_err();
    assert!(
        e.cause().starts_with(
            "Malformed JSONL in s3://b/lines.jsonl (line 2, byte offset 8, item index 1)"
        ),
        "{}",
        e.cause()
    );
}

// ---------------------------------------------------------------- CSV

#[test]
fn csv_first_row_observed_vectors_and_resume() {
    let t = temp_store();
    t.put(
        "file.csv",
        b"Col1,Col2,Col3\nValue1,Value2,Value3\nValue4,Value5,Value6\n,,,\ntrue,1,'HelloWorld'\nNull,None,\n   \n",
    );
    let s = get_spec(
        "file.csv",
        json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}),
    );
    let items = check_resume(t.dyn_store(), &s);
    assert_eq!(
        values(&items),
        vec![
            json!({"Col1":"Value1","Col2":"Value2","Col3":"Value3"}),
            json!({"Col1":"Value4","Col2":"Value5","Col3":"Value6"}),
            json!({"Col1":"","Col2":"","Col3":""}),
            json!({"Col1":"true","Col2":"1","Col3":"'HelloWorld'"}),
            json!({"Col1":"Null","Col2":"None","Col3":""}),
            json!({"Col1":"   ","Col2":"","Col3":""}),
        ]
    );
    // The checkpoint carries the header, so resuming does not read the first row again.
    let mut st = open(t.dyn_store(), &s, None).unwrap();
    st.next().unwrap().unwrap();
    let pos = st.checkpoint();
    let obj = pos.object.unwrap();
    assert_eq!(
        obj.csv_header,
        Some(vec!["Col1".to_string(), "Col2".into(), "Col3".into()])
    );
    assert_eq!((obj.offset, obj.line, obj.items_read), (36, 3, 1));
}

#[test]
fn csv_given_headers_delimiters_and_duplicates() {
    let t = temp_store();
    t.put("pipe.csv", b"1|307\n1|481\n2|\"a|b\"\n");
    let s = get_spec(
        "pipe.csv",
        json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["userId", "movieId"], "CSVDelimiter": "PIPE"}),
    );
    let items = check_resume(t.dyn_store(), &s);
    assert_eq!(
        values(&items),
        vec![
            json!({"userId":"1","movieId":"307"}),
            json!({"userId":"1","movieId":"481"}),
            json!({"userId":"2","movieId":"a|b"})
        ]
    );
    t.put("tab.tsv", b"a\tb\n1\t2\n");
    let s = get_spec(
        "tab.tsv",
        json!({"InputType": "CSV", "CSVDelimiter": "TAB"}),
    );
    assert_eq!(
        values(&read_all(t.dyn_store(), &s)),
        vec![json!({"a":"1","b":"2"})]
    );
    t.put("semi.csv", b"a;b\n1;2,3\n");
    let s = get_spec(
        "semi.csv",
        json!({"InputType": "CSV", "CSVDelimiter": "SEMICOLON"}),
    );
    assert_eq!(
        values(&read_all(t.dyn_store(), &s)),
        vec![json!({"a":"1","b":"2,3"})]
    );
    t.put("space.csv", b"a b\n1 2\n");
    let s = get_spec(
        "space.csv",
        json!({"InputType": "CSV", "CSVDelimiter": "SPACE"}),
    );
    assert_eq!(
        values(&read_all(t.dyn_store(), &s)),
        vec![json!({"a":"1","b":"2"})]
    );
    // Duplicate GIVEN headers fail the Map Run when reading starts.
    let s = get_spec(
        "pipe.csv",
        json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["H1", "H1", "H3"]}),
    );
    let e = open(t.dyn_store(), &s, None).err().unwrap();
    assert_eq!(e.error(), "States.ItemReaderFailed");
    assert_eq!(e.cause(), "CSV headers cannot contain duplicates.");
}

#[test]
fn max_items() {
    let t = temp_store();
    t.put(
        "file.csv",
        b"Col1,Col2\nValue1,Value2\nValue3,Value4\nValue5,Value6\nValue7,Value8\n",
    );
    let base = json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"});
    let with = |n: Value| {
        let mut c = base.clone();
        c["MaxItems"] = n;
        get_spec("file.csv", c)
    };
    let two = with(json!(2));
    let items = check_resume(t.dyn_store(), &two);
    assert_eq!(
        values(&items),
        vec![
            json!({"Col1":"Value1","Col2":"Value2"}),
            json!({"Col1":"Value3","Col2":"Value4"})
        ]
    );
    assert_eq!(read_all(t.dyn_store(), &with(json!(0))).len(), 4);
    assert_eq!(read_all(t.dyn_store(), &with(json!(100_000_001))).len(), 4);
    // After the limit the stream is finished even though rows remain.
    let mut st = open(t.dyn_store(), &two, None).unwrap();
    st.next();
    st.next();
    assert!(st.next().is_none());
    assert!(st.checkpoint().finished);
}

// ---------------------------------------------------------------- compression

#[test]
fn gzip_and_zstd_objects() {
    let t = temp_store();
    let csv = b"id,name\n1,a\n2,b\n3,\"c,d\"\n4,e\n";
    t.put("data.csv.gz", &gzip(csv));
    t.put("noext", &gzip(csv)); // detected by magic bytes, not the name
    t.put("data.csv.zstd", &zstd_bytes(csv));
    let mut members = gzip(b"id,name\n1,a\n");
    members.extend(gzip(b"2,b\n"));
    t.put("multi.csv.gz", &members);
    let expect = vec![
        json!({"id":"1","name":"a"}),
        json!({"id":"2","name":"b"}),
        json!({"id":"3","name":"c,d"}),
        json!({"id":"4","name":"e"}),
    ];
    for key in ["data.csv.gz", "noext", "data.csv.zstd"] {
        let s = get_spec(key, json!({"InputType": "CSV"}));
        let items = check_resume(t.dyn_store(), &s);
        assert_eq!(values(&items), expect, "{key}");
        let mut st = open(t.dyn_store(), &s, None).unwrap();
        st.next();
        let c = st.checkpoint().object.unwrap().compression;
        assert_eq!(
            c,
            if key.ends_with("zstd") {
                Compression::Zstd
            } else {
                Compression::Gzip
            }
        );
    }
    let s = get_spec("multi.csv.gz", json!({"InputType": "CSV"}));
    assert_eq!(values(&read_all(t.dyn_store(), &s)), expect[..2].to_vec());
    t.put("lines.jsonl.gz", &gzip(b"{\"n\":1}\n{\"n\":2}\n"));
    let s = get_spec("lines.jsonl.gz", json!({"InputType": "JSONL"}));
    assert_eq!(
        values(&check_resume(t.dyn_store(), &s)),
        vec![json!({"n":1}), json!({"n":2})]
    );
    t.put("arr.json.zst", &zstd_bytes(b"[1,2,3]"));
    let s = get_spec("arr.json.zst", json!({"InputType": "JSON"}));
    assert_eq!(
        values(&check_resume(t.dyn_store(), &s)),
        vec![json!(1), json!(2), json!(3)]
    );
}

#[test]
fn unsupported_compression() {
    let t = temp_store();
    t.put("x.csv.bz2", b"BZh91AY&SY");
    let s = get_spec("x.csv.bz2", json!({"InputType": "CSV"}));
    let e = open(t.dyn_store(), &s, None).err().unwrap();
    assert_eq!(
        e.cause(),
        "The object s3://b/x.csv.bz2 is compressed with BZIP2, which is not supported: use GZIP or ZSTD"
    );
    t.put("x.csv.gz", b"\x1f\x8bnot really gzip");
    let s = get_spec("x.csv.gz", json!({"InputType": "CSV"}));
    let e = open(t.dyn_store(), &s, None)
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, ReaderError::Io { .. }), "{e:?}");
    assert!(e.cause().contains("s3://b/x.csv.gz"));
}

/// Records every GET, to check that resuming uses a ranged read.
struct Recording {
    inner: Arc<dyn ObjectStore>,
    gets: Mutex<Vec<(String, u64)>>,
    options: Mutex<Vec<(Option<String>, Option<String>)>>,
}

impl Recording {
    fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(Recording {
            inner,
            gets: Mutex::new(Vec::new()),
            options: Mutex::new(Vec::new()),
        })
    }
}

impl ObjectStore for Recording {
    fn head(&self, bucket: &str, key: &str, v: Option<&str>) -> Result<ObjectMeta, StoreError> {
        self.inner.head(bucket, key, v)
    }
    fn get(&self, req: &GetObject<'_>) -> Result<Box<dyn Read + Send>, StoreError> {
        if let Ok(mut g) = self.gets.lock() {
            g.push((req.key.to_string(), req.start));
        }
        if let Ok(mut o) = self.options.lock() {
            o.push((
                req.version_id.map(String::from),
                req.expected_bucket_owner.map(String::from),
            ));
        }
        self.inner.get(req)
    }
    fn list(&self, b: &str, p: &str, c: Option<&str>, m: usize) -> Result<ListPage, StoreError> {
        self.inner.list(b, p, c, m)
    }
    fn put(&self, b: &str, k: &str, body: &[u8]) -> Result<(), StoreError> {
        self.inner.put(b, k, body)
    }
    fn writer(&self, b: &str, k: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        self.inner.writer(b, k)
    }
}

#[test]
fn resume_uses_a_ranged_get_on_plain_objects_and_restarts_compressed_ones() {
    let t = temp_store();
    let body = b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n";
    t.put("plain.jsonl", body);
    t.put("packed.jsonl.gz", &gzip(body));
    for (key, ranged) in [("plain.jsonl", true), ("packed.jsonl.gz", false)] {
        let s = get_spec(key, json!({"InputType": "JSONL"}));
        let mut st = open(t.dyn_store(), &s, None).unwrap();
        st.next();
        st.next();
        let pos = st.checkpoint();
        assert_eq!(pos.object.as_ref().unwrap().offset, 16);
        let rec = Recording::new(t.dyn_store());
        let rest: Vec<Item> = open(rec.clone(), &s, Some(&pos))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(values(&rest), vec![json!({"n":3})]);
        let gets = rec.gets.lock().unwrap().clone();
        assert_eq!(gets, vec![(key.to_string(), if ranged { 16 } else { 0 })]);
    }
}

// ---------------------------------------------------------------- listing

#[test]
fn listing_items_shape_paging_and_resume() {
    let t = temp_store();
    for i in 0..7 {
        t.put(
            &format!("file_{i}.txt"),
            format!("{i}HelloWorld!").as_bytes(),
        );
    }
    t.put("other/x.txt", b"x");
    let s = spec(
        json!({"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "b", "Prefix": "file_"}}),
    );
    let items = check_resume(t.dyn_store(), &s);
    assert_eq!(items.len(), 7);
    let first = items[0].value.as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        vec!["Etag", "Key", "LastModified", "Size", "StorageClass"]
    );
    assert_eq!(first["Key"], json!("file_0.txt"));
    assert_eq!(first["Size"], json!(12));
    assert_eq!(first["StorageClass"], json!("STANDARD"));
    let etag = first["Etag"].as_str().unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
        "{etag}"
    );
    assert!(first["LastModified"].is_i64());
    assert_eq!(&*items[0].source, "S3://b");
    let s = spec(
        json!({"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "b"}}),
    );
    assert_eq!(read_all(t.dyn_store(), &s).len(), 8);
    // MaxItems applies to listings.
    let s = spec(
        json!({"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "b"}, "ReaderConfig": {"MaxItems": 4}}),
    );
    assert_eq!(check_resume(t.dyn_store(), &s).len(), 4);
    // A missing bucket fails at open.
    let s = spec(
        json!({"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "nope"}}),
    );
    let e = open(t.dyn_store(), &s, None).err().unwrap();
    assert_eq!(
        e.cause(),
        "Failed to read s3://nope: The specified bucket does not exist (Bucket: nope)"
    );
}

#[test]
fn load_and_flatten() {
    let t = temp_store();
    t.put(
        "logs/a.jsonl",
        b"{\"level\":\"INFO\",\"n\":1}\n{\"level\":\"ERROR\",\"n\":2}\n",
    );
    t.put("logs/b.jsonl", b"");
    t.put("logs/c.jsonl.gz", &gzip(b"{\"n\":3}\n"));
    t.put("logs/d/e.jsonl", b"{\"n\":4}\n{\"n\":5}\n{\"n\":6}\n");
    t.put("logs/f.jsonl", b"{\"n\":7}");
    t.put("other.jsonl", b"{\"n\":99}\n");
    let s = spec(json!({
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "b", "Prefix": "logs/"},
        "ReaderConfig": {"InputType": "JSONL", "Transformation": "LOAD_AND_FLATTEN"}
    }));
    let items = check_resume(t.dyn_store(), &s);
    let ns: Vec<Value> = items.iter().map(|i| i.value["n"].clone()).collect();
    assert_eq!(ns, (1..=7).map(|n| json!(n)).collect::<Vec<_>>());
    let sources: Vec<&str> = items.iter().map(|i| &*i.source).collect();
    assert_eq!(sources[0], "S3://b/logs/a.jsonl");
    assert_eq!(sources[2], "S3://b/logs/c.jsonl.gz");
    assert_eq!(sources[6], "S3://b/logs/f.jsonl");
    // With MaxItems across objects.
    let s = spec(json!({
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "b", "Prefix": "logs/"},
        "ReaderConfig": {"InputType": "JSONL", "Transformation": "LOAD_AND_FLATTEN", "MaxItems": 4}
    }));
    assert_eq!(check_resume(t.dyn_store(), &s).len(), 4);
    // CSV objects each with their own header row.
    t.put("csv/1.csv", b"a,b\n1,2\n");
    t.put("csv/2.csv", b"a,b\n3,4\n5,6\n");
    let s = spec(json!({
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "b", "Prefix": "csv/"},
        "ReaderConfig": {"InputType": "CSV", "Transformation": "LOAD_AND_FLATTEN"}
    }));
    assert_eq!(
        values(&check_resume(t.dyn_store(), &s)),
        vec![
            json!({"a":"1","b":"2"}),
            json!({"a":"3","b":"4"}),
            json!({"a":"5","b":"6"})
        ]
    );
    // A malformed object in the middle names itself.
    t.put("logs/c2.jsonl", b"{oops}\n");
    let s = spec(json!({
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "b", "Prefix": "logs/"},
        "ReaderConfig": {"InputType": "JSONL", "Transformation": "LOAD_AND_FLATTEN"}
    }));
    let got: Vec<_> = open(t.dyn_store(), &s, None).unwrap().collect();
    assert_eq!(got.len(), 4);
    let e = got[3].clone().unwrap_err();
    assert!(
        e.cause().starts_with(
            "Malformed JSONL in s3://b/logs/c2.jsonl (line 1, byte offset 0, item index 3)"
        ),
        "{}",
        e.cause()
    );
}

// ---------------------------------------------------------------- manifests

#[test]
fn athena_manifest() {
    let t = temp_store();
    t.put("out/q1_0.csv.gz", &gzip(b"1,alpha\n2,beta\n"));
    t.put("out/q1_1.csv", b"");
    t.put("out/q1_2.csv", b"3,\"gam,ma\"\n");
    std::fs::create_dir_all(t.root.join("other/athena")).unwrap();
    t.store
        .put("other", "athena/q1_3.csv", b"4,delta\n")
        .unwrap();
    t.put(
        "out/q1-manifest.csv",
        b"s3://b/out/q1_0.csv.gz\ns3://b/out/q1_1.csv\n\ns3://b/out/q1_2.csv\r\ns3://other/athena/q1_3.csv",
    );
    let s = get_spec(
        "out/q1-manifest.csv",
        json!({"ManifestType": "ATHENA_DATA", "InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["id", "name"]}),
    );
    let items = check_resume(t.dyn_store(), &s);
    assert_eq!(
        values(&items),
        vec![
            json!({"id":"1","name":"alpha"}),
            json!({"id":"2","name":"beta"}),
            json!({"id":"3","name":"gam,ma"}),
            json!({"id":"4","name":"delta"})
        ]
    );
    assert_eq!(&*items[3].source, "S3://other/athena/q1_3.csv");
    let mut st = open(t.dyn_store(), &s, None).unwrap();
    for _ in 0..3 {
        st.next();
    }
    let m = st.checkpoint().manifest.unwrap();
    assert_eq!((m.file_index, m.offset, m.line), (2, 44, 4));
    // JSONL and a bad line.
    t.put("j/0.jsonl", b"{\"a\":1}\n");
    t.put("j/manifest.csv", b"s3://b/j/0.jsonl\nnot-a-uri\n");
    let s = get_spec(
        "j/manifest.csv",
        json!({"ManifestType": "ATHENA_DATA", "InputType": "JSONL"}),
    );
    let got: Vec<_> = open(t.dyn_store(), &s, None).unwrap().collect();
    assert_eq!(got[0].as_ref().unwrap().value, json!({"a":1}));
    let e = got[1].clone().unwrap_err();
    assert_eq!(
        e.cause(),
        "Malformed Athena manifest in s3://b/j/manifest.csv (line 2, byte offset 17): 'not-a-uri' is not an s3://bucket/key URI"
    );
    // A data file that does not exist.
    t.put("k/manifest.csv", b"s3://b/k/missing.jsonl\n");
    let s = get_spec(
        "k/manifest.csv",
        json!({"ManifestType": "ATHENA_DATA", "InputType": "JSONL"}),
    );
    let e = open(t.dyn_store(), &s, None).err().unwrap();
    assert_eq!(
        e.cause(),
        "Failed to read s3://b/k/missing.jsonl: The specified key does not exist (Bucket: b, Key: k/missing.jsonl)"
    );
}

#[test]
fn athena_parquet_files() {
    let t = temp_store();
    let (a, ea) = parquet::tests::sample_parquet(2, 3, PqCompression::SNAPPY);
    let (b, eb) = parquet::tests::sample_parquet(1, 2, PqCompression::UNCOMPRESSED);
    t.put("pq/a.parquet", &a);
    t.put("pq/b.parquet", &b);
    t.put(
        "pq/manifest.csv",
        b"s3://b/pq/a.parquet\ns3://b/pq/b.parquet\n",
    );
    let s = get_spec(
        "pq/manifest.csv",
        json!({"ManifestType": "ATHENA_DATA", "InputType": "PARQUET"}),
    );
    let items = check_resume(t.dyn_store(), &s);
    let mut expect = ea;
    expect.extend(eb);
    assert_eq!(values(&items), expect);
}

fn inventory_manifest(files: &[&str]) -> Vec<u8> {
    let files: Vec<Value> = files
        .iter()
        .map(|k| json!({"key": k, "size": 100, "MD5checksum": "x"}))
        .collect();
    json!({
        "sourceBucket": "src",
        "destinationBucket": "arn:aws:s3:::b",
        "version": "2016-11-30",
        "creationTimestamp": "1668560400000",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate",
        "files": files
    })
    .to_string()
    .into_bytes()
}

#[test]
fn s3_inventory_manifest() {
    let t = temp_store();
    t.put(
        "inv/data/1.csv.gz",
        &gzip(b"\"src\",\"csvDataset/titles.csv\",\"3399671\",\"2022-11-16T00:29:32.000Z\"\n\"src\",\"a.txt\",\"1\",\"2022-11-16T00:29:33.000Z\"\n"),
    );
    t.put(
        "inv/data/2.csv.gz",
        &gzip(b"\"src\",\"b,c.txt\",\"2\",\"2022-11-17T00:00:00.000Z\"\n"),
    );
    t.put(
        "inv/manifest.json",
        &inventory_manifest(&["inv/data/1.csv.gz", "inv/data/2.csv.gz"]),
    );
    for cfg in [
        json!({"ManifestType": "S3_INVENTORY"}),
        json!({"InputType": "MANIFEST"}),
    ] {
        let s = get_spec("inv/manifest.json", cfg);
        let items = check_resume(t.dyn_store(), &s);
        assert_eq!(
            values(&items),
            vec![
                json!({"Bucket": "src", "Key": "csvDataset/titles.csv", "Size": "3399671", "LastModifiedDate": "2022-11-16T00:29:32.000Z"}),
                json!({"Bucket": "src", "Key": "a.txt", "Size": "1", "LastModifiedDate": "2022-11-16T00:29:33.000Z"}),
                json!({"Bucket": "src", "Key": "b,c.txt", "Size": "2", "LastModifiedDate": "2022-11-17T00:00:00.000Z"}),
            ]
        );
        assert_eq!(&*items[2].source, "S3://b/inv/data/2.csv.gz");
    }
    // Only CSV inventories.
    let mut m: Value = serde_json::from_slice(&inventory_manifest(&["inv/data/1.csv.gz"])).unwrap();
    m["fileFormat"] = json!("Parquet");
    t.put("inv2/manifest.json", m.to_string().as_bytes());
    let s = get_spec(
        "inv2/manifest.json",
        json!({"ManifestType": "S3_INVENTORY"}),
    );
    let e = open(t.dyn_store(), &s, None).err().unwrap();
    assert!(
        matches!(
            &e,
            ReaderError::Malformed {
                format: Format::InventoryManifest,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.cause().contains("s3://b/inv2/manifest.json"));
}

// ---------------------------------------------------------------- Parquet

#[test]
fn parquet_rows_all_codecs_and_resume() {
    let t = temp_store();
    for (name, codec) in [
        ("snappy", PqCompression::SNAPPY),
        ("gzip", PqCompression::GZIP(GzipLevel::default())),
        ("zstd", PqCompression::ZSTD(ZstdLevel::default())),
        ("none", PqCompression::UNCOMPRESSED),
    ] {
        let (bytes, expect) = parquet::tests::sample_parquet(3, 4, codec);
        let key = format!("{name}.parquet");
        t.put(&key, &bytes);
        let s = get_spec(&key, json!({"InputType": "PARQUET"}));
        let items = check_resume(t.dyn_store(), &s);
        assert_eq!(values(&items), expect, "{name}");
    }
    // Checkpoints name the row group and row.
    let s = get_spec(
        "snappy.parquet",
        json!({"InputType": "PARQUET", "MaxItems": 6}),
    );
    let mut st = open(t.dyn_store(), &s, None).unwrap();
    for _ in 0..5 {
        st.next().unwrap().unwrap();
    }
    let c = st.checkpoint().object.unwrap();
    assert_eq!(
        c.parquet,
        Some(ParquetCursor {
            row_group: 1,
            row: 1
        })
    );
    assert!(c.offset > 0);
    assert_eq!(st.count(), 1);
    // Keys follow the schema order.
    let first = read_all(
        t.dyn_store(),
        &get_spec("none.parquet", json!({"InputType": "PARQUET"})),
    )[0]
    .value
    .clone();
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(keys, vec!["id", "name", "score", "flag", "day", "ts"]);
}

#[test]
fn parquet_errors() {
    let t = temp_store();
    t.put("not.parquet", b"this is not parquet at all");
    let s = get_spec("not.parquet", json!({"InputType": "PARQUET"}));
    let e = open(t.dyn_store(), &s, None).err().unwrap();
    assert!(
        matches!(
            &e,
            ReaderError::Malformed {
                format: Format::Parquet,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e
        .cause()
        .starts_with("Malformed Parquet in s3://b/not.parquet"));
    let mut big = b"PAR1".to_vec();
    big.extend_from_slice(&[0u8; 16]);
    big.extend_from_slice(&(6u32 * 1024 * 1024).to_le_bytes());
    big.extend_from_slice(b"PAR1");
    t.put("big.parquet", &big);
    let s = get_spec("big.parquet", json!({"InputType": "PARQUET"}));
    let e = open(t.dyn_store(), &s, None).err().unwrap();
    assert!(
        matches!(e, ReaderError::ParquetFooterTooLarge { size: 6291456, .. }),
        "{e:?}"
    );
    // A corrupt footer of a plausible size.
    let mut bad = b"PAR1".to_vec();
    bad.extend_from_slice(&[7u8; 40]);
    bad.extend_from_slice(&40u32.to_le_bytes());
    bad.extend_from_slice(b"PAR1");
    t.put("bad.parquet", &bad);
    let s = get_spec("bad.parquet", json!({"InputType": "PARQUET"}));
    assert!(matches!(
        open(t.dyn_store(), &s, None),
        Err(ReaderError::Malformed { .. })
    ));
}

// ---------------------------------------------------------------- errors & misc

#[test]
fn missing_bucket_and_key_fail_at_open() {
    let t = temp_store();
    let s = get_spec("nope.json", json!({"InputType": "JSON"}));
    let e = open(t.dyn_store(), &s, None).err().unwrap();
    assert_eq!(e.error(), "States.ItemReaderFailed");
    assert_eq!(
        e.cause(),
        "Failed to read s3://b/nope.json: The specified key does not exist (Bucket: b, Key: nope.json)"
    );
    let s = spec(
        json!({"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "zz", "Key": "k"}, "ReaderConfig": {"InputType": "CSV"}}),
    );
    let e = open(t.dyn_store(), &s, None).err().unwrap();
    assert_eq!(
        e.cause(),
        "Failed to read s3://zz/k: The specified bucket does not exist (Bucket: zz)"
    );
}

#[test]
fn empty_objects() {
    let t = temp_store();
    t.put("e.csv", b"");
    t.put("e.jsonl", b"");
    t.put("e.json", b"");
    assert_eq!(
        read_all(
            t.dyn_store(),
            &get_spec("e.csv", json!({"InputType": "CSV"}))
        )
        .len(),
        0
    );
    assert_eq!(
        read_all(
            t.dyn_store(),
            &get_spec("e.jsonl", json!({"InputType": "JSONL"}))
        )
        .len(),
        0
    );
    let e = open(
        t.dyn_store(),
        &get_spec("e.json", json!({"InputType": "JSON"})),
        None,
    )
    .unwrap()
    .next()
    .unwrap()
    .unwrap_err();
    assert!(matches!(
        e,
        ReaderError::Malformed {
            format: Format::Json,
            ..
        }
    ));
}

#[test]
fn open_bytes_for_test_state_data() {
    let s = spec(
        json!({"Resource": "arn:aws:states:::s3:getObject", "Arguments": {"Bucket": "test-bucket", "Key": "test-key"}, "ReaderConfig": {"InputType": "JSON"}}),
    );
    let items: Vec<Item> = open_bytes(&s, b"[1, 2, 3]".to_vec(), None)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(values(&items), vec![json!(1), json!(2), json!(3)]);
    assert_eq!(&*items[0].source, "S3://test-bucket/test-key");
    let mut st = open_bytes(&s, b"[1, 2, 3]".to_vec(), None).unwrap();
    st.next();
    let pos = st.checkpoint();
    let rest: Vec<Value> = open_bytes(&s, b"[1, 2, 3]".to_vec(), Some(&pos))
        .unwrap()
        .map(|r| r.unwrap().value)
        .collect();
    assert_eq!(rest, vec![json!(2), json!(3)]);
    let (pq, expect) = parquet::tests::sample_parquet(2, 2, PqCompression::SNAPPY);
    let s = spec(
        json!({"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "x", "Key": "y"}, "ReaderConfig": {"InputType": "PARQUET"}}),
    );
    let got: Vec<Value> = open_bytes(&s, pq, None)
        .unwrap()
        .map(|r| r.unwrap().value)
        .collect();
    assert_eq!(got, expect);
    let list = spec(
        json!({"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "b"}}),
    );
    assert!(matches!(
        open_bytes(&list, Vec::new(), None),
        Err(ReaderError::InvalidCombination { .. })
    ));
}

#[test]
fn position_serializes_compactly() {
    let t = temp_store();
    t.put("f.csv", b"a\n1\n2\n");
    let s = get_spec("f.csv", json!({"InputType": "CSV"}));
    let mut st = open(t.dyn_store(), &s, None).unwrap();
    st.next();
    let v = serde_json::to_value(st.checkpoint()).unwrap();
    assert_eq!(
        v,
        json!({
            "items_read": 1,
            "finished": false,
            "object": {"bucket": "b", "key": "f.csv", "offset": 4, "line": 3, "items_read": 1, "compression": "None", "csv_header": ["a"]}
        })
    );
}

#[test]
fn large_streams_keep_positions_exact() {
    // Items straddle the 64 KiB read buffer many times.
    let t = temp_store();
    let mut jsonl = Vec::new();
    let mut json_doc = b"[".to_vec();
    let mut csv = b"k,v\n".to_vec();
    for i in 0..5000 {
        let pad = "x".repeat(i % 97);
        jsonl.extend_from_slice(format!("{{\"i\":{i},\"p\":\"{pad}\"}}\n").as_bytes());
        if i > 0 {
            json_doc.extend_from_slice(b",\n ");
        }
        json_doc.extend_from_slice(format!("{{\"i\":{i},\"p\":\"{pad}\"}}").as_bytes());
        csv.extend_from_slice(format!("{i},\"{pad}\n{pad}\"\r\n").as_bytes());
    }
    json_doc.push(b']');
    t.put("big.jsonl", &jsonl);
    t.put("big.json", &json_doc);
    t.put("big.csv.gz", &gzip(&csv));
    for (key, ty) in [
        ("big.jsonl", "JSONL"),
        ("big.json", "JSON"),
        ("big.csv.gz", "CSV"),
    ] {
        let s = get_spec(key, json!({"InputType": ty}));
        let all = read_all(t.dyn_store(), &s);
        assert_eq!(all.len(), 5000, "{key}");
        for k in [1usize, 777, 2500, 4999] {
            let mut st = open(t.dyn_store(), &s, None).unwrap();
            for _ in 0..k {
                st.next().unwrap().unwrap();
            }
            let pos = st.checkpoint();
            let rest: Vec<Item> = open(t.dyn_store(), &s, Some(&pos))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            assert_eq!(rest, all[k..].to_vec(), "{key} after {k}");
        }
    }
}

/// An in-memory store whose keys may end in `/` (S3 console folder markers), which a folder
/// on disk cannot hold.
struct MemStore {
    objects: std::collections::BTreeMap<(String, String), Vec<u8>>,
}

impl MemStore {
    fn meta(&self, key: &str, body: &[u8]) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size: body.len() as u64,
            etag: "\"d41d8cd98f00b204e9800998ecf8427e\"".into(),
            last_modified: chrono::DateTime::<chrono::Utc>::from_timestamp(1_668_699_881, 0)
                .unwrap(),
            storage_class: "STANDARD".into(),
            version_id: None,
        }
    }
}

impl ObjectStore for MemStore {
    fn head(&self, bucket: &str, key: &str, _v: Option<&str>) -> Result<ObjectMeta, StoreError> {
        let body = self
            .objects
            .get(&(bucket.to_string(), key.to_string()))
            .ok_or(StoreError::NoSuchKey {
                bucket: bucket.into(),
                key: key.into(),
            })?;
        Ok(self.meta(key, body))
    }
    fn get(&self, req: &GetObject<'_>) -> Result<Box<dyn Read + Send>, StoreError> {
        let body = self
            .objects
            .get(&(req.bucket.to_string(), req.key.to_string()))
            .ok_or(StoreError::NoSuchKey {
                bucket: req.bucket.into(),
                key: req.key.into(),
            })?;
        if req.start > 0 && req.start >= body.len() as u64 {
            return Err(StoreError::InvalidRange {
                bucket: req.bucket.into(),
                key: req.key.into(),
                start: req.start,
            });
        }
        let end = req
            .end
            .map(|e| (e + 1).min(body.len() as u64))
            .unwrap_or(body.len() as u64);
        Ok(Box::new(std::io::Cursor::new(
            body[req.start as usize..end as usize].to_vec(),
        )))
    }
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<&str>,
        max: usize,
    ) -> Result<ListPage, StoreError> {
        let keys: Vec<(&String, &Vec<u8>)> = self
            .objects
            .iter()
            .filter(|((b, k), _)| {
                b == bucket && k.starts_with(prefix) && token.is_none_or(|t| k.as_str() > t)
            })
            .map(|((_, k), v)| (k, v))
            .collect();
        let page: Vec<ObjectMeta> = keys
            .iter()
            .take(max)
            .map(|(k, v)| self.meta(k, v))
            .collect();
        let next = if keys.len() > max {
            page.last().map(|m| m.key.clone())
        } else {
            None
        };
        Ok(ListPage {
            objects: page,
            next_continuation_token: next,
        })
    }
    fn put(&self, _b: &str, _k: &str, _body: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::Other {
            message: "read-only".into(),
        })
    }
    fn writer(&self, _b: &str, _k: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        Err(StoreError::Other {
            message: "read-only".into(),
        })
    }
}

#[test]
fn folder_markers_are_listed_but_not_loaded() {
    let mut objects = std::collections::BTreeMap::new();
    for (k, v) in [
        ("data/", &b""[..]),
        ("data/a.json", b"[1, 2]"),
        ("data/sub/", b""),
        ("data/sub/b.json", b"[3]"),
        ("data/z.json", b"[]"),
        ("data/zz.json", b"[4, 5]"),
    ] {
        objects.insert(("b".to_string(), k.to_string()), v.to_vec());
    }
    let store: Arc<dyn ObjectStore> = Arc::new(MemStore { objects });
    let s = spec(
        json!({"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "b", "Prefix": "data"}}),
    );
    let items = check_resume(store.clone(), &s);
    let keys: Vec<Value> = items.iter().map(|i| i.value["Key"].clone()).collect();
    assert_eq!(
        keys,
        vec![
            json!("data/"),
            json!("data/a.json"),
            json!("data/sub/"),
            json!("data/sub/b.json"),
            json!("data/z.json"),
            json!("data/zz.json")
        ]
    );
    assert_eq!(
        items[0].value,
        json!({"Etag": "\"d41d8cd98f00b204e9800998ecf8427e\"", "Key": "data/", "LastModified": 1668699881, "Size": 0, "StorageClass": "STANDARD"})
    );
    let s = spec(json!({
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "b", "Prefix": "data"},
        "ReaderConfig": {"InputType": "JSON", "Transformation": "LOAD_AND_FLATTEN"}
    }));
    let items = check_resume(store, &s);
    assert_eq!(
        values(&items),
        vec![json!(1), json!(2), json!(3), json!(4), json!(5)]
    );
}

#[test]
fn get_options_reach_the_store() {
    let t = temp_store();
    t.put("v.json", b"[1]");
    let s = spec(json!({
        "Resource": "arn:aws:states:::s3:getObject",
        "Parameters": {"Bucket": "b", "Key": "v.json", "VersionId": "v1", "ExpectedBucketOwner": "111122223333"},
        "ReaderConfig": {"InputType": "JSON"}
    }));
    let rec = Recording::new(t.dyn_store());
    assert_eq!(read_all(rec.clone(), &s).len(), 1);
    let opts = rec.options.lock().unwrap().clone();
    assert_eq!(
        opts,
        vec![(Some("v1".to_string()), Some("111122223333".to_string()))]
    );
}

#[test]
fn checkpoints_that_do_not_fit_are_refused() {
    let t = temp_store();
    t.put("a.csv", b"h\n1\n2\n");
    t.put("other.csv", b"h\n1\n2\n");
    let s = get_spec("a.csv", json!({"InputType": "CSV"}));
    let mut st = open(t.dyn_store(), &s, None).unwrap();
    st.next();
    let mut pos = st.checkpoint();
    pos.object.as_mut().unwrap().key = "other.csv".into();
    let e = open(t.dyn_store(), &s, Some(&pos)).err().unwrap();
    assert!(matches!(e, ReaderError::BadResume { .. }), "{e:?}");
    // A FIRST_ROW checkpoint inside the object without its header.
    let mut pos = st.checkpoint();
    pos.object.as_mut().unwrap().csv_header = None;
    assert!(matches!(
        open(t.dyn_store(), &s, Some(&pos)),
        Err(ReaderError::BadResume { .. })
    ));
    // A gzip checkpoint past the end of the data.
    t.put("z.csv.gz", &gzip(b"h\n1\n"));
    let s = get_spec("z.csv.gz", json!({"InputType": "CSV"}));
    let mut st = open(t.dyn_store(), &s, None).unwrap();
    st.next();
    let mut pos = st.checkpoint();
    pos.object.as_mut().unwrap().offset = 1000;
    assert!(matches!(
        open(t.dyn_store(), &s, Some(&pos)),
        Err(ReaderError::BadResume { .. })
    ));
    // GIVEN headers come from the spec, not the checkpoint.
    let s = get_spec(
        "a.csv",
        json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["x"]}),
    );
    let mut st = open(t.dyn_store(), &s, None).unwrap();
    st.next();
    assert_eq!(st.checkpoint().object.unwrap().csv_header, None);
}

/// Rough throughput (run with `--release -- --ignored --nocapture`).
#[test]
#[ignore]
fn throughput() {
    let t = temp_store();
    let mut csv = b"id,name,city,score\n".to_vec();
    let mut jsonl = Vec::new();
    let mut json_doc = b"[".to_vec();
    for i in 0..400_000 {
        csv.extend_from_slice(
            format!("{i},\"name {i}, esq.\",Springfield,{}.5\n", i % 100).as_bytes(),
        );
        let line = format!(
            "{{\"id\":{i},\"name\":\"name {i}\",\"city\":\"Springfield\",\"score\":{}.5}}",
            i % 100
        );
        jsonl.extend_from_slice(line.as_bytes());
        jsonl.push(b'\n');
        if i > 0 {
            json_doc.push(b',');
        }
        json_doc.extend_from_slice(line.as_bytes());
    }
    json_doc.push(b']');
    t.put("t.csv", &csv);
    t.put("t.jsonl", &jsonl);
    t.put("t.json", &json_doc);
    t.put("t.csv.gz", &gzip(&csv));
    for (key, ty, len) in [
        ("t.csv", "CSV", csv.len()),
        ("t.jsonl", "JSONL", jsonl.len()),
        ("t.json", "JSON", json_doc.len()),
        ("t.csv.gz", "CSV", csv.len()),
    ] {
        let s = get_spec(key, json!({"InputType": ty}));
        let start = std::time::Instant::now();
        let n = open(t.dyn_store(), &s, None).unwrap().count();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{key}: {n} items, {:.1} MB/s, {:.0} items/s",
            len as f64 / secs / 1e6,
            n as f64 / secs
        );
    }
}
