//! Choice rule evaluation: JSONPath comparison operators and JSONata `Condition`s.
//!
//! Semantics (spec §7.6): a type mismatch makes a comparison false, never an error; numbers
//! compare by value; strings compare by UTF-16 code units like Java's `compareTo`; invalid
//! timestamps make Timestamp* comparisons false; `Is*: false` negates the test; `And`/`Or`
//! short-circuit.

use std::cmp::Ordering;

use serde_json::Value;

use super::error::{AslError, AslResult};
use super::jsonata::JsonataEnv;
use super::jsonpath::{JsonPath, PathError, Root};
use super::model::{ChoiceRule, ComparisonOp, Operand};
use super::scope::Scope;
use super::timestamp;

/// Evaluates a rule. `states` is the JSONata `$states` object (for `Condition`); `index` is
/// the rule's position in `Choices`, for messages.
pub fn evaluate(
    rule: &ChoiceRule,
    scope: &Scope<'_>,
    states: Option<&Value>,
    index: usize,
) -> AslResult<bool> {
    match rule {
        ChoiceRule::And(rules) => {
            for r in rules {
                if !evaluate(r, scope, states, index)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        ChoiceRule::Or(rules) => {
            for r in rules {
                if evaluate(r, scope, states, index)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        ChoiceRule::Not(r) => Ok(!evaluate(r, scope, states, index)?),
        ChoiceRule::Condition(t) => {
            let null = Value::Null;
            let env = JsonataEnv {
                states: states.unwrap_or(&null),
                vars: scope.vars,
                entropy: scope.entropy,
            };
            let field = format!("Choices/{index}/Condition");
            match t.eval(&env, &field)? {
                Value::Bool(b) => Ok(b),
                other => Err(AslError::query(format!(
                    "The JSONata expression '{}' specified for the field '{}' returned an unexpected result type. Expected 'boolean', but was '{}' for value: {}",
                    t.quoted_source(),
                    field,
                    super::jsonata::type_name(&other),
                    serde_json::to_string(&other).unwrap_or_default()
                ))),
            }
        }
        ChoiceRule::Compare {
            variable,
            op,
            operand,
        } => compare(variable, *op, operand, scope),
    }
}

/// Looks a reference path up; `Ok(None)` when it selects nothing.
fn lookup<'a>(path: &JsonPath, scope: &Scope<'a>) -> AslResult<Option<&'a Value>> {
    let root: &'a Value = match path.root() {
        Root::Input => scope.input,
        Root::Context => scope.context,
        Root::Variable(name) => match scope.vars.get_var(name) {
            Some(v) => v,
            None => {
                return Err(AslError::runtime(format!(
                    "Invalid path '{}': The variable '{}' is not defined.",
                    path.source(),
                    name
                )))
            }
        },
    };
    if path.is_definite() {
        return Ok(path.select_ref(root));
    }
    match path.select(root) {
        Ok(_) => Ok(None),
        Err(PathError::NoResults { .. }) | Err(PathError::CannotSet { .. }) => Ok(None),
    }
}

fn missing(path: &JsonPath) -> AslError {
    let normalized = match path.select(&Value::Null) {
        Err(PathError::NoResults { normalized }) => normalized,
        _ => path.source().to_string(),
    };
    AslError::runtime(format!(
        "Invalid path '{}' : No results for path: {}",
        path.source(),
        normalized
    ))
}

fn compare(
    variable: &JsonPath,
    op: ComparisonOp,
    operand: &Operand,
    scope: &Scope<'_>,
) -> AslResult<bool> {
    let value = lookup(variable, scope)?;
    let expected_bool = match operand {
        Operand::Literal(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    let is_test = |present: bool| -> bool { expected_bool.map(|b| b == present).unwrap_or(false) };
    match op {
        ComparisonOp::IsPresent => return Ok(is_test(value.is_some())),
        ComparisonOp::IsNull => return Ok(is_test(matches!(value, Some(Value::Null)))),
        ComparisonOp::IsNumeric => return Ok(is_test(matches!(value, Some(Value::Number(_))))),
        ComparisonOp::IsString => return Ok(is_test(matches!(value, Some(Value::String(_))))),
        ComparisonOp::IsBoolean => return Ok(is_test(matches!(value, Some(Value::Bool(_))))),
        ComparisonOp::IsTimestamp => {
            return Ok(is_test(
                matches!(value, Some(Value::String(s)) if timestamp::parse(s).is_some()),
            ))
        }
        _ => {}
    }
    let Some(value) = value else {
        return Err(missing(variable));
    };
    let other_owned;
    let other: &Value = match operand {
        Operand::Literal(v) => v,
        Operand::Path(p) => match lookup(p, scope)? {
            Some(v) => v,
            None => {
                other_owned = Value::Null;
                let _ = &other_owned;
                return Err(missing(p));
            }
        },
    };
    Ok(match op {
        ComparisonOp::BooleanEquals => {
            matches!((value, other), (Value::Bool(a), Value::Bool(b)) if a == b)
        }
        ComparisonOp::NumericEquals => numeric(value, other) == Some(Ordering::Equal),
        ComparisonOp::NumericGreaterThan => numeric(value, other) == Some(Ordering::Greater),
        ComparisonOp::NumericGreaterThanEquals => {
            matches!(
                numeric(value, other),
                Some(Ordering::Greater | Ordering::Equal)
            )
        }
        ComparisonOp::NumericLessThan => numeric(value, other) == Some(Ordering::Less),
        ComparisonOp::NumericLessThanEquals => matches!(
            numeric(value, other),
            Some(Ordering::Less | Ordering::Equal)
        ),
        ComparisonOp::StringEquals => string(value, other) == Some(Ordering::Equal),
        ComparisonOp::StringGreaterThan => string(value, other) == Some(Ordering::Greater),
        ComparisonOp::StringGreaterThanEquals => matches!(
            string(value, other),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        ComparisonOp::StringLessThan => string(value, other) == Some(Ordering::Less),
        ComparisonOp::StringLessThanEquals => {
            matches!(string(value, other), Some(Ordering::Less | Ordering::Equal))
        }
        ComparisonOp::StringMatches => match (value, other) {
            (Value::String(s), Value::String(p)) => string_matches(s, p),
            _ => false,
        },
        ComparisonOp::TimestampEquals => time(value, other) == Some(Ordering::Equal),
        ComparisonOp::TimestampGreaterThan => time(value, other) == Some(Ordering::Greater),
        ComparisonOp::TimestampGreaterThanEquals => matches!(
            time(value, other),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        ComparisonOp::TimestampLessThan => time(value, other) == Some(Ordering::Less),
        ComparisonOp::TimestampLessThanEquals => {
            matches!(time(value, other), Some(Ordering::Less | Ordering::Equal))
        }
        ComparisonOp::IsNull
        | ComparisonOp::IsPresent
        | ComparisonOp::IsNumeric
        | ComparisonOp::IsString
        | ComparisonOp::IsBoolean
        | ComparisonOp::IsTimestamp => false,
    })
}

/// Numeric comparison by value; integers exactly, otherwise as doubles.
fn numeric(a: &Value, b: &Value) -> Option<Ordering> {
    let (Value::Number(x), Value::Number(y)) = (a, b) else {
        return None;
    };
    if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
        return Some(i.cmp(&j));
    }
    if let (Some(i), Some(j)) = (x.as_u64(), y.as_u64()) {
        return Some(i.cmp(&j));
    }
    x.as_f64()?.partial_cmp(&y.as_f64()?)
}

/// Java `String.compareTo`: UTF-16 code units.
fn string(a: &Value, b: &Value) -> Option<Ordering> {
    let (Value::String(x), Value::String(y)) = (a, b) else {
        return None;
    };
    Some(x.encode_utf16().cmp(y.encode_utf16()))
}

fn time(a: &Value, b: &Value) -> Option<Ordering> {
    let (Value::String(x), Value::String(y)) = (a, b) else {
        return None;
    };
    Some(timestamp::parse(x)?.cmp(&timestamp::parse(y)?))
}

/// `StringMatches`: `*` matches any run of characters; `\*` is a literal star and `\\` a
/// literal backslash.
pub fn string_matches(s: &str, pattern: &str) -> bool {
    #[derive(PartialEq)]
    enum Tok {
        Star,
        Char(char),
    }
    let mut toks = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some(n) => toks.push(Tok::Char(n)),
                None => toks.push(Tok::Char('\\')),
            },
            '*' => toks.push(Tok::Star),
            other => toks.push(Tok::Char(other)),
        }
    }
    let chars: Vec<char> = s.chars().collect();
    // Iterative wildcard matching with backtracking to the last star.
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < chars.len() {
        match toks.get(pi) {
            Some(Tok::Char(c)) if *c == chars[si] => {
                si += 1;
                pi += 1;
            }
            Some(Tok::Star) => {
                star = Some((pi, si));
                pi += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    while let Some(Tok::Star) = toks.get(pi) {
        pi += 1;
    }
    pi == toks.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(string_matches("item-12", "item-*"));
        assert!(string_matches("", "*"));
        assert!(string_matches("abc", "a*c"));
        assert!(!string_matches("abd", "a*c"));
        assert!(string_matches("a*c", "a\\*c"));
        assert!(!string_matches("abc", "a\\*c"));
        assert!(string_matches("log-2024-01.txt", "log-*.txt"));
        assert!(string_matches("aXbXc", "*X*X*"));
        assert!(string_matches("a\\b", "a\\\\b"));
    }

    #[test]
    fn ordering() {
        use serde_json::json;
        assert_eq!(numeric(&json!(1), &json!(1.0)), Some(Ordering::Equal));
        assert_eq!(numeric(&json!("1"), &json!(1)), None);
        assert_eq!(string(&json!("a"), &json!("b")), Some(Ordering::Less));
        assert_eq!(
            time(
                &json!("2016-03-14T01:59:00Z"),
                &json!("2016-03-14T01:59:00.000Z")
            ),
            Some(Ordering::Equal)
        );
    }
}
