//! Choice states and rules (JSONPath comparison rules and JSONata conditions).

use serde_json::{Map as JsonMap, Value};

use super::super::jsonata::JsonataTemplate;
use super::super::model::{Choice, ChoiceBranch, ChoiceRule, ComparisonOp, Operand, QueryLanguage};
use super::super::timestamp;
use super::codes::TOO_DEEPLY_NESTED;
use super::state::{wrong_language_msg, St};
use super::{at, field, is_jsonata, Names, Parser, MAX_RULE_DEPTH};

/// The operator named `key` (`NumericEquals`, `NumericEqualsPath`, …): the operator and
/// whether it is the `…Path` form.
fn operator(key: &str) -> Option<(ComparisonOp, bool)> {
    for op in ComparisonOp::ALL {
        if key == op.name() {
            return Some((op, false));
        }
        if op.has_path_variant() {
            if let Some(base) = key.strip_suffix("Path") {
                if base == op.name() {
                    return Some((op, true));
                }
            }
        }
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Boolean,
    Numeric,
    String,
    Timestamp,
    Type,
}

fn family(op: ComparisonOp) -> Family {
    use ComparisonOp::*;
    match op {
        BooleanEquals => Family::Boolean,
        NumericEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals
        | NumericLessThan
        | NumericLessThanEquals => Family::Numeric,
        StringEquals
        | StringGreaterThan
        | StringGreaterThanEquals
        | StringLessThan
        | StringLessThanEquals
        | StringMatches => Family::String,
        TimestampEquals
        | TimestampGreaterThan
        | TimestampGreaterThanEquals
        | TimestampLessThan
        | TimestampLessThanEquals => Family::Timestamp,
        IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => Family::Type,
    }
}

impl Parser {
    pub(super) fn choice_state(&mut self, st: &St<'_>, names: &Names) -> Option<Choice> {
        let io = self.io(st, false);
        let mut choices = Some(Vec::new());
        if self.require(st.obj, &["Choices"], &st.loc) {
            let cloc = st.at("Choices");
            match self.as_nonempty_array(field(st.obj, "Choices"), &cloc) {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let b = self.choice_branch(item, &at(&cloc, &i.to_string()), st.ql, names);
                        match (b, choices.as_mut()) {
                            (Some(b), Some(c)) => c.push(b),
                            _ => choices = None,
                        }
                    }
                }
                None => choices = None,
            }
        } else {
            choices = None;
        }
        let default = match st.get("Default") {
            Some(v) => Some(self.resolve(v, "Default", &st.at("Default"), names)?),
            None => None,
        };
        Some(Choice {
            io: io?,
            choices: choices?,
            default,
        })
    }

    /// A top-level rule: a condition plus `Next` (and `Assign`, `Output`, `Comment`).
    fn choice_branch(
        &mut self,
        v: &Value,
        loc: &str,
        ql: QueryLanguage,
        names: &Names,
    ) -> Option<ChoiceBranch> {
        let obj = self.as_object(v, loc)?;
        let rule = match ql {
            QueryLanguage::JsonPath => self.jsonpath_rule(obj, loc, true, 0),
            QueryLanguage::Jsonata => self.jsonata_rule(obj, loc),
        };
        let next = if self.require(obj, &["Next"], loc) {
            self.resolve(field(obj, "Next"), "Next", &at(loc, "Next"), names)
        } else {
            None
        };
        let mut ok = true;
        let mut assign = None;
        if let Some(v) = obj.get("Assign") {
            assign = self.assign(v, ql, &at(loc, "Assign"));
            ok &= assign.is_some();
        }
        let mut output: Option<JsonataTemplate> = None;
        if ql == QueryLanguage::Jsonata {
            if let Some(v) = obj.get("Output") {
                output = self.jsonata_template(v, &at(loc, "Output"));
                ok &= output.is_some();
            }
        }
        let comment = match obj.get("Comment") {
            Some(c) => Some(self.as_str(c, &at(loc, "Comment"))?.to_string()),
            None => None,
        };
        if !ok {
            return None;
        }
        Some(ChoiceBranch {
            rule: rule?,
            next: next?,
            assign,
            output,
            comment,
        })
    }

    /// A JSONata rule: `Condition` (a boolean or a `{% %}` expression).
    fn jsonata_rule(&mut self, obj: &JsonMap<String, Value>, loc: &str) -> Option<ChoiceRule> {
        let mut ok = true;
        for key in obj.keys() {
            match key.as_str() {
                "Condition" | "Next" | "Assign" | "Output" | "Comment" => {}
                k @ ("Variable" | "And" | "Or" | "Not") => {
                    self.schema(wrong_language_msg(QueryLanguage::Jsonata, k), loc);
                    ok = false;
                }
                k if operator(k).is_some() => {
                    self.schema(wrong_language_msg(QueryLanguage::Jsonata, k), loc);
                    ok = false;
                }
                k => {
                    self.schema(format!("Field '{k}' is not supported"), at(loc, k));
                    ok = false;
                }
            }
        }
        if !self.require(obj, &["Condition"], loc) {
            return None;
        }
        let cloc = at(loc, "Condition");
        let cond = match field(obj, "Condition") {
            Value::Bool(_) => self.jsonata_template(field(obj, "Condition"), &cloc),
            Value::String(s) if is_jsonata(s) => {
                self.jsonata_template(field(obj, "Condition"), &cloc)
            }
            Value::String(s) if s.starts_with("{%") => {
                self.schema(super::JSONATA_DELIMITERS_MSG, cloc);
                None
            }
            _ => {
                self.schema(
                    "Expected value of type Boolean or a JSONata expression",
                    cloc,
                );
                None
            }
        };
        if !ok {
            return None;
        }
        cond.map(ChoiceRule::Condition)
    }

    /// A JSONPath rule (`top`: a top-level rule, which may carry `Next`/`Assign`/`Comment`).
    fn jsonpath_rule(
        &mut self,
        obj: &JsonMap<String, Value>,
        loc: &str,
        top: bool,
        depth: usize,
    ) -> Option<ChoiceRule> {
        if depth > MAX_RULE_DEPTH {
            self.error(
                TOO_DEEPLY_NESTED,
                "The Choice rules are too deeply nested",
                loc,
            );
            return None;
        }
        let has_variable = obj.contains_key("Variable");
        let mut ok = true;
        let mut ops: Vec<(&str, ComparisonOp, bool)> = Vec::new();
        for key in obj.keys() {
            let k = key.as_str();
            match k {
                "Variable" | "And" | "Or" | "Not" | "Comment" => {}
                "Next" | "Assign" if top => {}
                "Condition" | "Output" if top => {
                    self.schema(wrong_language_msg(QueryLanguage::JsonPath, k), loc);
                    ok = false;
                }
                _ => match operator(k) {
                    Some((op, path)) if has_variable => ops.push((k, op, path)),
                    _ => {
                        self.schema(format!("Field '{k}' is not supported"), at(loc, k));
                        ok = false;
                    }
                },
            }
        }
        let kinds: Vec<&str> = ["And", "Or", "Not", "Variable"]
            .into_iter()
            .filter(|k| obj.contains_key(*k))
            .collect();
        if kinds.len() != 1 {
            self.schema(
                "The object must have only one of the following fields, [And, Or, Not, Variable]",
                loc,
            );
            return None;
        }
        let kind = kinds.first().copied().unwrap_or("Variable");
        let rule = match kind {
            "And" | "Or" => {
                let floc = at(loc, kind);
                let items = self.as_nonempty_array(field(obj, kind), &floc)?;
                let mut rules = Some(Vec::new());
                for (i, item) in items.iter().enumerate() {
                    let iloc = at(&floc, &i.to_string());
                    let r = self
                        .as_object(item, &iloc)
                        .and_then(|o| self.jsonpath_rule(o, &iloc, false, depth + 1));
                    match (r, rules.as_mut()) {
                        (Some(r), Some(v)) => v.push(r),
                        _ => rules = None,
                    }
                }
                let rules = rules?;
                if kind == "And" {
                    ChoiceRule::And(rules)
                } else {
                    ChoiceRule::Or(rules)
                }
            }
            "Not" => {
                let floc = at(loc, "Not");
                let inner = self.as_object(field(obj, "Not"), &floc)?;
                ChoiceRule::Not(Box::new(self.jsonpath_rule(
                    inner,
                    &floc,
                    false,
                    depth + 1,
                )?))
            }
            _ => {
                let vloc = at(loc, "Variable");
                let variable = self.reference_path(field(obj, "Variable"), "Variable", &vloc);
                if ops.len() != 1 {
                    if ops.is_empty() {
                        self.schema(
                            "A comparison rule with 'Variable' requires one comparison operator",
                            loc,
                        );
                    } else {
                        let names: Vec<&str> = ops.iter().map(|(k, _, _)| *k).collect();
                        self.schema(
                            format!(
                                "There should only be one of the following fields: [{}]",
                                names.join(", ")
                            ),
                            loc,
                        );
                    }
                    return None;
                }
                let (key, op, path) = *ops.first()?;
                let operand = self.operand(field(obj, key), op, path, key, &at(loc, key));
                ChoiceRule::Compare {
                    variable: variable?,
                    op,
                    operand: operand?,
                }
            }
        };
        if !ok {
            return None;
        }
        Some(rule)
    }

    /// The operand of a comparison: a literal of the operator's type, or a reference path.
    fn operand(
        &mut self,
        v: &Value,
        op: ComparisonOp,
        path: bool,
        key: &str,
        loc: &str,
    ) -> Option<Operand> {
        if path {
            return self.reference_path(v, key, loc).map(Operand::Path);
        }
        match family(op) {
            Family::Boolean | Family::Type => {
                self.as_bool(v, loc)?;
            }
            Family::Numeric => {
                if !v.is_number() {
                    self.expected_type("Number", loc);
                    return None;
                }
            }
            Family::String => {
                self.as_str(v, loc)?;
            }
            Family::Timestamp => {
                let s = self.as_str(v, loc)?;
                if timestamp::parse(s).is_none() {
                    self.schema("String does not match RFC3339 timestamp", loc);
                    return None;
                }
            }
        }
        Some(Operand::Literal(v.clone()))
    }
}
