//! Jayway-style JSONPath, as Step Functions evaluates it.
//!
//! Why not a crate: serde_json_path / jsonpath-rust implement RFC 9535, whose results differ
//! from Jayway's (definite paths return the node itself, not a one-element list; missing
//! leaves are errors for definite paths; `$$`/`$var` roots; AWS's error texts). Jayway also
//! has quirks of its own that AWS inherits and that no RFC crate reproduces: `['a','b']` at
//! the end of a path merges the two members into one object, `[1:-1]` is empty, a filter
//! applied to an object tests the object itself, `..` followed by a non-final array step
//! applies the rest of the path to every element, `'1' == 1` is true. Hence this small
//! hand-written parser and evaluator (and a tiny regex engine for `=~`, as the crate has no
//! regex dependency).
//!
//! Semantics in short:
//! * A path is *definite* (Jayway's notion) when every step selects at most one node: names,
//!   single indexes, and a multi-name `['a','b']` in last position. A definite path yields
//!   the node itself, or [`PathError::NoResults`] when it selects nothing.
//! * Any other path yields a JSON array of all matches in document order; nothing selected is
//!   an empty array, never an error (AWS returns `[]` for `$.no.such[*]`).
//! * A trailing function (`length()`, `size()`, `min()`, `max()`, `avg()`, `sum()`,
//!   `stddev()`, `keys()`, `first()`, `last()`) applies to what the rest of the path yields.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Number, Value};

/// What a path is evaluated against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$…`
    Input,
    /// `$$…`
    Context,
    /// `$name…`
    Variable(String),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct PathSyntaxError {
    pub message: String,
    /// Character offset in the path text.
    pub offset: usize,
}

/// Evaluation failures, rendered by the caller into AWS's message for the field at hand.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PathError {
    /// A definite path that selects nothing. `normalized` is Jayway's form, e.g. `$['X']`.
    #[error("No results for path: {normalized}")]
    NoResults { normalized: String },
    /// ResultPath cannot be applied (e.g. a field on an array). Also used for a trailing
    /// aggregation function over an array without numbers (Jayway's message).
    #[error("{message}")]
    CannotSet { message: String },
}

#[derive(Debug, Clone)]
pub struct JsonPath {
    source: String,
    root: Root,
    path: Compiled,
    /// Only names and single indexes, no function: [`Self::select_ref`] applies.
    simple: bool,
}

impl JsonPath {
    pub fn parse(source: &str) -> Result<JsonPath, PathSyntaxError> {
        let mut p = Parser {
            src: source,
            pos: 0,
        };
        let root = p.root()?;
        let path = p.steps(false)?;
        let simple = path.func.is_none()
            && path
                .steps
                .iter()
                .all(|s| matches!(s, Step::Name(..) | Step::Index(_)));
        Ok(JsonPath {
            source: source.to_string(),
            root,
            path,
            simple,
        })
    }
    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn root(&self) -> &Root {
        &self.root
    }
    /// Only `.name`, `['name']` and `[index]` steps (what ResultPath, ItemsPath, `…Path`
    /// fields and Choice `Variable` allow).
    pub fn is_reference(&self) -> bool {
        self.simple
            && self
                .path
                .steps
                .iter()
                .all(|s| !matches!(s, Step::Index(i) if *i < 0))
    }
    /// Selects at most one node (no wildcards, slices, filters, deep scan, unions, functions):
    /// [`Self::select_ref`] finds it.
    pub fn is_definite(&self) -> bool {
        self.simple
    }
    /// Number of selector steps after the root (`$` alone has none; a function is not a step).
    pub fn steps_count(&self) -> usize {
        self.path.steps.len()
    }
    /// Jayway's normalized form, relative to the root value: `$.a.b[0]` → `$['a']['b'][0]`,
    /// `$$.Execution.Id` → `$['Execution']['Id']`, `$..x[*]` → `$..['x'][*]`.
    pub fn normalized(&self) -> String {
        self.path.normalized(self.path.steps.len(), true)
    }
    /// Evaluates against `root` (the value for [`Self::root`]). Definite paths return the
    /// node or `NoResults`; indefinite paths return an array of matches (maybe empty).
    pub fn select(&self, root: &Value) -> Result<Value, PathError> {
        self.path.eval(root, root).map(Cow::into_owned)
    }
    /// The node a definite path selects, without copying.
    pub fn select_ref<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        if !self.simple {
            return None;
        }
        let mut cur = root;
        for step in &self.path.steps {
            cur = match (step, cur) {
                (Step::Name(name, _), Value::Object(m)) => member(m, name)?,
                (Step::Index(i), Value::Array(a)) => a.get(resolve_index(*i, a.len())?)?,
                _ => return None,
            };
        }
        Some(cur)
    }
    /// Jayway's exception text when this (Jayway-definite) path selects nothing in `root`:
    /// `No results for path: $['a']['b']` when the last step is missing or cannot apply,
    /// `Missing property in path $['a']` when an intermediate member is missing (AWS reports
    /// the latter for `$.no.such.path` on an input without `no`). `None` when the path
    /// selects something or is indefinite (those never fail).
    pub fn not_found_message(&self, root: &Value) -> Option<String> {
        if !self.path.definite {
            return None;
        }
        match self.path.resolve(root) {
            Ok(_) => None,
            Err(Miss::Property(k)) => Some(format!(
                "Missing property in path {}",
                self.path.normalized(k, false)
            )),
            Err(Miss::NoResults) => Some(format!("No results for path: {}", self.normalized())),
        }
    }
    /// ResultPath: writes `value` at this reference path inside `target`, creating missing
    /// object fields. `$` replaces the whole target. `CannotSet` when a step meets a
    /// non-object (name) or a non-array / missing element (index), or when the path is not a
    /// reference path over the input; `target` may then have gained the empty objects created
    /// before the failing step (callers discard it).
    pub fn set(&self, target: &mut Value, value: Value) -> Result<(), PathError> {
        if self.root != Root::Input || !self.is_reference() {
            return Err(PathError::CannotSet {
                message: format!(
                    "Unable to apply ResultPath '{}': it is not a reference path over the state input",
                    self.source
                ),
            });
        }
        let Some((last, init)) = self.path.steps.split_last() else {
            *target = value;
            return Ok(());
        };
        let mut cur = target;
        for (k, step) in init.iter().enumerate() {
            cur = match (step, cur) {
                (Step::Name(name, _), Value::Object(m)) => m
                    .entry(name.as_str())
                    .or_insert_with(|| Value::Object(Map::new())),
                (Step::Index(i), Value::Array(a)) => {
                    let len = a.len();
                    match resolve_index(*i, len).and_then(|j| a.get_mut(j)) {
                        Some(v) => v,
                        None => return Err(self.cannot_set(k, step, &Value::Array(Vec::new()))),
                    }
                }
                (_, other) => return Err(self.cannot_set(k, step, other)),
            };
        }
        match (last, cur) {
            (Step::Name(name, _), Value::Object(m)) => {
                m.insert(name.clone(), value);
                Ok(())
            }
            (Step::Index(i), Value::Array(a)) => {
                let len = a.len();
                match resolve_index(*i, len).and_then(|j| a.get_mut(j)) {
                    Some(slot) => {
                        *slot = value;
                        Ok(())
                    }
                    None => Err(self.cannot_set(init.len(), last, &Value::Array(Vec::new()))),
                }
            }
            (_, other) => Err(self.cannot_set(init.len(), last, other)),
        }
    }

    /// `k` steps were applied; `step` cannot apply to `found`.
    fn cannot_set(&self, k: usize, step: &Step, found: &Value) -> PathError {
        let at = self.path.normalized(k, false);
        let detail = match step {
            Step::Index(i) if found.is_array() => format!("{at} has no element at index {i}"),
            Step::Index(_) => format!("{at} is {}, not an array", kind(found)),
            _ => format!("{at} is {}, not an object", kind(found)),
        };
        PathError::CannotSet {
            message: format!(
                "Unable to apply ResultPath '{}' to the input: {detail}",
                self.source
            ),
        }
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for JsonPath {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `m[name]`. Items and context objects are small: comparing a few short keys costs less than
/// hashing the name (SipHash, through serde_json's IndexMap) and then comparing anyway.
fn member<'v>(m: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    if m.len() <= 8 {
        m.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| v)
    } else {
        m.get(name)
    }
}

/// Jayway index resolution: negative counts from the end; out of range is `None`.
fn resolve_index(i: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let j = if i < 0 { len + i } else { i };
    if (0..len).contains(&j) {
        usize::try_from(j).ok()
    } else {
        None
    }
}

// ------------------------------------------------------------------------------------------
// Compiled form and evaluation
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    /// `.name` / `['name']` (the quote is kept for the normalized form).
    Name(String, char),
    /// `['a','b']` not in last position: each member in turn.
    Names(Vec<String>, char),
    /// `['a','b']` in last position: one object with the members present (Jayway's merge).
    Merge(Vec<String>, char),
    /// `[0]`, `[-1]`
    Index(i64),
    /// `[0,2]`
    Indexes(Vec<i64>),
    /// `[1:3]`, `[:2]`, `[-2:]` (Jayway slice arithmetic, no step).
    Slice(Option<i64>, Option<i64>),
    /// `.*` / `[*]`
    Wildcard,
    /// `..`: applies the next step at every level (always followed by a step).
    Scan,
    /// `[?(…)]`
    Filter(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Length,
    Size,
    Min,
    Max,
    Avg,
    Sum,
    Stddev,
    Keys,
    First,
    Last,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "length" => Func::Length,
            "size" => Func::Size,
            "min" => Func::Min,
            "max" => Func::Max,
            "avg" => Func::Avg,
            "sum" => Func::Sum,
            "stddev" => Func::Stddev,
            "keys" => Func::Keys,
            "first" => Func::First,
            "last" => Func::Last,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Func::Length => "length",
            Func::Size => "size",
            Func::Min => "min",
            Func::Max => "max",
            Func::Avg => "avg",
            Func::Sum => "sum",
            Func::Stddev => "stddev",
            Func::Keys => "keys",
            Func::First => "first",
            Func::Last => "last",
        }
    }
    fn apply(self, v: &Value) -> Result<Value, PathError> {
        Ok(match self {
            Func::Length | Func::Size => match v {
                Value::Array(a) => a.len().into(),
                Value::Object(m) => m.len().into(),
                _ => Value::Null,
            },
            Func::Keys => match v {
                Value::Object(m) => m.keys().map(|k| Value::String(k.clone())).collect(),
                _ => Value::Null,
            },
            Func::First => v
                .as_array()
                .and_then(|a| a.first())
                .cloned()
                .unwrap_or(Value::Null),
            Func::Last => v
                .as_array()
                .and_then(|a| a.last())
                .cloned()
                .unwrap_or(Value::Null),
            Func::Min | Func::Max | Func::Avg | Func::Sum | Func::Stddev => {
                let nums: Vec<f64> = v
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).collect())
                    .unwrap_or_default();
                if nums.is_empty() {
                    return Err(PathError::CannotSet {
                        message:
                            "Aggregation function attempted to calculate value using empty array"
                                .into(),
                    });
                }
                let n = nums.len() as f64;
                let sum: f64 = nums.iter().sum();
                let r = match self {
                    Func::Min => nums.iter().copied().fold(f64::INFINITY, f64::min),
                    Func::Max => nums.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    Func::Sum => sum,
                    Func::Avg => sum / n,
                    _ => {
                        let mean = sum / n;
                        (nums.iter().map(|x| x * x).sum::<f64>() / n - mean * mean).sqrt()
                    }
                };
                Value::from(r)
            }
        })
    }
}

/// Why a definite path selected nothing.
enum Miss {
    /// The last step is missing, or a step could not apply (wrong type, index out of range).
    NoResults,
    /// The member of step `k - 1` (not the last) is missing: Jayway's "Missing property".
    Property(usize),
}

#[derive(Debug, Clone)]
struct Compiled {
    steps: Vec<Step>,
    func: Option<Func>,
    /// Jayway's definiteness: every step selects at most one node.
    definite: bool,
}

impl Compiled {
    fn new(steps: Vec<Step>, func: Option<Func>) -> Compiled {
        let definite = steps
            .iter()
            .all(|s| matches!(s, Step::Name(..) | Step::Index(_) | Step::Merge(..)));
        Compiled {
            steps,
            func,
            definite,
        }
    }

    /// `$` followed by the first `k` steps (and the function when `with_func`).
    fn normalized(&self, k: usize, with_func: bool) -> String {
        let mut out = String::from("$");
        for step in self.steps.iter().take(k) {
            match step {
                Step::Name(n, q) => {
                    out.push('[');
                    out.push(*q);
                    out.push_str(n);
                    out.push(*q);
                    out.push(']');
                }
                Step::Names(ns, q) | Step::Merge(ns, q) => {
                    let quoted: Vec<String> = ns.iter().map(|n| format!("{q}{n}{q}")).collect();
                    out.push('[');
                    out.push_str(&quoted.join(","));
                    out.push(']');
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
                Step::Indexes(is) => {
                    let parts: Vec<String> = is.iter().map(i64::to_string).collect();
                    out.push_str(&format!("[{}]", parts.join(",")));
                }
                Step::Slice(f, t) => {
                    let f = f.map(|v| v.to_string()).unwrap_or_default();
                    let t = t.map(|v| v.to_string()).unwrap_or_default();
                    out.push_str(&format!("[{f}:{t}]"));
                }
                Step::Wildcard => out.push_str("[*]"),
                Step::Scan => out.push_str(".."),
                Step::Filter(_) => out.push_str("[?]"),
            }
        }
        if let (true, Some(f)) = (with_func, self.func) {
            out.push_str(&format!(".{}()", f.name()));
        }
        out
    }

    /// `node` is what the path's root stands for; `root` is the document `$` means inside
    /// filters.
    fn eval<'v>(&self, node: &'v Value, root: &'v Value) -> Result<Cow<'v, Value>, PathError> {
        let base = if self.definite {
            self.resolve(node).map_err(|_| PathError::NoResults {
                normalized: self.normalized(self.steps.len(), true),
            })?
        } else {
            let mut out = Vec::new();
            walk(&self.steps, 0, node, root, &mut out);
            Cow::Owned(Value::Array(out.into_iter().map(Cow::into_owned).collect()))
        };
        match self.func {
            None => Ok(base),
            Some(f) => f.apply(&base).map(Cow::Owned),
        }
    }

    /// Definite paths only.
    fn resolve<'v>(&self, node: &'v Value) -> Result<Cow<'v, Value>, Miss> {
        let n = self.steps.len();
        let mut cur = node;
        for (k, step) in self.steps.iter().enumerate() {
            let leaf = k + 1 == n && self.func.is_none();
            cur = match (step, cur) {
                (Step::Name(name, _), Value::Object(m)) => match member(m, name) {
                    Some(v) => v,
                    None if leaf => return Err(Miss::NoResults),
                    None => return Err(Miss::Property(k + 1)),
                },
                (Step::Index(i), Value::Array(a)) => {
                    match resolve_index(*i, a.len()).and_then(|j| a.get(j)) {
                        Some(v) => v,
                        None => return Err(Miss::NoResults),
                    }
                }
                (Step::Merge(names, _), Value::Object(m)) => {
                    return Ok(Cow::Owned(merge(m, names)))
                }
                _ => return Err(Miss::NoResults),
            };
        }
        Ok(Cow::Borrowed(cur))
    }
}

fn merge(m: &Map<String, Value>, names: &[String]) -> Value {
    let mut out = Map::new();
    for name in names {
        if let Some(v) = m.get(name.as_str()) {
            out.insert(name.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// Jayway's slice arithmetic, as raw indexes (negative ones count from the end, out-of-range
/// ones are skipped by the caller). `[f:t]` does not normalize negative bounds before
/// comparing them: `[1:-1]` is empty, `[-2:5]` visits `-2, -1, 0 … 4`.
fn slice_range(from: Option<i64>, to: Option<i64>, len: usize) -> std::ops::Range<i64> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    if len == 0 {
        return 0..0;
    }
    match (from, to) {
        (Some(f), None) => {
            let f = if f < 0 { len + f } else { f }.max(0);
            f.min(len)..len
        }
        (Some(f), Some(t)) => {
            let t = t.min(len);
            if f >= t {
                0..0
            } else {
                f.max(-len)..t
            }
        }
        (None, Some(t)) => {
            let t = if t < 0 { len + t } else { t }.min(len);
            0..t.max(0)
        }
        (None, None) => 0..0,
    }
}

/// Evaluates `steps[i..]` at `node`, collecting matches (indefinite paths: never fails).
fn walk<'v>(
    steps: &'v [Step],
    i: usize,
    node: &'v Value,
    root: &'v Value,
    out: &mut Vec<Cow<'v, Value>>,
) {
    let Some(step) = steps.get(i) else {
        out.push(Cow::Borrowed(node));
        return;
    };
    let next = i + 1;
    match (step, node) {
        (Step::Name(name, _), Value::Object(m)) => {
            if let Some(v) = m.get(name.as_str()) {
                walk(steps, next, v, root, out);
            }
        }
        (Step::Names(names, _), Value::Object(m)) => {
            for v in names.iter().filter_map(|n| m.get(n.as_str())) {
                walk(steps, next, v, root, out);
            }
        }
        (Step::Merge(names, _), Value::Object(m)) => out.push(Cow::Owned(merge(m, names))),
        (Step::Index(k), Value::Array(a)) => {
            if let Some(v) = resolve_index(*k, a.len()).and_then(|j| a.get(j)) {
                walk(steps, next, v, root, out);
            }
        }
        (Step::Indexes(ks), Value::Array(a)) => {
            for v in ks
                .iter()
                .filter_map(|k| resolve_index(*k, a.len()).and_then(|j| a.get(j)))
            {
                walk(steps, next, v, root, out);
            }
        }
        (Step::Slice(f, t), Value::Array(a)) => {
            for k in slice_range(*f, *t, a.len()) {
                if let Some(v) = resolve_index(k, a.len()).and_then(|j| a.get(j)) {
                    walk(steps, next, v, root, out);
                }
            }
        }
        (Step::Wildcard, Value::Object(m)) => {
            for v in m.values() {
                walk(steps, next, v, root, out);
            }
        }
        (Step::Wildcard, Value::Array(a)) => {
            for v in a {
                walk(steps, next, v, root, out);
            }
        }
        // Jayway applies a filter to an object itself, and to the elements of an array.
        (Step::Filter(e), Value::Object(_)) if e.test(node, root) => {
            walk(steps, next, node, root, out)
        }
        (Step::Filter(e), Value::Array(a)) => {
            for v in a {
                if e.test(v, root) {
                    walk(steps, next, v, root, out);
                }
            }
        }
        (Step::Scan, _) => scan(steps, next, node, root, out),
        _ => {}
    }
}

/// Jayway's deep scan (`ScanPathToken.walk`): at every object/array (pre-order, the node
/// itself first), applies `steps[t]` where it can apply.
fn scan<'v>(
    steps: &'v [Step],
    t: usize,
    node: &'v Value,
    root: &'v Value,
    out: &mut Vec<Cow<'v, Value>>,
) {
    let Some(target) = steps.get(t) else {
        return;
    };
    let applies = |n: &Value| match target {
        Step::Name(name, _) => n.as_object().is_some_and(|m| m.contains_key(name.as_str())),
        Step::Merge(names, _) => n
            .as_object()
            .is_some_and(|m| names.iter().all(|k| m.contains_key(k.as_str()))),
        Step::Names(..) => n.is_object(),
        Step::Index(_) | Step::Indexes(_) | Step::Slice(..) => n.is_array(),
        Step::Wildcard => true,
        Step::Filter(e) => e.test(n, root),
        Step::Scan => false,
    };
    match node {
        Value::Object(m) => {
            if applies(node) {
                walk(steps, t, node, root, out);
            }
            for v in m.values() {
                scan(steps, t, v, root, out);
            }
        }
        Value::Array(a) => {
            if applies(node) {
                if t + 1 == steps.len() {
                    walk(steps, t, node, root, out);
                } else {
                    // Jayway quirk: the rest of the path applies to every element.
                    for v in a {
                        walk(steps, t + 1, v, root, out);
                    }
                }
            }
            for v in a {
                scan(steps, t, v, root, out);
            }
        }
        _ => {}
    }
}

// ------------------------------------------------------------------------------------------
// Filters
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// A path alone: true when it selects something (a `null` member exists).
    Exists(SubPath),
    Cmp(Operand, Op, Operand),
}

#[derive(Debug, Clone)]
struct SubPath {
    /// `$…` (the document) rather than `@…` (the item under test).
    doc: bool,
    path: Compiled,
}

#[derive(Debug, Clone)]
enum Operand {
    Path(SubPath),
    Lit(Value),
    Regex(Regex),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    TypedEq,
    TypedNe,
    Lt,
    Le,
    Gt,
    Ge,
    Matches,
    In,
    Nin,
    Contains,
    SubsetOf,
    AnyOf,
    NoneOf,
    Size,
    Empty,
}

/// A resolved operand (Jayway's `ValueNode`).
enum Val<'a> {
    Undefined,
    Json(Cow<'a, Value>),
    Regex(&'a Regex),
}

impl SubPath {
    fn eval<'a>(&self, item: &'a Value, root: &'a Value) -> Result<Cow<'a, Value>, PathError> {
        self.path.eval(if self.doc { root } else { item }, root)
    }
}

impl Expr {
    fn test(&self, item: &Value, root: &Value) -> bool {
        match self {
            Expr::Or(a, b) => a.test(item, root) || b.test(item, root),
            Expr::And(a, b) => a.test(item, root) && b.test(item, root),
            Expr::Not(e) => !e.test(item, root),
            Expr::Exists(p) => match p.eval(item, root) {
                Ok(v) => {
                    p.path.definite
                        || p.path.func.is_some()
                        || v.as_array().is_some_and(|a| !a.is_empty())
                }
                Err(_) => false,
            },
            Expr::Cmp(l, op, r) => op.apply(&resolve(l, item, root), &resolve(r, item, root)),
        }
    }
}

fn resolve<'a>(operand: &'a Operand, item: &'a Value, root: &'a Value) -> Val<'a> {
    match operand {
        Operand::Path(p) => p.eval(item, root).map_or(Val::Undefined, Val::Json),
        Operand::Lit(v) => Val::Json(Cow::Borrowed(v)),
        Operand::Regex(r) => Val::Regex(r),
    }
}

impl Op {
    fn apply(self, l: &Val<'_>, r: &Val<'_>) -> bool {
        let (lj, rj) = match (l, r) {
            (Val::Json(a), Val::Json(b)) => (Some(a.as_ref()), Some(b.as_ref())),
            (Val::Json(a), _) => (Some(a.as_ref()), None),
            (_, Val::Json(b)) => (None, Some(b.as_ref())),
            _ => (None, None),
        };
        match self {
            Op::Eq => matches!((lj, rj), (Some(a), Some(b)) if loose_eq(a, b)),
            Op::Ne => !matches!((lj, rj), (Some(a), Some(b)) if loose_eq(a, b)),
            Op::TypedEq => matches!((lj, rj), (Some(a), Some(b)) if typed_eq(a, b)),
            Op::TypedNe => !matches!((lj, rj), (Some(a), Some(b)) if typed_eq(a, b)),
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let ord = match (lj, rj) {
                    (Some(Value::Number(a)), Some(Value::Number(b))) => num_cmp(a, b),
                    (Some(Value::String(a)), Some(Value::String(b))) => {
                        Some(a.encode_utf16().cmp(b.encode_utf16()))
                    }
                    _ => None,
                };
                match (self, ord) {
                    (Op::Lt, Some(o)) => o == Ordering::Less,
                    (Op::Le, Some(o)) => o != Ordering::Greater,
                    (Op::Gt, Some(o)) => o == Ordering::Greater,
                    (Op::Ge, Some(o)) => o != Ordering::Less,
                    _ => false,
                }
            }
            Op::Matches => {
                let (re, input) = match (l, r) {
                    (Val::Regex(_), Val::Regex(_)) => return false,
                    (Val::Regex(re), other) | (other, Val::Regex(re)) => (re, other),
                    _ => return false,
                };
                let text = match input {
                    Val::Json(v) => match v.as_ref() {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => String::new(),
                    },
                    _ => String::new(),
                };
                re.is_match(&text)
            }
            Op::In | Op::Nin => {
                let Some(Value::Array(list)) = rj else {
                    return false;
                };
                let found = lj.is_some_and(|a| list.iter().any(|b| loose_eq(a, b)));
                found == (self == Op::In)
            }
            Op::Contains => match (lj, rj) {
                (Some(Value::String(a)), Some(Value::String(b))) => a.contains(b.as_str()),
                (Some(Value::Array(a)), Some(b)) => a.iter().any(|x| loose_eq(b, x)),
                _ => false,
            },
            Op::SubsetOf | Op::AnyOf | Op::NoneOf => {
                let (Some(Value::Array(a)), Some(Value::Array(b))) = (lj, rj) else {
                    return false;
                };
                let within = |x: &Value| b.iter().any(|y| loose_eq(x, y));
                match self {
                    Op::SubsetOf => a.iter().all(within),
                    Op::AnyOf => a.iter().any(within),
                    _ => !a.iter().any(within),
                }
            }
            Op::Size => {
                let Some(Value::Number(n)) = rj else {
                    return false;
                };
                // Java `intValue()` truncates.
                let expected = n.as_i64().or_else(|| n.as_f64().map(|f| f as i64));
                let actual = match lj {
                    Some(Value::String(s)) => Some(s.encode_utf16().count() as i64),
                    Some(Value::Array(a)) => Some(a.len() as i64),
                    Some(Value::Object(_)) => Some(-1),
                    _ => None,
                };
                actual.is_some() && actual == expected
            }
            Op::Empty => {
                let Some(Value::Bool(want)) = rj else {
                    return false;
                };
                match lj {
                    Some(Value::String(s)) => s.is_empty() == *want,
                    Some(Value::Array(a)) => a.is_empty() == *want,
                    Some(Value::Object(m)) => m.is_empty() == *want,
                    _ => false,
                }
            }
        }
    }
}

fn num_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// Jayway `==`: numbers by value, a number against a numeric string by value (a string
/// against a number by the number's text), arrays/objects structurally.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::String(s)) => {
            java_decimal(s).is_some_and(|y| num_cmp(x, &y) == Some(Ordering::Equal))
        }
        (Value::String(s), Value::Number(x)) => *s == x.to_string(),
        _ => typed_eq(a, b),
    }
}

/// Same type and value; numbers by value.
fn typed_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| typed_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| typed_eq(v, w)))
        }
        _ => a == b,
    }
}

/// A string as Java's `new BigDecimal(s)` reads it (`None` when it is not a number).
fn java_decimal(s: &str) -> Option<Number> {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) || !exp_ok {
        return None;
    }
    if let Ok(n) = serde_json::from_str::<Number>(s.strip_prefix('+').unwrap_or(s)) {
        return Some(n);
    }
    s.parse::<f64>().ok().and_then(Number::from_f64)
}

// ------------------------------------------------------------------------------------------
// Parser
// ------------------------------------------------------------------------------------------

struct Parser<'s> {
    src: &'s str,
    /// Byte position.
    pos: usize,
}

type PResult<T> = Result<T, PathSyntaxError>;

impl<'s> Parser<'s> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }
    fn peek2(&self) -> Option<char> {
        self.src[self.pos..].chars().nth(1)
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += c.len_utf8();
        }
        hit
    }
    fn eat_str(&mut self, s: &str) -> bool {
        let hit = self.src[self.pos..].starts_with(s);
        if hit {
            self.pos += s.len();
        }
        hit
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }
    fn err<T>(&self, at: usize, message: impl Into<String>) -> PResult<T> {
        Err(PathSyntaxError {
            message: message.into(),
            offset: self.src.get(..at).map_or(0, |s| s.chars().count()),
        })
    }
    fn expect(&mut self, c: char) -> PResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            match self.peek() {
                Some(found) => self.err(self.pos, format!("expected '{c}' but found '{found}'")),
                None => self.err(self.pos, format!("expected '{c}' at the end of the path")),
            }
        }
    }

    /// `$`, `$$` or `$name`.
    fn root(&mut self) -> PResult<Root> {
        if !self.eat('$') {
            return self.err(0, "a path must start with '$'");
        }
        if self.eat('$') {
            return Ok(Root::Context);
        }
        if self.peek().is_some_and(|c| c.is_alphabetic() || c == '_') {
            let start = self.pos;
            while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                self.bump();
            }
            return Ok(Root::Variable(self.src[start..self.pos].to_string()));
        }
        Ok(Root::Input)
    }

    /// The steps after a root. `nested` (a path inside a filter) stops at the first
    /// character that cannot continue the path instead of rejecting it.
    fn steps(&mut self, nested: bool) -> PResult<Compiled> {
        let mut steps = Vec::new();
        let mut func = None;
        while let Some(c) = self.peek() {
            let at = self.pos;
            match c {
                '.' => {
                    self.bump();
                    let scan = self.eat('.');
                    if scan {
                        steps.push(Step::Scan);
                    }
                    match self.peek() {
                        None => return self.err(at, "a path must not end with '.' or '..'"),
                        Some('.') => return self.err(self.pos, "unexpected '.'"),
                        Some('[') => steps.push(self.bracket()?),
                        Some('*') => {
                            self.bump();
                            steps.push(Step::Wildcard);
                        }
                        Some(_) => {
                            let name_at = self.pos;
                            let name = self.dot_name(nested)?;
                            if self.peek() == Some('(') {
                                if scan {
                                    return self.err(name_at, "a function cannot follow '..'");
                                }
                                func = Some(self.function(name_at, name)?);
                                break;
                            }
                            steps.push(Step::Name(name, '\''));
                        }
                    }
                }
                '[' => steps.push(self.bracket()?),
                _ if nested => break,
                _ => return self.err(at, format!("unexpected character '{c}'")),
            }
        }
        if func.is_some() && !nested && self.pos < self.src.len() {
            return self.err(self.pos, "a function must end the path");
        }
        if let (None, Some(Step::Names(names, q))) = (func, steps.last_mut()) {
            let names = std::mem::take(names);
            let q = *q;
            if let Some(last) = steps.last_mut() {
                *last = Step::Merge(names, q);
            }
        }
        Ok(Compiled::new(steps, func))
    }

    /// A name after `.`: runs to `.`, `[` or `(` (Jayway accepts `-`, `:`, `$`… in it).
    fn dot_name(&mut self, nested: bool) -> PResult<String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, '.' | '[' | '(') {
                break;
            }
            if nested && (c.is_whitespace() || ")]<>=~!&|,".contains(c)) {
                break;
            }
            if c.is_whitespace() {
                return self.err(
                    self.pos,
                    "use bracket notation ['my prop'] for names with blanks",
                );
            }
            if c == ']' || c == ')' {
                return self.err(self.pos, format!("unexpected '{c}'"));
            }
            self.bump();
        }
        if self.pos == start {
            return self.err(start, "empty name after '.'");
        }
        Ok(self.src[start..self.pos].to_string())
    }

    fn function(&mut self, name_at: usize, name: String) -> PResult<Func> {
        let Some(f) = Func::from_name(&name) else {
            return self.err(name_at, format!("unknown function '{name}()'"));
        };
        self.expect('(')?;
        self.skip_ws();
        if !self.eat(')') {
            return self.err(self.pos, format!("function '{name}()' takes no arguments"));
        }
        Ok(f)
    }

    /// `[…]`: quoted names, `*`, a filter, indexes or a slice.
    fn bracket(&mut self) -> PResult<Step> {
        let open = self.pos;
        self.bump();
        self.skip_ws();
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                let mut names = Vec::new();
                loop {
                    self.skip_ws();
                    let qat = self.pos;
                    if !self.eat(q) {
                        return self.err(self.pos, format!("expected a {q}-quoted name"));
                    }
                    names.push(self.quoted_raw(q, qat)?.to_string());
                    self.skip_ws();
                    if self.eat(',') {
                        continue;
                    }
                    if self.eat(']') {
                        break;
                    }
                    return self.err(self.pos, "expected ',' or ']' after a quoted name");
                }
                Ok(match names.len() {
                    1 => Step::Name(names.remove(0), q),
                    _ => Step::Names(names, q),
                })
            }
            Some('*') => {
                self.bump();
                self.skip_ws();
                self.expect(']')?;
                Ok(Step::Wildcard)
            }
            Some('?') => {
                self.bump();
                self.skip_ws();
                if self.peek() != Some('(') {
                    return self.err(self.pos, "expected '(' after '[?'");
                }
                let e = self.expr_or()?;
                self.skip_ws();
                self.expect(']')?;
                Ok(Step::Filter(Box::new(e)))
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == ':' => self.indexes(open),
            Some(']') => self.err(open, "empty brackets"),
            None => self.err(open, "unclosed '['"),
            Some(c) => self.err(self.pos, format!("unexpected character '{c}' in brackets")),
        }
    }

    /// After the opening quote: the raw text up to the closing quote. A backslash keeps the
    /// next character from closing the name, but is not removed: AWS selects the member
    /// `a\"b` with `['a\"b']` (recorded), i.e. no unescaping.
    fn quoted_raw(&mut self, q: char, qat: usize) -> PResult<&'s str> {
        let start = self.pos;
        loop {
            match self.bump() {
                None => return self.err(qat, format!("unterminated {q}-quoted string")),
                Some('\\') => {
                    self.bump();
                }
                Some(c) if c == q => return Ok(&self.src[start..self.pos - c.len_utf8()]),
                Some(_) => {}
            }
        }
    }

    fn indexes(&mut self, open: usize) -> PResult<Step> {
        let start = self.pos;
        let Some(len) = self.src[start..].find(']') else {
            return self.err(open, "unclosed '['");
        };
        let body = &self.src[start..start + len];
        if !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ',' | '-' | ':' | ' '))
        {
            return self.err(start, format!("invalid array index '{body}'"));
        }
        self.pos = start + len + 1;
        let int = |t: &str| -> PResult<i64> {
            t.trim()
                .parse::<i32>()
                .map(i64::from)
                .or_else(|_| self.err(start, format!("invalid array index '{body}'")))
        };
        if body.contains(':') {
            // Jayway reads `from:to` and ignores anything after a second ':'.
            let mut parts = body.split(':');
            let mut bound = || -> PResult<Option<i64>> {
                match parts.next().map(str::trim) {
                    None | Some("") => Ok(None),
                    Some(t) => int(t).map(Some),
                }
            };
            let (from, to) = (bound()?, bound()?);
            if from.is_none() && to.is_none() {
                return self.err(start, format!("invalid slice '{body}'"));
            }
            Ok(Step::Slice(from, to))
        } else {
            let mut idx = body.split(',').map(int).collect::<PResult<Vec<i64>>>()?;
            Ok(match idx.len() {
                1 => Step::Index(idx.remove(0)),
                _ => Step::Indexes(idx),
            })
        }
    }

    // ---- filter expressions: `||` binds looser than `&&`; `!` negates an operand ----

    fn expr_or(&mut self) -> PResult<Expr> {
        let mut e = self.expr_and()?;
        loop {
            self.skip_ws();
            if !self.eat_str("||") {
                return Ok(e);
            }
            e = Expr::Or(Box::new(e), Box::new(self.expr_and()?));
        }
    }

    fn expr_and(&mut self) -> PResult<Expr> {
        let mut e = self.expr_unary()?;
        loop {
            self.skip_ws();
            if !self.eat_str("&&") {
                return Ok(e);
            }
            e = Expr::And(Box::new(e), Box::new(self.expr_unary()?));
        }
    }

    fn expr_unary(&mut self) -> PResult<Expr> {
        self.skip_ws();
        match self.peek() {
            Some('!') if self.peek2() != Some('=') => {
                self.bump();
                Ok(Expr::Not(Box::new(self.expr_unary()?)))
            }
            Some('(') => {
                self.bump();
                let e = self.expr_or()?;
                self.skip_ws();
                self.expect(')')?;
                Ok(e)
            }
            _ => self.relation(),
        }
    }

    fn relation(&mut self) -> PResult<Expr> {
        self.skip_ws();
        let at = self.pos;
        let left = self.operand()?;
        self.skip_ws();
        match self.operator()? {
            Some(op) => Ok(Expr::Cmp(left, op, self.operand()?)),
            None => match left {
                Operand::Path(p) => Ok(Expr::Exists(p)),
                _ => self.err(at, "expected a comparison"),
            },
        }
    }

    fn operator(&mut self) -> PResult<Option<Op>> {
        const SYMBOLS: [(&str, Op); 9] = [
            ("===", Op::TypedEq),
            ("!==", Op::TypedNe),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=~", Op::Matches),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        for (s, op) in SYMBOLS {
            if self.eat_str(s) {
                return Ok(Some(op));
            }
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.bump();
        }
        let word = self.src[start..self.pos].to_ascii_lowercase();
        Ok(Some(match word.as_str() {
            "" => return Ok(None),
            "in" => Op::In,
            "nin" => Op::Nin,
            "contains" => Op::Contains,
            "subsetof" => Op::SubsetOf,
            "anyof" => Op::AnyOf,
            "noneof" => Op::NoneOf,
            "size" => Op::Size,
            "empty" => Op::Empty,
            _ => return self.err(start, format!("unsupported filter operator '{word}'")),
        }))
    }

    fn operand(&mut self) -> PResult<Operand> {
        self.skip_ws();
        let at = self.pos;
        match self.peek() {
            Some(c @ ('@' | '$')) => {
                self.bump();
                let path = self.steps(true)?;
                Ok(Operand::Path(SubPath {
                    doc: c == '$',
                    path,
                }))
            }
            Some('/') => {
                self.bump();
                let pattern = self.quoted_raw('/', at)?;
                let fstart = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                    self.bump();
                }
                let flags = &self.src[fstart..self.pos];
                Regex::new(pattern, flags)
                    .map(Operand::Regex)
                    .or_else(|e| self.err(at, format!("invalid regular expression: {e}")))
            }
            _ => self.literal().map(Operand::Lit),
        }
    }

    /// A filter literal: Jayway's lenient JSON (single or double quotes, Java escapes).
    fn literal(&mut self) -> PResult<Value> {
        self.skip_ws();
        let at = self.pos;
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.bump();
                Ok(Value::String(java_unescape(self.quoted_raw(q, at)?)))
            }
            Some('[') => {
                self.bump();
                let mut items = Vec::new();
                self.skip_ws();
                if !self.eat(']') {
                    loop {
                        items.push(self.literal()?);
                        self.skip_ws();
                        if !self.eat(',') {
                            self.expect(']')?;
                            break;
                        }
                    }
                }
                Ok(Value::Array(items))
            }
            Some('{') => {
                self.bump();
                let mut map = Map::new();
                self.skip_ws();
                if !self.eat('}') {
                    loop {
                        self.skip_ws();
                        let key = match self.literal()? {
                            Value::String(s) => s,
                            _ => return self.err(self.pos, "expected a quoted key"),
                        };
                        self.skip_ws();
                        self.expect(':')?;
                        let value = self.literal()?;
                        map.insert(key, value);
                        self.skip_ws();
                        if !self.eat(',') {
                            self.expect('}')?;
                            break;
                        }
                    }
                }
                Ok(Value::Object(map))
            }
            Some(c) if c == '-' || c == '+' || c == '.' || c.is_ascii_digit() => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_digit() || "+-.eE".contains(c))
                {
                    self.bump();
                }
                let text = &self.src[at..self.pos];
                java_decimal(text)
                    .map(Value::Number)
                    .map_or_else(|| self.err(at, format!("invalid number '{text}'")), Ok)
            }
            _ => {
                for (word, v) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.eat_str(word) {
                        return Ok(v);
                    }
                }
                match self.peek() {
                    Some(c) => self.err(at, format!("unexpected character '{c}' in filter")),
                    None => self.err(at, "unterminated filter"),
                }
            }
        }
    }
}

/// Java-style unescaping of filter string literals (`\n`, `\'`, `\uXXXX`…).
fn java_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut units: Vec<u16> = Vec::new();
    let flush = |units: &mut Vec<u16>, out: &mut String| {
        out.extend(
            char::decode_utf16(units.drain(..)).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)),
        );
    };
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            flush(&mut units, &mut out);
            out.push(c);
            continue;
        }
        let Some(e) = it.next() else {
            flush(&mut units, &mut out);
            out.push('\\');
            break;
        };
        if e == 'u' {
            let hex: String = it.clone().take(4).collect();
            if let (4, Ok(u)) = (hex.len(), u16::from_str_radix(&hex, 16)) {
                units.push(u);
                for _ in 0..4 {
                    it.next();
                }
                continue;
            }
        }
        flush(&mut units, &mut out);
        out.push(match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'b' => '\u{8}',
            'f' => '\u{c}',
            other => other,
        });
    }
    flush(&mut units, &mut out);
    out
}

// ------------------------------------------------------------------------------------------
// A small regular-expression engine for `=~` (Java `Pattern.matcher(s).matches()`: the whole
// input must match). Thompson NFA simulation: linear time, no recursion over the input.
// Supports literals, `.`, classes (`[a-z]`, `[^…]`, `\d\w\s` and negations), anchors,
// `\b`, groups (capturing, `(?:…)`, inline flags `(?i)`), alternation, `* + ? {n,m}`
// (lazy/possessive suffixes accepted). Flags: `i` (ASCII case-insensitive, as Java's
// default), `s` (dot matches line breaks), `m` (multiline anchors).
// ------------------------------------------------------------------------------------------

const MAX_REGEX_PROGRAM: usize = 20_000;

#[derive(Debug, Clone)]
struct Regex {
    prog: Vec<Inst>,
    icase: bool,
    dotall: bool,
    multiline: bool,
}

#[derive(Debug, Clone)]
enum Inst {
    Char(char),
    Any,
    Class(Class),
    Split(usize, usize),
    Jmp(usize),
    Bol,
    Eol,
    WordBoundary(bool),
    Match,
}

#[derive(Debug, Clone)]
struct Class {
    negated: bool,
    items: Vec<ClassItem>,
}

#[derive(Debug, Clone)]
enum ClassItem {
    Range(char, char),
    /// `\d` / `\D`, `\w` / `\W`, `\s` / `\S` (the bool: negated).
    Digit(bool),
    Word(bool),
    Space(bool),
}

impl ClassItem {
    fn test(&self, c: char) -> bool {
        match *self {
            ClassItem::Range(lo, hi) => lo <= c && c <= hi,
            ClassItem::Digit(neg) => c.is_ascii_digit() != neg,
            ClassItem::Word(neg) => is_word(c) != neg,
            ClassItem::Space(neg) => {
                matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r') != neg
            }
        }
    }
}

impl Class {
    fn test(&self, c: char, icase: bool) -> bool {
        let hit = |c: char| self.items.iter().any(|i| i.test(c));
        let found =
            hit(c) || (icase && (hit(c.to_ascii_lowercase()) || hit(c.to_ascii_uppercase())));
        found != self.negated
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

#[derive(Debug)]
enum Node {
    Inst(Inst),
    Cat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, u32, Option<u32>),
}

struct ReParser {
    chars: Vec<char>,
    i: usize,
    icase: bool,
    dotall: bool,
    multiline: bool,
}

impl ReParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }
    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn alt(&mut self) -> Result<Node, String> {
        let mut alts = vec![self.cat()?];
        while self.eat('|') {
            alts.push(self.cat()?);
        }
        Ok(if alts.len() == 1 {
            alts.remove(0)
        } else {
            Node::Alt(alts)
        })
    }

    fn cat(&mut self) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantified(atom)?);
        }
        Ok(Node::Cat(items))
    }

    fn atom(&mut self) -> Result<Node, String> {
        let Some(c) = self.next() else {
            return Err("unexpected end".into());
        };
        Ok(Node::Inst(match c {
            '(' => {
                if self.eat('?') {
                    let mut on = true;
                    loop {
                        match self.next() {
                            Some('i') => self.icase = on,
                            Some('s') => self.dotall = on,
                            Some('m') => self.multiline = on,
                            Some('u' | 'x' | 'd' | 'U') => {}
                            Some('-') => on = false,
                            Some(')') => return Ok(Node::Cat(Vec::new())),
                            Some(':') => break,
                            _ => return Err("unsupported group construct".into()),
                        }
                    }
                }
                let inner = self.alt()?;
                if !self.eat(')') {
                    return Err("unclosed group".into());
                }
                return Ok(inner);
            }
            ')' => return Err("unmatched ')'".into()),
            '[' => Inst::Class(self.class()?),
            '.' => Inst::Any,
            '^' => Inst::Bol,
            '$' => Inst::Eol,
            '*' | '+' | '?' | '{' => return Err(format!("dangling meta character '{c}'")),
            '\\' => {
                let Some(e) = self.next() else {
                    return Err("trailing backslash".into());
                };
                match e {
                    'b' => Inst::WordBoundary(true),
                    'B' => Inst::WordBoundary(false),
                    'A' => Inst::Bol,
                    'z' | 'Z' => Inst::Eol,
                    'Q' => {
                        let mut lits = Vec::new();
                        while let Some(c) = self.next() {
                            if c == '\\' && self.peek() == Some('E') {
                                self.i += 1;
                                break;
                            }
                            lits.push(Node::Inst(Inst::Char(c)));
                        }
                        return Ok(Node::Cat(lits));
                    }
                    _ => match self.escape(e)? {
                        Ok(ch) => Inst::Char(ch),
                        Err(item) => Inst::Class(Class {
                            negated: false,
                            items: vec![item],
                        }),
                    },
                }
            }
            c => Inst::Char(c),
        }))
    }

    /// After a backslash: a character, or a shorthand class.
    fn escape(&mut self, e: char) -> Result<Result<char, ClassItem>, String> {
        let hex = |p: &mut ReParser, n: usize| -> Result<char, String> {
            let s: String = p.chars.iter().skip(p.i).take(n).collect();
            p.i += s.chars().count();
            u32::from_str_radix(&s, 16)
                .ok()
                .filter(|_| s.chars().count() == n)
                .and_then(char::from_u32)
                .ok_or_else(|| format!("invalid hex escape '{s}'"))
        };
        Ok(Ok(match e {
            'd' => return Ok(Err(ClassItem::Digit(false))),
            'D' => return Ok(Err(ClassItem::Digit(true))),
            'w' => return Ok(Err(ClassItem::Word(false))),
            'W' => return Ok(Err(ClassItem::Word(true))),
            's' => return Ok(Err(ClassItem::Space(false))),
            'S' => return Ok(Err(ClassItem::Space(true))),
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\u{c}',
            'a' => '\u{7}',
            'e' => '\u{1b}',
            'x' => hex(self, 2)?,
            'u' => hex(self, 4)?,
            '1'..='9' => return Err("back references are not supported".into()),
            c if c.is_ascii_alphabetic() => return Err(format!("unsupported escape '\\{c}'")),
            c => c,
        }))
    }

    fn class(&mut self) -> Result<Class, String> {
        let negated = self.eat('^');
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.next() else {
                return Err("unclosed character class".into());
            };
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                let e = self.next().ok_or("trailing backslash")?;
                match self.escape(e)? {
                    Ok(ch) => ch,
                    Err(item) => {
                        items.push(item);
                        continue;
                    }
                }
            } else {
                c
            };
            if self.peek() == Some('-') && self.chars.get(self.i + 1).is_some_and(|&n| n != ']') {
                self.i += 1;
                let hi = match self.next() {
                    Some('\\') => {
                        let e = self.next().ok_or("trailing backslash")?;
                        self.escape(e)?
                            .map_err(|_| "invalid class range".to_string())?
                    }
                    Some(h) => h,
                    None => return Err("unclosed character class".into()),
                };
                if hi < lo {
                    return Err("invalid class range".into());
                }
                items.push(ClassItem::Range(lo, hi));
            } else {
                items.push(ClassItem::Range(lo, lo));
            }
        }
        Ok(Class { negated, items })
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                let close = self.chars[self.i..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or("unclosed repetition")?;
                let body: String = self.chars[self.i + 1..self.i + close].iter().collect();
                let num = |t: &str| {
                    t.trim()
                        .parse::<u32>()
                        .map_err(|_| format!("invalid repetition '{{{body}}}'"))
                };
                let (min, max) = match body.split_once(',') {
                    None => {
                        let n = num(&body)?;
                        (n, Some(n))
                    }
                    Some((a, b)) if b.trim().is_empty() => (num(a)?, None),
                    Some((a, b)) => (num(a)?, Some(num(b)?)),
                };
                if max.is_some_and(|m| m < min) {
                    return Err(format!("invalid repetition '{{{body}}}'"));
                }
                self.i += close;
                (min, max)
            }
            _ => return Ok(atom),
        };
        self.i += 1;
        // Lazy and possessive forms match the same strings as a whole.
        if !self.eat('?') {
            self.eat('+');
        }
        Ok(Node::Repeat(Box::new(atom), min, max))
    }
}

impl Regex {
    fn new(pattern: &str, flags: &str) -> Result<Regex, String> {
        let mut p = ReParser {
            chars: pattern.chars().collect(),
            i: 0,
            icase: flags.contains('i'),
            dotall: flags.contains('s'),
            multiline: flags.contains('m'),
        };
        let node = p.alt()?;
        if p.i < p.chars.len() {
            return Err("unmatched ')'".into());
        }
        let mut prog = Vec::new();
        emit(&node, &mut prog)?;
        prog.push(Inst::Match);
        Ok(Regex {
            prog,
            icase: p.icase,
            dotall: p.dotall,
            multiline: p.multiline,
        })
    }

    fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let mut mark = vec![usize::MAX; self.prog.len()];
        let (mut cur, mut next, mut stack) = (Vec::new(), Vec::new(), Vec::new());
        self.add(&mut cur, &mut mark, &mut stack, 0, 0, &chars);
        for pos in 0..=chars.len() {
            if cur.is_empty() {
                return false;
            }
            let ch = chars.get(pos).copied();
            for &pc in &cur {
                let ok = match (&self.prog[pc], ch) {
                    (Inst::Match, None) => return true,
                    (Inst::Char(c), Some(x)) => {
                        *c == x || (self.icase && c.eq_ignore_ascii_case(&x))
                    }
                    (Inst::Any, Some(x)) => {
                        self.dotall
                            || !matches!(x, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
                    }
                    (Inst::Class(cl), Some(x)) => cl.test(x, self.icase),
                    _ => false,
                };
                if ok {
                    self.add(&mut next, &mut mark, &mut stack, pc + 1, pos + 1, &chars);
                }
            }
            std::mem::swap(&mut cur, &mut next);
            next.clear();
        }
        false
    }

    /// Adds `pc` and everything reachable from it without consuming input.
    fn add(
        &self,
        list: &mut Vec<usize>,
        mark: &mut [usize],
        stack: &mut Vec<usize>,
        pc: usize,
        pos: usize,
        chars: &[char],
    ) {
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            let Some(inst) = self.prog.get(pc) else {
                continue;
            };
            if mark[pc] == pos {
                continue;
            }
            mark[pc] = pos;
            let prev = pos.checked_sub(1).and_then(|i| chars.get(i)).copied();
            let cur = chars.get(pos).copied();
            match inst {
                Inst::Jmp(t) => stack.push(*t),
                Inst::Split(a, b) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Inst::Bol => {
                    if pos == 0 || (self.multiline && prev == Some('\n')) {
                        stack.push(pc + 1);
                    }
                }
                Inst::Eol => {
                    let at_end = pos == chars.len()
                        || (cur == Some('\n') && (self.multiline || pos + 1 == chars.len()));
                    if at_end {
                        stack.push(pc + 1);
                    }
                }
                Inst::WordBoundary(want) => {
                    if (prev.is_some_and(is_word) != cur.is_some_and(is_word)) == *want {
                        stack.push(pc + 1);
                    }
                }
                _ => list.push(pc),
            }
        }
    }
}

fn emit(node: &Node, prog: &mut Vec<Inst>) -> Result<(), String> {
    if prog.len() > MAX_REGEX_PROGRAM {
        return Err("regular expression too large".into());
    }
    match node {
        Node::Inst(i) => prog.push(i.clone()),
        Node::Cat(items) => {
            for n in items {
                emit(n, prog)?;
            }
        }
        Node::Alt(alts) => {
            let mut jumps = Vec::new();
            for (k, n) in alts.iter().enumerate() {
                if k + 1 == alts.len() {
                    emit(n, prog)?;
                } else {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    emit(n, prog)?;
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    prog[split] = Inst::Split(split + 1, prog.len());
                }
            }
            let end = prog.len();
            for j in jumps {
                prog[j] = Inst::Jmp(end);
            }
        }
        Node::Repeat(n, min, max) => {
            for _ in 0..*min {
                emit(n, prog)?;
            }
            match max {
                None => {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    emit(n, prog)?;
                    prog.push(Inst::Jmp(split));
                    prog[split] = Inst::Split(split + 1, prog.len());
                }
                Some(max) => {
                    let mut splits = Vec::new();
                    for _ in *min..*max {
                        splits.push(prog.len());
                        prog.push(Inst::Split(0, 0));
                        emit(n, prog)?;
                        if prog.len() > MAX_REGEX_PROGRAM {
                            return Err("regular expression too large".into());
                        }
                    }
                    let end = prog.len();
                    for s in splits {
                        prog[s] = Inst::Split(s + 1, end);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> JsonPath {
        match JsonPath::parse(s) {
            Ok(p) => p,
            Err(e) => panic!("{s}: {e} at {}", e.offset),
        }
    }
    fn sel(path: &str, doc: &Value) -> Value {
        match p(path).select(doc) {
            Ok(v) => v,
            Err(e) => panic!("{path}: {e}"),
        }
    }
    fn no_results(path: &str, doc: &Value) -> String {
        match p(path).select(doc) {
            Err(PathError::NoResults { normalized }) => normalized,
            other => panic!("{path}: expected NoResults, got {other:?}"),
        }
    }
    fn syntax_error(path: &str) -> PathSyntaxError {
        match JsonPath::parse(path) {
            Err(e) => e,
            Ok(_) => panic!("{path}: should not parse"),
        }
    }

    fn store() -> Value {
        json!({
            "store": {
                "book": [
                    {"category": "reference", "author": "Nigel Rees", "title": "Sayings", "price": 8.95},
                    {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword", "price": 12.99},
                    {"category": "fiction", "author": "Herman Melville", "title": "Moby Dick", "isbn": "0-553", "price": 8.99},
                    {"category": "fiction", "author": "J. R. R. Tolkien", "title": "LOTR", "isbn": "0-395", "price": 22.99}
                ],
                "bicycle": {"color": "red", "price": 19.95}
            },
            "expensive": 10
        })
    }

    #[test]
    fn roots() {
        assert_eq!(p("$").root(), &Root::Input);
        assert_eq!(p("$.a").root(), &Root::Input);
        assert_eq!(p("$$").root(), &Root::Context);
        assert_eq!(p("$$.Execution.Id").root(), &Root::Context);
        assert_eq!(p("$myVar.field[0]").root(), &Root::Variable("myVar".into()));
        assert_eq!(p("$_x1").root(), &Root::Variable("_x1".into()));
        assert_eq!(p("$ü").root(), &Root::Variable("ü".into()));
        assert_eq!(p("$v['a b']").root(), &Root::Variable("v".into()));
        let ctx = json!({"Execution": {"Id": "arn:x"}, "Map": {"Item": {"Value": {"a": 1}}}});
        assert_eq!(sel("$$.Execution.Id", &ctx), json!("arn:x"));
        assert_eq!(sel("$$.Map.Item.Value", &ctx), json!({"a": 1}));
        assert_eq!(
            p("$$.Execution.Nope").normalized(),
            "$['Execution']['Nope']"
        );
        let var = json!({"field": [7, 8]});
        assert_eq!(sel("$myVar.field[0]", &var), json!(7));
        assert_eq!(sel("$myVar", &var), var);
        assert_eq!(p("$$").steps_count(), 0);
        assert_eq!(p("$myVar.field[0]").steps_count(), 2);
    }

    #[test]
    fn definite_paths() {
        let doc = json!({"a": {"b": [10, 20, {"c": null}]}, "detail": {"request-id": "r1", "x:y": 1, "a$b": 2}});
        assert_eq!(sel("$", &doc), doc);
        assert_eq!(sel("$.a.b[1]", &doc), json!(20));
        assert_eq!(sel("$.a.b[-1].c", &doc), json!(null));
        assert_eq!(sel("$.a.b[-3]", &doc), json!(10));
        assert_eq!(sel("$.detail.request-id", &doc), json!("r1"));
        assert_eq!(sel("$.detail.x:y", &doc), json!(1));
        assert_eq!(sel("$.detail.a$b", &doc), json!(2));
        assert_eq!(sel("$['a']['b'][0]", &doc), json!(10));
        assert_eq!(sel("$[\"a\"].b[0]", &doc), json!(10));
        assert_eq!(sel("$.a.['b'].[0]", &doc), json!(10));
        assert_eq!(sel("$[ 'a' ][ 'b' ][ 0 ]", &doc), json!(10));
        let path = p("$.a.b[2].c");
        assert!(path.is_definite() && path.is_reference());
        assert_eq!(path.select_ref(&doc), Some(&Value::Null));
        assert_eq!(p("$.a.b[5]").select_ref(&doc), None);
        assert_eq!(p("$.a.b[*]").select_ref(&doc), None);
        assert!(p("$.a[-1]").is_definite());
        assert!(!p("$.a[-1]").is_reference());
        assert!(p("$").is_reference());
        assert!(p("$$.Execution.Input").is_reference());
        assert!(p("$v.a[0]").is_reference());
    }

    #[test]
    fn definite_misses_are_errors() {
        let doc = json!({"a": {"b": [1, 2]}, "s": "str", "n": null});
        assert_eq!(no_results("$.X", &doc), "$['X']");
        assert_eq!(no_results("$.a.b[5]", &doc), "$['a']['b'][5]");
        assert_eq!(no_results("$.a.b[-3]", &doc), "$['a']['b'][-3]");
        assert_eq!(no_results("$.a.b.c", &doc), "$['a']['b']['c']"); // a name on an array
        assert_eq!(no_results("$.a[0]", &doc), "$['a'][0]"); // an index on an object
        assert_eq!(no_results("$.s.x", &doc), "$['s']['x']");
        assert_eq!(no_results("$.n.x", &doc), "$['n']['x']");
        assert_eq!(
            no_results("$.no.such.result.path", &doc),
            "$['no']['such']['result']['path']"
        );
        assert_eq!(no_results("$[\"q\"]", &doc), "$[\"q\"]");
        assert_eq!(no_results("$.x", &json!([1])), "$['x']");
        assert_eq!(no_results("$[0]", &json!({})), "$[0]");
        // Jayway's messages.
        let msg = |path: &str| p(path).not_found_message(&doc);
        assert_eq!(
            msg("$.no.such.result.path").as_deref(),
            Some("Missing property in path $['no']")
        );
        assert_eq!(
            msg("$.a.nope.x").as_deref(),
            Some("Missing property in path $['a']['nope']")
        );
        assert_eq!(msg("$.X").as_deref(), Some("No results for path: $['X']"));
        assert_eq!(
            msg("$.a.b[9].c").as_deref(),
            Some("No results for path: $['a']['b'][9]['c']")
        );
        assert_eq!(msg("$.a"), None);
        assert_eq!(msg("$.x[*]"), None);
        assert_eq!(
            PathError::NoResults {
                normalized: p("$.NoSuchInputPath").normalized()
            }
            .to_string(),
            "No results for path: $['NoSuchInputPath']"
        );
    }

    #[test]
    fn normalized_forms() {
        let cases = [
            ("$", "$"),
            ("$.X", "$['X']"),
            ("$.a.b[0]", "$['a']['b'][0]"),
            ("$['a b'].c", "$['a b']['c']"),
            ("$[\"a\"]", "$[\"a\"]"),
            ("$..x", "$..['x']"),
            ("$.a[*].b", "$['a'][*]['b']"),
            ("$.a.*", "$['a'][*]"),
            ("$.a[1:3]", "$['a'][1:3]"),
            ("$.a[:2]", "$['a'][:2]"),
            ("$.a[-2:]", "$['a'][-2:]"),
            ("$.a[0, 2]", "$['a'][0,2]"),
            ("$['a','b']", "$['a','b']"),
            ("$.a[?(@.x > 1)]", "$['a'][?]"),
            ("$.a.length()", "$['a'].length()"),
            ("$$.Execution.Id", "$['Execution']['Id']"),
            ("$v.x", "$['x']"),
        ];
        for (path, want) in cases {
            assert_eq!(p(path).normalized(), want, "{path}");
        }
        assert_eq!(p("$.a[0]").to_string(), "$.a[0]");
        assert_eq!(p("$.a[0]").source(), "$.a[0]");
    }

    #[test]
    fn indefinite_paths() {
        let doc = json!({"a": [1, 2, 3, 4, 5], "o": {"x": 1, "y": 2}});
        assert_eq!(sel("$.a[0:2]", &doc), json!([1, 2]));
        assert_eq!(sel("$.a[1:3]", &doc), json!([2, 3]));
        assert_eq!(sel("$.a[:2]", &doc), json!([1, 2]));
        assert_eq!(sel("$.a[-2:]", &doc), json!([4, 5]));
        assert_eq!(sel("$.a[3:]", &doc), json!([4, 5]));
        assert_eq!(sel("$.a[:-1]", &doc), json!([1, 2, 3, 4]));
        assert_eq!(sel("$.a[1:100]", &doc), json!([2, 3, 4, 5]));
        assert_eq!(sel("$.a[-3:-1]", &doc), json!([3, 4]));
        assert_eq!(sel("$.a[10:]", &doc), json!([]));
        assert_eq!(sel("$.a[-100:]", &doc), json!([1, 2, 3, 4, 5]));
        // Jayway slice arithmetic: bounds are compared before negative ones are resolved.
        assert_eq!(sel("$.a[1:-1]", &doc), json!([]));
        assert_eq!(sel("$.a[-2:2]", &doc), json!([4, 5, 1, 2]));
        assert_eq!(sel("$.a[0,2,-1,9]", &doc), json!([1, 3, 5]));
        assert_eq!(sel("$.a[*]", &doc), doc["a"]);
        assert_eq!(sel("$.o.*", &doc), json!([1, 2]));
        assert_eq!(sel("$.o[*]", &doc), json!([1, 2]));
        assert_eq!(sel("$[*]", &json!([1, [2]])), json!([1, [2]]));
        assert!(!p("$.a[*]").is_definite());
        assert!(!p("$.a[0:1]").is_reference());
        // Missing members are skipped; nothing selected is an empty array.
        assert_eq!(sel("$.items[*]", &json!({})), json!([]));
        assert_eq!(sel("$.item.items[1:5].itemValue", &json!({})), json!([]));
        assert_eq!(sel("$[*]", &json!({})), json!([]));
        assert_eq!(sel("$.x[*]", &Value::Null), json!([]));
        assert_eq!(
            sel("$.a[*].b", &json!({"a": [{"b": 1}, {}, {"b": null}, 3]})),
            json!([1, null])
        );
        let store = store();
        assert_eq!(
            sel("$.store.book[*].author", &store)[3],
            json!("J. R. R. Tolkien")
        );
        assert_eq!(sel("$.store.*", &store).as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn multiple_names() {
        let doc = json!({"a": 1, "b": 2, "c": 3, "o": [{"a": 1, "b": 2}, {"a": 3}]});
        // In last position Jayway merges the members into one object (missing ones skipped).
        assert_eq!(sel("$['a','c','zz']", &doc), json!({"a": 1, "c": 3}));
        assert_eq!(sel("$[\"a\", \"b\"]", &doc), json!({"a": 1, "b": 2}));
        assert_eq!(
            sel("$.o[*]['a','b']", &doc),
            json!([{"a": 1, "b": 2}, {"a": 3}])
        );
        assert!(!p("$['a','b']").is_definite());
        assert_eq!(p("$['a','b']").select_ref(&doc), None);
        // Elsewhere each member in turn.
        let nested = json!({"a": {"x": 1}, "b": {"x": 2}, "c": {"y": 3}});
        assert_eq!(sel("$['a','b','c'].x", &nested), json!([1, 2]));
    }

    #[test]
    fn deep_scan() {
        let doc =
            json!({"x": 1, "a": {"x": 2, "b": [{"x": 3}, {"y": {"x": 4}}]}, "c": [[5, 6], [7]]});
        assert_eq!(sel("$..x", &doc), json!([1, 2, 3, 4]));
        assert_eq!(sel("$.a..x", &doc), json!([2, 3, 4]));
        assert_eq!(sel("$..['x']", &doc), json!([1, 2, 3, 4]));
        assert_eq!(sel("$..nope", &doc), json!([]));
        assert_eq!(sel("$..[0]", &doc), json!([{"x": 3}, [5, 6], 5, 7]));
        assert_eq!(
            sel("$..*", &json!({"a": {"b": 1}, "c": 2})),
            json!([{"b": 1}, 2, 1])
        );
        assert_eq!(sel("$..y.x", &doc), json!([4]));
        assert_eq!(sel("$..b[?(@.x)]", &doc), json!([{"x": 3}]));
        assert_eq!(sel("$..[?(@.x > 2)]", &doc), json!([{"x": 3}, {"x": 4}]));
        let store = store();
        assert_eq!(sel("$..author", &store).as_array().map(Vec::len), Some(4));
        assert_eq!(sel("$..book[2].title", &store), json!(["Moby Dick"]));
        assert_eq!(sel("$..book[-1:].title", &store), json!(["LOTR"]));
        assert_eq!(
            sel("$.store..price", &store),
            json!([8.95, 12.99, 8.99, 22.99, 19.95])
        );
        // Jayway quirk: `..` then a non-final array step applies the rest to every element.
        assert_eq!(
            sel("$..[0].x", &json!({"a": [{"x": 1}, {"x": 2}]})),
            json!([1, 2])
        );
    }

    #[test]
    fn filters() {
        let store = store();
        let titles = |path: &str| -> Value {
            let hits = sel(path, &store);
            hits.as_array()
                .map(|a| a.iter().map(|b| b["title"].clone()).collect())
                .unwrap_or_default()
        };
        assert_eq!(
            titles("$.store.book[?(@.price < 10)]"),
            json!(["Sayings", "Moby Dick"])
        );
        assert_eq!(
            titles("$.store.book[?(@.price <= 8.99)]"),
            json!(["Sayings", "Moby Dick"])
        );
        assert_eq!(
            titles("$.store.book[?(@.price > $.expensive)]"),
            json!(["Sword", "LOTR"])
        );
        assert_eq!(titles("$.store.book[?(@.price >= 22.99)]"), json!(["LOTR"]));
        assert_eq!(
            titles("$.store.book[?(@.isbn)]"),
            json!(["Moby Dick", "LOTR"])
        );
        assert_eq!(
            titles("$.store.book[?(!@.isbn)]"),
            json!(["Sayings", "Sword"])
        );
        assert_eq!(
            titles("$.store.book[?(@.category == 'reference')]"),
            json!(["Sayings"])
        );
        assert_eq!(
            titles("$.store.book[?(@.category != \"fiction\")]"),
            json!(["Sayings"])
        );
        assert_eq!(
            titles("$.store.book[?(@.category == 'fiction' && @.price < 10)]"),
            json!(["Moby Dick"])
        );
        assert_eq!(
            titles("$.store.book[?(@.price < 9 || @.title == 'LOTR')]"),
            json!(["Sayings", "Moby Dick", "LOTR"])
        );
        assert_eq!(
            titles("$.store.book[?(@.price < 9 && (@.isbn || @.title == 'Sayings'))]"),
            json!(["Sayings", "Moby Dick"])
        );
        assert_eq!(
            titles("$.store.book[?(!(@.price < 9))]"),
            json!(["Sword", "LOTR"])
        );
        assert_eq!(
            titles("$.store.book[?(@.author =~ /.*REES/i)]"),
            json!(["Sayings"])
        );
        assert_eq!(titles("$.store.book[?(@.author =~ /Rees/)]"), json!([])); // whole match
        assert_eq!(
            titles("$.store.book[?(@.title in ['LOTR', 'Sword'])]"),
            json!(["Sword", "LOTR"])
        );
        assert_eq!(
            titles("$.store.book[?(@.title nin ['LOTR', 'Sword'])]"),
            json!(["Sayings", "Moby Dick"])
        );
        assert_eq!(titles("$.store.book[?(@.title size 4)]"), json!(["LOTR"]));
        assert_eq!(
            titles("$.store.book[?(@.title contains 'ick')]"),
            json!(["Moby Dick"])
        );
        assert_eq!(
            sel("$.store.book[?(@.price > 20)].title", &store),
            json!(["LOTR"])
        );
        assert_eq!(sel("$.store.book[?(@.price > 100)]", &store), json!([]));
        assert!(!p("$.a[?(@.x)]").is_definite());

        // The AWS-recorded case.
        let users = json!({"users": [{"year": 1997, "status": 0}, {"year": 1998, "status": 1}]});
        assert_eq!(
            sel("$.users[?(@.status == 0)]", &users),
            json!([{"year": 1997, "status": 0}])
        );
    }

    #[test]
    fn filter_value_semantics() {
        let doc = json!({"a": [
            {"n": 1}, {"n": 1.0}, {"n": "1"}, {"n": "abc"}, {"n": null}, {"n": true},
            {"n": [1, 2]}, {"n": []}, {"n": {}}, {"m": 1}
        ]});
        let idx = |filter: &str| -> Vec<usize> {
            let hits = sel(&format!("$.a[?({filter})]"), &doc);
            let all = doc["a"].as_array().cloned().unwrap_or_default();
            hits.as_array()
                .map(|h| {
                    h.iter()
                        .filter_map(|x| all.iter().position(|y| y == x))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(idx("@.n == 1"), vec![0, 1, 2]); // numbers by value; a numeric string too
        assert_eq!(idx("@.n == 1.0"), vec![0, 1]); // "1" is not the text of 1.0
        assert_eq!(idx("@.n === 1"), vec![0, 1]);
        assert_eq!(idx("@.n == '1'"), vec![0, 1, 2]); // number vs string: the string's value
        assert_eq!(idx("@.n == null"), vec![4]);
        assert_eq!(idx("@.n == true"), vec![5]);
        assert_eq!(idx("@.n == [1, 2]"), vec![6]);
        assert_eq!(idx("@.n != 1"), vec![3, 4, 5, 6, 7, 8, 9]); // a missing member is not equal
        assert_eq!(idx("@.n > 0"), vec![0, 1]);
        assert_eq!(idx("@.n < 'b'"), vec![2, 3]);
        assert_eq!(idx("@.n"), vec![0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(idx("@.n empty true"), vec![7, 8]);
        assert_eq!(idx("@.n empty false"), vec![2, 3, 6]);
        assert_eq!(idx("@.n size 2"), vec![6]);
        assert_eq!(idx("@.n contains 2"), vec![6]);
        assert_eq!(idx("@.n subsetof [1, 2, 3]"), vec![6, 7]);
        assert_eq!(idx("@.n anyof [2, 5]"), vec![6]);
        assert_eq!(idx("@.n noneof [5]"), vec![6, 7]);
        assert_eq!(idx("@.n in [true, 'abc']"), vec![3, 5]);
        assert_eq!(idx("@.n IN [null]"), vec![4]);
        assert_eq!(idx("@.n =~ /\\d+/"), vec![0, 2]);
        assert_eq!(idx("@.n =~ /1\\.0|abc/"), vec![1, 3]);
        assert_eq!(idx("@.m == $.a[9].m"), vec![9]);
        assert_eq!(idx("@.n.length() == 2"), vec![6]);
        assert_eq!(idx("@['n'] == 'abc'"), vec![3]);
        assert_eq!(idx("@ == {'m': 1}"), vec![9]);

        // A filter applied to an object tests the object itself.
        let obj = json!({"o": {"x": 5}});
        assert_eq!(sel("$.o[?(@.x == 5)]", &obj), json!([{"x": 5}]));
        assert_eq!(sel("$.o[?(@.x == 6)]", &obj), json!([]));
        // Strings in filters are unescaped the Java way.
        let s = json!({"a": [{"s": "it's"}, {"s": "a\nb"}]});
        assert_eq!(sel("$.a[?(@.s == 'it\\'s')].s", &s), json!(["it's"]));
        assert_eq!(sel("$.a[?(@.s == \"a\\nb\")].s", &s), json!(["a\nb"]));
        assert_eq!(sel("$.a[?(@.s == '\\u0061\\nb')].s", &s), json!(["a\nb"]));
    }

    #[test]
    fn functions() {
        let doc = json!({"a": [3, 1, "x", 2], "o": {"k": 1, "j": 2}, "e": [], "s": "str"});
        assert_eq!(sel("$.a.length()", &doc), json!(4));
        assert_eq!(sel("$.a.size()", &doc), json!(4));
        assert_eq!(sel("$.o.length()", &doc), json!(2));
        assert_eq!(sel("$.s.length()", &doc), json!(null));
        assert_eq!(sel("$.a.min()", &doc), json!(1.0));
        assert_eq!(sel("$.a.max()", &doc), json!(3.0));
        assert_eq!(sel("$.a.sum()", &doc), json!(6.0));
        assert_eq!(sel("$.a.avg()", &doc), json!(2.0));
        assert_eq!(sel("$.o.keys()", &doc), json!(["k", "j"]));
        assert_eq!(sel("$.a.first()", &doc), json!(3));
        assert_eq!(sel("$.a.last()", &doc), json!(2));
        assert_eq!(sel("$.a[*].length()", &doc), json!(4));
        assert_eq!(sel("$..k.length()", &doc), json!(1));
        assert!(matches!(
            p("$.e.avg()").select(&doc),
            Err(PathError::CannotSet { .. })
        ));
        assert_eq!(no_results("$.x.length()", &doc), "$['x'].length()");
        assert_eq!(
            p("$.x.y.length()").not_found_message(&doc).as_deref(),
            Some("Missing property in path $['x']")
        );
        let path = p("$.a.length()");
        assert!(!path.is_definite() && !path.is_reference());
        assert_eq!(path.select_ref(&doc), None);
    }

    #[test]
    fn quoted_names() {
        let doc = json!({"a b": 1, "it's": 2, "q\"": 3, "Test\\\"\"Name\"": "v", "": 4, "a.b": 5, "[x]": 6});
        assert_eq!(sel("$['a b']", &doc), json!(1));
        assert_eq!(sel("$[\"it's\"]", &doc), json!(2));
        assert_eq!(sel("$['q\"']", &doc), json!(3));
        assert_eq!(sel("$['']", &doc), json!(4));
        assert_eq!(sel("$['a.b']", &doc), json!(5));
        assert_eq!(sel("$['[x]']", &doc), json!(6));
        // AWS (recorded): a backslash inside a quoted name is kept as is.
        assert_eq!(sel("$['Test\\\"\"Name\"']", &doc), json!("v"));
        assert!(p("$['a b']").is_reference());
    }

    #[test]
    fn syntax_errors() {
        let bad = [
            ("", 0),
            ("a.b", 0),
            (".a", 0),
            ("$.", 1),
            ("$..", 1),
            ("$.a.", 3),
            ("$.a..", 3),
            ("$...a", 3),
            ("$[", 1),
            ("$['a'", 5),
            ("$['a'b]", 5),
            ("$[0", 1),
            ("$]", 1),
            ("$.a]", 3),
            ("$.a)", 3),
            ("$.a[]", 3),
            ("$.a[0]]", 6),
            ("$.a[x]", 4),
            ("$.a[1 2]", 4),
            ("$.a[:]", 4),
            ("$.a b", 3),
            ("$ .a", 1),
            ("$$$", 2),
            ("$$x", 2),
            ("$v-x", 2),
            ("$[0]x", 4),
            ("$.*x", 3),
            ("$.a[?(@.x ==)]", 12),
            ("$.a[?(@.x == 1]", 14),
            ("$.a[?@.x]", 5),
            ("$.a[?(@.x foo 1)]", 10),
            ("$.a[?(@.x =~ /(/)]", 13),
            ("$.a.nosuchfn()", 4),
            ("$.a.length(1)", 11),
            ("$.a.length().b", 12),
            ("$..length()", 3),
            ("$['a',]", 6),
            ("$.a[99999999999]", 4),
        ];
        for (path, offset) in bad {
            let e = syntax_error(path);
            assert_eq!(e.offset, offset, "{path}: {}", e.message);
            assert!(!e.message.is_empty());
        }
        // Offsets count characters, not bytes.
        assert_eq!(syntax_error("$.ü ü").offset, 3);
    }

    #[test]
    fn set_result_path() {
        let set = |path: &str, target: Value, value: Value| -> Result<Value, PathError> {
            let mut t = target;
            p(path).set(&mut t, value).map(|()| t)
        };
        let ok = |path: &str, target: Value, value: Value| -> Value {
            match set(path, target, value) {
                Ok(v) => v,
                Err(e) => panic!("{path}: {e}"),
            }
        };
        assert_eq!(ok("$", json!({"a": 1}), json!("r")), json!("r"));
        assert_eq!(
            ok("$.r", json!({"a": 1}), json!(2)),
            json!({"a": 1, "r": 2})
        );
        assert_eq!(
            ok("$.a", json!({"a": 1, "b": 2}), json!(9)),
            json!({"a": 9, "b": 2})
        );
        assert_eq!(
            ok("$.x.y.z", json!({"a": 1}), json!(true)),
            json!({"a": 1, "x": {"y": {"z": true}}})
        );
        assert_eq!(
            ok("$.a.c", json!({"a": {"b": 1}}), json!(2)),
            json!({"a": {"b": 1, "c": 2}})
        );
        assert_eq!(
            ok("$['a b'].c", json!({}), json!(1)),
            json!({"a b": {"c": 1}})
        );
        assert_eq!(
            ok("$.l[1]", json!({"l": [1, 2, 3]}), json!("x")),
            json!({"l": [1, "x", 3]})
        );
        assert_eq!(
            ok("$.l[0].k", json!({"l": [{}]}), json!(1)),
            json!({"l": [{"k": 1}]})
        );
        assert_eq!(ok("$[1]", json!([1, 2]), json!(0)), json!([1, 0]));
        // Key order is kept when a member is overwritten.
        let out = ok("$.a", json!({"a": 1, "b": 2}), json!(3));
        assert_eq!(
            out.as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["a".into(), "b".into()])
        );

        let fails = [
            ("$.x", json!([1, 2])),
            ("$.x", json!("str")),
            ("$.x", json!(null)),
            ("$.a.b", json!({"a": [1]})),
            ("$.a.b", json!({"a": 1})),
            ("$.a.b", json!({"a": null})),
            ("$.l[5]", json!({"l": [1]})),
            ("$.l[0]", json!({"l": {}})),
            ("$.l[2].x", json!({"l": [1]})),
            ("$[*]", json!([1])),
            ("$.a[-1]", json!({"a": [1]})),
            ("$$.a", json!({})),
            ("$v.a", json!({})),
        ];
        for (path, target) in fails {
            match set(path, target, json!(1)) {
                Err(PathError::CannotSet { message }) => {
                    assert!(message.contains(path), "{message}")
                }
                other => panic!("{path}: expected CannotSet, got {other:?}"),
            }
        }
        match set("$.a.b", json!({"a": [1]}), json!(1)) {
            Err(e) => assert_eq!(
                e.to_string(),
                "Unable to apply ResultPath '$.a.b' to the input: $['a'] is an array, not an object"
            ),
            Ok(v) => panic!("{v}"),
        }
    }

    #[test]
    fn regex_engine() {
        let m = |re: &str, flags: &str, s: &str| match Regex::new(re, flags) {
            Ok(r) => r.is_match(s),
            Err(e) => panic!("{re}: {e}"),
        };
        assert!(m("abc", "", "abc"));
        assert!(!m("abc", "", "abcd"));
        assert!(m("a.c", "", "axc"));
        assert!(!m("a.c", "", "a\nc"));
        assert!(m("a.c", "s", "a\nc"));
        assert!(m("(?i)ABC", "", "abc"));
        assert!(m("ab*c", "", "ac") && m("ab*c", "", "abbbc"));
        assert!(m("ab+c", "", "abc") && !m("ab+c", "", "ac"));
        assert!(m("ab?c", "", "ac") && !m("ab?c", "", "abbc"));
        assert!(m("a{2,3}", "", "aaa") && !m("a{2,3}", "", "aaaa") && !m("a{2}", "", "a"));
        assert!(m("a{2,}", "", "aaaaa"));
        assert!(m("(cat|dog)s?", "", "dogs") && !m("(cat|dog)s?", "", "cow"));
        assert!(m("[a-c]+[^0-9]", "", "abcx") && !m("[a-c]+[^0-9]", "", "abc1"));
        assert!(m("\\d{3}-\\w+\\s?", "", "123-ab_c "));
        assert!(m("^start.*end$", "", "start middle end"));
        assert!(m(".*\\bword\\b.*", "", "a word here") && !m(".*\\bword\\b.*", "", "swordfish"));
        assert!(m("[\\]a]+", "", "]a]"));
        assert!(m("(?:ab)*", "", "ababab") && m("(a*)*", "", "aaa"));
        assert!(m("\\Q.*\\E", "", ".*") && !m("\\Q.*\\E", "", "ab"));
        assert!(m("x*?y", "", "xxy"));
        assert!(m("", "", "") && !m("", "", "a"));
        for bad in [
            "(", ")", "*a", "a{2,1}", "[a", "\\1", "(?=a)", "\\p{L}", "\\x1", "a{,2}",
        ] {
            assert!(Regex::new(bad, "").is_err(), "{bad}");
        }
        // Linear time on inputs that make backtracking engines explode.
        let long = "a".repeat(5000);
        assert!(!m("(a*)*b", "", &long));
    }

    #[test]
    fn java_decimal_and_unescape() {
        assert!(
            java_decimal("1").is_some()
                && java_decimal("-1.5e3").is_some()
                && java_decimal("01").is_some()
        );
        assert!(
            java_decimal("abc").is_none()
                && java_decimal("").is_none()
                && java_decimal("1e").is_none()
        );
        assert!(java_decimal(".").is_none() && java_decimal("1.2.3").is_none());
        assert_eq!(java_unescape("a\\tb\\\\c\\'d\\ud83d\\ude00"), "a\tb\\c'd😀");
    }
}
