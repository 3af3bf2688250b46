//! The interpreter: a pure execution state machine ([`execution`]) and a driver that performs
//! its effects through ports ([`driver`]).

pub mod children;
pub mod context;
pub mod describe;
pub mod distributed;
pub mod driver;
pub mod execution;
pub mod handlers;
pub mod history;
pub mod lean;
pub mod test_state;

pub use context::ExecutionInfo;
pub use driver::{
    run_to_completion, Callback, CallbackSource, RunOptions, TaskInvoker, TaskOutcome, TimeMode,
};
pub use execution::{
    Action, Env, Event, Execution, ExecutionStatus, IntegrationPattern, TaskRequest,
};
pub use handlers::{ChainInvoker, HandlerRegistry};
pub use test_state::{
    test_state, InspectionData, InspectionLevel, Mock, TestStatePorts, TestStateRequest,
    TestStateResponse, TestStateStatus,
};

#[cfg(test)]
mod tests;
