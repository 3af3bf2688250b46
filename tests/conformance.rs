//! Runs every recorded AWS case in `tests/conformance/` through the engine on a virtual
//! clock and compares results with the README's rules. Prints pass counts by area and by
//! query language; fails on any case that is neither passing nor listed, with its reason, in
//! `tests/conformance/known-failures.txt`.
//!
//! `cargo test --test conformance -- [FILTER] [--verbose]`

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};

use mapfleet_tests::cases::{
    check, check_test_state, load, run_case, run_test_state_case, test_state_languages, NoService,
    Replay,
};
use serde_json::Value;

#[derive(Default)]
struct Tally {
    pass: usize,
    fail: usize,
}

/// Single-state evaluations (the TestState API).
const TEST_STATE_FILE: &str = "test_state_cases.jsonl";

fn known_failures() -> HashMap<String, String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance/known-failures.txt"
    );
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once('\t')
                .map(|(id, why)| (id.trim().to_string(), why.trim().to_string()))
        })
        .collect()
}

struct Suite {
    name: &'static str,
    by_area: BTreeMap<String, Tally>,
    by_lang: BTreeMap<String, Tally>,
    unexpected: Vec<(String, String)>,
    fixed: Vec<String>,
    total: Tally,
}

fn run_suite(
    name: &'static str,
    file: &str,
    filter: Option<&str>,
    verbose: bool,
    known: &HashMap<String, String>,
) -> Suite {
    let mut s = Suite {
        name,
        by_area: BTreeMap::new(),
        by_lang: BTreeMap::new(),
        unexpected: Vec::new(),
        fixed: Vec::new(),
        total: Tally::default(),
    };
    for case in load(file) {
        let id = case["id"].as_str().unwrap_or_default().to_string();
        if let Some(f) = filter {
            if !id.contains(f) {
                continue;
            }
        }
        let area = case["area"].as_str().unwrap_or("?").to_string();
        let langs = if file == TEST_STATE_FILE {
            test_state_languages(&case)
        } else {
            case["query_languages"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("+")
                })
                .unwrap_or_else(|| "JSONPath".into())
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            if file == TEST_STATE_FILE {
                return match run_test_state_case(&case) {
                    Ok(r) => check_test_state(&case, &r),
                    Err(e) => Some(e),
                };
            }
            let outcome = if file == "cases_needs_service.jsonl" {
                let calls = case["service_calls"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                run_case(&case, &Replay::from_service_calls(&calls), false)
            } else {
                run_case(&case, &NoService, false)
            };
            match outcome {
                Ok(o) => check(&case, &o),
                Err(e) => Some(e),
            }
        }));
        let failure = match result {
            Ok(f) => f,
            Err(_) => Some("PANIC".to_string()),
        };
        let ok = failure.is_none();
        let a = s.by_area.entry(area).or_default();
        let l = s.by_lang.entry(langs).or_default();
        if ok {
            a.pass += 1;
            l.pass += 1;
            s.total.pass += 1;
            if known.contains_key(&id) {
                s.fixed.push(id);
            }
        } else {
            a.fail += 1;
            l.fail += 1;
            s.total.fail += 1;
            let why = failure.unwrap_or_default();
            if verbose {
                eprintln!("FAIL {id}\n     {why}");
            }
            if !known.contains_key(&id) {
                s.unexpected.push((id, why));
            }
        }
    }
    s
}

fn print_suite(s: &Suite) {
    println!(
        "== {} ({} passed, {} failed)",
        s.name, s.total.pass, s.total.fail
    );
    println!("   by query language:");
    for (k, t) in &s.by_lang {
        let pct = 100.0 * t.pass as f64 / (t.pass + t.fail).max(1) as f64;
        println!(
            "     {k:<18} {:>4}/{:<4} {pct:6.2}%",
            t.pass,
            t.pass + t.fail
        );
    }
    println!("   by area:");
    for (k, t) in &s.by_area {
        println!("     {k:<22} {:>4}/{:<4}", t.pass, t.pass + t.fail);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "--verbose")
        || std::env::var("MAPFLEET_CONFORMANCE_VERBOSE").is_ok();
    let filter = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(String::as_str);
    let known = known_failures();
    let suites = [
        run_suite("cases.jsonl", "cases.jsonl", filter, verbose, &known),
        run_suite(
            "cases_needs_service.jsonl (replayed service results)",
            "cases_needs_service.jsonl",
            filter,
            verbose,
            &known,
        ),
        run_suite(
            "test_state_cases.jsonl (TestState)",
            TEST_STATE_FILE,
            filter,
            verbose,
            &known,
        ),
    ];
    let mut unexpected = 0;
    let (mut passed, mut failed) = (0, 0);
    for s in &suites {
        print_suite(s);
        passed += s.total.pass;
        failed += s.total.fail;
        for (id, why) in &s.unexpected {
            println!("UNEXPECTED FAILURE {id}\n     {why}");
        }
        for id in &s.fixed {
            println!("now passing (remove from known-failures.txt): {id}");
        }
        unexpected += s.unexpected.len();
    }
    println!(
        "conformance: {passed} passed, {failed} failed ({} listed as known failures)",
        failed - unexpected
    );
    if unexpected > 0 {
        println!("conformance: {unexpected} unexpected failures");
        std::process::exit(1);
    }
}
