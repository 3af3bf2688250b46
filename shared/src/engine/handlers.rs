//! In-process task handlers: Rust closures registered by `Resource`, for tests and for
//! embedding the engine as a library.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::driver::{TaskInvoker, TaskOutcome};
use super::execution::{IntegrationPattern, TaskRequest};

/// A task error as a handler reports it: (error name, cause).
pub type HandlerError = (String, String);
pub type Handler = Arc<dyn Fn(&TaskRequest) -> Result<Value, HandlerError> + Send + Sync>;

/// Routes tasks to handlers by exact `Resource`, then to a fallback invoker.
#[derive(Default, Clone)]
pub struct HandlerRegistry {
    handlers: HashMap<String, Handler>,
}

impl HandlerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `f` for tasks whose `Resource` is `resource`.
    pub fn register(
        &mut self,
        resource: impl Into<String>,
        f: impl Fn(&TaskRequest) -> Result<Value, HandlerError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.handlers.insert(resource.into(), Arc::new(f));
        self
    }

    pub fn handles(&self, resource: &str) -> bool {
        self.handlers.contains_key(resource)
    }
}

impl TaskInvoker for HandlerRegistry {
    fn invoke(&self, request: &TaskRequest) -> TaskOutcome {
        match self.handlers.get(&request.resource) {
            Some(h) => match h(request) {
                // A waitForTaskToken handler's return value is the service call's response:
                // the task then waits for its callback.
                Ok(_) if request.pattern == IntegrationPattern::WaitForTaskToken => {
                    TaskOutcome::Submitted
                }
                Ok(v) => TaskOutcome::Succeeded(v),
                Err((error, cause)) => TaskOutcome::Failed {
                    error: Some(error),
                    cause: Some(cause),
                },
            },
            None => no_integration(request),
        }
    }
}

/// The outcome for a task nobody can run.
pub fn no_integration(request: &TaskRequest) -> TaskOutcome {
    TaskOutcome::Failed {
        error: Some("States.TaskFailed".into()),
        cause: Some(format!(
            "No integration is configured for resource '{}' (state '{}'): register a handler, pass --task-command, or --lambda-endpoint",
            request.resource, request.state_name
        )),
    }
}

/// Tries each invoker in turn until one handles the resource.
pub struct ChainInvoker {
    pub registry: HandlerRegistry,
    pub fallback: Option<Box<dyn TaskInvoker>>,
}

impl TaskInvoker for ChainInvoker {
    fn invoke(&self, request: &TaskRequest) -> TaskOutcome {
        if self.registry.handles(&request.resource) {
            return self.registry.invoke(request);
        }
        match &self.fallback {
            Some(f) => f.invoke(request),
            None => no_integration(request),
        }
    }
}
