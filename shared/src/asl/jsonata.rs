//! JSONata mode: `{% … %}` templates over jsonata-core, with the Step Functions functions
//! (`$partition`, `$range`, `$hash`, `$random`, `$uuid`, `$parse`) and AWS's error texts.
//!
//! A template is any JSON value; every string that starts with `{%` and ends with `%}` is a
//! JSONata expression (the text in between, trimmed). Expressions are parsed once, at
//! [`JsonataTemplate::compile`]; the parsed trees are plain data (`Send + Sync`) shared by
//! every clone of the template. Each [`JsonataTemplate::eval`] builds one (cheap, `!Send`)
//! jsonata-core evaluator on the calling thread, binds `$states` and the referenced workflow
//! variables once, and evaluates every expression of the template with it.
//!
//! Semantics (as observed on AWS):
//! * the context item `$` (and `$$`) is *undefined*: expressions read the state input through
//!   `$states.input`;
//! * an expression that yields nothing fails with `… returned nothing (undefined).`, a
//!   function (or a non-finite number) fails with `… returned an unsupported result type.`,
//!   an evaluation error with `… threw an error during evaluation. <CODE>: <message>`;
//! * inside objects and arrays the field path grows with `/key` (`Output/result`) and `/index`;
//! * `$eval` is not available (`T1006`).

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use jsonata_core::ast::AstNode;
use jsonata_core::evaluator::{Context, Evaluator, EvaluatorError, EvaluatorOptions, HostFnResult};
use jsonata_core::value::{JArray, JMap, JValue};
use serde_json::{Map, Number, Value};

use super::error::{AslError, AslResult};
use super::scope::VarLookup;
use crate::ports::Entropy;

/// Wall-clock budget of one expression evaluation (a guard against runaway recursion or
/// loops; jsonata-core reports `D1012` when it is exceeded).
pub const EVAL_TIMEOUT_MS: u64 = 60_000;

/// Most elements `$range` may produce (as `States.ArrayRange`).
pub const RANGE_MAX_ELEMENTS: i128 = 1000;

/// A JSON value in which any string `{% expr %}` is a JSONata expression, compiled once.
#[derive(Clone)]
pub struct JsonataTemplate {
    source: Value,
    node: Arc<Node>,
    refs: Arc<Refs>,
}

impl fmt::Debug for JsonataTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonataTemplate")
            .field("source", &self.source)
            .finish()
    }
}

/// What `$states` and the variables are during one evaluation.
pub struct JsonataEnv<'a> {
    /// `$states`: `{input, context, result?, errorOutput?}`.
    pub states: &'a Value,
    pub vars: &'a dyn VarLookup,
    pub entropy: &'a dyn Entropy,
}

/// The compiled form of a template value.
enum Node {
    /// A value without any expression in it.
    Literal(Value),
    Expr(Expr),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

/// One `{% … %}` expression.
struct Expr {
    /// The trimmed text between the delimiters (what AWS quotes in its messages).
    source: String,
    ast: AstNode,
    /// Distinct names called as `$name(…)`, to name the function in argument errors.
    calls: Vec<String>,
}

/// How the expressions of a template use `$states`.
#[derive(Debug, Clone, PartialEq, Default)]
enum StatesUse {
    #[default]
    Unused,
    /// Only `$states.<member>` paths: bind just these members.
    Members(Vec<String>),
    /// Anything else (`$states` alone, `$keys($states)`, …): bind it whole.
    Whole,
}

impl StatesUse {
    fn merge(&mut self, other: StatesUse) {
        match (std::mem::take(self), other) {
            (StatesUse::Whole, _) | (_, StatesUse::Whole) => *self = StatesUse::Whole,
            (StatesUse::Unused, o) => *self = o,
            (s, StatesUse::Unused) => *self = s,
            (StatesUse::Members(mut a), StatesUse::Members(b)) => {
                for m in b {
                    if !a.contains(&m) {
                        a.push(m);
                    }
                }
                *self = StatesUse::Members(a);
            }
        }
    }
}

/// What the expressions of a template may reference (an over-approximation: a `$name` inside
/// a string literal counts too).
#[derive(Debug, Default)]
struct Refs {
    /// Every `$name` but `$states`: workflow variables and function names.
    names: HashSet<String>,
    states: StatesUse,
}

impl JsonataTemplate {
    /// Compiles a template. Errors (for the validator): a string that starts with `{%` but
    /// does not end with `%}`, an empty expression, or JSONata that does not parse.
    pub fn compile(value: &Value) -> Result<JsonataTemplate, String> {
        let mut refs = Refs::default();
        let node = compile_node(value, &mut refs)?.unwrap_or_else(|| Node::Literal(value.clone()));
        Ok(JsonataTemplate {
            source: value.clone(),
            node: Arc::new(node),
            refs: Arc::new(refs),
        })
    }

    /// Whether the value is exactly one `{% %}` string (vs a literal or a structure).
    pub fn is_expression(&self) -> bool {
        matches!(*self.node, Node::Expr(_))
    }

    /// Whether an expression may read `$states.<member>` (`context`, `result`, …), so the
    /// engine builds only what is read.
    pub fn uses_states_member(&self, member: &str) -> bool {
        match &self.refs.states {
            StatesUse::Unused => false,
            StatesUse::Members(m) => m.iter().any(|x| x == member),
            StatesUse::Whole => true,
        }
    }

    /// Whether the value holds no expression at all (evaluation returns it unchanged).
    pub fn is_literal(&self) -> bool {
        matches!(*self.node, Node::Literal(_))
    }

    /// How AWS quotes the field in messages: the expression without its `{% %}` delimiters,
    /// or the literal as compact JSON.
    pub fn quoted_source(&self) -> String {
        match self.expression_source() {
            Some(e) => e.to_string(),
            None => serde_json::to_string(&self.source).unwrap_or_default(),
        }
    }

    /// The JSONata source (trimmed, without the delimiters) of a single-expression template.
    pub fn expression_source(&self) -> Option<&str> {
        match &*self.node {
            Node::Expr(e) => Some(&e.source),
            _ => None,
        }
    }

    /// Evaluates. `field` is the field path for AWS's messages (`Output`, `Assign/x`…);
    /// the cause is the text after "An error occurred while executing the state …".
    pub fn eval(&self, env: &JsonataEnv<'_>, field: &str) -> AslResult<Value> {
        if let Node::Literal(v) = &*self.node {
            return Ok(v.clone());
        }
        let mut ev = new_evaluator(&self.refs, env);
        let mut path = String::with_capacity(field.len() + 32);
        path.push_str(field);
        eval_node(&self.node, &mut ev, &mut path)
    }

    pub fn source(&self) -> &Value {
        &self.source
    }

    /// The `States.QueryEvaluationError` for a result of the wrong type, e.g. `Items`
    /// evaluating to a number: `… returned an unexpected result type. Expected 'array', but
    /// was 'number' for value: 1`.
    pub fn type_error(&self, field: &str, expected: &str, value: &Value) -> AslError {
        let text;
        let expr = match self.expression_source() {
            Some(s) => s,
            None => {
                text = serde_json::to_string(&self.source).unwrap_or_default();
                &text
            }
        };
        unexpected_type_error(field, expr, expected, value)
    }
}

/// The JSON type name AWS uses in its messages: `array`, `string`, `number`, `boolean`,
/// `object` or `null`.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `The JSONata expression '<expression>' specified for the field '<field>' returned an
/// unexpected result type. Expected '<expected>', but was '<type>' for value: <json>`.
pub fn unexpected_type_cause(
    field: &str,
    expression: &str,
    expected: &str,
    value: &Value,
) -> String {
    format!(
        "The JSONata expression '{expression}' specified for the field '{field}' returned an \
         unexpected result type. Expected '{expected}', but was '{}' for value: {}",
        type_name(value),
        serde_json::to_string(value).unwrap_or_default()
    )
}

/// [`unexpected_type_cause`] as a `States.QueryEvaluationError`.
pub fn unexpected_type_error(
    field: &str,
    expression: &str,
    expected: &str,
    value: &Value,
) -> AslError {
    AslError::query(unexpected_type_cause(field, expression, expected, value))
}

// ---------------------------------------------------------------------------------------------
// Compilation

/// `None` when `value` holds no expression.
fn compile_node(value: &Value, refs: &mut Refs) -> Result<Option<Node>, String> {
    match value {
        Value::String(s) => match expression_body(s)? {
            Some(body) => Ok(Some(Node::Expr(compile_expr(body, refs)?))),
            None => Ok(None),
        },
        Value::Object(map) => {
            let mut compiled = Vec::with_capacity(map.len());
            let mut any = false;
            for (k, v) in map {
                let n = compile_node(v, refs)?;
                any |= n.is_some();
                compiled.push((k, v, n));
            }
            if !any {
                return Ok(None);
            }
            let items = compiled
                .into_iter()
                .map(|(k, v, n)| (k.clone(), n.unwrap_or_else(|| Node::Literal(v.clone()))))
                .collect();
            Ok(Some(Node::Object(items)))
        }
        Value::Array(items) => {
            let mut compiled = Vec::with_capacity(items.len());
            let mut any = false;
            for v in items {
                let n = compile_node(v, refs)?;
                any |= n.is_some();
                compiled.push((v, n));
            }
            if !any {
                return Ok(None);
            }
            let nodes = compiled
                .into_iter()
                .map(|(v, n)| n.unwrap_or_else(|| Node::Literal(v.clone())))
                .collect();
            Ok(Some(Node::Array(nodes)))
        }
        _ => Ok(None),
    }
}

/// The JSONata text of `{% … %}`, `None` for a plain string.
fn expression_body(s: &str) -> Result<Option<&str>, String> {
    if !s.starts_with("{%") {
        return Ok(None);
    }
    if s.len() < 4 || !s.ends_with("%}") {
        return Err(format!(
            "The JSONata expression '{s}' is malformed: it must start with '{{%' and end with '%}}'"
        ));
    }
    let body = s[2..s.len() - 2].trim();
    if body.is_empty() {
        return Err(format!("The JSONata expression '{s}' is empty"));
    }
    Ok(Some(body))
}

fn compile_expr(body: &str, refs: &mut Refs) -> Result<Expr, String> {
    let ast = jsonata_core::parser::parse(body)
        .map_err(|e| format!("The JSONata expression '{body}' is invalid: {e}"))?;
    let scan = scan_references(body);
    refs.names.extend(scan.names);
    refs.states.merge(scan.states);
    Ok(Expr {
        source: body.to_string(),
        ast,
        calls: scan.calls,
    })
}

struct Scan {
    names: Vec<String>,
    calls: Vec<String>,
    states: StatesUse,
}

/// Characters that end a JSONata name (as the jsonata-js tokenizer reads `$name`).
fn ends_name(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '.' | '['
                | ']'
                | '{'
                | '}'
                | '('
                | ')'
                | ','
                | ';'
                | ':'
                | '?'
                | '+'
                | '-'
                | '*'
                | '/'
                | '%'
                | '|'
                | '!'
                | '='
                | '<'
                | '>'
                | '^'
                | '&'
                | '~'
                | '@'
                | '#'
                | '"'
                | '\''
                | '`'
                | '$'
        )
}

/// Finds every `$name` in `src` (textually, so over-approximating), the names called as
/// functions, and which members of `$states` are read.
fn scan_references(src: &str) -> Scan {
    let chars: Vec<char> = src.chars().collect();
    let mut scan = Scan {
        names: Vec::new(),
        calls: Vec::new(),
        states: StatesUse::Unused,
    };
    let skip_ws = |mut k: usize| {
        while k < chars.len() && chars[k].is_whitespace() {
            k += 1;
        }
        k
    };
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < chars.len() && !ends_name(chars[j]) {
            j += 1;
        }
        if j == start {
            i += 1;
            continue;
        }
        let name: String = chars[start..j].iter().collect();
        let k = skip_ws(j);
        if chars.get(k) == Some(&'(') && !scan.calls.contains(&name) {
            scan.calls.push(name.clone());
        }
        if name == "states" {
            let member = if chars.get(k) == Some(&'.') {
                let m = skip_ws(k + 1);
                if chars.get(m) == Some(&'`') {
                    let end = chars[m + 1..]
                        .iter()
                        .position(|&c| c == '`')
                        .map(|p| m + 1 + p);
                    end.map(|e| chars[m + 1..e].iter().collect::<String>())
                } else {
                    let mut e = m;
                    while e < chars.len() && !ends_name(chars[e]) {
                        e += 1;
                    }
                    Some(chars[m..e].iter().collect::<String>())
                }
            } else {
                None
            };
            match member {
                Some(m) if !m.is_empty() => scan.states.merge(StatesUse::Members(vec![m])),
                _ => scan.states.merge(StatesUse::Whole),
            }
        } else if !scan.names.contains(&name) {
            scan.names.push(name);
        }
        i = j;
    }
    // `%` (the parent operator) could climb from `$states.x` to `$states` itself.
    if scan.states != StatesUse::Unused && src.contains('%') {
        scan.states = StatesUse::Whole;
    }
    scan
}

// ---------------------------------------------------------------------------------------------
// Evaluation

fn new_evaluator(refs: &Refs, env: &JsonataEnv<'_>) -> Evaluator {
    let mut ctx = Context::new();
    match &refs.states {
        StatesUse::Unused => {}
        StatesUse::Whole => ctx.bind("states".to_string(), to_jvalue(env.states)),
        StatesUse::Members(members) => {
            let mut m = JMap::default();
            if let Value::Object(obj) = env.states {
                // Keep `$states`' own member order.
                for (k, v) in obj {
                    if members.iter().any(|x| x == k) {
                        m.insert(k.clone(), to_jvalue(v));
                    }
                }
            }
            ctx.bind("states".to_string(), JValue::Object(Rc::new(m)));
        }
    }
    for name in &refs.names {
        if let Some(value) = env.vars.get_var(name) {
            ctx.bind(name.clone(), to_jvalue(value));
        }
    }
    let options = EvaluatorOptions {
        timeout_ms: Some(EVAL_TIMEOUT_MS),
        ..EvaluatorOptions::default()
    };
    let mut ev = Evaluator::with_options(ctx, options);
    register_sfn_functions(&mut ev, refs, env.entropy);
    ev
}

fn eval_node(node: &Node, ev: &mut Evaluator, path: &mut String) -> AslResult<Value> {
    match node {
        Node::Literal(v) => Ok(v.clone()),
        Node::Expr(e) => eval_expr(e, ev, path),
        Node::Object(items) => {
            let mut out = Map::with_capacity(items.len());
            for (k, n) in items {
                let len = path.len();
                path.push('/');
                path.push_str(k);
                let v = eval_node(n, ev, path);
                path.truncate(len);
                out.insert(k.clone(), v?);
            }
            Ok(Value::Object(out))
        }
        Node::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, n) in items.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                let v = eval_node(n, ev, path);
                path.truncate(len);
                out.push(v?);
            }
            Ok(Value::Array(out))
        }
    }
}

fn eval_expr(e: &Expr, ev: &mut Evaluator, field: &str) -> AslResult<Value> {
    let prefix = || {
        format!(
            "The JSONata expression '{}' specified for the field '{field}'",
            e.source
        )
    };
    match ev.evaluate(&e.ast, &JValue::Undefined) {
        Err(err) => Err(AslError::query(format!(
            "{} threw an error during evaluation. {}",
            prefix(),
            render_error(&err, &e.calls)
        ))),
        Ok(JValue::Undefined) => Err(AslError::query(format!(
            "{} returned nothing (undefined).",
            prefix()
        ))),
        Ok(v) => to_json(&v).ok_or_else(|| {
            AslError::query(format!("{} returned an unsupported result type.", prefix()))
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Value conversion

/// serde_json → jsonata-core, borrowing (no intermediate clone of the document).
pub fn to_jvalue(value: &Value) -> JValue {
    match value {
        Value::Null => JValue::Null,
        Value::Bool(b) => JValue::Bool(*b),
        Value::Number(n) => JValue::Number(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => JValue::string(s.as_str()),
        Value::Array(items) => {
            let mut flat = true;
            let items = items
                .iter()
                .map(|v| {
                    flat &= !v.is_array();
                    to_jvalue(v)
                })
                .collect();
            JValue::Array(JArray::new_flat(items, flat))
        }
        Value::Object(map) => JValue::Object(Rc::new(
            map.iter()
                .map(|(k, v)| (k.clone(), to_jvalue(v)))
                .collect::<JMap>(),
        )),
    }
}

/// jsonata-core → serde_json, printing numbers as jsonata-js would (`2`, not `2.0`).
/// `None` when the value cannot be JSON: a function, a regex, a non-finite number, or
/// undefined at the top. Undefined members of objects are dropped (as `JSON.stringify` does),
/// undefined array items skipped.
pub fn to_json(value: &JValue) -> Option<Value> {
    Some(match value {
        JValue::Null => Value::Null,
        JValue::Bool(b) => Value::Bool(*b),
        JValue::Number(n) => number_to_json(*n)?,
        JValue::String(s) => Value::String(s.to_string()),
        JValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for v in items {
                if !v.is_undefined() {
                    out.push(to_json(v)?);
                }
            }
            Value::Array(out)
        }
        JValue::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map.iter() {
                if !v.is_undefined() {
                    out.insert(k.clone(), to_json(v)?);
                }
            }
            Value::Object(out)
        }
        _ => return None,
    })
}

/// An integral number becomes a JSON integer, anything else a float; non-finite ⇒ `None`.
pub fn number_to_json(n: f64) -> Option<Value> {
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 {
        // Exactly representable range of i64 (2^63 itself is excluded).
        if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n) {
            return Some(Value::from(n as i64));
        }
        if (0.0..18_446_744_073_709_551_616.0).contains(&n) {
            return Some(Value::from(n as u64));
        }
    }
    Number::from_f64(n).map(Value::Number)
}

// ---------------------------------------------------------------------------------------------
// Error messages

/// `<CODE>: <message>` with jsonata-js's wording where jsonata-core's differs and the parts
/// can be recovered; jsonata-core's own text otherwise.
fn render_error(err: &EvaluatorError, calls: &[String]) -> String {
    let msg = err.message();
    let Some(code) = err.code() else {
        return msg.to_string();
    };
    let body = msg.get(6..).unwrap_or("").trim_start();
    match js_message(code, body, calls) {
        Some(text) => format!("{code}: {text}"),
        None => msg.to_string(),
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// The leading decimal number of `s` and the rest.
fn leading_number(s: &str) -> Option<(usize, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n = s[..end].parse().ok()?;
    Some((n, &s[end..]))
}

/// A function name as jsonata-js prints it: `"name"` (JSON-quoted, no `$`).
fn function_token(raw: &str) -> String {
    let name = raw.trim().trim_matches('"');
    json_str(name.strip_prefix('$').unwrap_or(name))
}

fn js_message(code: &str, body: &str, calls: &[String]) -> Option<String> {
    let only_call = match calls {
        [one] => Some(one.as_str()),
        _ => None,
    };
    let fixed = |s: &str| Some(s.to_string());
    match code {
        "T1006" => fixed("Attempted to invoke a non-function"),
        "T1008" => fixed("Attempted to partially apply a non-function"),
        "T2001" | "T2002" => {
            let rest = body.split_once("side of the ")?.1;
            let op = rest.strip_suffix(" operator must evaluate to a number")?;
            let side = if code == "T2001" { "left" } else { "right" };
            Some(format!(
                "The {side} side of the {} operator must evaluate to a number",
                json_str(op)
            ))
        }
        "T2003" => fixed("The left side of the range operator (..) must evaluate to an integer"),
        "T2004" => fixed("The right side of the range operator (..) must evaluate to an integer"),
        "D3001" => fixed("Attempting to invoke string function on Infinity or NaN"),
        "D3010" => fixed("Second argument of replace function cannot be an empty string"),
        "D3020" => fixed("Third argument of split function must evaluate to a positive number"),
        "D3030" => {
            let v = body
                .strip_prefix("Cannot convert '")?
                .strip_suffix("' to number")?;
            Some(format!("Unable to cast value to a number: {}", json_str(v)))
        }
        "D3100" => {
            let v = body.strip_prefix("Radix must be between 2 and 36, got ")?;
            Some(format!(
                "The radix of the formatBase function must be between 2 and 36.  It was given {v}"
            ))
        }
        "D3138" => fixed(
            "The $single() function expected exactly 1 matching result.  Instead it matched more.",
        ),
        "T0410" => {
            let (index, name) =
                if let Some(rest) = body.strip_prefix("Argument count mismatch: expected ") {
                    let (expected, rest) = leading_number(rest)?;
                    let (got, _) = leading_number(rest.strip_prefix(", got ")?)?;
                    let index = if got > expected {
                        expected + 1
                    } else {
                        got + 1
                    };
                    (index, only_call?.to_string())
                } else {
                    let (index, rest) = leading_number(body.strip_prefix("Argument ")?)?;
                    if let Some(named) = rest.strip_prefix(" of function ") {
                        (index, named.split(" does not match").next()?.to_string())
                    } else if rest.starts_with(" must be ") {
                        (index, only_call?.to_string())
                    } else {
                        return None;
                    }
                };
            Some(format!(
                "Argument {index} of function {} does not match function signature",
                function_token(&name)
            ))
        }
        "T0411" => {
            let rest =
                body.strip_prefix("Context value is not a compatible type with argument ")?;
            let (index, rest) = leading_number(rest)?;
            let name = rest.strip_prefix(" of function ")?;
            Some(format!(
                "Context value is not a compatible type with argument {index} of function {}",
                function_token(name)
            ))
        }
        "T0412" => {
            let (index, rest) = leading_number(body.strip_prefix("Argument ")?)?;
            let (name, kind) = if let Some(named) = rest.strip_prefix(" of function ") {
                let (name, kind) = named.split_once(" must be an array of ")?;
                (name.to_string(), kind)
            } else {
                (
                    only_call?.to_string(),
                    rest.strip_prefix(" must be an array of ")?,
                )
            };
            let kind = match kind.trim() {
                "Number" => "numbers",
                "String" => "strings",
                "Boolean" => "booleans",
                "Object" => "objects",
                "Array" => "arrays",
                "Function" => "functions",
                _ => return None,
            };
            Some(format!(
                "Argument {index} of function {} must be an array of {}",
                function_token(&name),
                json_str(kind)
            ))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Step Functions-provided functions

fn register_sfn_functions(ev: &mut Evaluator, refs: &Refs, entropy: &dyn Entropy) {
    let uses = |name: &str| refs.names.contains(name);
    // Registration only fails for a name that shadows a built-in, which none of these do
    // (`random` and `eval` are overridable built-ins).
    if uses("partition") {
        let _ = ev.register_fn("partition", sfn_partition);
    }
    if uses("range") {
        let _ = ev.register_fn("range", sfn_range);
    }
    if uses("hash") {
        let _ = ev.register_fn("hash", sfn_hash);
    }
    if uses("parse") {
        let _ = ev.register_fn("parse", sfn_parse);
    }
    if uses("eval") {
        let _ = ev.register_fn_override("eval", |_: &[JValue]| -> HostFnResult {
            Err(EvaluatorError::ReferenceError(
                "T1006: Attempted to invoke a non-function".to_string(),
            ))
        });
    }
    if uses("random") || uses("uuid") {
        // One draw from the entropy port per evaluation seeds the generator behind every
        // unseeded `$random()` and `$uuid()` of this evaluation.
        let rng = Rc::new(SplitMix64(Cell::new(entropy.next_u64())));
        if uses("random") {
            let rng = Rc::clone(&rng);
            let _ =
                ev.register_fn_override("random", move |args: &[JValue]| sfn_random(args, &rng));
        }
        if uses("uuid") {
            let _ = ev.register_fn("uuid", move |args: &[JValue]| sfn_uuid(args, &rng));
        }
    }
}

/// SplitMix64: small, deterministic.
struct SplitMix64(Cell<u64>);

impl SplitMix64 {
    fn next_u64(&self) -> u64 {
        let s = self.0.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.0.set(s);
        mix64(s)
    }
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A float uniform in [0, 1).
fn unit_f64(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

fn signature_error(index: usize, function: &str) -> EvaluatorError {
    EvaluatorError::TypeError(format!(
        "T0410: Argument {index} of function {} does not match function signature",
        json_str(function)
    ))
}

fn check_arity(
    args: &[JValue],
    min: usize,
    max: usize,
    function: &str,
) -> Result<(), EvaluatorError> {
    if args.len() > max {
        return Err(signature_error(max + 1, function));
    }
    if args.len() < min {
        return Err(signature_error(args.len() + 1, function));
    }
    Ok(())
}

/// An integer parameter, rounded down. `Ok(None)` for undefined.
fn int_arg(args: &[JValue], index: usize, function: &str) -> Result<Option<i64>, EvaluatorError> {
    match args.get(index) {
        None | Some(JValue::Undefined) => Ok(None),
        Some(JValue::Number(n)) if n.is_finite() => Ok(Some(n.floor() as i64)),
        Some(_) => Err(signature_error(index + 1, function)),
    }
}

/// A string parameter. `Ok(None)` for undefined.
fn str_arg<'a>(
    args: &'a [JValue],
    index: usize,
    function: &str,
) -> Result<Option<&'a str>, EvaluatorError> {
    match args.get(index) {
        None | Some(JValue::Undefined) => Ok(None),
        Some(JValue::String(s)) => Ok(Some(s)),
        Some(_) => Err(signature_error(index + 1, function)),
    }
}

/// `$partition(array, size)`: chunks of `size` items; the last may be shorter.
fn sfn_partition(args: &[JValue]) -> HostFnResult {
    check_arity(args, 2, 2, "partition")?;
    let items: Vec<JValue> = match args.first() {
        None | Some(JValue::Undefined) => return Ok(JValue::Undefined),
        Some(JValue::Array(a)) => a.iter().cloned().collect(),
        Some(JValue::Lambda(_) | JValue::Builtin { .. } | JValue::Regex { .. }) => {
            return Err(signature_error(1, "partition"))
        }
        Some(single) => vec![single.clone()],
    };
    let Some(size) = int_arg(args, 1, "partition")? else {
        return Ok(JValue::Undefined);
    };
    if size < 1 {
        return Err(EvaluatorError::EvaluationError(format!(
            "The chunk size argument of the partition function must be a positive integer; got {size}"
        )));
    }
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    Ok(JValue::array(
        items
            .chunks(size)
            .map(|c| JValue::array(c.to_vec()))
            .collect(),
    ))
}

/// `$range(start, end, step)`: `start`, `start + step`, … up to and including `end`.
fn sfn_range(args: &[JValue]) -> HostFnResult {
    check_arity(args, 3, 3, "range")?;
    let (Some(start), Some(end), Some(step)) = (
        int_arg(args, 0, "range")?,
        int_arg(args, 1, "range")?,
        int_arg(args, 2, "range")?,
    ) else {
        return Ok(JValue::Undefined);
    };
    if step == 0 {
        return Err(EvaluatorError::EvaluationError(
            "The step argument of the range function must not be 0".to_string(),
        ));
    }
    let (start, end, step) = (i128::from(start), i128::from(end), i128::from(step));
    let count = if (step > 0 && start <= end) || (step < 0 && start >= end) {
        (end - start) / step + 1
    } else {
        0
    };
    if count > RANGE_MAX_ELEMENTS {
        return Err(EvaluatorError::EvaluationError(format!(
            "The range function cannot return more than {RANGE_MAX_ELEMENTS} elements; it would return {count}"
        )));
    }
    Ok(JValue::array(
        (0..count)
            .map(|i| JValue::Number((start + i * step) as f64))
            .collect(),
    ))
}

/// `$hash(data, algorithm)`: lowercase hex digest of the UTF-8 bytes.
fn sfn_hash(args: &[JValue]) -> HostFnResult {
    use sha2::Digest;
    check_arity(args, 2, 2, "hash")?;
    let (Some(data), Some(algorithm)) = (str_arg(args, 0, "hash")?, str_arg(args, 1, "hash")?)
    else {
        return Ok(JValue::Undefined);
    };
    let digest: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(data.as_bytes()).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data.as_bytes()).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data.as_bytes()).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data.as_bytes()).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data.as_bytes()).to_vec(),
        other => {
            return Err(EvaluatorError::EvaluationError(format!(
                "The hash algorithm {} is not supported; supported algorithms are MD5, SHA-1, \
                 SHA-256, SHA-384 and SHA-512",
                json_str(other)
            )))
        }
    };
    let mut hex = String::with_capacity(digest.len() * 2);
    for b in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    Ok(JValue::string(hex))
}

/// `$random([seed])`: a number in [0, 1); the same seed always gives the same number.
fn sfn_random(args: &[JValue], rng: &SplitMix64) -> HostFnResult {
    check_arity(args, 0, 1, "random")?;
    let bits = match int_arg(args, 0, "random")? {
        Some(seed) => mix64((seed as u64).wrapping_add(0x9E37_79B9_7F4A_7C15)),
        None => rng.next_u64(),
    };
    Ok(JValue::Number(unit_f64(bits)))
}

/// `$uuid()`: a random version-4 UUID.
fn sfn_uuid(args: &[JValue], rng: &SplitMix64) -> HostFnResult {
    check_arity(args, 0, 0, "uuid")?;
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
    b[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
    Ok(JValue::string(
        uuid::Builder::from_random_bytes(b).into_uuid().to_string(),
    ))
}

/// `$parse(jsonString)`: the JSON value the string holds (blank ⇒ `null`).
fn sfn_parse(args: &[JValue]) -> HostFnResult {
    check_arity(args, 1, 1, "parse")?;
    let Some(text) = str_arg(args, 0, "parse")? else {
        return Ok(JValue::Undefined);
    };
    if text.trim().is_empty() {
        return Ok(JValue::Null);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(to_jvalue(&v)),
        Err(e) => Err(EvaluatorError::EvaluationError(format!(
            "The argument of the parse function is not valid JSON: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asl::error::ErrorName;
    use crate::asl::scope::NoVars;
    use crate::ports::SeededEntropy;
    use serde_json::json;

    fn states(input: Value) -> Value {
        json!({
            "input": input,
            "context": {"Execution": {"Id": "arn:exec", "Input": {}}, "State": {"Name": "S"}}
        })
    }

    fn eval_with(
        template: Value,
        states: &Value,
        vars: &dyn VarLookup,
        field: &str,
    ) -> AslResult<Value> {
        let t = JsonataTemplate::compile(&template).expect("compiles");
        let entropy = SeededEntropy::new(7);
        let env = JsonataEnv {
            states,
            vars,
            entropy: &entropy,
        };
        t.eval(&env, field)
    }

    fn eval(template: Value, input: Value) -> AslResult<Value> {
        eval_with(template, &states(input), &NoVars, "Output")
    }

    fn ok(expr: &str) -> Value {
        eval(json!(format!("{{% {expr} %}}")), json!({})).expect("evaluates")
    }

    fn cause(template: Value, input: Value) -> String {
        let e = eval(template, input).expect_err("fails");
        assert_eq!(e.name, ErrorName::QueryEvaluationError);
        e.cause
    }

    #[test]
    fn template_is_send_sync_and_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<JsonataTemplate>();
    }

    #[test]
    fn compile_classifies_values() {
        let t = JsonataTemplate::compile(&json!("{% $states.input %}")).unwrap();
        assert!(t.is_expression());
        assert_eq!(t.expression_source(), Some("$states.input"));
        let t = JsonataTemplate::compile(&json!({"a": "{% 1 %}"})).unwrap();
        assert!(!t.is_expression());
        assert!(!t.is_literal());
        assert_eq!(t.expression_source(), None);
        let t = JsonataTemplate::compile(&json!({"a": [" {% 1 %} ", "$.x", 1]})).unwrap();
        assert!(t.is_literal());
        assert_eq!(t.source(), &json!({"a": [" {% 1 %} ", "$.x", 1]}));
    }

    #[test]
    fn compile_rejects_malformed_and_unparsable() {
        assert!(JsonataTemplate::compile(&json!("{% $states.input")).is_err());
        assert!(JsonataTemplate::compile(&json!({"a": ["{% 1 +  %}"]})).is_err());
        assert!(JsonataTemplate::compile(&json!("{%%}")).is_err());
        assert!(JsonataTemplate::compile(&json!("{%}")).is_err());
        let e = JsonataTemplate::compile(&json!("{% ( %}")).unwrap_err();
        assert!(e.contains("S0207"), "{e}");
        // Not starting with the delimiter: a literal.
        assert!(JsonataTemplate::compile(&json!(" {% 1 %}"))
            .unwrap()
            .is_literal());
        assert!(JsonataTemplate::compile(&json!("1 %}"))
            .unwrap()
            .is_literal());
    }

    #[test]
    fn literals_pass_through() {
        let v = json!({"n": null, "i": 0, "f": 0.1, "b": true, "s": " {% states.input %} ",
                       "l": [null, 0, "$states.input"], "o": {"c": 0}});
        assert_eq!(eval(v.clone(), json!({})).unwrap(), v);
    }

    #[test]
    fn nested_expressions_and_key_order() {
        let out = eval(
            json!({"z": "{% $states.input.a %}", "a": [1, "{% $number('2') %}", {"k": "{% $states.input.b & 'x' %}"}], "m": "lit"}),
            json!({"a": {"q": 1, "b": 2}, "b": "y"}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"z": {"q": 1, "b": 2}, "a": [1, 2, {"k": "yx"}], "m": "lit"})
        );
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "a", "m"]);
        let inner: Vec<&String> = out["z"].as_object().unwrap().keys().collect();
        assert_eq!(inner, ["q", "b"]);
    }

    #[test]
    fn states_members() {
        let st = json!({"input": {"x": 1}, "context": {"State": {"Name": "S"}},
                        "result": {"r": [1, 0, 1]}, "errorOutput": {"Error": "E", "Cause": "C"}});
        let out = eval_with(
            json!({"i": "{% $states.input.x %}", "c": "{% $states.context.State.Name %}",
                   "r": "{% $count($states.result.r[$ = 1]) %}", "e": "{% $states.errorOutput.Error %}"}),
            &st,
            &NoVars,
            "Output",
        )
        .unwrap();
        assert_eq!(out, json!({"i": 1, "c": "S", "r": 2, "e": "E"}));
        // Whole `$states`, in its own order.
        let out = eval_with(json!("{% $states %}"), &st, &NoVars, "Output").unwrap();
        assert_eq!(out, st);
        let out = eval_with(json!("{% $keys($states) %}"), &st, &NoVars, "Output").unwrap();
        assert_eq!(out, json!(["input", "context", "result", "errorOutput"]));
        // Absent members are undefined.
        let e = eval_with(
            json!("{% $states.result %}"),
            &states(json!({})),
            &NoVars,
            "Output",
        )
        .unwrap_err();
        assert_eq!(
            e.cause,
            "The JSONata expression '$states.result' specified for the field 'Output' returned nothing (undefined)."
        );
    }

    #[test]
    fn context_item_is_undefined() {
        let c = cause(json!("{% $ %}"), json!({"a": 1}));
        assert_eq!(c, "The JSONata expression '$' specified for the field 'Output' returned nothing (undefined).");
        let c = cause(json!({"a": "{% a %}"}), json!({"a": 1}));
        assert!(c.ends_with("returned nothing (undefined)."), "{c}");
    }

    #[test]
    fn variables() {
        let mut vars = Map::new();
        vars.insert("var_input_value".into(), json!("string literal"));
        vars.insert("var_constant_1".into(), json!(1));
        vars.insert("unused".into(), json!({"big": [1, 2, 3]}));
        let out = eval_with(
            json!({"v": "{% $var_input_value %}", "e": "{% $sum($states.input.n) + $var_constant_1 %}"}),
            &states(json!({"n": [1, 2, 3]})),
            &vars,
            "Output",
        )
        .unwrap();
        assert_eq!(out, json!({"v": "string literal", "e": 7}));
        // Unicode names.
        vars.insert("café".into(), json!(3));
        let out = eval_with(
            json!("{% $café * 2 %}"),
            &states(json!({})),
            &vars,
            "Output",
        )
        .unwrap();
        assert_eq!(out, json!(6));
        // Assignments inside one expression do not leak into the next.
        let out = eval_with(
            json!(["{% ($x := 5; $x) %}", "{% $exists($x) %}"]),
            &states(json!({})),
            &vars,
            "Items",
        )
        .unwrap();
        assert_eq!(out, json!([5, false]));
    }

    #[test]
    fn undefined_errors_name_the_field_path() {
        assert_eq!(
            cause(json!("{% $doesNotExist %}"), json!({})),
            "The JSONata expression '$doesNotExist' specified for the field 'Output' returned nothing (undefined)."
        );
        assert_eq!(
            cause(json!({"result": "{% $doesNotExist %}"}), json!({})),
            "The JSONata expression '$doesNotExist' specified for the field 'Output/result' returned nothing (undefined)."
        );
        assert_eq!(
            cause(json!({"a": {"b": [0, "{%   $nope   %}"]}}), json!({})),
            "The JSONata expression '$nope' specified for the field 'Output/a/b/1' returned nothing (undefined)."
        );
        let e = eval_with(
            json!({"FunctionName": "{% $x %}"}),
            &states(json!({})),
            &NoVars,
            "Arguments",
        )
        .unwrap_err();
        assert_eq!(
            e.cause,
            "The JSONata expression '$x' specified for the field 'Arguments/FunctionName' returned nothing (undefined)."
        );
    }

    #[test]
    fn evaluation_errors() {
        assert_eq!(
            cause(json!({"FunctionResult": "{% $randomSeeded($states.input.FunctionInput.fst) %}"}), json!({"FunctionInput": "fst"})),
            "The JSONata expression '$randomSeeded($states.input.FunctionInput.fst)' specified for the field \
             'Output/FunctionResult' threw an error during evaluation. T1006: Attempted to invoke a non-function"
        );
        let c = cause(json!("{% $states.input.s + 1 %}"), json!({"s": "x"}));
        assert!(
            c.ends_with("T2001: The left side of the \"+\" operator must evaluate to a number"),
            "{c}"
        );
        let c = cause(json!("{% 1 - $states.input.s %}"), json!({"s": "x"}));
        assert!(
            c.ends_with("T2002: The right side of the \"-\" operator must evaluate to a number"),
            "{c}"
        );
        let c = cause(json!("{% $number('abc') %}"), json!({}));
        assert!(
            c.ends_with("D3030: Unable to cast value to a number: \"abc\""),
            "{c}"
        );
        let c = cause(json!("{% $uppercase(1) %}"), json!({}));
        assert!(
            c.ends_with(
                "T0410: Argument 1 of function \"uppercase\" does not match function signature"
            ),
            "{c}"
        );
        let c = cause(json!("{% $sum(1, 2) %}"), json!({}));
        assert!(
            c.ends_with("T0410: Argument 2 of function \"sum\" does not match function signature"),
            "{c}"
        );
        let c = cause(json!("{% $error('boom') %}"), json!({}));
        assert!(
            c.ends_with("threw an error during evaluation. D3137: boom"),
            "{c}"
        );
        let c = cause(json!("{% $eval('1 + 1') %}"), json!({}));
        assert!(
            c.ends_with("T1006: Attempted to invoke a non-function"),
            "{c}"
        );
    }

    #[test]
    fn unsupported_results() {
        assert_eq!(
            cause(json!("{% $fn := function($x){$x} %}"), json!({})),
            "The JSONata expression '$fn := function($x){$x}' specified for the field 'Output' returned an unsupported result type."
        );
        let c = cause(json!({"a": "{% {'f': $uppercase} %}"}), json!({}));
        assert!(
            c.ends_with("for the field 'Output/a' returned an unsupported result type."),
            "{c}"
        );
    }

    #[test]
    fn type_error_helper() {
        let t = JsonataTemplate::compile(&json!("{% {'foo': 'bar'} %}")).unwrap();
        let entropy = SeededEntropy::new(1);
        let st = states(json!({}));
        let env = JsonataEnv {
            states: &st,
            vars: &NoVars,
            entropy: &entropy,
        };
        let v = t.eval(&env, "Items").unwrap();
        assert_eq!(type_name(&v), "object");
        let e = t.type_error("Items", "array", &v);
        assert_eq!(e.name, ErrorName::QueryEvaluationError);
        assert_eq!(
            e.cause,
            "The JSONata expression '{'foo': 'bar'}' specified for the field 'Items' returned an unexpected \
             result type. Expected 'array', but was 'object' for value: {\"foo\":\"bar\"}"
        );
        assert_eq!(
            unexpected_type_cause("Items", "'string'", "array", &json!("string")),
            "The JSONata expression ''string'' specified for the field 'Items' returned an unexpected result \
             type. Expected 'array', but was 'string' for value: \"string\""
        );
        for (v, n) in [
            (json!(null), "null"),
            (json!(1), "number"),
            (json!(true), "boolean"),
            (json!([]), "array"),
        ] {
            assert_eq!(type_name(&v), n);
        }
    }

    #[test]
    fn numbers_print_like_jsonata_js() {
        assert_eq!(ok("1 + 1"), json!(2));
        assert!(ok("1.5 * 2").is_u64() || ok("1.5 * 2").is_i64());
        assert_eq!(ok("1.5 * 2"), json!(3));
        assert_eq!(ok("0.1 + 0.2"), json!(0.30000000000000004));
        assert_eq!(ok("-0"), json!(0));
        assert_eq!(ok("10 / 4"), json!(2.5));
        assert_eq!(ok("[1, 2.5, -3]"), json!([1, 2.5, -3]));
        assert_eq!(number_to_json(1e300), Some(json!(1e300)));
        assert_eq!(number_to_json(f64::NAN), None);
        assert_eq!(
            eval(json!("{% $states.input %}"), json!({"big": 12345678901u64})).unwrap(),
            json!({"big": 12345678901u64})
        );
    }

    #[test]
    fn regex_and_quotes() {
        assert_eq!(ok(r#"$contains("hello$world", /^hello\$/)"#), json!(true));
        assert_eq!(ok(r#"$contains('hello$world', /^hello\ /)"#), json!(false));
        assert_eq!(
            eval(json!("{% $states.input = '\"' %}"), json!("\"")).unwrap(),
            json!(true)
        );
        assert_eq!(
            eval(
                json!("{% $merge([$states.input.part1, $states.input.part2]) %}"),
                json!({"part1": {"hello": "world"}, "part2": {"foo": "bar"}})
            )
            .unwrap(),
            json!({"hello": "world", "foo": "bar"})
        );
    }

    #[test]
    fn partition() {
        for (arr, n, want) in [
            (json!([0]), 1, json!([[0]])),
            (json!([0, 1, 2]), 2, json!([[0, 1], [2]])),
            (json!([0, 1, 2, 3]), 5, json!([[0, 1, 2, 3]])),
            (json!([]), 2, json!([])),
        ] {
            let out = eval(
                json!("{% $partition($states.input.a, $states.input.n) %}"),
                json!({"a": arr, "n": n}),
            )
            .unwrap();
            assert_eq!(out, want);
        }
        assert_eq!(
            ok("$partition([1,2,3,4,5,6,7,8,9], 3)"),
            json!([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
        );
        assert_eq!(ok("$partition([1,2,3], 2.9)"), json!([[1, 2], [3]]));
        let c = cause(json!("{% $partition([1], 0) %}"), json!({}));
        assert!(c.contains("threw an error during evaluation."), "{c}");
        let c = cause(json!("{% $partition([1], 'x') %}"), json!({}));
        assert!(
            c.ends_with(
                "T0410: Argument 2 of function \"partition\" does not match function signature"
            ),
            "{c}"
        );
    }

    #[test]
    fn range() {
        assert_eq!(ok("$range(0, 10, 2)"), json!([0, 2, 4, 6, 8, 10]));
        assert_eq!(ok("$range(0, 10, 3)"), json!([0, 3, 6, 9]));
        assert_eq!(ok("$range(1, 9, 9)"), json!([1]));
        assert_eq!(ok("$range(10, 0, -5)"), json!([10, 5, 0]));
        assert_eq!(ok("$range(0, 5, -1)"), json!([]));
        assert_eq!(ok("$range(0.9, 3.7, 1.9)"), json!([0, 1, 2, 3]));
        assert!(cause(json!("{% $range(0, 5, 0) %}"), json!({})).contains("threw an error"));
        assert!(cause(json!("{% $range(0, 5000, 1) %}"), json!({})).contains("threw an error"));
        let c = cause(json!("{% $range(0, 5) %}"), json!({}));
        assert!(
            c.ends_with(
                "T0410: Argument 3 of function \"range\" does not match function signature"
            ),
            "{c}"
        );
    }

    #[test]
    fn hash() {
        assert_eq!(
            ok("$hash('input data', 'SHA-1')"),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        assert_eq!(
            ok("$hash('', 'MD5')"),
            json!("d41d8cd98f00b204e9800998ecf8427e")
        );
        assert_eq!(
            ok("$hash('abc', 'SHA-256')"),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(ok("$length($hash('abc', 'SHA-384'))"), json!(96));
        assert_eq!(ok("$length($hash('abc', 'SHA-512'))"), json!(128));
        assert!(cause(json!("{% $hash('abc', 'SHA-3') %}"), json!({})).contains("threw an error"));
    }

    #[test]
    fn random_and_uuid() {
        let a = ok("$random(42)");
        assert_eq!(a, ok("$random(42)"));
        assert_eq!(a, ok("$random(42.7)"));
        assert_ne!(a, ok("$random(43)"));
        for v in [a, ok("$random()")] {
            let f = v.as_f64().unwrap();
            assert!((0.0..1.0).contains(&f), "{f}");
        }
        // Unseeded values differ within one evaluation; seeded entropy makes runs repeatable.
        let pair = ok("[$random(), $random()]");
        assert_ne!(pair[0], pair[1]);
        assert_eq!(pair, ok("[$random(), $random()]"));
        let u = ok("$uuid()");
        let s = u.as_str().unwrap();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        let two = ok("[$uuid(), $uuid()]");
        assert_ne!(two[0], two[1]);
        let c = cause(json!("{% $random('x') %}"), json!({}));
        assert!(
            c.ends_with(
                "T0410: Argument 1 of function \"random\" does not match function signature"
            ),
            "{c}"
        );
    }

    #[test]
    fn parse() {
        assert_eq!(
            ok(r#"$parse('{"a": [1, 2.5, null]}')"#),
            json!({"a": [1, 2.5, null]})
        );
        assert_eq!(ok("$parse('\"x\"')"), json!("x"));
        assert_eq!(ok("$parse('  ')"), json!(null));
        assert!(cause(json!("{% $parse('{') %}"), json!({})).contains("threw an error"));
    }

    #[test]
    fn variables_shadow_sfn_functions() {
        // A workflow variable wins over a Step Functions function of the same name.
        let mut vars = Map::new();
        vars.insert("hash".into(), json!("h"));
        let out = eval_with(json!("{% $hash %}"), &states(json!({})), &vars, "Output").unwrap();
        assert_eq!(out, json!("h"));
    }

    #[test]
    fn scan_finds_references() {
        let s = scan_references("$states.input.a + $states . `context`.b + $foo($bar) + $$ + $");
        assert_eq!(
            s.states,
            StatesUse::Members(vec!["input".into(), "context".into()])
        );
        assert_eq!(s.names, vec!["foo".to_string(), "bar".to_string()]);
        assert_eq!(s.calls, vec!["foo".to_string()]);
        assert_eq!(scan_references("$keys($states)").states, StatesUse::Whole);
        assert_eq!(
            scan_references("$states.input.a % 2").states,
            StatesUse::Whole
        );
        assert_eq!(scan_references("1").states, StatesUse::Unused);
    }
}
