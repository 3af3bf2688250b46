//! JSON → validated [`StateMachine`].
//!
//! [`parse_definition`] checks a definition the way `ValidateStateMachineDefinition` /
//! `CreateStateMachine` do and, when nothing is wrong, builds the compiled model: every path,
//! payload template, intrinsic and JSONata expression is compiled here and every transition is
//! resolved to a [`StateId`]. It never stops at the first problem: all diagnostics are collected.
//!
//! Diagnostics carry AWS's codes (`SCHEMA_VALIDATION_FAILED`, `MISSING_TRANSITION_TARGET`,
//! `MISSING_END_STATE`, `DUPLICATE_STATE_NAME`, `INVALID_STATE_NAME`, `INVALID_LABEL_NAME`,
//! `DUPLICATE_LABEL_NAME`, `TOO_DEEPLY_NESTED`, `INVALID_JSON_DESCRIPTION`) and a JSON-pointer
//! like location (`/States/MyState/Next`, `/States/P/Branches/0/States/Inner/Next`,
//! `/States/C/Choices/1/Variable`).
//!
//! Query languages: a state without `QueryLanguage` takes the machine's top-level one (also
//! inside Parallel branches and Map processors — the enclosing state's language is not
//! inherited, which is what AWS and LocalStack do).

mod choice;
mod dupkeys;
mod map;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map as JsonMap, Value};

use super::diagnostic::Diagnostic;
use super::jsonata::JsonataTemplate;
use super::jsonpath::{JsonPath, Root};
use super::model::{QueryLanguage, StateId, StateMachine, Template, Transition};
use super::template::PayloadTemplate;

/// Diagnostic codes, as AWS names them.
pub mod codes {
    pub const SCHEMA_VALIDATION_FAILED: &str = "SCHEMA_VALIDATION_FAILED";
    pub const MISSING_TRANSITION_TARGET: &str = "MISSING_TRANSITION_TARGET";
    pub const MISSING_END_STATE: &str = "MISSING_END_STATE";
    pub const DUPLICATE_STATE_NAME: &str = "DUPLICATE_STATE_NAME";
    pub const INVALID_STATE_NAME: &str = "INVALID_STATE_NAME";
    pub const INVALID_LABEL_NAME: &str = "INVALID_LABEL_NAME";
    pub const DUPLICATE_LABEL_NAME: &str = "DUPLICATE_LABEL_NAME";
    pub const TOO_DEEPLY_NESTED: &str = "TOO_DEEPLY_NESTED";
    pub const INVALID_JSON_DESCRIPTION: &str = "INVALID_JSON_DESCRIPTION";
}

use codes::*;

/// Maximum nesting of sub-machines (Parallel branches / Map processors inside each other).
pub const MAX_MACHINE_DEPTH: usize = 32;
/// Maximum nesting of Choice rules (`And`/`Or`/`Not`).
pub const MAX_RULE_DEPTH: usize = 64;
/// Maximum state name length.
pub const MAX_STATE_NAME_LEN: usize = 80;
/// Maximum variable name length.
pub const MAX_VARIABLE_NAME_LEN: usize = 80;

/// Parses and validates a definition. On failure returns every diagnostic found.
pub fn parse_definition(definition: &Value) -> Result<StateMachine, Vec<Diagnostic>> {
    let mut parser = Parser::default();
    let machine = parser.top_level(definition);
    match machine {
        Some(m) if parser.diags.is_empty() => Ok(m),
        _ => {
            if parser.diags.is_empty() {
                parser.schema("The definition could not be compiled", "/");
            }
            Err(parser.diags)
        }
    }
}

/// Validates a definition: the diagnostics, empty when it is valid (for `mapfleet validate`).
pub fn validate(definition: &Value) -> Vec<Diagnostic> {
    match parse_definition(definition) {
        Ok(_) => Vec::new(),
        Err(diags) => diags,
    }
}

/// Parses definition text (reports non-JSON as `INVALID_JSON_DESCRIPTION`, and a state name
/// that appears twice in one `States` object as `DUPLICATE_STATE_NAME`).
pub fn parse_definition_str(text: &str) -> Result<StateMachine, Vec<Diagnostic>> {
    if text.trim().is_empty() {
        return Err(vec![Diagnostic::error(
            SCHEMA_VALIDATION_FAILED,
            "Definition must be a valid JSON object",
            "/",
        )]);
    }
    let (value, duplicates) = match dupkeys::parse_with_duplicates(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![Diagnostic::error(
                INVALID_JSON_DESCRIPTION,
                format!("Invalid JSON: {e}"),
                format!("line {}, column {}", e.line(), e.column()),
            )])
        }
    };
    let mut dup_diags: Vec<Diagnostic> = duplicates
        .into_iter()
        .map(|d| {
            Diagnostic::error(
                DUPLICATE_STATE_NAME,
                format!("Duplicate State name: {}", d.key),
                format!("{}/{}", d.parent, d.key),
            )
        })
        .collect();
    match parse_definition(&value) {
        Ok(m) if dup_diags.is_empty() => Ok(m),
        Ok(_) => Err(dup_diags),
        Err(mut diags) => {
            dup_diags.append(&mut diags);
            Err(dup_diags)
        }
    }
}

/// [`validate`] for definition text.
pub fn validate_str(text: &str) -> Vec<Diagnostic> {
    match parse_definition_str(text) {
        Ok(_) => Vec::new(),
        Err(diags) => diags,
    }
}

// ---------------------------------------------------------------------------------------------
// Parser state and generic helpers
// ---------------------------------------------------------------------------------------------

/// Which kind of machine is being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MachineKind {
    Top,
    Branch,
    Processor,
}

/// State names of one machine (branch / processor), in definition order.
pub(super) type Names = HashMap<String, StateId>;

#[derive(Default)]
pub(super) struct Parser {
    pub(super) diags: Vec<Diagnostic>,
    /// The machine's top-level query language (inherited by every state without its own).
    pub(super) top_ql: QueryLanguage,
    /// Every state name seen so far, in any branch/processor, with its location.
    all_names: HashMap<String, String>,
    /// Map labels seen so far.
    pub(super) labels: HashMap<String, String>,
}

/// `base/seg`.
pub(super) fn at(base: &str, seg: &str) -> String {
    format!("{base}/{seg}")
}

/// The location of an object itself (`/` for the root).
pub(super) fn obj_loc(base: &str) -> String {
    if base.is_empty() {
        "/".to_string()
    } else {
        base.to_string()
    }
}

static NULL: Value = Value::Null;

/// `obj[key]`, or `null` when absent (callers check presence first; this never panics).
pub(super) fn field<'v>(obj: &'v JsonMap<String, Value>, key: &str) -> &'v Value {
    obj.get(key).unwrap_or(&NULL)
}

/// Whether `s` is a JSONata expression (`{% … %}`, no surrounding spaces).
pub(super) fn is_jsonata(s: &str) -> bool {
    s.len() >= 4 && s.starts_with("{%") && s.ends_with("%}")
}

/// A string that opens `{%` but does not close it.
pub(super) fn is_malformed_jsonata(s: &str) -> bool {
    s.starts_with("{%") && !is_jsonata(s)
}

pub(super) const JSONATA_DELIMITERS_MSG: &str = "JSONata string must start with {% and end with %}";

impl Parser {
    pub(super) fn error(
        &mut self,
        code: &str,
        message: impl Into<String>,
        location: impl Into<String>,
    ) {
        self.diags.push(Diagnostic::error(code, message, location));
    }

    pub(super) fn schema(&mut self, message: impl Into<String>, location: impl Into<String>) {
        self.error(SCHEMA_VALIDATION_FAILED, message, location);
    }

    pub(super) fn expected_type(&mut self, ty: &str, location: impl Into<String>) {
        self.schema(format!("Expected value of type {ty}"), location);
    }

    /// Reports every key of `obj` that is not in `allowed` ("Field 'X' is not supported").
    pub(super) fn check_fields(
        &mut self,
        obj: &JsonMap<String, Value>,
        allowed: &[&str],
        loc: &str,
    ) {
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                self.schema(format!("Field '{key}' is not supported"), at(loc, key));
            }
        }
    }

    /// Reports the missing ones among `fields` ("These fields are required: [A, B]").
    /// Returns whether all are present.
    pub(super) fn require(
        &mut self,
        obj: &JsonMap<String, Value>,
        fields: &[&str],
        loc: &str,
    ) -> bool {
        let missing: Vec<&str> = fields
            .iter()
            .copied()
            .filter(|f| !obj.contains_key(*f))
            .collect();
        if missing.is_empty() {
            return true;
        }
        self.schema(
            format!("These fields are required: [{}]", missing.join(", ")),
            obj_loc(loc),
        );
        false
    }

    /// Reports more than one of `fields` being present. Returns how many are present.
    pub(super) fn exclusive(
        &mut self,
        obj: &JsonMap<String, Value>,
        fields: &[&str],
        loc: &str,
    ) -> usize {
        let present: Vec<&str> = fields
            .iter()
            .copied()
            .filter(|f| obj.contains_key(*f))
            .collect();
        if present.len() > 1 {
            self.schema(
                format!(
                    "There should only be one of the following fields: [{}]",
                    present.join(", ")
                ),
                obj_loc(loc),
            );
        }
        present.len()
    }

    /// Exactly one of `fields` must be present.
    pub(super) fn exactly_one(
        &mut self,
        obj: &JsonMap<String, Value>,
        fields: &[&str],
        loc: &str,
    ) -> bool {
        let n = self.exclusive(obj, fields, loc);
        if n == 0 {
            self.schema(
                format!(
                    "This object should have only one of the following fields: [{}]",
                    fields.join(", ")
                ),
                obj_loc(loc),
            );
        }
        n == 1
    }

    // ----- typed accessors -----

    pub(super) fn as_str<'v>(&mut self, v: &'v Value, loc: &str) -> Option<&'v str> {
        match v {
            Value::String(s) => Some(s),
            _ => {
                self.expected_type("String", loc);
                None
            }
        }
    }

    pub(super) fn as_bool(&mut self, v: &Value, loc: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.expected_type("Boolean", loc);
                None
            }
        }
    }

    pub(super) fn as_object<'v>(
        &mut self,
        v: &'v Value,
        loc: &str,
    ) -> Option<&'v JsonMap<String, Value>> {
        match v {
            Value::Object(o) => Some(o),
            _ => {
                self.expected_type("Object", loc);
                None
            }
        }
    }

    pub(super) fn as_array<'v>(&mut self, v: &'v Value, loc: &str) -> Option<&'v Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            _ => {
                self.expected_type("Array", loc);
                None
            }
        }
    }

    /// A non-empty array ("Value cannot be empty").
    pub(super) fn as_nonempty_array<'v>(
        &mut self,
        v: &'v Value,
        loc: &str,
    ) -> Option<&'v Vec<Value>> {
        let a = self.as_array(v, loc)?;
        if a.is_empty() {
            self.schema("Value cannot be empty", loc);
            return None;
        }
        Some(a)
    }

    /// An optional string field.
    pub(super) fn opt_string(
        &mut self,
        obj: &JsonMap<String, Value>,
        key: &str,
        loc: &str,
    ) -> Option<String> {
        let v = obj.get(key)?;
        self.as_str(v, &at(loc, key)).map(str::to_string)
    }

    /// An integer literal in `[min, max]`.
    pub(super) fn int_in(
        &mut self,
        v: &Value,
        min: u64,
        max: Option<u64>,
        loc: &str,
    ) -> Option<u64> {
        let Value::Number(n) = v else {
            self.expected_type("Integer", loc);
            return None;
        };
        if let Some(u) = n.as_u64() {
            if u < min {
                self.schema(format!("Minimum value is {min}"), loc);
                return None;
            }
            if let Some(max) = max {
                if u > max {
                    self.schema(format!("Maximum value is {max}"), loc);
                    return None;
                }
            }
            return Some(u);
        }
        if n.is_i64() {
            // Negative.
            self.schema(format!("Minimum value is {min}"), loc);
            return None;
        }
        self.expected_type("Integer", loc);
        None
    }

    /// A number literal in `[min, max]`.
    pub(super) fn num_in(
        &mut self,
        v: &Value,
        min: f64,
        max: Option<f64>,
        loc: &str,
    ) -> Option<f64> {
        let Some(f) = v.as_f64() else {
            self.expected_type("Number", loc);
            return None;
        };
        if f < min {
            self.schema(format!("Minimum value is {}", fmt_num(min)), loc);
            return None;
        }
        if let Some(max) = max {
            if f > max {
                self.schema(format!("Maximum value is {}", fmt_num(max)), loc);
                return None;
            }
        }
        Some(f)
    }

    /// One of `values` ("Value should be one of the following: [..]").
    pub(super) fn enum_str<'v>(
        &mut self,
        v: &'v Value,
        values: &[&str],
        loc: &str,
    ) -> Option<&'v str> {
        let s = self.as_str(v, loc)?;
        if values.contains(&s) {
            Some(s)
        } else {
            self.schema(
                format!(
                    "Value should be one of the following: [{}]",
                    values.join(", ")
                ),
                loc,
            );
            None
        }
    }

    // ----- paths -----

    /// A JSONPath (`InputPath`, `OutputPath`): may be indefinite.
    pub(super) fn json_path(&mut self, v: &Value, field: &str, loc: &str) -> Option<JsonPath> {
        let s = self.as_str(v, loc)?;
        match JsonPath::parse(s) {
            Ok(p) => Some(p),
            Err(e) => {
                self.schema(
                    format!(
                        "The value for the field '{field}' must be a valid JSONPath: {}",
                        e.message
                    ),
                    loc,
                );
                None
            }
        }
    }

    /// A reference path (`ItemsPath`, `…Path` fields, Choice `Variable`).
    pub(super) fn reference_path(&mut self, v: &Value, field: &str, loc: &str) -> Option<JsonPath> {
        let s = self.as_str(v, loc)?;
        match JsonPath::parse(s) {
            Ok(p) if p.is_reference() => Some(p),
            Ok(_) => {
                self.schema(
                    format!("The value for the field '{field}' must be a valid Reference Path"),
                    loc,
                );
                None
            }
            Err(e) => {
                self.schema(
                    format!(
                        "The value for the field '{field}' must be a valid Reference Path: {}",
                        e.message
                    ),
                    loc,
                );
                None
            }
        }
    }

    /// `InputPath`/`OutputPath` (`reference == false`) or `ResultPath` (`reference == true`:
    /// a reference path on the state input, never `$$` or a variable). Absent ⇒ `Default`,
    /// `null` ⇒ `Null`.
    pub(super) fn path_field(
        &mut self,
        obj: &JsonMap<String, Value>,
        key: &str,
        loc: &str,
        result_path: bool,
    ) -> Option<super::model::PathField> {
        use super::model::PathField;
        let Some(v) = obj.get(key) else {
            return Some(PathField::Default);
        };
        let floc = at(loc, key);
        if v.is_null() {
            return Some(PathField::Null);
        }
        if result_path {
            let p = self.reference_path(v, key, &floc)?;
            if *p.root() != Root::Input {
                self.schema(
                    format!(
                        "The value for the field '{key}' must be a valid Reference Path on the state input: the context object ($$) and variables cannot be used"
                    ),
                    floc,
                );
                return None;
            }
            Some(PathField::Path(p))
        } else {
            self.json_path(v, key, &floc).map(PathField::Path)
        }
    }

    // ----- templates -----

    /// A JSONPath payload template (`Parameters`, `ResultSelector`, `ItemSelector`,
    /// `Credentials`, ItemReader/ResultWriter `Parameters`). `require_object`: must be a JSON
    /// object.
    pub(super) fn payload_template(
        &mut self,
        v: &Value,
        loc: &str,
        require_object: bool,
    ) -> Option<PayloadTemplate> {
        if require_object && !v.is_object() {
            self.expected_type("Object", loc);
            return None;
        }
        match PayloadTemplate::compile(v) {
            Ok(t) => Some(t),
            Err((inner, message)) => {
                let location = if inner.is_empty() || inner == "/" {
                    loc.to_string()
                } else if inner.starts_with('/') {
                    format!("{loc}{inner}")
                } else {
                    format!("{loc}/{inner}")
                };
                self.schema(message, location);
                None
            }
        }
    }

    /// Checks a JSONata-mode value: no malformed `{% %}` strings. Returns whether it is clean.
    pub(super) fn check_jsonata_value(&mut self, v: &Value, loc: &str, depth: usize) -> bool {
        if depth > 256 {
            self.error(TOO_DEEPLY_NESTED, "The value is too deeply nested", loc);
            return false;
        }
        match v {
            Value::String(s) if is_malformed_jsonata(s) => {
                self.schema(JSONATA_DELIMITERS_MSG, loc);
                false
            }
            Value::Array(a) => {
                let mut ok = true;
                for (i, item) in a.iter().enumerate() {
                    ok &= self.check_jsonata_value(item, &at(loc, &i.to_string()), depth + 1);
                }
                ok
            }
            Value::Object(o) => {
                let mut ok = true;
                // Keys ending in `.$` are plain keys in JSONata (AWS keeps them literally).
                for (k, item) in o {
                    ok &= self.check_jsonata_value(item, &at(loc, k), depth + 1);
                }
                ok
            }
            _ => true,
        }
    }

    /// A JSON value with `{% %}` expressions anywhere (JSONata `Output`, `Arguments`,
    /// `ItemSelector`, `Items`, …).
    pub(super) fn jsonata_template(&mut self, v: &Value, loc: &str) -> Option<JsonataTemplate> {
        if !self.check_jsonata_value(v, loc, 0) {
            return None;
        }
        match JsonataTemplate::compile(v) {
            Ok(t) => Some(t),
            Err(message) => {
                self.schema(message, loc);
                None
            }
        }
    }

    /// A JSONata-mode value that must be an object or a single expression (`Arguments`).
    pub(super) fn jsonata_object_or_expr(
        &mut self,
        v: &Value,
        loc: &str,
    ) -> Option<JsonataTemplate> {
        match v {
            Value::Object(_) => self.jsonata_template(v, loc),
            Value::String(s) if is_jsonata(s) => self.jsonata_template(v, loc),
            Value::String(s) if is_malformed_jsonata(s) => {
                self.schema(JSONATA_DELIMITERS_MSG, loc);
                None
            }
            _ => {
                self.schema("Expected value of type Object or a JSONata expression", loc);
                None
            }
        }
    }

    /// A JSONata expression given as a string field value (`{% %}`), or `None` with a
    /// diagnostic if it is malformed. Returns `Ok(None)` when `s` is not an expression at all.
    pub(super) fn jsonata_expr(
        &mut self,
        s: &str,
        loc: &str,
    ) -> Result<Option<JsonataTemplate>, ()> {
        if is_jsonata(s) {
            match JsonataTemplate::compile(&Value::String(s.to_string())) {
                Ok(t) => Ok(Some(t)),
                Err(message) => {
                    self.schema(message, loc);
                    Err(())
                }
            }
        } else if is_malformed_jsonata(s) {
            self.schema(JSONATA_DELIMITERS_MSG, loc);
            Err(())
        } else {
            Ok(None)
        }
    }

    /// An integer field that may be a JSONata expression in JSONata states.
    pub(super) fn dyn_u64(
        &mut self,
        v: &Value,
        ql: QueryLanguage,
        min: u64,
        max: Option<u64>,
        loc: &str,
    ) -> Option<super::model::Dynamic<u64>> {
        use super::model::Dynamic;
        if let (QueryLanguage::Jsonata, Value::String(s)) = (ql, v) {
            return match self.jsonata_expr(s, loc) {
                Ok(Some(t)) => Some(Dynamic::Jsonata(t)),
                Ok(None) => {
                    self.expected_type("Integer", loc);
                    None
                }
                Err(()) => None,
            };
        }
        self.int_in(v, min, max, loc).map(Dynamic::Literal)
    }

    /// A number field that may be a JSONata expression in JSONata states.
    pub(super) fn dyn_f64(
        &mut self,
        v: &Value,
        ql: QueryLanguage,
        min: f64,
        max: Option<f64>,
        loc: &str,
    ) -> Option<super::model::Dynamic<f64>> {
        use super::model::Dynamic;
        if let (QueryLanguage::Jsonata, Value::String(s)) = (ql, v) {
            return match self.jsonata_expr(s, loc) {
                Ok(Some(t)) => Some(Dynamic::Jsonata(t)),
                Ok(None) => {
                    self.expected_type("Number", loc);
                    None
                }
                Err(()) => None,
            };
        }
        self.num_in(v, min, max, loc).map(Dynamic::Literal)
    }

    /// `Assign`: an object whose keys are variable names (JSONPath: may end in `.$`).
    pub(super) fn assign(&mut self, v: &Value, ql: QueryLanguage, loc: &str) -> Option<Template> {
        let obj = self.as_object(v, loc)?;
        let mut ok = true;
        for key in obj.keys() {
            let name = match ql {
                QueryLanguage::JsonPath => key.strip_suffix(".$").unwrap_or(key),
                QueryLanguage::Jsonata => key.as_str(),
            };
            if let Err(msg) = check_variable_name(name) {
                self.schema(msg, at(loc, key));
                ok = false;
            }
        }
        match ql {
            QueryLanguage::JsonPath => {
                let t = self.payload_template(v, loc, true);
                if ok {
                    t.map(Template::JsonPath)
                } else {
                    None
                }
            }
            QueryLanguage::Jsonata => {
                let t = self.jsonata_template(v, loc);
                if ok {
                    t.map(Template::Jsonata)
                } else {
                    None
                }
            }
        }
    }

    // ----- transitions -----

    /// Resolves a state name (`Next`, `Default`, `Catch[].Next`) within one machine.
    pub(super) fn resolve(
        &mut self,
        v: &Value,
        field: &str,
        loc: &str,
        names: &Names,
    ) -> Option<StateId> {
        let name = self.as_str(v, loc)?;
        match names.get(name) {
            Some(id) => Some(*id),
            None => {
                self.error(
                    MISSING_TRANSITION_TARGET,
                    format!("Missing '{field}' target: {name}"),
                    loc,
                );
                None
            }
        }
    }

    /// `Next` / `End` of a non-terminal, non-Choice state: exactly one.
    pub(super) fn transition(
        &mut self,
        obj: &JsonMap<String, Value>,
        loc: &str,
        names: &Names,
    ) -> Option<Transition> {
        let next = obj.get("Next");
        let end = match obj.get("End") {
            None => None,
            Some(v) => Some(self.as_bool(v, &at(loc, "End"))?),
        };
        match (next, end) {
            (Some(_), Some(true)) => {
                self.schema(
                    "There should only be one of the following fields: [Next, End]",
                    loc,
                );
                None
            }
            (Some(n), _) => self
                .resolve(n, "Next", &at(loc, "Next"), names)
                .map(Transition::Next),
            (None, Some(true)) => Some(Transition::End),
            (None, _) => {
                self.schema(
                    "This object should have only one of the following fields: [Next, End]",
                    loc,
                );
                None
            }
        }
    }

    // ----- machines -----

    fn top_level(&mut self, definition: &Value) -> Option<StateMachine> {
        let Value::Object(obj) = definition else {
            self.schema("Definition must be a valid JSON object", "/");
            return None;
        };
        // The top-level language first: every state depends on it.
        if let Some(v) = obj.get("QueryLanguage") {
            if let Some(s) = self.enum_str(v, &["JSONPath", "JSONata"], "/QueryLanguage") {
                self.top_ql = if s == "JSONata" {
                    QueryLanguage::Jsonata
                } else {
                    QueryLanguage::JsonPath
                };
            }
        }
        self.machine(obj, "", MachineKind::Top, 0)
    }

    /// Parses a machine, a Parallel branch or a Map processor (`loc` is its location, `""`
    /// for the top level). `ProcessorConfig` is checked by the Map parser.
    pub(super) fn machine(
        &mut self,
        obj: &JsonMap<String, Value>,
        loc: &str,
        kind: MachineKind,
        depth: usize,
    ) -> Option<StateMachine> {
        if depth > MAX_MACHINE_DEPTH {
            self.error(
                TOO_DEEPLY_NESTED,
                "The states are too deeply nested",
                obj_loc(loc),
            );
            return None;
        }
        let allowed: &[&str] = match kind {
            MachineKind::Top => &[
                "Comment",
                "StartAt",
                "States",
                "Version",
                "TimeoutSeconds",
                "QueryLanguage",
            ],
            MachineKind::Branch => &["Comment", "StartAt", "States"],
            MachineKind::Processor => &["Comment", "StartAt", "States", "ProcessorConfig"],
        };
        self.check_fields(obj, allowed, loc);
        self.require(obj, &["States", "StartAt"], loc);
        let comment = self.opt_string(obj, "Comment", loc);

        let mut version = None;
        let mut timeout_seconds = None;
        if kind == MachineKind::Top {
            if let Some(v) = obj.get("Version") {
                version = self.enum_str(v, &["1.0"], "/Version").map(str::to_string);
            }
            if let Some(v) = obj.get("TimeoutSeconds") {
                timeout_seconds = self.int_in(v, 0, Some(99_999_999), "/TimeoutSeconds");
            }
        }

        let states_loc = at(loc, "States");
        let states_obj = match obj.get("States") {
            Some(v) => self.as_object(v, &states_loc),
            None => None,
        };

        // Names first: transitions resolve against them.
        let mut names: Names = HashMap::new();
        if let Some(states) = states_obj {
            for (i, name) in states.keys().enumerate() {
                names.insert(name.clone(), i);
                let sloc = at(&states_loc, name);
                let len = name.chars().count();
                if len > MAX_STATE_NAME_LEN {
                    self.error(
                        INVALID_STATE_NAME,
                        format!("State name '{name}' exceeds the {MAX_STATE_NAME_LEN}-character limit allowed by the service"),
                        sloc.clone(),
                    );
                } else if len == 0 {
                    self.error(
                        INVALID_STATE_NAME,
                        "State name cannot be empty",
                        sloc.clone(),
                    );
                } else if name.chars().any(char::is_control) {
                    self.error(
                        INVALID_STATE_NAME,
                        format!(
                            "State name '{}' contains invalid characters",
                            name.escape_debug()
                        ),
                        sloc.clone(),
                    );
                }
                if self.all_names.contains_key(name) {
                    self.error(
                        DUPLICATE_STATE_NAME,
                        format!("Duplicate State name: {name}"),
                        sloc.clone(),
                    );
                } else {
                    self.all_names.insert(name.clone(), sloc);
                }
            }
        }

        let mut states = Vec::new();
        let mut all_ok = states_obj.is_some();
        if let Some(states_map) = states_obj {
            for (name, sv) in states_map {
                let sloc = at(&states_loc, name);
                match self.state(name, sv, &sloc, &names, depth) {
                    Some(s) => states.push(s),
                    None => all_ok = false,
                }
            }
        }

        let start_loc = at(loc, "StartAt");
        let start_at = match obj.get("StartAt") {
            Some(v) => match self.as_str(v, &start_loc) {
                Some(name) => match names.get(name) {
                    Some(id) => Some(*id),
                    None => {
                        if states_obj.is_some() {
                            self.error(
                                MISSING_TRANSITION_TARGET,
                                format!("Missing 'StartAt' target: {name}"),
                                start_loc,
                            );
                        }
                        None
                    }
                },
                None => None,
            },
            None => None,
        };

        if let Some(states_map) = states_obj {
            let has_terminal = states_map.values().any(is_terminal_raw);
            if kind == MachineKind::Top && !has_terminal {
                self.error(
                    MISSING_END_STATE,
                    "Workflow has no terminal state",
                    obj_loc(loc),
                );
            } else if let Some(start) = start_at {
                self.reachability(states_map, start, &names, &states_loc);
            }
        }

        if !all_ok {
            return None;
        }
        Some(StateMachine {
            start_at: start_at?,
            states,
            by_name: names,
            comment,
            query_language: self.top_ql,
            timeout_seconds,
            version,
        })
    }

    /// Reports every state not reachable from `start` through `Next`, `Default`,
    /// `Choices[].Next` and `Catch[].Next` (read from the raw JSON, so that it works even when
    /// some states did not compile).
    fn reachability(
        &mut self,
        states: &JsonMap<String, Value>,
        start: StateId,
        names: &Names,
        states_loc: &str,
    ) {
        let keys: Vec<&String> = states.keys().collect();
        let mut seen: HashSet<StateId> = HashSet::new();
        let mut queue = VecDeque::new();
        seen.insert(start);
        queue.push_back(start);
        while let Some(id) = queue.pop_front() {
            let Some(name) = keys.get(id) else { continue };
            let Some(state) = states.get(name.as_str()) else {
                continue;
            };
            for target in raw_targets(state) {
                if let Some(&t) = names.get(target) {
                    if seen.insert(t) {
                        queue.push_back(t);
                    }
                }
            }
        }
        for (id, name) in keys.iter().enumerate() {
            if !seen.contains(&id) {
                self.error(
                    MISSING_TRANSITION_TARGET,
                    format!("State \"{name}\" is not reachable."),
                    at(states_loc, name),
                );
            }
        }
    }
}

fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Whether a raw state is terminal (`Succeed`, `Fail`, or `End: true`).
fn is_terminal_raw(state: &Value) -> bool {
    matches!(
        state.get("Type").and_then(Value::as_str),
        Some("Succeed") | Some("Fail")
    ) || state.get("End").and_then(Value::as_bool) == Some(true)
}

/// Transition targets of a raw state.
fn raw_targets(state: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    if let Some(s) = state.get("Next").and_then(Value::as_str) {
        out.push(s);
    }
    if let Some(s) = state.get("Default").and_then(Value::as_str) {
        out.push(s);
    }
    for field in ["Choices", "Catch"] {
        if let Some(items) = state.get(field).and_then(Value::as_array) {
            for item in items {
                if let Some(s) = item.get("Next").and_then(Value::as_str) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// Variable names: a Unicode identifier (ID_Start, then ID_Continue), at most 80 characters,
/// not `states`; whole-variable assignment only.
pub(super) fn check_variable_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("Invalid variable name '': the variable name cannot be empty.".to_string());
    };
    if name == "states" {
        return Err("Cannot assign to reserved variable '$states'.".to_string());
    }
    if name.chars().count() > MAX_VARIABLE_NAME_LEN {
        return Err(format!(
            "Invalid variable name '{name}': the variable name exceeds the {MAX_VARIABLE_NAME_LEN}-character limit."
        ));
    }
    if !is_id_start(first) || !chars.all(is_id_continue) {
        return Err(format!(
            "Invalid variable name '{name}': the variable name contains invalid characters."
        ));
    }
    Ok(())
}

/// Approximation of Unicode ID_Start with the standard library's tables.
fn is_id_start(c: char) -> bool {
    c.is_alphabetic()
}

/// Approximation of Unicode ID_Continue: letters, digits, connector punctuation, combining marks.
fn is_id_continue(c: char) -> bool {
    c.is_alphanumeric()
        || c == '_'
        || matches!(
            c,
            '\u{203F}' | '\u{2040}' | '\u{2054}' | '\u{FE33}' | '\u{FE34}' | '\u{FE4D}'
                ..='\u{FE4F}' | '\u{FF3F}'
        )
        || matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
        || matches!(c, '\u{200C}' | '\u{200D}' | '\u{00B7}')
}
