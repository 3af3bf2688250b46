//! The interpreter: a pure execution state machine ([`execution`]) and a driver that performs
//! its effects through ports ([`driver`]).

pub mod context;
pub mod driver;
pub mod execution;
pub mod handlers;
pub mod history;

pub use context::ExecutionInfo;
pub use driver::{
    run_to_completion, Callback, CallbackSource, RunOptions, TaskInvoker, TaskOutcome, TimeMode,
};
pub use execution::{
    Action, Env, Event, Execution, ExecutionStatus, IntegrationPattern, TaskRequest,
};
pub use handlers::{ChainInvoker, HandlerRegistry};

#[cfg(test)]
mod tests;
