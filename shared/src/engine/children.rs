//! Distributed Map children as in-process child executions: each child is a real
//! [`Execution`] of the ItemProcessor with its own identity (`$$.Execution.Id` is the child's
//! ARN, `$$.Execution.Input` its input), run by the same driver and task invoker as the parent.

use std::sync::Arc;

use serde_json::Value;

use crate::asl::{ExecutionType, StateMachine};
use crate::maprun::driver::{ChildJob, ChildOutcome, ChildRunner};
use crate::maprun::ChildStatus;
use crate::ports::{Clock, Entropy, VirtualClock};

use super::context::ExecutionInfo;
use super::driver::{run_to_completion, CallbackSource, RunOptions, TaskInvoker, TimeMode};
use super::execution::{Event, Execution, ExecutionStatus};

/// Runs children of one Map Run.
pub struct InProcessChildren<'a> {
    /// The ItemProcessor as a machine of its own.
    pub processor: Arc<StateMachine>,
    /// The parent's identity: children derive theirs from it.
    pub parent: ExecutionInfo,
    /// `<stateMachineName>/<label>`: the labelled child state machine's name.
    pub labelled_name: String,
    pub child_type: ExecutionType,
    pub invoker: &'a dyn TaskInvoker,
    pub callbacks: Option<&'a dyn CallbackSource>,
    pub entropy: &'a dyn Entropy,
    pub clock: &'a dyn Clock,
    /// Children run on a virtual clock that jumps (`--fast-forward`, tests).
    pub fast_forward: bool,
    /// The processor has no Task or Wait: a child runs to its end in one `apply`.
    pub pure: bool,
    /// The processor is only JSONPath Pass, Choice and Succeed states without Assign: a child
    /// goes straight through them ([`super::lean`]), falling back to a whole execution on any
    /// error.
    lean: bool,
    /// The labelled state machine ARN and the children's execution ARN prefix (`…:`), derived
    /// once from `parent` and `labelled_name`, not per child.
    machine_arn: String,
    execution_prefix: String,
}

/// The labelled child state machine ARN: `<parent machine ARN>/<label>`, where
/// `labelled_name` is `<stateMachineName>/<label>` (spec §4.1).
pub fn labelled_machine_arn(parent_machine_arn: &str, labelled_name: &str) -> String {
    let label = labelled_name
        .split_once('/')
        .map(|(_, l)| l)
        .unwrap_or(labelled_name);
    format!("{parent_machine_arn}/{label}")
}

/// The execution ARNs of a child state machine's executions up to their names:
/// `…:execution:<machine>/<label>:` for `…:stateMachine:<machine>/<label>`.
pub fn child_execution_prefix(machine_arn: &str) -> String {
    let mut p = machine_arn.replacen(":stateMachine:", ":execution:", 1);
    p.push(':');
    p
}

impl<'a> InProcessChildren<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        processor: Arc<StateMachine>,
        parent: ExecutionInfo,
        labelled_name: String,
        child_type: ExecutionType,
        invoker: &'a dyn TaskInvoker,
        callbacks: Option<&'a dyn CallbackSource>,
        entropy: &'a dyn Entropy,
        clock: &'a dyn Clock,
        fast_forward: bool,
    ) -> Self {
        let machine_arn = labelled_machine_arn(&parent.state_machine_arn, &labelled_name);
        let execution_prefix = child_execution_prefix(&machine_arn);
        let pure = super::execution::is_pure(&processor);
        let lean = super::lean::eligible(&processor);
        InProcessChildren {
            processor,
            parent,
            labelled_name,
            child_type,
            invoker,
            callbacks,
            entropy,
            clock,
            fast_forward,
            pure,
            lean,
            machine_arn,
            execution_prefix,
        }
    }

    /// The child's identity (spec §4.1, §6.2).
    pub fn child_info(&self, name: &str, input: Arc<Value>, redrive_count: u32) -> ExecutionInfo {
        let mut execution_arn = String::with_capacity(self.execution_prefix.len() + name.len());
        execution_arn.push_str(&self.execution_prefix);
        execution_arn.push_str(name);
        ExecutionInfo {
            execution_arn,
            name: name.to_string(),
            state_machine_arn: self.machine_arn.clone(),
            state_machine_name: self.labelled_name.clone(),
            role_arn: self.parent.role_arn.clone(),
            start_time: self.clock.now(),
            input,
            redrive_count,
            redrive_time: None,
            execution_type: self.child_type,
            sync_start: false,
        }
    }
}

impl ChildRunner for InProcessChildren<'_> {
    fn run_child(&self, job: &ChildJob) -> ChildOutcome {
        let (name, input, redrive, snapshot) =
            (&job.name, &job.input, job.redrive, job.snapshot.as_deref());
        let virtual_clock = VirtualClock::new(self.clock.now());
        let time = if self.fast_forward {
            TimeMode::Virtual(&virtual_clock)
        } else {
            TimeMode::Real(self.clock)
        };
        let options = |time| RunOptions {
            time,
            entropy: self.entropy,
            invoker: self.invoker,
            callbacks: self.callbacks,
            on_change: None,
            map_runs: None,
            stop: None,
        };
        // A redriven Standard child resumes from the state it stopped in, with its RedriveCount
        // incremented (spec §5.4); an Express child (or one with no saved state) restarts from
        // its input.
        if redrive && self.child_type == ExecutionType::Standard {
            if let Some(mut exec) = snapshot.and_then(|s| serde_json::from_str::<Execution>(s).ok())
            {
                exec.attach(self.processor.clone());
                if exec.redrivable().is_ok() {
                    run_to_completion(&mut exec, vec![Event::Redrive], options(time));
                    return self.outcome(exec);
                }
            }
        }
        let info = self.child_info(name, input.clone(), u32::from(redrive));
        if self.lean {
            // No history is kept for children, so the lean path's output is all there is to
            // it; anything it does not handle (an error, a payload too large) runs exactly.
            let vars = serde_json::Map::new();
            let env = super::lean::LeanEnv {
                info: &info,
                vars: &vars,
                entropy: self.entropy,
                now: info.start_time,
            };
            if let Some((output, _)) =
                super::lean::run_item(&self.processor, Value::clone(input), &env)
            {
                return ChildOutcome {
                    status: ChildStatus::Succeeded,
                    output: Some(output),
                    error: None,
                    cause: None,
                    snapshot: None,
                };
            }
        }
        let mut exec = Execution::new(self.processor.clone(), Value::Null, info, false);
        if self.pure {
            let env = super::execution::Env {
                now: self.clock.now(),
                entropy: self.entropy,
            };
            exec.apply(Event::Start, &env);
            return self.outcome(exec);
        }
        run_to_completion(&mut exec, vec![Event::Start], options(time));
        self.outcome(exec)
    }

    /// Pure children take microseconds: a worker takes them in batches (fewer hand-offs);
    /// children that call tasks or wait go one per worker thread.
    fn batch_size(&self) -> usize {
        if self.pure {
            64
        } else {
            1
        }
    }
}

impl InProcessChildren<'_> {
    /// The outcome, with the execution kept for a later in-place redrive when a Standard
    /// child did not succeed.
    fn outcome(&self, exec: Execution) -> ChildOutcome {
        let keep =
            self.child_type == ExecutionType::Standard && exec.status != ExecutionStatus::Succeeded;
        let snapshot = if keep {
            serde_json::to_string(&exec).ok()
        } else {
            None
        };
        let mut o = outcome(exec);
        o.snapshot = snapshot;
        o
    }
}

fn outcome(mut exec: Execution) -> ChildOutcome {
    match exec.status {
        ExecutionStatus::Succeeded => ChildOutcome {
            status: ChildStatus::Succeeded,
            output: exec.output.take(),
            error: None,
            cause: None,
            snapshot: None,
        },
        ExecutionStatus::TimedOut => ChildOutcome {
            status: ChildStatus::TimedOut,
            output: None,
            error: exec.error.take().or(Some("States.Timeout".into())),
            cause: exec.cause.take(),
            snapshot: None,
        },
        ExecutionStatus::Aborted => ChildOutcome {
            status: ChildStatus::Aborted,
            output: None,
            error: exec.error.take(),
            cause: exec.cause.take(),
            snapshot: None,
        },
        ExecutionStatus::Failed | ExecutionStatus::Running => ChildOutcome {
            status: ChildStatus::Failed,
            output: None,
            error: exec.error.take(),
            cause: exec.cause.take(),
            snapshot: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::asl::parse::parse_definition;
    use crate::engine::driver::TaskOutcome;
    use crate::engine::execution::TaskRequest;
    use crate::ports::SeededEntropy;

    struct NoTasks;
    impl TaskInvoker for NoTasks {
        fn invoke(&self, r: &TaskRequest) -> TaskOutcome {
            crate::engine::handlers::no_integration(r)
        }
    }

    /// Children of a Pass/Choice processor give the same outcome on the lean path as run as
    /// whole executions: outputs (context fields included), and errors.
    #[test]
    fn lean_children_match_whole_executions() {
        let processor = json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [
                {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"},
                {"Variable": "$.n", "NumericGreaterThanEquals": 0, "Next": "Small"}]},
            "Big": {"Type": "Pass", "Parameters": {"n.$": "$.n", "name.$": "$$.Execution.Name",
                "id.$": "$$.Execution.Id", "machine.$": "$$.StateMachine.Id",
                "state.$": "$$.State.Name", "count.$": "$$.Execution.RedriveCount"},
                "ResultPath": "$.out", "OutputPath": "$.out", "End": true},
            "Small": {"Type": "Pass", "Result": {"small": true}, "ResultPath": "$.r", "Next": "Done"},
            "Done": {"Type": "Succeed"}
        }});
        let machine = Arc::new(parse_definition(&processor).unwrap());
        let clock = VirtualClock::new(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
        let entropy = SeededEntropy::new(1);
        let parent = ExecutionInfo::local(
            "Parent",
            "e",
            json!({}),
            clock.now(),
            ExecutionType::Standard,
        );
        let mut children = InProcessChildren::new(
            machine,
            parent,
            "Parent/items".into(),
            ExecutionType::Express,
            &NoTasks,
            None,
            &entropy,
            &clock,
            true,
        );
        assert!(children.lean);
        for (k, input) in [
            json!({"n": 42}),
            json!({"n": 3}),
            json!({"n": -1}),
            json!("x"),
        ]
        .into_iter()
        .enumerate()
        {
            let job = ChildJob {
                index: k as u64,
                name: format!("child-{k}"),
                input: Arc::new(input),
                redrive: false,
                attempt: 0,
                snapshot: None,
                batch: None,
                first_item: k as u64,
                items: 1,
            };
            children.lean = true;
            let lean = children.run_child(&job);
            children.lean = false;
            let exact = children.run_child(&job);
            assert_eq!(lean.status, exact.status, "{:?}", job.input);
            assert_eq!(lean.output, exact.output);
            assert_eq!((&lean.error, &lean.cause), (&exact.error, &exact.cause));
        }
    }
}
