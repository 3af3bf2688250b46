//! `bash benches/fleet_sim.sh [CHILDREN]`: the metered fleet simulation (see
//! `mapfleet_aws::sim`). Options after the count: `--standard`, `--budget SECONDS`,
//! `--workers N`, `--per-invoke N`, `--fault-rate R`, `--seed N`, `--sleep` (sleep the modeled
//! latency too), `--dir DIR` (scratch folder).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mapfleet_aws::sim::{run, SimConfig};

/// Counts the heap in use, and its peak: what the process holds, apart from the allocator's
/// own free lists (RSS counts those too).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut children = 1_000_000u64;
    let mut dir = std::env::temp_dir().join(format!("mapfleet-fleet-sim-{}", std::process::id()));
    let mut c = SimConfig::new(children, dir.clone());
    let mut first = true;
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> String {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        let number = |name: &str, v: String| -> f64 {
            v.parse().unwrap_or_else(|_| {
                eprintln!("{name} must be a number, not '{v}'");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--standard" => c.express = false,
            "--sleep" => c.s3_latency.sleep = true,
            "--budget" => c.budget = Duration::from_secs_f64(number("--budget", value("--budget"))),
            "--workers" => c.workers = number("--workers", value("--workers")) as usize,
            "--per-invoke" => {
                c.children_per_invoke = number("--per-invoke", value("--per-invoke")) as usize
            }
            "--fault-rate" => c.fault_rate = number("--fault-rate", value("--fault-rate")),
            "--seed" => c.seed = number("--seed", value("--seed")) as u64,
            "--dir" => dir = value("--dir").into(),
            n if first && n.chars().all(|ch| ch.is_ascii_digit() || ch == '_') => {
                children = n.replace('_', "").parse().unwrap_or(children)
            }
            other => {
                eprintln!("unknown argument '{other}'");
                std::process::exit(2)
            }
        }
        first = false;
    }
    c.children = children;
    c.verify = children <= 200_000;
    c.root = dir.clone();
    let keep = std::env::var_os("MAPFLEET_SIM_KEEP").is_some();
    let result = run(c);
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match result {
        Ok(mut report) => {
            report.peak_heap = Some(PEAK.load(Ordering::Relaxed) as u64);
            report.print();
            if report.status != "SUCCEEDED" {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("fleet simulation failed: {} ({})", e, e.name());
            std::process::exit(1);
        }
    }
}
