//! The quick slice of the metered fleet simulation (`bash benches/fleet_sim.sh` runs the
//! full one): 10,000 one-item children through the real coordinator, worker and writer code
//! over the metered stand-ins, continuing in new invocations; every child lands in the result
//! files exactly once, and the request counts the cost comes from are what the design says
//! (printed, with the dollars; nothing timed is asserted).

use std::time::Duration;

use mapfleet_aws::sim::meter::{Function, Meter};
use mapfleet_aws::sim::{run, SimConfig};

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mapfleet-sim-{name}-{}", std::process::id()))
}

#[test]
fn ten_thousand_children_cost_one_put_per_batch_and_land_once() {
    let dir = scratch("10k");
    let mut c = SimConfig::new(10_000, dir.clone());
    // Short invocations: the run continues several times, each reload timed.
    c.budget = Duration::from_millis(1500);
    let report = run(c).expect("the simulation runs");
    report.print();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(report.status, "SUCCEEDED");
    assert_eq!(report.verified, Some(10_000));
    let m = &report.meter;
    let batches = 10_000 / 100;
    // A worker invocation per batch (none retried: no faults), one PUT each.
    assert_eq!(
        Meter::get(&m.invocations[Function::Worker as usize]),
        batches
    );
    let puts = Meter::get(&m.s3_put);
    assert!(
        puts >= batches && puts < batches + 20,
        "{puts} S3 PUTs for {batches} batches"
    );
    // No child is a table item: the table sees a few writes per coordinator invocation and
    // run-record save, not per child.
    let writes = Meter::get(&m.dynamodb_writes);
    assert!(writes < 200, "{writes} DynamoDB writes for 10,000 children");
}

#[test]
fn standard_children_under_injected_s3_faults_still_land_once() {
    let dir = scratch("faults");
    let mut c = SimConfig::new(2_000, dir.clone());
    c.express = false;
    c.fault_rate = 0.02;
    c.seed = 7;
    c.budget = Duration::from_secs(30);
    let report = run(c);
    let _ = std::fs::remove_dir_all(&dir);
    match report {
        Ok(r) => {
            r.print();
            assert!(Meter::get(&r.meter.faults) > 0, "faults were injected");
            // A run either succeeds with every child once, or fails naming what failed; it
            // never succeeds with a child missing or doubled.
            if r.status == "SUCCEEDED" {
                assert_eq!(r.verified, Some(2_000));
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("SlowDown"), "{text}");
        }
    }
}
