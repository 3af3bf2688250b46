//! What an expression can see while a state runs: the state's input (`$`), the context object
//! (`$$`), the workflow variables (`$name`) and the entropy port (for `States.UUID`,
//! `States.MathRandom`, `$uuid()`, `$random()`).

use serde_json::Value;

use crate::ports::Entropy;

/// Read access to the workflow variables visible from a state (its own scope and the outer
/// ones, innermost first).
pub trait VarLookup {
    fn get_var(&self, name: &str) -> Option<&Value>;
    /// Every visible variable once (inner scopes shadow outer ones).
    fn for_each_var(&self, f: &mut dyn FnMut(&str, &Value));
}

/// No variables at all.
pub struct NoVars;

impl VarLookup for NoVars {
    fn get_var(&self, _name: &str) -> Option<&Value> {
        None
    }
    fn for_each_var(&self, _f: &mut dyn FnMut(&str, &Value)) {}
}

impl VarLookup for serde_json::Map<String, Value> {
    fn get_var(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
    fn for_each_var(&self, f: &mut dyn FnMut(&str, &Value)) {
        for (k, v) in self {
            f(k, v)
        }
    }
}

/// The environment of a JSONPath-mode evaluation.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// `$`: the value paths are evaluated against (effective input, raw result, …).
    pub input: &'a Value,
    /// `$$`: the context object.
    pub context: &'a Value,
    /// `$name`: workflow variables.
    pub vars: &'a dyn VarLookup,
    pub entropy: &'a dyn Entropy,
}
