//! A local folder as S3: `s3://bucket/key` ↔ `ROOT/bucket/key` (`--data DIR`).

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};

use super::{GetObject, ListPage, ObjectMeta, ObjectStore, ObjectWriter, PutIfAbsent, StoreError};

pub struct LocalFolderStore {
    root: PathBuf,
}

impl LocalFolderStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalFolderStore { root: root.into() }
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, StoreError> {
        let dir = self.root.join(bucket);
        if bucket.is_empty()
            || bucket.contains('/')
            || bucket == "."
            || bucket == ".."
            || !dir.is_dir()
        {
            return Err(StoreError::NoSuchBucket {
                bucket: bucket.to_string(),
            });
        }
        Ok(dir)
    }

    fn object_path(&self, bucket: &str, key: &str) -> Result<PathBuf, StoreError> {
        let dir = self.bucket_dir(bucket)?;
        // Keys never climb out of their bucket.
        if key.is_empty() || key.split('/').any(|p| p == ".." || p == ".") {
            return Err(StoreError::NoSuchKey {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        Ok(dir.join(key))
    }

    fn meta(path: &Path, key: &str) -> Result<ObjectMeta, StoreError> {
        let md = fs::metadata(path).map_err(|e| io_err(e, path))?;
        let modified: DateTime<Utc> = md
            .modified()
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(|_| Utc::now());
        Ok(ObjectMeta {
            key: key.to_string(),
            size: md.len(),
            etag: etag_of(path)?,
            last_modified: modified,
            storage_class: "STANDARD".into(),
            version_id: None,
        })
    }
}

fn io_err(e: io::Error, path: &Path) -> StoreError {
    StoreError::Other {
        message: format!("{}: {e}", path.display()),
    }
}

/// S3's ETag of a single-part object: the MD5 of its bytes, quoted.
fn etag_of(path: &Path) -> Result<String, StoreError> {
    let mut f = File::open(path).map_err(|e| io_err(e, path))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| io_err(e, path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("\"{:x}\"", h.finalize()))
}

impl ObjectStore for LocalFolderStore {
    fn head(
        &self,
        bucket: &str,
        key: &str,
        _version_id: Option<&str>,
    ) -> Result<ObjectMeta, StoreError> {
        let path = self.object_path(bucket, key)?;
        if !path.is_file() {
            return Err(StoreError::NoSuchKey {
                bucket: bucket.into(),
                key: key.into(),
            });
        }
        Self::meta(&path, key)
    }

    fn get(&self, req: &GetObject<'_>) -> Result<Box<dyn Read + Send>, StoreError> {
        let path = self.object_path(req.bucket, req.key)?;
        let mut f = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NoSuchKey {
                bucket: req.bucket.into(),
                key: req.key.into(),
            },
            _ => io_err(e, &path),
        })?;
        if !path.is_file() {
            return Err(StoreError::NoSuchKey {
                bucket: req.bucket.into(),
                key: req.key.into(),
            });
        }
        let len = f.metadata().map_err(|e| io_err(e, &path))?.len();
        if req.start > 0 && req.start >= len {
            return Err(StoreError::InvalidRange {
                bucket: req.bucket.into(),
                key: req.key.into(),
                start: req.start,
            });
        }
        f.seek(SeekFrom::Start(req.start))
            .map_err(|e| io_err(e, &path))?;
        match req.end {
            Some(end) => Ok(Box::new(f.take(end.saturating_sub(req.start) + 1))),
            None => Ok(Box::new(f)),
        }
    }

    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        continuation_token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, StoreError> {
        let dir = self.bucket_dir(bucket)?;
        let mut keys = Vec::new();
        // Only the folder the prefix's folders name is walked (a bucket holding a million
        // objects elsewhere lists a small folder fast).
        let start = match prefix.rsplit_once('/') {
            Some((folders, _))
                if !folders
                    .split('/')
                    .any(|p| p.is_empty() || p == ".." || p == ".") =>
            {
                dir.join(folders)
            }
            _ => dir.clone(),
        };
        let mut stack = if start.is_dir() {
            vec![start]
        } else {
            Vec::new()
        };
        while let Some(d) = stack.pop() {
            let entries = fs::read_dir(&d).map_err(|e| io_err(e, &d))?;
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&dir) {
                    let key = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    if key.starts_with(prefix) && !key.ends_with(".mapfleet-part") {
                        keys.push(key);
                    }
                }
            }
        }
        keys.sort();
        // The continuation token is the last key of the previous page.
        let start = match continuation_token {
            Some(t) => keys.partition_point(|k| k.as_str() <= t),
            None => 0,
        };
        let page: Vec<&String> = keys.iter().skip(start).take(max_keys.max(1)).collect();
        let mut objects = Vec::with_capacity(page.len());
        for k in &page {
            objects.push(Self::meta(&dir.join(k.as_str()), k)?);
        }
        let next = if start + page.len() < keys.len() {
            page.last().map(|k| k.to_string())
        } else {
            None
        };
        Ok(ListPage {
            objects,
            next_continuation_token: next,
        })
    }

    fn put(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), StoreError> {
        let mut w = self.writer(bucket, key)?;
        w.write_all(body).map_err(|e| StoreError::Other {
            message: e.to_string(),
        })?;
        w.complete().map(|_| ())
    }

    /// The body goes to a temporary file that is then hard-linked to the object's path: the
    /// link fails when the path exists, so the first writer wins, across processes too.
    fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
    ) -> Result<PutIfAbsent, StoreError> {
        let path = self.object_path(bucket, key)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(e, parent))?;
        }
        // One temporary file per attempt (several writers may race for the key).
        static ATTEMPTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let attempt = ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = PathBuf::from(format!(
            "{}.{}-{attempt}.mapfleet-part",
            path.display(),
            std::process::id()
        ));
        fs::write(&tmp, body).map_err(|e| io_err(e, &tmp))?;
        let linked = fs::hard_link(&tmp, &path);
        fs::remove_file(&tmp).map_err(|e| io_err(e, &tmp))?;
        match linked {
            Ok(()) => Ok(PutIfAbsent::Created),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(PutIfAbsent::Exists),
            Err(e) => Err(io_err(e, &path)),
        }
    }

    fn writer(&self, bucket: &str, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let path = self.object_path(bucket, key)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(e, parent))?;
        }
        let tmp = PathBuf::from(format!("{}.mapfleet-part", path.display()));
        let file = File::create(&tmp).map_err(|e| io_err(e, &tmp))?;
        Ok(Box::new(LocalWriter {
            file: io::BufWriter::new(file),
            tmp,
            path,
            written: 0,
        }))
    }
}

/// Writes to a temporary file renamed into place on completion, so a reader never sees a
/// half-written object (as with a multipart upload).
struct LocalWriter {
    file: io::BufWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    written: u64,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl ObjectWriter for LocalWriter {
    fn complete(mut self: Box<Self>) -> Result<u64, StoreError> {
        self.file.flush().map_err(|e| io_err(e, &self.tmp))?;
        fs::rename(&self.tmp, &self.path).map_err(|e| io_err(e, &self.path))?;
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (LocalFolderStore, PathBuf) {
        let root = std::env::temp_dir().join(format!(
            "mapfleet-store-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        fs::create_dir_all(root.join("bkt")).unwrap();
        (LocalFolderStore::new(&root), root)
    }

    fn rand_suffix() -> u64 {
        use std::time::{SystemTime, UNIX_EPOCH};
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }

    /// The first writer wins, also among threads racing for one key; the others find it.
    #[test]
    fn put_if_absent_lets_the_first_writer_win() {
        let (s, _root) = store();
        assert_eq!(
            s.put_if_absent("bkt", "runs/b-0", b"first").unwrap(),
            PutIfAbsent::Created
        );
        assert_eq!(
            s.put_if_absent("bkt", "runs/b-0", b"second").unwrap(),
            PutIfAbsent::Exists
        );
        let read = |key: &str| {
            let mut out = String::new();
            s.get(&GetObject {
                bucket: "bkt",
                key,
                ..Default::default()
            })
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
            out
        };
        assert_eq!(read("runs/b-0"), "first");
        let created: Vec<PutIfAbsent> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..8)
                .map(|i| {
                    let s = &s;
                    scope.spawn(move || {
                        s.put_if_absent("bkt", "runs/b-1", format!("w{i}").as_bytes())
                            .unwrap()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(
            created
                .iter()
                .filter(|c| **c == PutIfAbsent::Created)
                .count(),
            1
        );
        assert!(read("runs/b-1").starts_with('w'));
        // No temporary files are left or listed.
        let listed = s.list("bkt", "runs/", None, 100).unwrap();
        let keys: Vec<&str> = listed.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["runs/b-0", "runs/b-1"]);
    }

    #[test]
    fn put_get_range_list() {
        let (s, _root) = store();
        s.put("bkt", "a/x.txt", b"hello world").unwrap();
        s.put("bkt", "a/y.txt", b"y").unwrap();
        s.put("bkt", "b.txt", b"b").unwrap();
        let mut out = String::new();
        s.get(&GetObject {
            bucket: "bkt",
            key: "a/x.txt",
            start: 6,
            ..Default::default()
        })
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
        assert_eq!(out, "world");
        let mut out = String::new();
        s.get(&GetObject {
            bucket: "bkt",
            key: "a/x.txt",
            start: 0,
            end: Some(4),
            ..Default::default()
        })
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
        assert_eq!(out, "hello");
        let p1 = s.list("bkt", "a/", None, 1).unwrap();
        assert_eq!(p1.objects[0].key, "a/x.txt");
        assert_eq!(p1.objects[0].etag, "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
        let p2 = s
            .list("bkt", "a/", p1.next_continuation_token.as_deref(), 1)
            .unwrap();
        assert_eq!(p2.objects[0].key, "a/y.txt");
        assert!(p2.next_continuation_token.is_none());
    }

    #[test]
    fn missing_bucket_and_key() {
        let (s, _root) = store();
        assert!(matches!(
            s.head("nope", "k", None),
            Err(StoreError::NoSuchBucket { .. })
        ));
        assert!(matches!(
            s.head("bkt", "k", None),
            Err(StoreError::NoSuchKey { .. })
        ));
        assert!(matches!(
            s.head("bkt", "../etc/passwd", None),
            Err(StoreError::NoSuchKey { .. })
        ));
    }
}
