//! The peer workload (`benches/data/workload.asl.json`, copied from the project's shared peers): an inline Map over `$.items` with
//! a Pass (States.Format, States.MathAdd), a Choice (And + StringMatches) and a Pass with
//! ResultPath per item. Prints items/s and the ratio to a floor measured in the same process:
//! serde_json parse of the input text plus serialize of the output, for the same items.
//!
//! `cargo bench --bench workload -- [ITEMS]` (default 100000), or `bash benches/run.sh`.

use std::sync::Arc;
use std::time::Instant;

use mapfleet_core::asl::parse::parse_definition;
use mapfleet_core::asl::ExecutionType;
use mapfleet_core::engine::{
    run_to_completion, Event, Execution, ExecutionInfo, RunOptions, TimeMode,
};
use mapfleet_core::ports::{Clock, SeededEntropy, SystemClock, VirtualClock};
use mapfleet_tests::cases::NoService;
use serde_json::{json, Value};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn items(n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"id": i, "name": format!("n{}", i % 97), "qty": i % 60, "bonus": i % 7, "tags": ["a", "b", format!("{}", i % 5)]}))
        .collect();
    json!({ "items": items })
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/data/workload.asl.json"
    );
    let def: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("workload.asl.json"))
            .expect("json");
    let machine = Arc::new(parse_definition(&def).expect("valid workload"));
    let input_text = serde_json::to_string(&items(n)).expect("serialize");

    // Floor: parse the same input text and serialize it again (best of 3, like the engine).
    let mut floor = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let parsed: Value = serde_json::from_str(&input_text).expect("parse");
        let floor_out = serde_json::to_string(&parsed).expect("serialize");
        floor = floor.min(t.elapsed().as_secs_f64());
        std::hint::black_box(floor_out.len());
    }

    let mut best = f64::MAX;
    let mut best_engine = f64::MAX;
    let mut output = Value::Null;
    for _ in 0..3 {
        let t = Instant::now();
        let input: Value = serde_json::from_str(&input_text).expect("parse");
        let clock = VirtualClock::new(SystemClock.now());
        let info = ExecutionInfo::local(
            "workload",
            "bench",
            input,
            clock.now(),
            ExecutionType::Standard,
        );
        let mut exec = Execution::new(machine.clone(), def.clone(), info, false);
        let entropy = SeededEntropy::new(1);
        let t_engine = Instant::now();
        run_to_completion(
            &mut exec,
            vec![Event::Start],
            RunOptions {
                time: TimeMode::Virtual(&clock),
                entropy: &entropy,
                invoker: &NoService,
                callbacks: None,
                on_change: None,
                map_runs: None,
                stop: None,
            },
        );
        let engine = t_engine.elapsed().as_secs_f64();
        let text = serde_json::to_string(&exec.output).expect("serialize");
        let dt = t.elapsed().as_secs_f64();
        std::hint::black_box(text.len());
        assert_eq!(
            exec.status.as_str(),
            "SUCCEEDED",
            "{:?} {:?}",
            exec.error,
            exec.cause
        );
        output = exec.output.clone().unwrap_or(Value::Null);
        best = best.min(dt);
        best_engine = best_engine.min(engine);
    }
    assert_eq!(output["count"], json!(n));
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    println!("workload: items={n} cores={cores}");
    println!("workload: output.first={}", output["first"]);
    println!(
        "workload: engine only    {:>9.0} items/s ({:.3} s; what the peers time: sm.run(input))",
        n as f64 / best_engine,
        best_engine
    );
    println!(
        "workload: end to end     {:>9.0} items/s ({:.3} s; parse input + run + serialize output)",
        n as f64 / best,
        best
    );
    println!("workload: floor          {:>9.0} items/s ({:.3} s; serde_json parse + serialize, same process)", n as f64 / floor, floor);
    println!("workload: ratio end-to-end/floor = {:.2}x", best / floor);
    println!(
        "workload: engine vs aws-local-stepfunctions (~8,300 items/s here) = {:.0}x",
        n as f64 / best_engine / 8300.0
    );
}
