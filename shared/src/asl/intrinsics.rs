//! The 18 intrinsic functions (`States.Format`, …), parsed once.
//!
//! Grammar (what the validator accepts): `States.Name(arg, …)` where an argument is a
//! single-quoted string (escapes `\'`, `\{`, `\}`, `\\`), a number (`-1`, `1.5`, `2e3`),
//! `true`/`false`/`null`, a path (`$…`, `$$…`, `$name…`) or a nested call (at most
//! [`MAX_NESTING`] levels, the outermost call included). Unknown functions, wrong arities and
//! literal arguments of the wrong kind are rejected by [`Intrinsic::parse`].
//!
//! Errors at run time:
//! * a path argument that selects nothing ⇒ `States.Runtime`, cause
//!   `The function '<expression>' had the following error: The JsonPath argument for the field
//!   '<path>' could not be found in the input '<state input>'` (the wording AWS uses);
//! * anything else a function rejects (wrong argument type, index out of range, …) ⇒
//!   `States.IntrinsicFailure`, cause `The function '<expression>' had the following error:
//!   <detail>`.

use std::borrow::Cow;
use std::collections::HashSet;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::error::{AslError, AslResult};
use super::jsonpath::{JsonPath, Root};
use super::scope::Scope;

/// Deepest nesting of calls in one expression (the outermost call counts as level 1).
pub const MAX_NESTING: usize = 10;
/// Longest string `States.Base64Encode`/`Base64Decode`/`Hash` accept (in characters).
pub const MAX_STRING_CHARS: usize = 10_000;
/// Most elements `States.ArrayRange` may produce.
pub const MAX_RANGE_ELEMENTS: usize = 1_000;

/// The intrinsic functions of the JSONPath query language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

/// What a literal argument must be (checked at parse time) and a computed one at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Any,
    Str,
    Num,
    Bool,
    Arr,
    Obj,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Any => "any value",
            Kind::Str => "a string",
            Kind::Num => "a number",
            Kind::Bool => "a boolean",
            Kind::Arr => "an array",
            Kind::Obj => "an object",
        }
    }
    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Any => true,
            Kind::Str => v.is_string(),
            Kind::Num => v.is_number(),
            Kind::Bool => v.is_boolean(),
            Kind::Arr => v.is_array(),
            Kind::Obj => v.is_object(),
        }
    }
}

const ALL_FUNCTIONS: [Function; 18] = [
    Function::Format,
    Function::StringToJson,
    Function::JsonToString,
    Function::Array,
    Function::ArrayPartition,
    Function::ArrayContains,
    Function::ArrayRange,
    Function::ArrayGetItem,
    Function::ArrayLength,
    Function::ArrayUnique,
    Function::Base64Encode,
    Function::Base64Decode,
    Function::Hash,
    Function::JsonMerge,
    Function::MathRandom,
    Function::MathAdd,
    Function::StringSplit,
    Function::Uuid,
];

impl Function {
    /// The function for a full name (`States.Format`), case-sensitive.
    pub fn from_name(name: &str) -> Option<Function> {
        ALL_FUNCTIONS.iter().copied().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Function::Format => "States.Format",
            Function::StringToJson => "States.StringToJson",
            Function::JsonToString => "States.JsonToString",
            Function::Array => "States.Array",
            Function::ArrayPartition => "States.ArrayPartition",
            Function::ArrayContains => "States.ArrayContains",
            Function::ArrayRange => "States.ArrayRange",
            Function::ArrayGetItem => "States.ArrayGetItem",
            Function::ArrayLength => "States.ArrayLength",
            Function::ArrayUnique => "States.ArrayUnique",
            Function::Base64Encode => "States.Base64Encode",
            Function::Base64Decode => "States.Base64Decode",
            Function::Hash => "States.Hash",
            Function::JsonMerge => "States.JsonMerge",
            Function::MathRandom => "States.MathRandom",
            Function::MathAdd => "States.MathAdd",
            Function::StringSplit => "States.StringSplit",
            Function::Uuid => "States.UUID",
        }
    }

    /// Parameter kinds, how many are required, and whether the last kind repeats.
    fn signature(self) -> (&'static [Kind], usize, bool) {
        use Kind::*;
        match self {
            Function::Format => (&[Str, Any], 1, true),
            Function::StringToJson => (&[Str], 1, false),
            Function::JsonToString => (&[Any], 1, false),
            Function::Array => (&[Any], 0, true),
            Function::ArrayPartition => (&[Arr, Num], 2, false),
            Function::ArrayContains => (&[Arr, Any], 2, false),
            Function::ArrayRange => (&[Num, Num, Num], 3, false),
            Function::ArrayGetItem => (&[Arr, Num], 2, false),
            Function::ArrayLength => (&[Arr], 1, false),
            Function::ArrayUnique => (&[Arr], 1, false),
            Function::Base64Encode => (&[Str], 1, false),
            Function::Base64Decode => (&[Str], 1, false),
            Function::Hash => (&[Str, Str], 2, false),
            Function::JsonMerge => (&[Obj, Obj, Bool], 3, false),
            Function::MathRandom => (&[Num, Num, Num], 2, false),
            Function::MathAdd => (&[Num, Num], 2, false),
            Function::StringSplit => (&[Str, Str], 2, false),
            Function::Uuid => (&[], 0, false),
        }
    }

    fn kind_of(self, index: usize) -> Kind {
        let (kinds, _, variadic) = self.signature();
        match kinds.get(index) {
            Some(k) => *k,
            None if variadic => kinds.last().copied().unwrap_or(Kind::Any),
            None => Kind::Any,
        }
    }

    fn arity_text(self) -> String {
        let (kinds, min, variadic) = self.signature();
        if variadic {
            format!("at least {min} argument{}", if min == 1 { "" } else { "s" })
        } else if min == kinds.len() {
            format!("exactly {min} argument{}", if min == 1 { "" } else { "s" })
        } else {
            format!("{min} to {} arguments", kinds.len())
        }
    }
}

/// The algorithms `States.Hash` accepts.
pub const HASH_ALGORITHMS: [&str; 5] = ["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"];

#[derive(Debug, Clone)]
enum Arg {
    Lit(Value),
    Path(JsonPath),
    Call(Box<Call>),
}

/// One piece of a `States.Format` template.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Text(String),
    Hole,
}

#[derive(Debug, Clone)]
struct Call {
    func: Function,
    args: Vec<Arg>,
    /// `States.Format` with a literal template: the template, compiled.
    template: Option<Vec<Seg>>,
}

/// A parsed intrinsic function call.
#[derive(Debug, Clone)]
pub struct Intrinsic {
    source: String,
    call: Call,
    uses_context: bool,
}

impl Intrinsic {
    /// Parses `States.Name(args…)`. The message of an error says what is wrong and where.
    pub fn parse(source: &str) -> Result<Intrinsic, String> {
        let mut p = Parser {
            src: source,
            pos: 0,
        };
        let call = p.parse_call(1)?;
        p.skip_ws();
        if p.pos < source.len() {
            return Err(format!(
                "unexpected text after the closing parenthesis at offset {}: '{}'",
                p.pos,
                source.get(p.pos..).unwrap_or_default()
            ));
        }
        let uses_context = call.uses_context();
        Ok(Intrinsic {
            source: source.to_string(),
            call,
            uses_context,
        })
    }

    /// Evaluates the call. Path arguments read `scope.input`, `scope.context` or the variables.
    pub fn eval(&self, scope: &Scope<'_>) -> AslResult<Value> {
        eval_call(&self.call, scope).map_err(|f| self.error(f, scope))
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The outermost function.
    pub fn function(&self) -> Function {
        self.call.func
    }

    /// Whether any argument (at any depth) reads the context object (`$$…`).
    pub fn uses_context(&self) -> bool {
        self.uses_context
    }

    fn error(&self, f: Fail, scope: &Scope<'_>) -> AslError {
        match f {
            Fail::Missing(path) => {
                // AWS names a `$$.X` argument as `$.X` and shows the state input.
                let shown = match path.strip_prefix("$$") {
                    Some(rest) => format!("${rest}"),
                    None => path,
                };
                AslError::runtime(format!(
                    "The function '{}' had the following error: The JsonPath argument for the field '{}' could not be found in the input '{}'",
                    self.source,
                    shown,
                    compact(scope.input)
                ))
            }
            Fail::Func(detail) => AslError::intrinsic(format!(
                "The function '{}' had the following error: {}",
                self.source, detail
            )),
        }
    }
}

impl Call {
    fn uses_context(&self) -> bool {
        self.args.iter().any(|a| match a {
            Arg::Lit(_) => false,
            Arg::Path(p) => *p.root() == Root::Context,
            Arg::Call(c) => c.uses_context(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

struct Parser<'s> {
    src: &'s str,
    pos: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'s str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn parse_call(&mut self, depth: usize) -> Result<Call, String> {
        if depth > MAX_NESTING {
            return Err(format!(
                "intrinsic functions can be nested at most {MAX_NESTING} levels deep"
            ));
        }
        let start = self.pos;
        if !self.rest().starts_with("States.") {
            return Err(format!(
                "expected an intrinsic function call (States.…) at offset {start}"
            ));
        }
        self.pos += "States.".len();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let name = self.src.get(start..self.pos).unwrap_or_default();
        let func = Function::from_name(name)
            .ok_or_else(|| format!("unknown intrinsic function '{name}'"))?;
        self.skip_ws();
        if self.peek() != Some(b'(') {
            return Err(format!("expected '(' after {name} at offset {}", self.pos));
        }
        self.pos += 1;

        // (argument, raw text of a string literal)
        let mut args: Vec<(Arg, Option<&'s str>)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b')') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                let arg = self.parse_arg(depth)?;
                args.push(arg);
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b')') => {
                        self.pos += 1;
                        break;
                    }
                    Some(_) => {
                        return Err(format!(
                            "expected ',' or ')' in the arguments of {name} at offset {}",
                            self.pos
                        ))
                    }
                    None => return Err(format!("missing ')' to close {name}")),
                }
            }
        }
        check_call(func, &args)?;
        let template = match (func, args.first()) {
            (Function::Format, Some((Arg::Lit(_), Some(raw)))) => {
                let segs = compile_template(raw);
                let holes = segs.iter().filter(|s| **s == Seg::Hole).count();
                if holes != args.len() - 1 {
                    return Err(format!(
                        "States.Format: the template has {holes} placeholder{} but {} argument{} follow{}",
                        if holes == 1 { "" } else { "s" },
                        args.len() - 1,
                        if args.len() == 2 { "" } else { "s" },
                        if args.len() == 2 { "s" } else { "" },
                    ));
                }
                Some(segs)
            }
            _ => None,
        };
        Ok(Call {
            func,
            args: args.into_iter().map(|(a, _)| a).collect(),
            template,
        })
    }

    fn parse_arg(&mut self, depth: usize) -> Result<(Arg, Option<&'s str>), String> {
        let start = self.pos;
        match self.peek() {
            None => Err("unexpected end of the expression: an argument is missing".to_string()),
            Some(b'\'') => {
                let (value, raw) = self.parse_string()?;
                Ok((Arg::Lit(Value::String(value)), Some(raw)))
            }
            Some(b'$') => {
                let text = self.scan_path();
                let path = JsonPath::parse(text).map_err(|e| {
                    format!("invalid path argument '{text}' at offset {start}: {e}")
                })?;
                Ok((Arg::Path(path), None))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                Ok((Arg::Lit(self.parse_number()?), None))
            }
            Some(_) if self.rest().starts_with("States.") => {
                Ok((Arg::Call(Box::new(self.parse_call(depth + 1)?)), None))
            }
            Some(_) => {
                let word_end = self
                    .rest()
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(self.rest().len());
                let word = &self.rest()[..word_end];
                let value = match word {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => {
                        let shown: String = self.rest().chars().take(20).collect();
                        return Err(format!("invalid argument at offset {start}: '{shown}'"));
                    }
                };
                self.pos += word_end;
                Ok((Arg::Lit(value), None))
            }
        }
    }

    /// A single-quoted string; returns the unescaped value and the raw text between the quotes.
    fn parse_string(&mut self) -> Result<(String, &'s str), String> {
        let open = self.pos;
        self.pos += 1;
        let body_start = self.pos;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' => {
                    let raw = self.src.get(body_start..body_start + i).unwrap_or_default();
                    self.pos = body_start + i + 1;
                    return Ok((out, raw));
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('\'' | '{' | '}' | '\\'))) => out.push(e),
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => break,
                },
                _ => out.push(c),
            }
        }
        Err(format!(
            "unterminated string literal starting at offset {open}"
        ))
    }

    fn parse_number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        let b = self.src.as_bytes();
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == digits_start {
            return Err(format!("invalid number at offset {start}"));
        }
        let mut is_float = false;
        if b.get(i) == Some(&b'.') {
            is_float = true;
            i += 1;
            let frac = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == frac {
                return Err(format!("invalid number at offset {start}"));
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            is_float = true;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let exp = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == exp {
                return Err(format!("invalid number at offset {start}"));
            }
        }
        if b.get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
        {
            return Err(format!("invalid number at offset {start}"));
        }
        let text = self.src.get(start..i).unwrap_or_default();
        self.pos = i;
        if !is_float {
            if let Ok(n) = text.parse::<i64>() {
                return Ok(Value::Number(n.into()));
            }
        }
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("invalid number '{text}' at offset {start}"))
    }

    /// A path runs to the first `,`, `)` or whitespace outside brackets, parentheses and quotes.
    fn scan_path(&mut self) -> &'s str {
        let start = self.pos;
        let b = self.src.as_bytes();
        let mut i = self.pos;
        let mut brackets = 0usize;
        let mut parens = 0usize;
        let mut quote: Option<u8> = None;
        while let Some(&c) = b.get(i) {
            if let Some(q) = quote {
                if c == b'\\' {
                    i += 2;
                    continue;
                }
                if c == q {
                    quote = None;
                }
                i += 1;
                continue;
            }
            match c {
                b'\'' | b'"' if brackets > 0 || parens > 0 => quote = Some(c),
                b'[' => brackets += 1,
                b']' => brackets = brackets.saturating_sub(1),
                b'(' => parens += 1,
                b')' if parens > 0 => parens -= 1,
                b')' | b',' if brackets == 0 => break,
                c if c.is_ascii_whitespace() && brackets == 0 && parens == 0 => break,
                _ => {}
            }
            i += 1;
        }
        let end = i.min(b.len());
        self.pos = end;
        self.src.get(start..end).unwrap_or_default()
    }
}

/// Arity and literal-argument checks.
fn check_call(func: Function, args: &[(Arg, Option<&str>)]) -> Result<(), String> {
    let (kinds, min, variadic) = func.signature();
    let n = args.len();
    if n < min || (!variadic && n > kinds.len()) {
        return Err(format!(
            "{} takes {}, but {} {} given",
            func.name(),
            func.arity_text(),
            n,
            if n == 1 { "was" } else { "were" }
        ));
    }
    for (i, (arg, _)) in args.iter().enumerate() {
        if let Arg::Lit(v) = arg {
            let kind = func.kind_of(i);
            if !kind.accepts(v) {
                return Err(format!(
                    "argument {} of {} must be {}, but the literal {} is {}",
                    i + 1,
                    func.name(),
                    kind.describe(),
                    compact(v),
                    type_name(v)
                ));
            }
        }
    }
    let lit = |i: usize| match args.get(i) {
        Some((Arg::Lit(v), _)) => Some(v),
        _ => None,
    };
    match func {
        Function::Hash => {
            if let Some(Value::String(alg)) = lit(1) {
                if !HASH_ALGORITHMS.contains(&alg.as_str()) {
                    return Err(format!(
                        "States.Hash: unsupported algorithm '{alg}' (use one of {})",
                        HASH_ALGORITHMS.join(", ")
                    ));
                }
            }
        }
        Function::JsonMerge => {
            if let Some(Value::Bool(true)) = lit(2) {
                return Err("States.JsonMerge: deep merging is not supported; the third argument must be false".to_string());
            }
        }
        Function::ArrayPartition => {
            if let Some(v) = lit(1) {
                if to_int(v).is_some_and(|n| n <= 0) {
                    return Err(
                        "States.ArrayPartition: the chunk size must be a positive integer"
                            .to_string(),
                    );
                }
            }
        }
        Function::ArrayRange => {
            if let (Some(a), Some(b), Some(c)) = (lit(0), lit(1), lit(2)) {
                if let (Some(a), Some(b), Some(c)) = (to_int(a), to_int(b), to_int(c)) {
                    range_len(a, b, c).map_err(|e| format!("States.ArrayRange: {e}"))?;
                }
            } else if let Some(c) = lit(2) {
                if to_int(c) == Some(0) {
                    return Err("States.ArrayRange: the step must not be 0".to_string());
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Compiles a `States.Format` template: `{}` is a placeholder, `\x` stands for `x` when `x` is
/// one of `' { } \`, and everything else is literal text.
fn compile_template(raw: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut text = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek().copied() {
                Some(e @ ('\'' | '{' | '}' | '\\')) => {
                    text.push(e);
                    chars.next();
                }
                _ => text.push('\\'),
            },
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                if !text.is_empty() {
                    segs.push(Seg::Text(std::mem::take(&mut text)));
                }
                segs.push(Seg::Hole);
            }
            _ => text.push(c),
        }
    }
    if !text.is_empty() {
        segs.push(Seg::Text(text));
    }
    segs
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

enum Fail {
    /// A path argument that selected nothing (its source text).
    Missing(String),
    /// A function rejected its arguments.
    Func(String),
}

type EvalResult<T> = Result<T, Fail>;

fn eval_arg<'v>(arg: &'v Arg, scope: &Scope<'v>) -> EvalResult<Cow<'v, Value>> {
    match arg {
        Arg::Lit(v) => Ok(Cow::Borrowed(v)),
        Arg::Call(c) => eval_call(c, scope).map(Cow::Owned),
        Arg::Path(p) => {
            let root: &'v Value = match p.root() {
                Root::Input => scope.input,
                Root::Context => scope.context,
                Root::Variable(name) => match scope.vars.get_var(name) {
                    Some(v) => v,
                    None => return Err(Fail::Missing(p.source().to_string())),
                },
            };
            if p.is_definite() {
                p.select_ref(root)
                    .map(Cow::Borrowed)
                    .ok_or_else(|| Fail::Missing(p.source().to_string()))
            } else {
                p.select(root)
                    .map(Cow::Owned)
                    .map_err(|_| Fail::Missing(p.source().to_string()))
            }
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn bad_arg(func: Function, index: usize, kind: Kind, v: &Value) -> Fail {
    Fail::Func(format!(
        "Invalid argument {} of {}: expected {}, got {}",
        index + 1,
        func.name(),
        kind.describe(),
        type_name(v)
    ))
}

fn want_str(func: Function, index: usize, v: &Value) -> EvalResult<&str> {
    v.as_str().ok_or_else(|| bad_arg(func, index, Kind::Str, v))
}

fn want_arr(func: Function, index: usize, v: &Value) -> EvalResult<&Vec<Value>> {
    v.as_array()
        .ok_or_else(|| bad_arg(func, index, Kind::Arr, v))
}

/// Java's `Math.round`: the nearest integer, ties toward positive infinity.
pub fn java_round(x: f64) -> f64 {
    let f = x.floor();
    if x - f >= 0.5 {
        f + 1.0
    } else {
        f
    }
}

/// A JSON number as an integer: non-integers are rounded as Java's `Math.round` does.
fn to_int(v: &Value) -> Option<i64> {
    let n = v.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.is_u64() {
        return None;
    }
    let r = java_round(n.as_f64()?);
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&r) {
        Some(r as i64)
    } else {
        None
    }
}

fn want_int(func: Function, index: usize, v: &Value) -> EvalResult<i64> {
    if !v.is_number() {
        return Err(bad_arg(func, index, Kind::Num, v));
    }
    to_int(v).ok_or_else(|| {
        Fail::Func(format!(
            "Invalid argument {} of {}: the number {} is out of range",
            index + 1,
            func.name(),
            compact(v)
        ))
    })
}

fn want_int32(func: Function, index: usize, v: &Value) -> EvalResult<i64> {
    let n = want_int(func, index, v)?;
    if n < i64::from(i32::MIN) || n > i64::from(i32::MAX) {
        return Err(Fail::Func(format!(
            "Invalid argument {} of {}: {} is outside the integer range [{}, {}]",
            index + 1,
            func.name(),
            compact(v),
            i32::MIN,
            i32::MAX
        )));
    }
    Ok(n)
}

fn limit_chars(func: Function, index: usize, s: &str) -> EvalResult<()> {
    // Cheap check first: a string of at most N bytes has at most N characters.
    if s.len() > MAX_STRING_CHARS && s.chars().count() > MAX_STRING_CHARS {
        return Err(Fail::Func(format!(
            "Invalid argument {} of {}: the string is longer than {} characters",
            index + 1,
            func.name(),
            MAX_STRING_CHARS
        )));
    }
    Ok(())
}

/// Number of elements of `ArrayRange(start, end, step)`.
fn range_len(start: i64, end: i64, step: i64) -> Result<usize, String> {
    if step == 0 {
        return Err("the step must not be 0".to_string());
    }
    let span = i128::from(end) - i128::from(start);
    let step = i128::from(step);
    let count = if span == 0 {
        1
    } else if (span > 0) == (step > 0) {
        span / step + 1
    } else {
        0
    };
    if count > MAX_RANGE_ELEMENTS as i128 {
        return Err(format!(
            "the range would have {count} elements, more than the maximum of {MAX_RANGE_ELEMENTS}"
        ));
    }
    Ok(count as usize)
}

/// Calls with at most this many arguments evaluate them without a heap allocation.
const INLINE_ARGS: usize = 4;

fn eval_call(call: &Call, scope: &Scope<'_>) -> EvalResult<Value> {
    // Arguments are evaluated left to right, all of them, before the function runs.
    let n = call.args.len();
    if n <= INLINE_ARGS {
        let mut buf: [Cow<'_, Value>; INLINE_ARGS] = Default::default();
        for (slot, a) in buf.iter_mut().zip(&call.args) {
            *slot = eval_arg(a, scope)?;
        }
        apply(call, &mut buf[..n], scope)
    } else {
        let mut args: Vec<Cow<'_, Value>> = Vec::with_capacity(n);
        for a in &call.args {
            args.push(eval_arg(a, scope)?);
        }
        apply(call, &mut args, scope)
    }
}

fn apply(call: &Call, args: &mut [Cow<'_, Value>], scope: &Scope<'_>) -> EvalResult<Value> {
    let func = call.func;
    match func {
        Function::Array => {
            return Ok(Value::Array(
                args.iter_mut()
                    .map(|a| std::mem::take(a).into_owned())
                    .collect(),
            ))
        }
        Function::ArrayUnique => {
            let items = match args.first_mut().map(std::mem::take) {
                Some(Cow::Owned(Value::Array(v))) => v,
                Some(Cow::Borrowed(Value::Array(v))) => v.clone(),
                Some(other) => return Err(bad_arg(func, 0, Kind::Arr, &other)),
                None => Vec::new(),
            };
            return Ok(Value::Array(unique(items)));
        }
        _ => {}
    }
    let args: &[Cow<'_, Value>] = args;
    let arg = |i: usize| -> &Value { args.get(i).map(|c| c.as_ref()).unwrap_or(&Value::Null) };
    match func {
        // Handled above (they consume their arguments).
        Function::Array | Function::ArrayUnique => Ok(Value::Null),
        Function::Format => {
            let runtime_template;
            let segs: &[Seg] = match &call.template {
                Some(t) => t,
                None => {
                    let t = want_str(func, 0, arg(0))?;
                    runtime_template = compile_template(t);
                    let holes = runtime_template.iter().filter(|s| **s == Seg::Hole).count();
                    if holes != args.len() - 1 {
                        return Err(Fail::Func(format!(
                            "Invalid arguments for States.Format: the template has {holes} placeholders but {} values were given",
                            args.len() - 1
                        )));
                    }
                    &runtime_template
                }
            };
            let mut out = String::with_capacity(64);
            let mut next = 1;
            for s in segs {
                match s {
                    Seg::Text(t) => out.push_str(t),
                    Seg::Hole => {
                        render_java(&mut out, arg(next));
                        next += 1;
                    }
                }
            }
            Ok(Value::String(out))
        }
        Function::StringToJson => {
            let s = want_str(func, 0, arg(0))?;
            let t = s.trim();
            if t.is_empty() {
                return Ok(Value::Null);
            }
            let v: Value = serde_json::from_str(t).map_err(|e| {
                Fail::Func(format!(
                    "Invalid argument 1 of States.StringToJson: the string is not valid JSON ({e})"
                ))
            })?;
            Ok(normalize_negative_zero(v, t))
        }
        Function::JsonToString => serde_json::to_string(arg(0))
            .map(Value::String)
            .map_err(|e| Fail::Func(format!("States.JsonToString: {e}"))),
        Function::ArrayPartition => {
            let arr = want_arr(func, 0, arg(0))?;
            let size = want_int(func, 1, arg(1))?;
            if size <= 0 {
                return Err(Fail::Func(format!(
                    "Invalid argument 2 of States.ArrayPartition: the chunk size must be a positive integer, got {}",
                    compact(arg(1))
                )));
            }
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            Ok(Value::Array(
                arr.chunks(size).map(|c| Value::Array(c.to_vec())).collect(),
            ))
        }
        Function::ArrayContains => {
            let arr = want_arr(func, 0, arg(0))?;
            let needle = arg(1);
            Ok(Value::Bool(arr.iter().any(|v| v == needle)))
        }
        Function::ArrayRange => {
            let start = want_int(func, 0, arg(0))?;
            let end = want_int(func, 1, arg(1))?;
            let step = want_int(func, 2, arg(2))?;
            let n = range_len(start, end, step)
                .map_err(|e| Fail::Func(format!("Invalid arguments for States.ArrayRange: {e}")))?;
            let mut out = Vec::with_capacity(n);
            let mut x = i128::from(start);
            for _ in 0..n {
                out.push(Value::Number(Number::from(x as i64)));
                x += i128::from(step);
            }
            Ok(Value::Array(out))
        }
        Function::ArrayGetItem => {
            let arr = want_arr(func, 0, arg(0))?;
            let idx = want_int(func, 1, arg(1))?;
            usize::try_from(idx)
                .ok()
                .and_then(|i| arr.get(i))
                .cloned()
                .ok_or_else(|| {
                    Fail::Func(format!(
                        "Invalid argument 2 of States.ArrayGetItem: the index {idx} is out of bounds for an array of length {}",
                        arr.len()
                    ))
                })
        }
        Function::ArrayLength => {
            let arr = want_arr(func, 0, arg(0))?;
            Ok(Value::Number(Number::from(arr.len() as u64)))
        }
        Function::Base64Encode => {
            let s = want_str(func, 0, arg(0))?;
            limit_chars(func, 0, s)?;
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(s.as_bytes()),
            ))
        }
        Function::Base64Decode => {
            let s = want_str(func, 0, arg(0))?;
            limit_chars(func, 0, s)?;
            let bytes = BASE64_LENIENT.decode(s.as_bytes()).map_err(|e| {
                Fail::Func(format!(
                    "Invalid argument 1 of States.Base64Decode: not valid Base64 ({e})"
                ))
            })?;
            Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        }
        Function::Hash => {
            let data = want_str(func, 0, arg(0))?;
            limit_chars(func, 0, data)?;
            let alg = want_str(func, 1, arg(1))?;
            hash_hex(alg, data.as_bytes()).map(Value::String).ok_or_else(|| {
                Fail::Func(format!(
                    "Invalid argument 2 of States.Hash: unsupported algorithm '{alg}' (use one of {})",
                    HASH_ALGORITHMS.join(", ")
                ))
            })
        }
        Function::JsonMerge => {
            let a = arg(0)
                .as_object()
                .ok_or_else(|| bad_arg(func, 0, Kind::Obj, arg(0)))?;
            let b = arg(1)
                .as_object()
                .ok_or_else(|| bad_arg(func, 1, Kind::Obj, arg(1)))?;
            match arg(2) {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    return Err(Fail::Func(
                        "Invalid argument 3 of States.JsonMerge: deep merging is not supported; the flag must be false".to_string(),
                    ))
                }
                other => return Err(bad_arg(func, 2, Kind::Bool, other)),
            }
            let mut out: Map<String, Value> = a.clone();
            for (k, v) in b {
                out.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(out))
        }
        Function::MathRandom => {
            let start = want_int32(func, 0, arg(0))?;
            let end = want_int32(func, 1, arg(1))?;
            if end <= start {
                return Err(Fail::Func(format!(
                    "Invalid arguments for States.MathRandom: the end ({end}) must be greater than the start ({start})"
                )));
            }
            let bound = end - start;
            let offset = if args.len() > 2 {
                let seed = want_int(func, 2, arg(2))?;
                let bound = i32::try_from(bound).map_err(|_| {
                    Fail::Func(format!(
                        "Invalid arguments for States.MathRandom: the range [{start}, {end}) is too large"
                    ))
                })?;
                i64::from(JavaRandom::new(seed).next_int(bound))
            } else {
                (scope.entropy.next_u64() % bound as u64) as i64
            };
            Ok(Value::Number(Number::from(start + offset)))
        }
        Function::MathAdd => {
            let a = want_int32(func, 0, arg(0))?;
            let b = want_int32(func, 1, arg(1))?;
            Ok(Value::Number(Number::from(a + b)))
        }
        Function::StringSplit => {
            let s = want_str(func, 0, arg(0))?;
            let delims = want_str(func, 1, arg(1))?;
            let mut out = Vec::new();
            let mut push = |t: &str| {
                if !t.is_empty() {
                    out.push(Value::String(t.to_string()));
                }
            };
            let mut dchars = delims.chars();
            match (dchars.next(), dchars.next()) {
                (None, _) => push(s),
                (Some(d), None) => s.split(d).for_each(push),
                _ => s.split(|c: char| delims.contains(c)).for_each(push),
            }
            Ok(Value::Array(out))
        }
        Function::Uuid => Ok(Value::String(scope.entropy.uuid_v4())),
    }
}

/// `StringToJson("-0")` is the integer 0 (as AWS's Java parser reads it), not `-0.0`.
fn normalize_negative_zero(v: Value, text: &str) -> Value {
    match &v {
        Value::Number(n)
            if n.as_f64() == Some(0.0) && n.is_f64() && !text.contains(['.', 'e', 'E']) =>
        {
            Value::Number(Number::from(0))
        }
        _ => v,
    }
}

const BASE64_LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn hash_hex(alg: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest as _;
    fn hex(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            s.push(DIGITS[(b >> 4) as usize] as char);
            s.push(DIGITS[(b & 0xf) as usize] as char);
        }
        s
    }
    Some(match alg {
        "MD5" => hex(&md5::Md5::digest(data)),
        "SHA-1" => hex(&sha1::Sha1::digest(data)),
        "SHA-256" => hex(&sha2::Sha256::digest(data)),
        "SHA-384" => hex(&sha2::Sha384::digest(data)),
        "SHA-512" => hex(&sha2::Sha512::digest(data)),
        _ => return None,
    })
}

/// Removes duplicates (deep equality), keeping first occurrences in order.
fn unique(items: Vec<Value>) -> Vec<Value> {
    let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
    let mut out = Vec::with_capacity(items.len());
    for v in items {
        let mut key = String::new();
        canonical_key(&v, &mut key);
        if seen.insert(key) {
            out.push(v);
        }
    }
    out
}

/// A string that is equal for two values exactly when the values are equal (`==`): objects
/// with their keys sorted, everything else as compact JSON.
fn canonical_key(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&compact(&Value::String(k.clone())));
                out.push(':');
                if let Some(x) = m.get(k) {
                    canonical_key(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_key(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&compact(other)),
    }
}

/// Renders a value as Java's `String.valueOf` does for the object AWS builds from JSON:
/// strings raw, objects `{k=v, k2=v2}`, arrays `[a, b]`, numbers as Java prints them.
fn render_java(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => render_java_number(out, n),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_java(out, x);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                render_java(out, x);
            }
            out.push('}');
        }
    }
}

fn render_java_number(out: &mut String, n: &Number) {
    use std::fmt::Write as _;
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        out.push_str(&java_double_to_string(f));
    }
}

/// Java's `Double.toString`: plain notation in [1e-3, 1e7), computerized scientific notation
/// (`1.0E10`, `1.5E-5`) outside, always with a fractional part.
pub fn java_double_to_string(f: f64) -> String {
    let a = f.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{f}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mant, exp)) => {
                if mant.contains('.') {
                    format!("{mant}E{exp}")
                } else {
                    format!("{mant}.0E{exp}")
                }
            }
            None => s,
        }
    }
}

/// `java.util.Random`, for `States.MathRandom(start, end, seed)`.
pub struct JavaRandom {
    seed: i64,
}

impl JavaRandom {
    const MULTIPLIER: i64 = 0x5_DEEC_E66D;
    const MASK: i64 = (1 << 48) - 1;

    pub fn new(seed: i64) -> Self {
        JavaRandom {
            seed: (seed ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        ((self.seed as u64) >> (48 - bits)) as i64 as i32
    }

    /// `nextInt(bound)`; `bound` must be positive (1 is returned as 0 for anything else).
    pub fn next_int(&mut self, bound: i32) -> i32 {
        if bound <= 0 {
            return 0;
        }
        let mut r = self.next(31);
        let m = bound - 1;
        if bound & m == 0 {
            return ((i64::from(bound) * i64::from(r)) >> 31) as i32;
        }
        let mut u = r;
        loop {
            r = u % bound;
            if u.wrapping_sub(r).wrapping_add(m) >= 0 {
                return r;
            }
            u = self.next(31);
        }
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asl::scope::VarLookup;
    use crate::ports::SeededEntropy;
    use serde_json::json;

    fn run_with(
        expr: &str,
        input: &Value,
        context: &Value,
        vars: &Map<String, Value>,
    ) -> AslResult<Value> {
        let entropy = SeededEntropy::new(7);
        let scope = Scope {
            input,
            context,
            vars: vars as &dyn VarLookup,
            entropy: &entropy,
        };
        Intrinsic::parse(expr)
            .map_err(AslError::intrinsic)?
            .eval(&scope)
    }

    fn run(expr: &str, input: Value) -> AslResult<Value> {
        run_with(expr, &input, &json!({}), &Map::new())
    }

    fn ok(expr: &str) -> Value {
        match run(expr, json!({})) {
            Ok(v) => v,
            Err(e) => panic!("{expr}: {e}"),
        }
    }

    fn ok_in(expr: &str, input: Value) -> Value {
        match run(expr, input) {
            Ok(v) => v,
            Err(e) => panic!("{expr}: {e}"),
        }
    }

    fn fails(expr: &str) -> AslError {
        match run(expr, json!({})) {
            Ok(v) => panic!("{expr}: expected an error, got {v}"),
            Err(e) => e,
        }
    }

    fn rejects(expr: &str) -> String {
        match Intrinsic::parse(expr) {
            Ok(i) => panic!("{expr}: expected a parse error, got {i:?}"),
            Err(e) => e,
        }
    }

    // ---- parsing ----

    #[test]
    fn parses_literals_and_whitespace() {
        assert_eq!(
            ok("States.Array( 1 ,  -2.5,'a' ,true,false,null, 1e2 )"),
            json!([1, -2.5, "a", true, false, null, 100.0])
        );
        assert_eq!(ok("States.Array()"), json!([]));
        assert_eq!(
            ok("States.Array(States.Array(), States.Array(1))"),
            json!([[], [1]])
        );
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            ok(r"States.Array('it\'s', '\{\}', 'a\\b', 'x\ny')"),
            json!(["it's", "{}", "a\\b", "x\\ny"])
        );
        assert_eq!(
            ok("States.StringSplit('Hello\nWorld', '\n')"),
            json!(["Hello", "World"])
        );
        assert!(rejects(r"States.Array('abc\')").contains("unterminated"));
        assert!(rejects("States.Array('abc").contains("unterminated"));
    }

    #[test]
    fn rejects_bad_syntax() {
        assert!(rejects("States.Nope(1)").contains("unknown intrinsic function 'States.Nope'"));
        assert!(rejects("States.format('x')").contains("unknown"));
        rejects("States.Array(1,)");
        rejects("States.Array(1 2)");
        rejects("States.Array(1");
        rejects("States.Array(1) x");
        rejects("States.Array(foo)");
        rejects("States.Array(1.)");
        rejects("Format('x')");
    }

    #[test]
    fn rejects_wrong_arity_and_literal_kinds() {
        assert!(rejects("States.MathAdd(1)").contains("exactly 2 arguments"));
        assert!(rejects("States.UUID(1)").contains("exactly 0 arguments"));
        assert!(rejects("States.MathRandom(1)").contains("2 to 3 arguments"));
        assert!(rejects("States.Format()").contains("at least 1 argument"));
        assert!(rejects("States.MathAdd('1', 2)").contains("must be a number"));
        rejects("States.ArrayLength('abc')");
        rejects("States.StringToJson(1)");
        rejects("States.JsonMerge(1, 2, false)");
        rejects("States.Hash('x', 'SHA256')");
        rejects("States.JsonMerge(States.StringToJson('{}'), States.StringToJson('{}'), true)");
        rejects("States.ArrayRange(0, 10, 0)");
        rejects("States.ArrayRange(0, 1000, 1)");
        rejects("States.ArrayPartition(States.Array(1), 0)");
        assert!(
            rejects("States.Format('{} {}', 1)").contains("2 placeholders but 1 argument follows")
        );
        rejects("States.Format('{}')");
        Intrinsic::parse("States.ArrayRange(0, 999, 1)").unwrap();
    }

    #[test]
    fn nesting_limit() {
        let mut expr = "1".to_string();
        for _ in 0..MAX_NESTING {
            expr = format!("States.Array({expr})");
        }
        Intrinsic::parse(&expr).unwrap();
        let deeper = format!("States.Array({expr})");
        assert!(rejects(&deeper).contains("nested"));
    }

    // ---- Format ----

    #[test]
    fn format_renders_values_java_style() {
        assert_eq!(ok("States.Format('a{}b', 'x')"), json!("axb"));
        assert_eq!(
            ok("States.Format('{}|{}|{}|{}|{}', null, 1, 1.1, true, '')"),
            json!("null|1|1.1|true|")
        );
        assert_eq!(
            ok("States.Format('v={}', States.StringToJson('{\"Arg1\": 1, \"Arg2\": [], \"s\": \"t\", \"n\": null, \"o\": {\"a\": [1, \"b\"]}}'))"),
            json!("v={Arg1=1, Arg2=[], s=t, n=null, o={a=[1, b]}}")
        );
        assert_eq!(
            ok("States.Format('{}', States.Array(1, 'a', 2.5))"),
            json!("[1, a, 2.5]")
        );
        assert_eq!(ok("States.Format('plain')"), json!("plain"));
        assert_eq!(
            ok(r"States.Format('\{\} {} \\ it\'s', 1)"),
            json!("{} 1 \\ it's")
        );
    }

    #[test]
    fn format_with_template_from_a_value() {
        assert_eq!(
            ok("States.Format(States.Format('{}', 'n={}'), 5)"),
            json!("n=5")
        );
        let e = fails("States.Format(States.Format('{}', 'n={} {}'), 5)");
        assert_eq!(e.name, crate::asl::ErrorName::IntrinsicFailure);
        let e = fails("States.Format(States.Array(), 5)");
        assert!(
            e.cause.starts_with(
                "The function 'States.Format(States.Array(), 5)' had the following error: "
            ),
            "{}",
            e.cause
        );
    }

    #[test]
    fn java_numbers() {
        assert_eq!(java_double_to_string(1.0), "1.0");
        assert_eq!(java_double_to_string(1.1), "1.1");
        assert_eq!(java_double_to_string(-0.5), "-0.5");
        assert_eq!(java_double_to_string(1e7), "1.0E7");
        assert_eq!(java_double_to_string(1.5e-5), "1.5E-5");
        assert_eq!(java_double_to_string(123456.789), "123456.789");
        assert_eq!(java_double_to_string(0.0), "0.0");
        assert_eq!(java_double_to_string(1e20), "1.0E20");
        assert_eq!(java_double_to_string(9999999.0), "9999999.0");
        assert_eq!(java_double_to_string(0.001), "0.001");
        assert_eq!(java_double_to_string(0.0001), "1.0E-4");
        assert_eq!(java_double_to_string(123456789.123), "1.23456789123E8");
    }

    // ---- JSON ----

    #[test]
    fn string_to_json() {
        assert_eq!(ok("States.StringToJson('')"), Value::Null);
        assert_eq!(ok("States.StringToJson(' ')"), Value::Null);
        assert_eq!(ok("States.StringToJson('null')"), Value::Null);
        assert_eq!(ok("States.StringToJson('-0')"), json!(0));
        assert!(ok("States.StringToJson('-0')").is_i64());
        assert_eq!(ok("States.StringToJson('1.1')"), json!(1.1));
        assert_eq!(ok("States.StringToJson('true')"), json!(true));
        assert_eq!(
            ok("States.StringToJson('\"HelloWorld\"')"),
            json!("HelloWorld")
        );
        assert_eq!(
            ok("States.StringToJson('[1, 2, \"x\"]')"),
            json!([1, 2, "x"])
        );
        assert_eq!(
            ok("States.StringToJson('{\"a\": {\"b\": []}}')"),
            json!({"a": {"b": []}})
        );
        let e = fails("States.StringToJson('{oops')");
        assert_eq!(e.name, crate::asl::ErrorName::IntrinsicFailure);
        assert!(e
            .cause
            .starts_with("The function 'States.StringToJson('{oops')' had the following error: "));
        assert_eq!(
            fails("States.StringToJson(States.Array())").name,
            crate::asl::ErrorName::IntrinsicFailure
        );
    }

    #[test]
    fn json_to_string() {
        assert_eq!(ok("States.JsonToString(null)"), json!("null"));
        assert_eq!(ok("States.JsonToString(1.1)"), json!("1.1"));
        assert_eq!(ok("States.JsonToString(true)"), json!("true"));
        assert_eq!(
            ok("States.JsonToString('HelloWorld')"),
            json!("\"HelloWorld\"")
        );
        assert_eq!(
            ok("States.JsonToString(States.StringToJson('{\"Arg1\": 1, \"Arg2\": []}'))"),
            json!("{\"Arg1\":1,\"Arg2\":[]}")
        );
    }

    #[test]
    fn json_merge_is_shallow() {
        let v = ok("States.JsonMerge(States.StringToJson('{\"a\": {\"a1\": 1}, \"b\": 2, \"d\": 3}'), States.StringToJson('{\"a\": {\"a3\": 1}, \"c\": 3, \"d\": 4}'), false)");
        assert_eq!(v, json!({"a": {"a3": 1}, "b": 2, "c": 3, "d": 4}));
        assert_eq!(
            fails("States.JsonMerge(States.Array(), States.StringToJson('{}'), false)").name,
            crate::asl::ErrorName::IntrinsicFailure
        );
        assert_eq!(fails("States.JsonMerge(States.StringToJson('{}'), States.StringToJson('{}'), States.StringToJson('true'))").name, crate::asl::ErrorName::IntrinsicFailure);
    }

    // ---- arrays ----

    #[test]
    fn array_partition() {
        assert_eq!(ok("States.ArrayPartition(States.Array(), 2)"), json!([]));
        assert_eq!(
            ok("States.ArrayPartition(States.Array(0, 1, 2, 3), 3)"),
            json!([[0, 1, 2], [3]])
        );
        assert_eq!(
            ok("States.ArrayPartition(States.Array(0, 1, 2), 5)"),
            json!([[0, 1, 2]])
        );
        assert_eq!(
            ok("States.ArrayPartition(States.Array(0, 1, 2), 1.5)"),
            json!([[0, 1], [2]])
        );
        assert_eq!(
            fails("States.ArrayPartition(States.Array(1), States.MathAdd(0, 0))").name,
            crate::asl::ErrorName::IntrinsicFailure
        );
    }

    #[test]
    fn array_contains_deep() {
        assert_eq!(ok("States.ArrayContains(States.Array(States.Array(1, 2, 3), 2), States.Array(1, 2, 3))"), json!(true));
        assert_eq!(
            ok("States.ArrayContains(States.Array(States.Array(1, 2, 3), 2), null)"),
            json!(false)
        );
        assert_eq!(
            ok("States.ArrayContains(States.Array(true, false), false)"),
            json!(true)
        );
        assert_eq!(
            ok("States.ArrayContains(States.Array(), States.Array())"),
            json!(false)
        );
        assert_eq!(
            ok("States.ArrayContains(States.StringToJson('[{\"1\": 2, \"2\": []}]'), States.StringToJson('{\"2\": [], \"1\": 2}'))"),
            json!(true)
        );
    }

    #[test]
    fn array_range() {
        assert_eq!(ok("States.ArrayRange(0, 9, 3)"), json!([0, 3, 6, 9]));
        assert_eq!(ok("States.ArrayRange(0, 10, 3)"), json!([0, 3, 6, 9]));
        assert_eq!(ok("States.ArrayRange(1, 9, 9)"), json!([1]));
        assert_eq!(ok("States.ArrayRange(1, 9, 2)"), json!([1, 3, 5, 7, 9]));
        assert_eq!(ok("States.ArrayRange(5, 1, -2)"), json!([5, 3, 1]));
        assert_eq!(ok("States.ArrayRange(5, 1, 1)"), json!([]));
        assert_eq!(ok("States.ArrayRange(1, 1, 1)"), json!([1]));
        assert_eq!(ok("States.ArrayRange(0.5, 2.4, 1)"), json!([1, 2]));
        assert_eq!(
            ok("States.ArrayRange(1, 1000, 1)").as_array().map(Vec::len),
            Some(1000)
        );
        let e = fails("States.ArrayRange(0, 1000, States.MathAdd(1, 0))");
        assert_eq!(e.name, crate::asl::ErrorName::IntrinsicFailure);
        assert!(e.cause.contains("maximum of 1000"));
        assert_eq!(
            fails("States.ArrayRange(0, 10, States.MathAdd(0, 0))").name,
            crate::asl::ErrorName::IntrinsicFailure
        );
    }

    #[test]
    fn array_get_item_and_length() {
        assert_eq!(
            ok("States.ArrayGetItem(States.Array(1, 2, 3, 4, 5, 6, 7, 8, 9), 5)"),
            json!(6)
        );
        assert_eq!(ok("States.ArrayLength(States.Array(1, 2, 3))"), json!(3));
        assert_eq!(ok("States.ArrayLength(States.Array())"), json!(0));
        let e = fails("States.ArrayGetItem(States.Array(1, 2), 2)");
        assert_eq!(e.name, crate::asl::ErrorName::IntrinsicFailure);
        assert!(e.cause.contains("out of bounds"));
        assert_eq!(
            fails("States.ArrayGetItem(States.Array(1, 2), -1)").name,
            crate::asl::ErrorName::IntrinsicFailure
        );
        assert_eq!(
            fails("States.ArrayLength(States.StringToJson('{}'))").name,
            crate::asl::ErrorName::IntrinsicFailure
        );
    }

    #[test]
    fn array_unique_keeps_first_occurrences() {
        let v = ok_in(
            "States.ArrayUnique($.a)",
            json!({"a": [null, null, true, true, false, 1, 1, 1.1, 0, "x", "x", [], [], [null], [null], {"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 1, "b": 1}]}),
        );
        assert_eq!(
            v,
            json!([null, true, false, 1, 1.1, 0, "x", [], [null], {"a": 1, "b": 2}, {"a": 1, "b": 1}])
        );
        assert_eq!(
            ok("States.ArrayUnique(States.Array(3, 1, 3, 2, 1))"),
            json!([3, 1, 2])
        );
    }

    // ---- encoding, hashing ----

    #[test]
    fn base64() {
        assert_eq!(ok("States.Base64Encode('')"), json!(""));
        assert_eq!(
            ok("States.Base64Encode('Data to encode')"),
            json!("RGF0YSB0byBlbmNvZGU=")
        );
        assert_eq!(
            ok("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')"),
            json!("Data to encode")
        );
        assert_eq!(ok("States.Base64Decode('')"), json!(""));
        assert_eq!(
            fails("States.Base64Decode('not base64!!')").name,
            crate::asl::ErrorName::IntrinsicFailure
        );
        let long = format!("'{}'", "a".repeat(MAX_STRING_CHARS + 1));
        assert_eq!(
            fails(&format!("States.Base64Encode({long})")).name,
            crate::asl::ErrorName::IntrinsicFailure
        );
        let ok_len = format!("'{}'", "é".repeat(MAX_STRING_CHARS));
        assert!(run(&format!("States.Base64Encode({ok_len})"), json!({})).is_ok());
    }

    #[test]
    fn hashes() {
        assert_eq!(
            ok("States.Hash('input data', 'MD5')"),
            json!("812f45842bc6d66ee14572ce20db8e86")
        );
        assert_eq!(
            ok("States.Hash('input data', 'SHA-1')"),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        assert_eq!(
            ok("States.Hash('input data', 'SHA-256')"),
            json!("b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3")
        );
        assert_eq!(
            ok("States.Hash('input data', 'SHA-384')"),
            json!("d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562")
        );
        assert_eq!(
            ok("States.Hash('input data', 'SHA-512')"),
            json!("6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce2deba23bf2954f0f1d593fc50283731a533d30d425402d4f91316d871303aac4")
        );
        assert_eq!(
            fails("States.Hash('x', States.Format('sha-1'))").name,
            crate::asl::ErrorName::IntrinsicFailure
        );
    }

    // ---- math ----

    #[test]
    fn math_add_rounds_like_java() {
        let cases = [
            ("-9", "3", -6),
            ("1.49", "1.5", 3),
            ("1.5", "1.51", 4),
            ("-1.49", "-1.5", -2),
            ("-1.5", "-1.51", -3),
            ("1.49", "-1.49", 0),
            ("0.5", "0", 1),
            ("2.5", "0", 3),
            ("-0.5", "0.5", 1),
            ("-0.5", "0", 0),
            ("-2.5", "0", -2),
            ("-3.5", "0", -3),
            ("0.49999999999999994", "0", 0),
        ];
        for (a, b, want) in cases {
            assert_eq!(
                ok(&format!("States.MathAdd({a}, {b})")),
                json!(want),
                "{a} + {b}"
            );
        }
        assert_eq!(ok("States.MathAdd(2147483647, 1)"), json!(2147483648i64));
        assert_eq!(
            fails("States.MathAdd(2147483648, 1)").name,
            crate::asl::ErrorName::IntrinsicFailure
        );
        assert_eq!(
            fails("States.MathAdd(States.Format('1'), 1)").name,
            crate::asl::ErrorName::IntrinsicFailure
        );
    }

    #[test]
    fn java_random_matches_java() {
        // Values printed by OpenJDK 17's java.util.Random.
        assert_eq!(JavaRandom::new(0).next_int(100), 60);
        assert_eq!(JavaRandom::new(1).next_int(16), 11);
        assert_eq!(JavaRandom::new(3).next_int(999), 239);
        assert_eq!(JavaRandom::new(-5).next_int(1_000_000_007), 578_319_411);
        assert_eq!(JavaRandom::new(123_456_789_012).next_int(7), 3);
        let mut r = JavaRandom::new(42);
        assert_eq!((r.next_int(10), r.next_int(10), r.next_int(10)), (0, 3, 8));
    }

    #[test]
    fn math_random() {
        for _ in 0..20 {
            let v = ok("States.MathRandom(13, 45)");
            let n = v.as_i64().unwrap();
            assert!((13..45).contains(&n), "{n}");
        }
        let v = ok("States.MathRandom(-99999, -9999)").as_i64().unwrap();
        assert!((-99999..-9999).contains(&v));
        let a = ok("States.MathRandom(0, 999, 3)");
        let b = ok("States.MathRandom(0, 999, 3)");
        assert_eq!(a, b);
        assert_eq!(a, json!(i64::from(JavaRandom::new(3).next_int(999))));
        assert_eq!(
            fails("States.MathRandom(5, 5)").name,
            crate::asl::ErrorName::IntrinsicFailure
        );
        let v = ok("States.MathRandom(12.5, 44.51)").as_i64().unwrap();
        assert!((13..45).contains(&v));
    }

    // ---- strings, uuid ----

    #[test]
    fn string_split() {
        assert_eq!(ok("States.StringSplit(' ', ',')"), json!([" "]));
        assert_eq!(ok("States.StringSplit(' , ', ',')"), json!([" ", " "]));
        assert_eq!(ok("States.StringSplit(', , ,', ',')"), json!([" ", " "]));
        assert_eq!(ok("States.StringSplit(',,,,', ',')"), json!([]));
        assert_eq!(
            ok("States.StringSplit('1,2,3', ',')"),
            json!(["1", "2", "3"])
        );
        assert_eq!(
            ok("States.StringSplit('This.is+a,test=string', '.+,=')"),
            json!(["This", "is", "a", "test", "string"])
        );
        assert_eq!(
            ok("States.StringSplit('split on T and \nnew line', 'T\n')"),
            json!(["split on ", " and ", "new line"])
        );
        assert_eq!(ok("States.StringSplit('abc', '')"), json!(["abc"]));
        assert_eq!(ok("States.StringSplit('', ',')"), json!([]));
        assert_eq!(
            fails("States.StringSplit(States.Array(), ',')").name,
            crate::asl::ErrorName::IntrinsicFailure
        );
    }

    #[test]
    fn uuid_v4() {
        let v = ok("States.UUID()");
        let s = v.as_str().unwrap();
        assert_eq!(s.len(), 36);
        assert_eq!(s.as_bytes()[14], b'4');
    }

    #[test]
    fn nested_calls() {
        assert_eq!(
            ok("States.ArrayGetItem(States.StringSplit('a-b-c', '-'), States.MathAdd(States.ArrayLength(States.StringSplit('a-b-c', '-')), -1))"),
            json!("c")
        );
    }

    #[test]
    fn error_wraps_the_whole_expression() {
        let e = fails("States.Format('{}', States.ArrayGetItem(States.Array(1), 3))");
        assert_eq!(e.name, crate::asl::ErrorName::IntrinsicFailure);
        assert!(e.cause.starts_with(
            "The function 'States.Format('{}', States.ArrayGetItem(States.Array(1), 3))' had the following error: Invalid argument 2 of States.ArrayGetItem"
        ), "{}", e.cause);
    }

    // ---- paths (need the JSONPath module) ----

    #[test]
    fn path_arguments() {
        let input = json!({"a": "x", "n": 2, "arr": [1, 2, 3], "o": {"k": "v"}});
        assert_eq!(
            ok_in("States.Format('{}-{}', $.a, $.n)", input.clone()),
            json!("x-2")
        );
        assert_eq!(ok_in("States.ArrayLength($.arr)", input.clone()), json!(3));
        assert_eq!(
            ok_in("States.JsonToString($)", json!({"other": 1})),
            json!("{\"other\":1}")
        );
        assert_eq!(
            ok_in("States.Format('{}',$.o)", input.clone()),
            json!("{k=v}")
        );
        assert_eq!(ok_in("States.ArrayGetItem($.arr, $.n)", input), json!(3));
        assert_eq!(
            ok_in("States.Format('{}', $.nul)", json!({"nul": null})),
            json!("null")
        );
    }

    #[test]
    fn missing_path_argument_is_a_runtime_error() {
        let e = run(
            "States.Format('{} {}', $.other, $.a.b)",
            json!({"other": 1}),
        )
        .unwrap_err();
        assert_eq!(e.name, crate::asl::ErrorName::Runtime);
        assert_eq!(
            e.cause,
            "The function 'States.Format('{} {}', $.other, $.a.b)' had the following error: The JsonPath argument for the field '$.a.b' could not be found in the input '{\"other\":1}'"
        );
        let e = run(
            "States.Format('{}', States.Format('{}', $.nope))",
            json!({"other": 1}),
        )
        .unwrap_err();
        assert!(e.cause.starts_with("The function 'States.Format('{}', States.Format('{}', $.nope))' had the following error: The JsonPath argument for the field '$.nope'"));
    }

    #[test]
    fn context_and_variable_arguments() {
        let input = json!({"other": 1});
        let ctx = json!({"StateMachine": {"Name": "sm-one-two"}, "Map": {"Item": {"Value": "Hi"}}});
        let mut vars = Map::new();
        vars.insert("tpl".into(), json!("It's {}!"));
        vars.insert("obj".into(), json!({"x": [5, 6]}));
        let i = Intrinsic::parse("States.Format($tpl, $$.Map.Item.Value)").unwrap();
        assert!(i.uses_context());
        assert!(!Intrinsic::parse("States.Format($tpl, $.a)")
            .unwrap()
            .uses_context());
        assert!(Intrinsic::parse("States.Array(States.Array($$))")
            .unwrap()
            .uses_context());
        assert_eq!(
            run_with(
                "States.Format($tpl, $$.Map.Item.Value)",
                &input,
                &ctx,
                &vars
            )
            .unwrap(),
            json!("It's Hi!")
        );
        assert_eq!(
            run_with("States.ArrayGetItem($obj.x, 1)", &input, &ctx, &vars).unwrap(),
            json!(6)
        );
        assert_eq!(
            run_with(
                "States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), 0)",
                &input,
                &ctx,
                &vars
            )
            .unwrap(),
            json!("sm")
        );
        let e = run_with("States.Format('{}', $$.Nope.Deep)", &input, &ctx, &vars).unwrap_err();
        assert_eq!(
            e.cause,
            "The function 'States.Format('{}', $$.Nope.Deep)' had the following error: The JsonPath argument for the field '$.Nope.Deep' could not be found in the input '{\"other\":1}'"
        );
        let e = run_with("States.Format('{}', $nope)", &input, &ctx, &vars).unwrap_err();
        assert_eq!(e.name, crate::asl::ErrorName::Runtime);
    }
}
