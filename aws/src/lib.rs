//! AWS adapters for mapfleet's ports. The core (`mapfleet-core`) is blocking and knows no AWS
//! SDK; these adapters run the async SDK on a tokio runtime [`Handle`] from blocking threads
//! (`Handle::block_on`), so call them from `spawn_blocking` or plain threads, never from inside
//! an async task.

pub mod config;
pub mod dynamo;
pub mod fleet;
pub mod invoke;
pub mod metrics;
pub mod s3;
#[cfg(feature = "sim")]
pub mod sim;
pub mod tasks;
