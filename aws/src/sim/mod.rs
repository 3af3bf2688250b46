//! The metered fleet simulation (feature `sim`; `bash benches/fleet_sim.sh`): the real
//! coordinator, worker and writer code over stand-ins for S3 (a local folder behind a
//! metering wrapper), DynamoDB (an in-memory table) and Lambda (the functions run in this
//! process), which count every request with the units AWS bills, model each request's
//! latency into the invocation's billed duration, and can inject faults.

pub mod lambda;
pub mod meter;
pub mod run;
pub mod store;
pub mod table;

pub use run::{run, SimConfig, SimReport};
