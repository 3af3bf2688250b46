//! The lean path for Map iterations whose processor is only JSONPath Pass, Choice and Succeed
//! states without Assign: an item goes straight through the states, with no thread records,
//! scopes or history, counting the same history events the exact path would. Anything else —
//! an error, a state it does not handle, an oversized output — returns `None`, and the caller
//! runs the Map the exact way instead (these states have no side effects, so that is
//! indistinguishable).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::asl::jsonpath::{JsonPath, Root};
use crate::asl::scope::Scope;
use crate::asl::template::PayloadTemplate;
use crate::asl::{
    choice, Io, PathField, QueryLanguage, State, StateKind, StateMachine, Template, Transition,
};
use crate::ports::Entropy;

use super::context::{context_object, ExecutionInfo, StateContext};
use super::execution::exceeds_payload_limit;

/// Whether every state of `machine` is a JSONPath Pass, Choice or Succeed without Assign.
pub(crate) fn eligible(machine: &StateMachine) -> bool {
    machine.states.iter().all(|st| {
        st.query_language == QueryLanguage::JsonPath
            && match &st.kind {
                StateKind::Pass(p) => p.io.assign.is_none(),
                StateKind::Choice(c) => {
                    c.io.assign.is_none() && c.choices.iter().all(|b| b.assign.is_none())
                }
                StateKind::Succeed(_) => true,
                _ => false,
            }
    })
}

/// What an iteration can see besides its input.
pub(crate) struct LeanEnv<'a> {
    pub info: &'a ExecutionInfo,
    pub vars: &'a Map<String, Value>,
    pub entropy: &'a dyn Entropy,
    pub now: DateTime<Utc>,
}

impl LeanEnv<'_> {
    fn context(&self, state: &State) -> Value {
        context_object(
            self.info,
            &StateContext {
                name: &state.name,
                entered_time: self.now,
                retry_count: None,
                task_token: None,
                map_item: None,
            },
        )
    }

    fn path(&self, state: &State, p: &JsonPath, input: &Value) -> Option<Value> {
        let ctx;
        let root = match p.root() {
            Root::Input => input,
            Root::Context => {
                ctx = self.context(state);
                &ctx
            }
            Root::Variable(n) => self.vars.get(n)?,
        };
        p.select(root).ok()
    }

    fn template(&self, state: &State, t: &PayloadTemplate, input: &Value) -> Option<Value> {
        let ctx = if t.uses_context() {
            self.context(state)
        } else {
            Value::Null
        };
        t.eval(&Scope {
            input,
            context: &ctx,
            vars: self.vars,
            entropy: self.entropy,
        })
        .ok()
    }

    fn output_path(&self, state: &State, field: &PathField, v: Value) -> Option<Value> {
        match field {
            PathField::Default => Some(v),
            PathField::Null => Some(Value::Object(Map::new())),
            PathField::Path(p) => self.path(state, p, &v),
        }
    }

    /// InputPath (None when it selects nothing: the exact path reports that error).
    fn effective(&self, state: &State, io: &Io, input: Value) -> Option<Value> {
        self.output_path(state, &io.input_path, input)
    }
}

/// Runs one item; returns its output and the history events the exact path would have
/// emitted for its states (two per state).
pub(crate) fn run_item(
    machine: &StateMachine,
    mut input: Value,
    env: &LeanEnv<'_>,
) -> Option<(Value, u64)> {
    let mut id = machine.start_at;
    let mut events = 0u64;
    loop {
        let state = machine.states.get(id)?;
        events += 2;
        let (output, next) = match &state.kind {
            StateKind::Pass(p) => {
                let raw = input;
                let effective = match &p.io.input_path {
                    PathField::Default => None,
                    other => Some(env.output_path(state, other, raw.clone())?),
                };
                // `None`: the result is the (effective) input itself.
                let computed = if let Some(r) = &p.result {
                    Some(r.clone())
                } else if let Some(Template::JsonPath(t)) = &p.io.parameters {
                    Some(env.template(state, t, effective.as_ref().unwrap_or(&raw))?)
                } else {
                    effective
                };
                let merged = match &p.io.result_path {
                    PathField::Default => computed.unwrap_or(raw),
                    PathField::Null => raw,
                    PathField::Path(path) => {
                        let result = computed.unwrap_or_else(|| raw.clone());
                        let mut target = raw;
                        path.set(&mut target, result).ok()?;
                        target
                    }
                };
                (
                    env.output_path(state, &p.io.output_path, merged)?,
                    p.transition,
                )
            }
            StateKind::Choice(c) => {
                let effective = env.effective(state, &c.io, input)?;
                let mut next = None;
                for b in &c.choices {
                    let ctx = if b.rule.uses_context() {
                        env.context(state)
                    } else {
                        Value::Null
                    };
                    let scope = Scope {
                        input: &effective,
                        context: &ctx,
                        vars: env.vars,
                        entropy: env.entropy,
                    };
                    if choice::evaluate(&b.rule, &scope, None, 0).ok()? {
                        next = Some(b.next);
                        break;
                    }
                }
                let next = next.or(c.default)?;
                (
                    env.output_path(state, &c.io.output_path, effective)?,
                    Transition::Next(next),
                )
            }
            StateKind::Succeed(s) => {
                let effective = env.effective(state, &s.io, input)?;
                (
                    env.output_path(state, &s.io.output_path, effective)?,
                    Transition::End,
                )
            }
            _ => return None,
        };
        if exceeds_payload_limit(&output) {
            return None;
        }
        match next {
            Transition::Next(n) => {
                id = n;
                input = output;
            }
            Transition::End => return Some((output, events)),
        }
    }
}
