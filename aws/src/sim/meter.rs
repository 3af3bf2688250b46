//! What the simulated services count, and what it costs at published prices.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Published prices (us-east-1, December 2026), in dollars.
pub mod price {
    /// S3 Standard: PUT, COPY, POST, LIST requests, per request ($0.005 per 1,000).
    pub const S3_PUT: f64 = 0.005 / 1000.0;
    /// S3 Standard: GET and all other requests, per request ($0.0004 per 1,000).
    pub const S3_GET: f64 = 0.0004 / 1000.0;
    /// DynamoDB on-demand: per write request unit ($0.625 per million).
    pub const DYNAMODB_WRU: f64 = 0.625 / 1e6;
    /// DynamoDB on-demand: per read request unit ($0.125 per million).
    pub const DYNAMODB_RRU: f64 = 0.125 / 1e6;
    /// Lambda: per request ($0.20 per million).
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// Lambda arm64: per GB-second.
    pub const LAMBDA_GB_S: f64 = 0.000_013_333_4;
    /// Step Functions Express: per request ($1.00 per million).
    pub const EXPRESS_REQUEST: f64 = 1.0 / 1e6;
    /// Step Functions Express: per GB-second (first 1,000 hours), billed at 64 MB at least, in
    /// 100 ms steps.
    pub const EXPRESS_GB_S: f64 = 0.000_016_67;
    /// Step Functions Standard: per state transition ($25 per million).
    pub const STANDARD_TRANSITION: f64 = 25.0 / 1e6;
}

/// Which function an invocation ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Coordinator = 0,
    Worker = 1,
    Writer = 2,
}

impl Function {
    pub const ALL: [Function; 3] = [Function::Coordinator, Function::Worker, Function::Writer];

    pub fn name(self) -> &'static str {
        match self {
            Function::Coordinator => "coordinator",
            Function::Worker => "worker",
            Function::Writer => "writer",
        }
    }
}

/// Request counts and billed units, shared by the simulated services.
#[derive(Debug, Default)]
pub struct Meter {
    /// PUT-class S3 requests: PutObject (conditional or not), multipart create, part and
    /// complete, ListObjectsV2.
    pub s3_put: AtomicU64,
    pub s3_list: AtomicU64,
    /// GET-class S3 requests: GetObject (a miss too), HeadObject.
    pub s3_get: AtomicU64,
    pub s3_bytes_written: AtomicU64,
    pub dynamodb_writes: AtomicU64,
    pub dynamodb_wru: AtomicU64,
    pub dynamodb_reads: AtomicU64,
    pub dynamodb_rru: AtomicU64,
    pub invocations: [AtomicU64; 3],
    /// Billed milliseconds by function (each invocation rounded up to 1 ms).
    pub billed_ms: [AtomicU64; 3],
    /// Faults injected (throttling, 5xx).
    pub faults: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Meter {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn invoked(&self, f: Function, billed: Duration) {
        add(&self.invocations[f as usize], 1);
        let ms = billed.as_nanos().div_ceil(1_000_000) as u64;
        add(&self.billed_ms[f as usize], ms.max(1));
    }

    pub fn s3_put(&self, bytes: usize) {
        add(&self.s3_put, 1);
        add(&self.s3_bytes_written, bytes as u64);
    }

    pub fn s3_list(&self) {
        add(&self.s3_list, 1);
    }

    pub fn s3_get(&self) {
        add(&self.s3_get, 1);
    }

    /// A DynamoDB write of an item of `bytes`: one write request unit per KB.
    pub fn dynamodb_write(&self, bytes: usize) {
        add(&self.dynamodb_writes, 1);
        add(&self.dynamodb_wru, bytes.div_ceil(1024).max(1) as u64);
    }

    /// A strongly consistent DynamoDB read of `bytes`: one read request unit per 4 KB.
    pub fn dynamodb_read(&self, bytes: usize) {
        add(&self.dynamodb_reads, 1);
        add(&self.dynamodb_rru, bytes.div_ceil(4096).max(1) as u64);
    }

    /// Dollars of everything counted, with each function's memory in MB.
    pub fn cost(&self, memory_mb: [u64; 3]) -> Cost {
        let g = Self::get;
        let s3 = (g(&self.s3_put) + g(&self.s3_list)) as f64 * price::S3_PUT
            + g(&self.s3_get) as f64 * price::S3_GET;
        let dynamodb = g(&self.dynamodb_wru) as f64 * price::DYNAMODB_WRU
            + g(&self.dynamodb_rru) as f64 * price::DYNAMODB_RRU;
        let mut requests = 0.0;
        let mut gb_s = [0.0; 3];
        for f in Function::ALL {
            requests += g(&self.invocations[f as usize]) as f64 * price::LAMBDA_REQUEST;
            gb_s[f as usize] = g(&self.billed_ms[f as usize]) as f64 / 1000.0
                * memory_mb[f as usize] as f64
                / 1024.0;
        }
        let duration = gb_s.iter().sum::<f64>() * price::LAMBDA_GB_S;
        Cost {
            s3,
            dynamodb,
            lambda_requests: requests,
            lambda_duration: duration,
            gb_s,
        }
    }
}

/// What a run cost, in dollars.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub s3: f64,
    pub dynamodb: f64,
    pub lambda_requests: f64,
    pub lambda_duration: f64,
    pub gb_s: [f64; 3],
}

impl Cost {
    pub fn total(&self) -> f64 {
        self.s3 + self.dynamodb + self.lambda_requests + self.lambda_duration
    }
}

/// Step Functions Express's price for `children` executions that each ran `ms` milliseconds
/// (billed at 64 MB, in 100 ms steps).
pub fn express_cost(children: u64, ms: f64) -> f64 {
    let billed_s = ((ms / 100.0).ceil().max(1.0)) * 0.1;
    children as f64 * (price::EXPRESS_REQUEST + billed_s * (64.0 / 1024.0) * price::EXPRESS_GB_S)
}

thread_local! {
    /// Modeled service latency spent by the current thread since [`take_latency`].
    static LATENCY: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// Adds modeled latency to the current thread's account (an invocation's billed duration).
pub fn spend(d: Duration) {
    LATENCY.with(|l| l.set(l.get() + d));
}

/// The current thread's modeled latency since the last call, reset.
pub fn take_latency() -> Duration {
    LATENCY.with(|l| l.replace(Duration::ZERO))
}

/// The current thread's CPU time.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; CLOCK_THREAD_CPUTIME_ID exists
    // on Linux and the BSDs.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// The process's peak resident memory (VmHWM), in bytes.
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn express_bills_64_mb_in_100_ms_steps() {
        let one = express_cost(1_000_000, 3.0);
        // $1 of requests + 0.1 s × 1/16 GB × $0.00001667 per child.
        assert!(
            (one - (1.0 + 1e6 * 0.1 / 16.0 * 0.000_016_67)).abs() < 1e-9,
            "{one}"
        );
        assert!(express_cost(1, 101.0) > express_cost(1, 100.0));
    }

    #[test]
    fn units_round_up() {
        let m = Meter::default();
        m.dynamodb_write(1025);
        m.dynamodb_read(1);
        m.invoked(Function::Worker, Duration::from_micros(1500));
        assert_eq!(Meter::get(&m.dynamodb_wru), 2);
        assert_eq!(Meter::get(&m.dynamodb_rru), 1);
        assert_eq!(Meter::get(&m.billed_ms[1]), 2);
        let c = m.cost([1024, 2048, 1024]);
        assert!((c.gb_s[1] - 0.004).abs() < 1e-12);
    }
}
