//! Map Run state machine tests: dispatch within MaxConcurrency, tolerance boundaries,
//! counters, ResultWriter step, redrive, checkpoint round trips.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::checkpoint::{CheckpointStore, SqliteStore};
use super::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn run(max_concurrency: u64, count: Option<u64>, pct: Option<f64>, writer: bool) -> MapRun {
    MapRun::new(
        "arn:aws:states:us-east-1:123456789012:mapRun:sm/Map:11111111-2222-3333-4444-555555555555"
            .into(),
        "arn:aws:states:us-east-1:123456789012:execution:sm:e".into(),
        "arn:aws:states:us-east-1:123456789012:stateMachine:sm/Map".into(),
        ExecutionType::Standard,
        Settings {
            max_concurrency,
            tolerated_failure_count: count,
            tolerated_failure_percentage: pct,
        },
        writer,
        t0(),
    )
}

/// The reader delivers `n` one-item children and stands at `position`.
fn read(r: &mut MapRun, n: u64, position: Value, done: bool) -> Vec<MapRunAction> {
    r.apply(
        MapRunEvent::ChildrenRead {
            inputs: items(n),
            position,
            done,
        },
        t0(),
    )
}

/// Child `index` failed with error `E` and no cause.
fn failed_with_e(index: u64) -> MapRunEvent {
    MapRunEvent::ChildFailed {
        index,
        status: ChildStatus::Failed,
        error: Some("E".into()),
        cause: None,
        snapshot: None,
    }
}

fn items(n: u64) -> Vec<(Value, u64)> {
    (0..n).map(|i| (json!({"i": i}), 1)).collect()
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

#[test]
fn reads_then_dispatches_within_max_concurrency() {
    let mut r = run(2, None, None, false);
    let a = r.apply(MapRunEvent::Start, t0());
    assert_eq!(
        a,
        vec![MapRunAction::Read {
            position: None,
            max_children: READ_AHEAD
        }]
    );
    let a = read(&mut r, 5, json!(5), true);
    assert_eq!(started(&a), vec![0, 1]);
    let a = r.apply(
        MapRunEvent::ChildSucceeded {
            index: 0,
            output: json!("a"),
        },
        t0(),
    );
    assert_eq!(started(&a), vec![2]);
    for i in 1..5 {
        r.apply(
            MapRunEvent::ChildSucceeded {
                index: i,
                output: json!(i),
            },
            t0(),
        );
    }
    assert_eq!(r.status, MapRunStatus::Succeeded);
    let outputs: Vec<Value> = (0..5)
        .map(|i| r.child(i).unwrap().output.clone().unwrap())
        .collect();
    assert_eq!(
        outputs,
        vec![json!("a"), json!(1), json!(2), json!(3), json!(4)]
    );
    let c = r.item_counts();
    assert_eq!(
        (
            c.succeeded,
            c.total,
            c.results_written,
            c.pending,
            c.running
        ),
        (5, 5, 5, 0, 0)
    );
}

#[test]
fn any_failure_fails_when_no_tolerance_is_set() {
    let mut r = run(0, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    read(&mut r, 3, json!(3), true);
    let a = r.apply(failed_with_e(1), t0());
    // The other running Standard children are stopped, then the run fails.
    assert!(a.contains(&MapRunAction::StopChild { index: 0 }));
    assert!(a.contains(&MapRunAction::StopChild { index: 2 }));
    assert_eq!(r.status, MapRunStatus::Failed);
    assert_eq!(r.error.as_deref(), Some(THRESHOLD_ERROR));
    let c = r.item_counts();
    assert_eq!((c.failed, c.aborted), (1, 2));
}

#[test]
fn tolerated_count_boundary() {
    for (failures, tolerated, fails) in [(2, 2, false), (3, 2, true), (1, 0, true)] {
        let mut r = run(0, Some(tolerated), None, false);
        r.apply(MapRunEvent::Start, t0());
        read(&mut r, 10, json!(10), true);
        for i in 0..10 {
            if r.status != MapRunStatus::Running {
                break;
            }
            if i < failures {
                r.apply(
                    MapRunEvent::ChildFailed {
                        index: i,
                        status: ChildStatus::TimedOut,
                        error: None,
                        cause: None,
                        snapshot: None,
                    },
                    t0(),
                );
            } else {
                r.apply(
                    MapRunEvent::ChildSucceeded {
                        index: i,
                        output: json!(i),
                    },
                    t0(),
                );
            }
        }
        assert_eq!(
            r.status == MapRunStatus::Failed,
            fails,
            "{failures} failures, {tolerated} tolerated"
        );
    }
}

#[test]
fn tolerated_percentage_boundary_is_strictly_greater() {
    for (failures, pct, fails) in [(2, 20.0, false), (3, 20.0, true), (10, 100.0, false)] {
        let mut r = run(0, None, Some(pct), false);
        r.apply(MapRunEvent::Start, t0());
        read(&mut r, 10, json!(10), true);
        for i in 0..10 {
            if r.status != MapRunStatus::Running {
                break;
            }
            if i < failures {
                r.apply(
                    MapRunEvent::ChildFailed {
                        index: i,
                        status: ChildStatus::Failed,
                        error: None,
                        cause: None,
                        snapshot: None,
                    },
                    t0(),
                );
            } else {
                r.apply(
                    MapRunEvent::ChildSucceeded {
                        index: i,
                        output: json!(i),
                    },
                    t0(),
                );
            }
        }
        assert_eq!(
            r.status == MapRunStatus::Failed,
            fails,
            "{failures} of 10 at {pct}%"
        );
    }
}

#[test]
fn batch_children_count_all_their_items() {
    let mut r = run(0, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    r.apply(
        MapRunEvent::ChildrenRead {
            inputs: vec![(json!([1, 2, 3]), 3), (json!([4, 5]), 2)],
            position: json!(5),
            done: true,
        },
        t0(),
    );
    r.apply(
        MapRunEvent::ChildSucceeded {
            index: 0,
            output: json!(1),
        },
        t0(),
    );
    assert_eq!(r.item_counts().succeeded, 3);
    assert_eq!(r.execution_counts().succeeded, 1);
    assert_eq!(r.child(1).unwrap().first_item, 3);
}

#[test]
fn writer_runs_last_and_redrive_reruns_only_unsuccessful_children() {
    let mut r = run(1, Some(0), None, true);
    r.apply(MapRunEvent::Start, t0());
    read(&mut r, 4, json!(4), true);
    r.apply(
        MapRunEvent::ChildSucceeded {
            index: 0,
            output: json!(0),
        },
        t0(),
    );
    let a = r.apply(
        MapRunEvent::ChildFailed {
            index: 1,
            status: ChildStatus::Failed,
            error: Some("X".into()),
            cause: None,
            snapshot: None,
        },
        t0(),
    );
    assert_eq!(a, vec![MapRunAction::WriteResults]);
    assert_eq!(r.status, MapRunStatus::Running);
    let a = r.apply(MapRunEvent::ResultsWritten { records: 4 }, t0());
    assert!(matches!(
        &a[..],
        [MapRunAction::Finish {
            status: MapRunStatus::Failed,
            ..
        }]
    ));
    // Children 2 and 3 were never started: PENDING.
    assert_eq!(r.item_counts().pending, 2);

    let a = r.apply(
        MapRunEvent::Redrive {
            unsuccessful: Vec::new(),
            parent_redrive_count: 1,
        },
        t0(),
    );
    assert_eq!(r.redrive_count, 1);
    assert_eq!(
        a,
        vec![MapRunAction::StartChild {
            index: 1,
            name: child_name(&r.map_run_arn, 1),
            input: json!({"i": 1}).into(),
            redrive: true,
            attempt: 1,
            snapshot: None,
            batch: None,
            first_item: 1,
            items: 1,
        }]
    );
    for i in 1..4 {
        r.apply(
            MapRunEvent::ChildSucceeded {
                index: i,
                output: json!(i),
            },
            t0(),
        );
    }
    let a = r.apply(MapRunEvent::ResultsWritten { records: 4 }, t0());
    assert!(matches!(
        &a[..],
        [MapRunAction::Finish {
            status: MapRunStatus::Succeeded,
            ..
        }]
    ));
    assert_eq!(
        r.child(0).unwrap().redrive_count,
        0,
        "a successful child is never re-run"
    );
    assert_eq!(r.child(1).unwrap().redrive_count, 1);
    let d = r.describe();
    assert_eq!(d["redriveCount"], json!(1));
    assert_eq!(d["itemCounts"]["succeeded"], json!(4));
}

/// A run that ended is not run again: a redrive of a succeeded run, a second redrive for the
/// same parent attempt, or a start of an ended run (a parent resumed before it recorded the
/// end) report how it ended — never nothing, which would leave its driver waiting forever.
#[test]
fn an_ended_run_reports_its_outcome_again_and_redrives_are_capped() {
    let mut r = run(0, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    read(&mut r, 1, json!(1), true);
    r.apply(
        MapRunEvent::ChildSucceeded {
            index: 0,
            output: json!(0),
        },
        t0(),
    );
    let succeeded = vec![MapRunAction::Finish {
        status: MapRunStatus::Succeeded,
        error: None,
        cause: None,
    }];
    let redrive = |r: &mut MapRun, parent_redrive_count| {
        r.apply(
            MapRunEvent::Redrive {
                unsuccessful: Vec::new(),
                parent_redrive_count,
            },
            t0(),
        )
    };
    assert_eq!(redrive(&mut r, 1), succeeded);
    assert_eq!(r.apply(MapRunEvent::Start, t0()), succeeded);
    assert_eq!(r.redrive_count, 0);

    // Failed, redriven for parent attempt 1, failed again: attempt 1 asked again reports the
    // failure; attempt 2 redrives.
    let mut r = run(0, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    read(&mut r, 1, json!(1), true);
    r.apply(failed_with_e(0), t0());
    assert_eq!(r.status, MapRunStatus::Failed);
    assert_eq!(started(&redrive(&mut r, 1)), vec![0]);
    r.apply(failed_with_e(0), t0());
    assert_eq!(r.status, MapRunStatus::Failed);
    assert!(matches!(
        &redrive(&mut r, 1)[..],
        [MapRunAction::Finish { status: MapRunStatus::Failed, error: Some(e), .. }] if e == THRESHOLD_ERROR
    ));
    assert_eq!(r.redrive_count, 1);
    assert_eq!(started(&redrive(&mut r, 2)), vec![0]);
    assert_eq!(r.redrive_count, 2);
    let mut r = run(0, None, None, false);
    r.status = MapRunStatus::Failed;
    r.redrive_count = MAX_REDRIVES;
    let a = r.apply(
        MapRunEvent::Redrive {
            unsuccessful: Vec::new(),
            parent_redrive_count: 1,
        },
        t0(),
    );
    assert!(
        matches!(&a[..], [MapRunAction::Finish { error: Some(e), .. }] if e == "States.Runtime")
    );
}

#[test]
fn streaming_reads_stay_bounded() {
    let mut r = run(10, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    let a = read(&mut r, READ_AHEAD as u64, json!(1), false);
    assert_eq!(started(&a).len(), 10);
    assert!(
        !a.iter().any(|x| matches!(x, MapRunAction::Read { .. })),
        "enough buffered: no read yet"
    );
    let mut reads = 0;
    for i in 0..(READ_AHEAD as u64) {
        let a = r.apply(
            MapRunEvent::ChildSucceeded {
                index: i,
                output: json!(i),
            },
            t0(),
        );
        reads += a
            .iter()
            .filter(|x| matches!(x, MapRunAction::Read { .. }))
            .count();
    }
    assert_eq!(reads, 1, "one read once the buffer ran low");
}

#[test]
fn checkpoints_round_trip_and_resume_running_children() {
    let store = SqliteStore::in_memory().unwrap();
    let mut r = run(2, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    read(&mut r, 3, json!({"byte": 42}), true);
    r.apply(
        MapRunEvent::ChildSucceeded {
            index: 0,
            output: json!("done"),
        },
        t0(),
    );
    store.save(&mut r).unwrap();
    assert!(r.dirty.is_empty());
    // The finished, saved child left memory; the running ones stay.
    assert!(r.child(0).is_none());
    assert_eq!(r.window.len(), 2);
    let mut loaded = store.load(&r.map_run_arn).unwrap().unwrap();
    assert!(
        loaded.window.is_empty(),
        "unfinished children are not stored: they are read again"
    );
    assert_eq!(loaded.item_counts().succeeded, 1);
    assert_eq!(loaded.item_counts().pending, 2);
    assert_eq!(loaded.item_counts().total, 3);
    let mut saved = Vec::new();
    store
        .for_each_child(&r.map_run_arn, &mut |c| saved.push((c.index, c.status)))
        .unwrap();
    assert_eq!(saved, vec![(0, ChildStatus::Succeeded)]);
    // Reading starts again at the block the unfinished children were read in.
    assert_eq!(loaded.reader_position, None);
    let a = loaded.apply(MapRunEvent::Start, t0());
    assert!(a.contains(&MapRunAction::Read {
        position: None,
        max_children: READ_AHEAD,
    }));
    // Child 1 and 2 were RUNNING when saved: read again, they run again; child 0 does not,
    // and nothing is counted twice.
    let a = read(&mut loaded, 3, json!({"byte": 42}), true);
    assert_eq!(started(&a), vec![1, 2]);
    let k = loaded.item_counts();
    assert_eq!((k.total, k.succeeded, k.running, k.pending), (3, 1, 2, 0));
    assert_eq!(loaded.reader_position, Some(json!({"byte": 42})));
    let listed = store.list(&r.execution_arn).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].map_run_arn, r.map_run_arn);
}

#[test]
fn child_names_are_stable_uuids() {
    let a = child_name("arn:x", 7);
    assert_eq!(a, child_name("arn:x", 7));
    assert_ne!(a, child_name("arn:x", 8));
    assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 5);
}

/// Unfinished children are not stored (a resumed run reads them again), except a redriven
/// one: its input is not read again, so it is saved as queued for its redrive, and a reload
/// counts it as pending redrive, not running.
#[test]
fn only_finished_and_redriven_children_are_stored() {
    let store = SqliteStore::in_memory().unwrap();
    let mut r = run(1, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    read(&mut r, 2, json!(2), true);
    assert!(r.children_to_save().is_empty());
    store.save(&mut r).unwrap();
    let a = r.apply(
        MapRunEvent::ChildSucceeded {
            index: 0,
            output: json!(0),
        },
        t0(),
    );
    assert_eq!(started(&a), vec![1]);
    let rows: Vec<u64> = r.children_to_save().iter().map(|c| c.index).collect();
    assert_eq!(rows, vec![0]);
    store.save(&mut r).unwrap();
    r.apply(failed_with_e(1), t0());
    store.save(&mut r).unwrap();
    assert_eq!(r.status, MapRunStatus::Failed);
    let unsuccessful = store.unsuccessful(&r.map_run_arn).unwrap();
    let mut redriven = store.load(&r.map_run_arn).unwrap().unwrap();
    let a = redriven.apply(
        MapRunEvent::Redrive {
            unsuccessful,
            parent_redrive_count: 1,
        },
        t0(),
    );
    assert_eq!(started(&a), vec![1]);
    let rows: Vec<(u64, ChildStatus, u32)> = redriven
        .children_to_save()
        .iter()
        .map(|c| (c.index, c.status, c.redrive_count))
        .collect();
    assert_eq!(rows, vec![(1, ChildStatus::PendingRedrive, 0)]);
    store.save(&mut redriven).unwrap();
    let mut reloaded = store.load(&r.map_run_arn).unwrap().unwrap();
    let k = reloaded.execution_counts();
    assert_eq!((k.running, k.pending, k.pending_redrive), (0, 1, 1));
    let a = reloaded.apply(MapRunEvent::Start, t0());
    assert!(matches!(
        a.as_slice(),
        [MapRunAction::StartChild {
            index: 1,
            redrive: true,
            attempt: 1,
            ..
        }]
    ));
}

/// A resumed run reads from the oldest block that still held an unfinished child: the blocks
/// before it are not read again, finished children of the blocks after it are skipped, and
/// the counters come out as if the run had never stopped.
#[test]
fn a_resumed_run_reads_again_from_its_oldest_unfinished_block() {
    let store = SqliteStore::in_memory().unwrap();
    let mut r = run(0, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    // Three blocks: children 0-1, 2-3, 4-5.
    read(&mut r, 2, json!("after-1"), false);
    read(&mut r, 2, json!("after-3"), false);
    read(&mut r, 2, json!("after-5"), false);
    let succeed = |r: &mut MapRun, index: u64| {
        r.apply(
            MapRunEvent::ChildSucceeded {
                index,
                output: json!(index),
            },
            t0(),
        );
    };
    // Block 0 finishes; child 3 (block 1) and child 4 (block 2) finish.
    for i in [0, 1, 3, 4] {
        succeed(&mut r, i);
    }
    store.save(&mut r).unwrap();
    assert_eq!(r.resume_mark().index, 2, "block 0 is done with");
    assert_eq!(r.resume_mark().position, Some(json!("after-1")));
    let mut loaded = store.load(&r.map_run_arn).unwrap().unwrap();
    assert_eq!(loaded.children_total, 2);
    assert_eq!(loaded.reader_position, Some(json!("after-1")));
    assert!(!loaded.reader_done);
    let a = loaded.apply(MapRunEvent::Start, t0());
    assert!(a.contains(&MapRunAction::Read {
        position: Some(json!("after-1")),
        max_children: READ_AHEAD,
    }));
    // Read again in other blocks than before: only 2 and 5 run.
    let a = read(&mut loaded, 3, json!("after-4"), false);
    assert_eq!(started(&a), vec![2]);
    let a = read(&mut loaded, 1, json!("after-5"), true);
    assert_eq!(started(&a), vec![5]);
    assert_eq!(loaded.children_total, 6);
    let k = loaded.execution_counts();
    assert_eq!((k.total, k.succeeded, k.running, k.pending), (6, 4, 2, 0));
    succeed(&mut loaded, 2);
    succeed(&mut loaded, 5);
    assert_eq!(loaded.status, MapRunStatus::Succeeded);
    let k = loaded.item_counts();
    assert_eq!((k.total, k.succeeded, k.running, k.pending), (6, 6, 0, 0));
    store.save(&mut loaded).unwrap();
    let mut saved = Vec::new();
    store
        .for_each_child(&r.map_run_arn, &mut |c| saved.push(c.index))
        .unwrap();
    assert_eq!(saved, (0..6).collect::<Vec<u64>>());
}

/// A run that ends with children never started stores them (the PENDING records), and a
/// redrive runs them.
#[test]
fn an_ending_run_stores_its_never_started_children() {
    let store = SqliteStore::in_memory().unwrap();
    let mut r = run(1, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    read(&mut r, 3, json!(3), true);
    store.save(&mut r).unwrap();
    r.apply(failed_with_e(0), t0());
    assert_eq!(r.status, MapRunStatus::Failed);
    store.save(&mut r).unwrap();
    let mut saved = Vec::new();
    store
        .for_each_child(&r.map_run_arn, &mut |c| saved.push((c.index, c.status)))
        .unwrap();
    assert_eq!(
        saved,
        vec![
            (0, ChildStatus::Failed),
            (1, ChildStatus::Pending),
            (2, ChildStatus::Pending)
        ]
    );
    let unsuccessful = store.unsuccessful(&r.map_run_arn).unwrap();
    let mut redriven = store.load(&r.map_run_arn).unwrap().unwrap();
    assert_eq!(redriven.window.len(), 2);
    let a = redriven.apply(
        MapRunEvent::Redrive {
            unsuccessful,
            parent_redrive_count: 1,
        },
        t0(),
    );
    assert!(!a.iter().any(|a| matches!(a, MapRunAction::Read { .. })));
    assert_eq!(started(&a), vec![0]);
    let k = redriven.execution_counts();
    assert_eq!((k.total, k.running, k.pending), (3, 1, 2));
}

/// A database as an earlier version left it: `map_runs` holding `r`, and the child table
/// `children_ddl` creates (empty).
fn legacy_store(path: &std::path::Path, r: &MapRun, children_ddl: &str) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE map_runs (arn TEXT PRIMARY KEY, execution_arn TEXT NOT NULL,
             seq INTEGER NOT NULL, record TEXT NOT NULL);
         {children_ddl}"
    ))
    .unwrap();
    conn.execute(
        "INSERT INTO map_runs VALUES (?1, ?2, 0, ?3)",
        rusqlite::params![
            r.map_run_arn,
            r.execution_arn,
            serde_json::to_string(r).unwrap()
        ],
    )
    .unwrap();
    conn
}

/// A resumed run that is aborted before it read its counted children again reads them
/// still, so every child it counts has a record: the PENDING ones too.
#[test]
fn a_resumed_run_ending_early_still_stores_every_counted_child() {
    let store = SqliteStore::in_memory().unwrap();
    let mut r = run(1, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    read(&mut r, 600, json!(600), false);
    // A hundred finish; then the run reads a second block.
    for index in 0..100 {
        r.apply(
            MapRunEvent::ChildSucceeded {
                index,
                output: json!(index),
            },
            t0(),
        );
    }
    let a = read(&mut r, 600, json!(1200), false);
    assert!(a.iter().all(|a| !matches!(a, MapRunAction::Read { .. })));
    store.save(&mut r).unwrap();
    // Restarted: it reads again from its first block, and is aborted before the second.
    let mut loaded = store.load(&r.map_run_arn).unwrap().unwrap();
    loaded.apply(MapRunEvent::Start, t0());
    read(&mut loaded, 1000, json!(1000), false);
    let a = loaded.apply(MapRunEvent::Abort, t0());
    assert!(
        a.iter().any(|a| matches!(a, MapRunAction::Read { .. })),
        "the rest of the counted children are read: {a:?}"
    );
    assert!(!a.iter().any(|a| matches!(a, MapRunAction::Finish { .. })));
    let a = read(&mut loaded, 1000, json!(2200), false);
    assert!(a.iter().any(|a| matches!(a, MapRunAction::Finish { .. })));
    assert_eq!(loaded.status, MapRunStatus::Aborted);
    store.save(&mut loaded).unwrap();
    let mut statuses = std::collections::BTreeMap::new();
    let mut count = 0;
    store
        .for_each_child(&r.map_run_arn, &mut |c| {
            count += 1;
            *statuses.entry(c.status.as_str()).or_insert(0) += 1;
        })
        .unwrap();
    let k = loaded.execution_counts();
    assert_eq!(k.total, count, "a record for every counted child");
    assert_eq!(
        (statuses.get("SUCCEEDED"), statuses.get("ABORTED")),
        (Some(&100), Some(&1))
    );
    assert_eq!(statuses.get("PENDING"), Some(&(count - 101)));
}

/// A state folder from a version that keyed children by (arn, idx) opens with its children.
#[test]
fn legacy_child_tables_are_migrated() {
    let dir = std::env::temp_dir().join(format!("mapfleet-legacy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.db");
    let mut r = run(2, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    read(&mut r, 2, json!(2), true);
    {
        let conn = legacy_store(
            &path,
            &r,
            "CREATE TABLE children (arn TEXT NOT NULL, idx INTEGER NOT NULL,
                 status TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (arn, idx));",
        );
        for c in r.window.values() {
            conn.execute(
                "INSERT INTO children VALUES (?1, ?2, 'RUNNING', ?3)",
                rusqlite::params![
                    r.map_run_arn,
                    c.index as i64,
                    serde_json::to_string(c).unwrap()
                ],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    let mut seen = Vec::new();
    store
        .for_each_child(&r.map_run_arn, &mut |c| seen.push(c.index))
        .unwrap();
    assert_eq!(seen, vec![0, 1]);
    let mut loaded = store.load(&r.map_run_arn).unwrap().unwrap();
    assert_eq!(loaded.execution_counts().running, 0);
    assert_eq!(started(&loaded.apply(MapRunEvent::Start, t0())), vec![0, 1]);
    // Stored queued, they are not read again.
    assert!(started(&read(&mut loaded, 2, json!(2), true)).is_empty());
    assert_eq!(loaded.execution_counts().total, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A store written before children had typed columns (each child's whole JSON in
/// `child_rows.record`) has its rows moved to `map_children` when opened, and reads the same.
#[test]
fn json_child_rows_are_migrated() {
    let dir = std::env::temp_dir().join(format!("mapfleet-rows-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.db");
    let mut r = run(2, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    read(&mut r, 3, json!(3), true);
    let out = json!({"done": "ü \"q\"\n", "n": [1, 2.5]});
    r.apply(
        MapRunEvent::ChildSucceeded {
            index: 0,
            output: out.clone(),
        },
        t0(),
    );
    let stored: Vec<Child> = [0, 1].map(|i| r.child(i).unwrap().clone()).to_vec();
    {
        let conn = legacy_store(
            &path,
            &r,
            "CREATE TABLE child_rows (key INTEGER PRIMARY KEY, status TEXT NOT NULL,
                 record TEXT NOT NULL);",
        );
        for c in &stored {
            conn.execute(
                "INSERT INTO child_rows VALUES ((1 << 40) + ?1, ?2, ?3)",
                rusqlite::params![
                    c.index as i64,
                    c.status.as_str(),
                    serde_json::to_string(c).unwrap()
                ],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    let mut seen = Vec::new();
    store
        .for_each_child(&r.map_run_arn, &mut |c| seen.push(c))
        .unwrap();
    assert_eq!(seen, stored);
    assert_eq!(seen[0].output, Some(out));
    let mut rows = 0;
    store
        .for_each_child_row(&r.map_run_arn, &mut |chunk| rows += chunk.len())
        .unwrap();
    assert_eq!(rows, 2);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let old: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'child_rows')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!old, "the old table is gone");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Saves never wait for commits until many children wait; past that they wait, and nothing
/// is lost either way: every child of many quick saves is stored, once.
#[test]
fn many_quick_saves_store_every_child() {
    use super::checkpoint::MAX_WAITING_CHILDREN;
    let store = SqliteStore::in_memory().unwrap();
    let total = (MAX_WAITING_CHILDREN * 2 + 5) as u64;
    let mut r = run(0, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    let mut done = 0;
    while done < total {
        let n = 1000.min(total - done);
        read(&mut r, n, json!(done + n), done + n == total);
        for index in done..done + n {
            r.apply(
                MapRunEvent::ChildSucceeded {
                    index,
                    output: json!(index),
                },
                t0(),
            );
        }
        store.save(&mut r).unwrap();
        done += n;
    }
    let mut seen = 0u64;
    store
        .for_each_child(&r.map_run_arn, &mut |c| {
            assert_eq!((c.index, c.output), (seen, Some(json!(seen))));
            seen += 1;
        })
        .unwrap();
    assert_eq!(seen, total);
}

/// A commit that fails stops the store: later saves and reads report it.
#[test]
fn a_failed_commit_is_reported_by_later_calls() {
    let dir = std::env::temp_dir().join(format!("mapfleet-fail-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let mut r = run(2, None, None, false);
    r.apply(MapRunEvent::Start, t0());
    read(&mut r, 2, json!(2), true);
    // Another connection drops the children's table behind the store's back.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE map_children;")
        .unwrap();
    r.apply(
        MapRunEvent::ChildSucceeded {
            index: 0,
            output: json!(0),
        },
        t0(),
    );
    store.save(&mut r).unwrap();
    assert!(store.load(&r.map_run_arn).is_err());
    assert!(store.save(&mut r).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Spec §3.1/§4.3: when a Map Run fails, its running Standard children are stopped — ABORTED,
/// with their start and stop dates, in the FAILED files — a timed-out child is TIMED_OUT, and
/// only children that never started are PENDING. A redrive then runs exactly the failed,
/// timed-out, aborted and never-started children (spec §5.4), never a successful one.
#[test]
fn stopped_children_are_aborted_with_dates_and_a_redrive_runs_exactly_the_unsuccessful() {
    use crate::writer::{ChildStatus as RecordStatus, Family};
    let t1 = t0() + chrono::Duration::seconds(5);
    // One failure tolerated: the second one stops the run.
    let mut r = run(3, Some(1), None, true);
    r.apply(MapRunEvent::Start, t0());
    assert_eq!(started(&read(&mut r, 6, json!(6), true)), vec![0, 1, 2]);
    let ok = |r: &mut MapRun, i: u64| {
        started(&r.apply(
            MapRunEvent::ChildSucceeded {
                index: i,
                output: json!(i),
            },
            t0(),
        ))
    };
    assert_eq!(ok(&mut r, 0), vec![3]);
    let a = r.apply(
        MapRunEvent::ChildFailed {
            index: 1,
            status: ChildStatus::TimedOut,
            error: Some("States.Timeout".into()),
            cause: None,
            snapshot: None,
        },
        t0(),
    );
    assert_eq!(started(&a), vec![4], "one failure is tolerated");
    // Child 2 fails: the threshold is exceeded while 3 and 4 run.
    let a = r.apply(failed_with_e(2), t1);
    let stopped: Vec<u64> = a
        .iter()
        .filter_map(|x| match x {
            MapRunAction::StopChild { index } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(stopped, vec![3, 4]);
    assert!(a.contains(&MapRunAction::WriteResults));
    let status_of = |r: &MapRun, i: u64| {
        let rec = super::driver::record(r, r.child(i).unwrap());
        (
            rec.status,
            rec.status.family(),
            rec.start_date.is_some(),
            rec.stop_date,
        )
    };
    assert_eq!(
        status_of(&r, 3),
        (RecordStatus::Aborted, Family::Failed, true, Some(t1)),
        "a stopped child is ABORTED with its dates, not PENDING"
    );
    assert_eq!(status_of(&r, 4).0, RecordStatus::Aborted);
    assert_eq!(
        status_of(&r, 5),
        (RecordStatus::Pending, Family::Pending, false, None),
        "a child never started is PENDING"
    );
    assert_eq!(
        status_of(&r, 1).0,
        RecordStatus::TimedOut,
        "a timed-out child is TIMED_OUT (in the FAILED files)"
    );
    assert_eq!(status_of(&r, 1).1, Family::Failed);
    assert_eq!(status_of(&r, 2).0, RecordStatus::Failed);
    let k = r.item_counts();
    assert_eq!(
        (k.succeeded, k.failed, k.timed_out, k.aborted, k.pending),
        (1, 1, 1, 2, 1)
    );
    r.apply(MapRunEvent::ResultsWritten { records: 6 }, t1);
    assert_eq!(r.status, MapRunStatus::Failed);

    // Redrive: the timed-out, failed, aborted and never-started children, in index order
    // within MaxConcurrency; the successful child never.
    let mut runs = started(&r.apply(
        MapRunEvent::Redrive {
            unsuccessful: Vec::new(),
            parent_redrive_count: 1,
        },
        t1,
    ));
    assert_eq!(runs, vec![1, 2, 3]);
    for i in 1..6 {
        if r.child(i).is_some_and(|c| c.status == ChildStatus::Running) {
            runs.extend(ok(&mut r, i));
        }
    }
    assert_eq!(runs, vec![1, 2, 3, 4, 5]);
    assert_eq!(r.child(0).unwrap().redrive_count, 0);
    assert_eq!(r.status, MapRunStatus::Running);
    assert_eq!(r.item_counts().succeeded, 6);
}

/// A stopping run's Express children are not stopped (spec §4.3: the run waits for them).
/// Killed while it waits, the resumed run starts those children again — they had started, so
/// they are not left as never started — and still starts nothing new.
#[test]
fn a_stopping_run_resumed_starts_its_started_express_children_again() {
    let store = SqliteStore::in_memory().unwrap();
    let mut r = MapRun::new(
        "arn:aws:states:us-east-1:123456789012:mapRun:sm/Map:e".into(),
        "arn:aws:states:us-east-1:123456789012:execution:sm:e".into(),
        "arn:aws:states:us-east-1:123456789012:stateMachine:sm/Map".into(),
        ExecutionType::Express,
        Settings {
            max_concurrency: 3,
            tolerated_failure_count: Some(0),
            tolerated_failure_percentage: None,
        },
        true,
        t0(),
    );
    r.apply(MapRunEvent::Start, t0());
    assert_eq!(started(&read(&mut r, 6, json!(6), true)), vec![0, 1, 2]);
    let a = r.apply(failed_with_e(0), t0());
    assert!(started(&a).is_empty(), "a stopping run starts nothing new");
    assert!(!a
        .iter()
        .any(|x| matches!(x, MapRunAction::StopChild { .. })));
    store.save(&mut r).unwrap();
    // Killed here; resumed.
    let mut loaded = store.load(&r.map_run_arn).unwrap().unwrap();
    let a = loaded.apply(MapRunEvent::Start, t0());
    assert_eq!(
        started(&a),
        vec![1, 2],
        "started before the kill: started again"
    );
    for i in [1, 2] {
        let a = loaded.apply(
            MapRunEvent::ChildSucceeded {
                index: i,
                output: json!(i),
            },
            t0(),
        );
        assert!(started(&a).is_empty());
    }
    assert_eq!(loaded.item_counts().succeeded, 2);
    assert_eq!(loaded.item_counts().pending, 3, "3, 4 and 5 never started");
}

/// The batches children start in.
fn batches(actions: &[MapRunAction]) -> Vec<(BatchKey, Vec<u64>)> {
    let mut out: Vec<(BatchKey, Vec<u64>)> = Vec::new();
    for a in actions {
        if let MapRunAction::StartChild {
            index,
            batch: Some(b),
            ..
        } = a
        {
            match out.last_mut() {
                Some((k, members)) if k == b => members.push(*index),
                _ => out.push((*b, vec![*index])),
            }
        }
    }
    out
}

fn key(run_attempt: u32, first: u64) -> BatchKey {
    BatchKey { run_attempt, first }
}

/// Fixed batches (the fleet's): consecutive index ranges of one attempt, sent once every child
/// of the range is read and the whole batch fits under MaxConcurrency.
#[test]
fn fixed_batches_are_index_ranges_sent_whole_within_max_concurrency() {
    let mut r = run(9, None, None, false);
    r.dispatch_unit = 4;
    r.apply(MapRunEvent::Start, t0());
    // Six children read: the range [4, 8) is not complete, so it waits.
    let a = read(&mut r, 6, json!(6), false);
    assert_eq!(batches(&a), vec![(key(0, 0), vec![0, 1, 2, 3])]);
    let a = read(&mut r, 4, json!(10), true);
    // [4, 8) goes (8 running); [8, 10) would make 10 > 9: it waits.
    assert_eq!(batches(&a), vec![(key(0, 4), vec![4, 5, 6, 7])]);
    let a = r.apply(
        MapRunEvent::ChildSucceeded {
            index: 0,
            output: json!(0),
        },
        t0(),
    );
    assert_eq!(batches(&a), vec![(key(0, 8), vec![8, 9])]);
}

/// A resumed run sends its unfinished children in the same batches as before; a redrive
/// forms its own batches (its attempt), of the children it re-runs.
#[test]
fn fixed_batches_are_the_same_after_a_resume_and_per_attempt_in_a_redrive() {
    let store = SqliteStore::in_memory().unwrap();
    let mut r = run(100, Some(0), None, true);
    r.dispatch_unit = 4;
    r.apply(MapRunEvent::Start, t0());
    let first = batches(&read(&mut r, 10, json!(10), true));
    assert_eq!(
        first,
        vec![
            (key(0, 0), vec![0, 1, 2, 3]),
            (key(0, 4), vec![4, 5, 6, 7]),
            (key(0, 8), vec![8, 9]),
        ]
    );
    for i in [0, 1, 2, 3, 8] {
        r.apply(
            MapRunEvent::ChildSucceeded {
                index: i,
                output: json!(i),
            },
            t0(),
        );
    }
    store.save(&mut r).unwrap();
    // Killed; resumed: the unfinished batches go out again, the same.
    let mut loaded = store.load(&r.map_run_arn).unwrap().unwrap();
    loaded.apply(MapRunEvent::Start, t0());
    let again = batches(&read(&mut loaded, 10, json!(10), true));
    assert_eq!(
        again,
        vec![(key(0, 4), vec![4, 5, 6, 7]), (key(0, 8), vec![9])]
    );
    // Child 5 fails (threshold 0): 4, 6, 7 and 9 are aborted; redrive.
    loaded.apply(failed_with_e(5), t0());
    loaded.apply(MapRunEvent::ResultsWritten { records: 10 }, t0());
    assert_eq!(loaded.status, MapRunStatus::Failed);
    let a = loaded.apply(
        MapRunEvent::Redrive {
            unsuccessful: Vec::new(),
            parent_redrive_count: 1,
        },
        t0(),
    );
    assert_eq!(
        batches(&a),
        vec![(key(1, 4), vec![4, 5, 6, 7]), (key(1, 8), vec![9])]
    );
}
