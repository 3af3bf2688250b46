//! Developer aid, not part of the suite:
//! `MAPFLEET_CASE=<id substring> cargo test --test debug_case -- --ignored --nocapture`
//! prints a recorded case's run (history, result) next to what AWS recorded.

use mapfleet_tests::cases::{check, load, run_case, NoService, Replay};

#[test]
#[ignore = "developer aid: set MAPFLEET_CASE and run with --ignored"]
fn debug_case() {
    let filter = std::env::var("MAPFLEET_CASE").expect("set MAPFLEET_CASE to an id substring");
    for file in ["cases.jsonl", "cases_needs_service.jsonl"] {
        for case in load(file) {
            if !case["id"].as_str().unwrap_or_default().contains(&filter) {
                continue;
            }
            println!("== {}", case["id"]);
            let o = if file == "cases.jsonl" {
                run_case(&case, &NoService, true)
            } else {
                let calls = case["service_calls"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                run_case(&case, &Replay::from_service_calls(&calls), true)
            };
            match o {
                Ok(o) => {
                    if let Some(e) = &o.execution {
                        for ev in &e.history.events {
                            println!(
                                "  {} {} {}",
                                ev.id,
                                ev.kind,
                                ev.details.to_string().chars().take(200).collect::<String>()
                            );
                        }
                    }
                    println!(
                        "status={} output={:?} error={:?} cause={:?}",
                        o.status, o.output, o.error, o.cause
                    );
                    println!("check: {:?}", check(&case, &o));
                }
                Err(e) => println!("error: {e}"),
            }
            println!("expected events:");
            for ev in case["events"].as_array().cloned().unwrap_or_default() {
                println!(
                    "  {} {} {}",
                    ev["id"],
                    ev["type"],
                    ev["details"]
                        .to_string()
                        .chars()
                        .take(200)
                        .collect::<String>()
                );
            }
        }
    }
}
