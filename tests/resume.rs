//! Crash-safe resume on the embedded default, through the `mapfleet` binary: state folders a
//! SIGKILL left behind (recorded) run again to completion, with every row in the result
//! files exactly once. The seeded kill schedules are in `kill_schedules.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join("mapfleet")
}

/// Runs `mapfleet` with `args` in `dir`; a run that does not end within `limit` is killed and
/// the test fails (a hang is the defect these tests guard against).
fn run_bounded(dir: &Path, args: &[&str], limit: Duration) -> Output {
    let child = Command::new(bin())
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mapfleet");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("mapfleet output"),
        Err(_) => {
            let killed = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!(
                "mapfleet {args:?} did not finish in {limit:?} (hang; killed: {killed:?}); \
                 state left in {}",
                dir.display()
            );
        }
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The recorded reproducer (tests/data/resume-hang.tar.gz, from ../shared/repro): a
/// 20,000-row CSV job killed between its Map Run's end (committed: SUCCEEDED, results
/// written) and its parent's next checkpoint (still in the Map state, the Map Run to start).
/// Resumed, the Map Run was loaded as ended, the run asked for nothing and the driver waited
/// forever. Now the ended run reports its outcome (its result files written again, the same
/// objects) and the execution finishes.
#[test]
fn a_run_killed_after_its_map_run_ended_resumes_to_completion() {
    let dir = std::env::temp_dir().join(format!("mapfleet-resume-hang-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let archive = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/resume-hang.tar.gz");
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&dir)
        .status()
        .expect("tar");
    assert!(status.success(), "cannot unpack {}", archive.display());
    let job = dir.join("resume-hang");
    let out = run_bounded(
        &job,
        &[
            "run", "def.json", "--name", "job4", "--data", "data", "--state", "state",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let described: Value = serde_json::from_slice(&out.stdout).expect("DescribeExecution JSON");
    assert_eq!(described["status"], "SUCCEEDED");
    let output: Value =
        serde_json::from_str(described["output"].as_str().expect("output")).expect("output JSON");
    let manifest_key = output["ResultWriterDetails"]["Key"].as_str().expect("key");
    let bucket = job
        .join("data")
        .join(output["ResultWriterDetails"]["Bucket"].as_str().unwrap());
    let manifest = read_json(&bucket.join(manifest_key));
    assert_eq!(manifest["ResultFiles"]["FAILED"], serde_json::json!([]));
    assert_eq!(manifest["ResultFiles"]["PENDING"], serde_json::json!([]));
    let mut seen = vec![0u32; 20_000];
    for file in manifest["ResultFiles"]["SUCCEEDED"]
        .as_array()
        .expect("files")
    {
        let records = read_json(&bucket.join(file["Key"].as_str().expect("Key")));
        for r in records.as_array().expect("records") {
            assert_eq!(r["Status"], "SUCCEEDED");
            let input: Value = serde_json::from_str(r["Input"].as_str().expect("Input")).unwrap();
            let idx = input["idx"].as_u64().expect("idx") as usize;
            let output: Value =
                serde_json::from_str(r["Output"].as_str().expect("Output")).unwrap();
            assert_eq!(output["idx"], input["idx"]);
            seen[idx] += 1;
        }
    }
    let wrong: Vec<(usize, u32)> = seen
        .iter()
        .enumerate()
        .filter(|(_, n)| **n != 1)
        .map(|(i, n)| (i, *n))
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "rows not exactly once (row, times): {wrong:?}"
    );
    // Running it again reports the finished execution.
    let again = run_bounded(
        &job,
        &[
            "run", "def.json", "--name", "job4", "--data", "data", "--state", "state",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(again.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
