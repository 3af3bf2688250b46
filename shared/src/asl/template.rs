//! JSONPath payload templates (`Parameters`, `ResultSelector`, `ItemSelector`, `Assign`, …):
//! keys ending in `.$` take a path, a context path, a variable path or an intrinsic call.
//!
//! A template is compiled once: literal subtrees are kept as ready-made values (cloned as a
//! whole at evaluation), and only the objects/arrays on the way to a `.$` key are rebuilt.
//! `.$` keys are evaluated at any depth, including inside objects nested in arrays.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::{AslError, AslResult};
use super::intrinsics::Intrinsic;
use super::jsonpath::{JsonPath, Root};
use super::scope::Scope;

/// The value of a `.$` key (or of Fail's `ErrorPath`/`CausePath`): a path or an intrinsic.
#[derive(Debug, Clone)]
pub enum PathExpr {
    Path(JsonPath),
    Intrinsic(Box<Intrinsic>),
}

impl PathExpr {
    /// `$…`, `$$…` and `$name…` are paths; `States.…(…)` is an intrinsic call.
    pub fn parse(source: &str) -> Result<PathExpr, String> {
        if source.starts_with('$') {
            JsonPath::parse(source)
                .map(PathExpr::Path)
                .map_err(|e| format!("invalid JSONPath '{source}': {e}"))
        } else if source.starts_with("States.") {
            Intrinsic::parse(source).map(|i| PathExpr::Intrinsic(Box::new(i)))
        } else {
            Err(format!(
                "'{source}' is neither a JSONPath (starting with '$') nor an intrinsic function call (States.…)"
            ))
        }
    }

    /// `field` is the key as written (e.g. `value.$`), for error messages.
    ///
    /// A path that selects nothing fails with `States.Runtime`, cause `The JSONPath '<path>'
    /// specified for the field '<field>' could not be found in the input '<json>'`, where the
    /// input shown is the value the path was evaluated against (the state input for `$…`, the
    /// context object for `$$…`, the variable for `$name…`; the state input when the variable
    /// does not exist).
    pub fn eval(&self, scope: &Scope<'_>, field: &str) -> AslResult<Value> {
        match self {
            PathExpr::Intrinsic(i) => i.eval(scope),
            PathExpr::Path(p) => {
                let root = match p.root() {
                    Root::Input => scope.input,
                    Root::Context => scope.context,
                    Root::Variable(name) => match scope.vars.get_var(name) {
                        Some(v) => v,
                        None => return Err(not_found(p, field, scope.input)),
                    },
                };
                p.select(root).map_err(|_| not_found(p, field, root))
            }
        }
    }

    pub fn uses_context(&self) -> bool {
        match self {
            PathExpr::Path(p) => *p.root() == Root::Context,
            PathExpr::Intrinsic(i) => i.uses_context(),
        }
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        match self {
            PathExpr::Path(p) => p.source(),
            PathExpr::Intrinsic(i) => i.source(),
        }
    }
}

fn not_found(path: &JsonPath, field: &str, input: &Value) -> AslError {
    AslError::runtime(format!(
        "The JSONPath '{}' specified for the field '{}' could not be found in the input '{}'",
        path.source(),
        field,
        serde_json::to_string(input).unwrap_or_default()
    ))
}

#[derive(Debug, Clone)]
enum Node {
    /// A subtree without any `.$` key.
    Lit(Value),
    /// An object with at least one dynamic member: `skeleton` holds every output key in
    /// order with the literal members filled in (`null` for the dynamic ones); `slots` lists,
    /// in the same order, the node to evaluate for each dynamic member. Evaluation clones the
    /// skeleton (no key hashing) and fills the slots through `values_mut`.
    Obj {
        skeleton: Map<String, Value>,
        slots: Vec<Option<Node>>,
    },
    Arr(Vec<Node>),
    /// A `.$` value; `field` is the key as written.
    Expr {
        expr: PathExpr,
        field: String,
    },
}

/// A compiled payload template.
#[derive(Debug, Clone)]
pub struct PayloadTemplate {
    source: Value,
    root: Node,
    uses_context: bool,
}

impl PayloadTemplate {
    /// Compiles `value` (an object for Parameters/ResultSelector/…; Assign is an object too).
    /// Errors carry the location inside the template (e.g. `/a/b.$`) and a message.
    pub fn compile(value: &Value) -> Result<PayloadTemplate, (String, String)> {
        let mut location = String::new();
        let mut uses_context = false;
        let root = compile_node(value, &mut location, &mut uses_context)?;
        Ok(PayloadTemplate {
            source: value.clone(),
            root,
            uses_context,
        })
    }

    pub fn eval(&self, scope: &Scope<'_>) -> AslResult<Value> {
        eval_node(&self.root, scope)
    }

    /// Whether any `.$` value reads `$$` (so the engine builds the context object only then).
    pub fn uses_context(&self) -> bool {
        self.uses_context
    }

    /// Whether the template has no `.$` key at all (its value is [`Self::source`]).
    pub fn is_literal(&self) -> bool {
        matches!(self.root, Node::Lit(_))
    }

    pub fn source(&self) -> &Value {
        &self.source
    }
}

/// The message AWS's validator gives for a bad `.$` value.
fn invalid_value_message(key: &str, detail: &str) -> String {
    format!(
        "The value for the field '{key}' must be a valid JSONPath or a valid intrinsic function call ({detail})"
    )
}

fn compile_node(
    value: &Value,
    location: &mut String,
    uses_context: &mut bool,
) -> Result<Node, (String, String)> {
    match value {
        Value::Object(map) => {
            let mut entries = Vec::with_capacity(map.len());
            let mut dynamic = false;
            for (key, v) in map {
                let mark = location.len();
                location.push('/');
                location.push_str(key);
                let node = match key.strip_suffix(".$") {
                    Some(out_key) => {
                        let src = match v {
                            Value::String(s) => s,
                            other => {
                                let kind = match other {
                                    Value::Null => "null",
                                    Value::Bool(_) => "a boolean",
                                    Value::Number(_) => "a number",
                                    Value::Array(_) => "an array",
                                    _ => "an object",
                                };
                                return Err((
                                    location.clone(),
                                    invalid_value_message(
                                        key,
                                        &format!("got {kind}, not a string"),
                                    ),
                                ));
                            }
                        };
                        let expr = PathExpr::parse(src)
                            .map_err(|e| (location.clone(), invalid_value_message(key, &e)))?;
                        *uses_context |= expr.uses_context();
                        (
                            out_key.to_string(),
                            Node::Expr {
                                expr,
                                field: key.clone(),
                            },
                        )
                    }
                    None => (key.clone(), compile_node(v, location, uses_context)?),
                };
                location.truncate(mark);
                dynamic |= !matches!(node.1, Node::Lit(_));
                entries.push(node);
            }
            if !dynamic {
                return Ok(Node::Lit(value.clone()));
            }
            // Later members win on a duplicate output key (e.g. `a` and `a.$`), in the
            // position of the first, as sequential inserts would do.
            let mut skeleton: Map<String, Value> = Map::with_capacity(entries.len());
            let mut latest: HashMap<String, Node> = HashMap::with_capacity(entries.len());
            for (k, node) in entries {
                let literal = match &node {
                    Node::Lit(v) => v.clone(),
                    _ => Value::Null,
                };
                skeleton.insert(k.clone(), literal);
                latest.insert(k, node);
            }
            let slots = skeleton
                .keys()
                .map(|k| match latest.remove(k) {
                    Some(Node::Lit(_)) | None => None,
                    Some(dynamic) => Some(dynamic),
                })
                .collect();
            Ok(Node::Obj { skeleton, slots })
        }
        Value::Array(items) => {
            let mut nodes = Vec::with_capacity(items.len());
            let mut dynamic = false;
            for (i, v) in items.iter().enumerate() {
                let mark = location.len();
                location.push('/');
                location.push_str(&i.to_string());
                let node = compile_node(v, location, uses_context)?;
                location.truncate(mark);
                dynamic |= !matches!(node, Node::Lit(_));
                nodes.push(node);
            }
            Ok(if dynamic {
                Node::Arr(nodes)
            } else {
                Node::Lit(value.clone())
            })
        }
        other => Ok(Node::Lit(other.clone())),
    }
}

fn eval_node(node: &Node, scope: &Scope<'_>) -> AslResult<Value> {
    match node {
        Node::Lit(v) => Ok(v.clone()),
        Node::Expr { expr, field } => expr.eval(scope, field),
        Node::Obj { skeleton, slots } => {
            let mut map = skeleton.clone();
            for (slot, value) in slots.iter().zip(map.values_mut()) {
                if let Some(n) = slot {
                    *value = eval_node(n, scope)?;
                }
            }
            Ok(Value::Object(map))
        }
        Node::Arr(nodes) => {
            let mut out = Vec::with_capacity(nodes.len());
            for n in nodes {
                out.push(eval_node(n, scope)?);
            }
            Ok(Value::Array(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asl::scope::VarLookup;
    use crate::asl::ErrorName;
    use crate::ports::SeededEntropy;
    use serde_json::json;

    fn eval_with(
        template: &Value,
        input: &Value,
        context: &Value,
        vars: &Map<String, Value>,
    ) -> AslResult<Value> {
        let entropy = SeededEntropy::new(1);
        let scope = Scope {
            input,
            context,
            vars: vars as &dyn VarLookup,
            entropy: &entropy,
        };
        match PayloadTemplate::compile(template) {
            Ok(t) => t.eval(&scope),
            Err((loc, msg)) => panic!("compile failed at {loc}: {msg}"),
        }
    }

    fn eval(template: Value, input: Value) -> AslResult<Value> {
        eval_with(&template, &input, &json!({}), &Map::new())
    }

    #[test]
    fn literal_templates_are_copied() {
        let t = json!({"a": 1, "b": {"c": [1, "$.x", {"d": null}]}, "e": "States.Format('x')"});
        let compiled = PayloadTemplate::compile(&t).unwrap();
        assert!(compiled.is_literal());
        assert!(!compiled.uses_context());
        assert_eq!(compiled.source(), &t);
        assert_eq!(eval(t.clone(), json!({})).unwrap(), t);
        assert_eq!(eval(json!("scalar"), json!({})).unwrap(), json!("scalar"));
    }

    #[test]
    fn intrinsics_without_paths() {
        let t = json!({"s.$": "States.Format('{}-{}', 'a', 1)", "n.$": "States.MathAdd(1, 2)", "k": "v"});
        assert_eq!(
            eval(t, json!({})).unwrap(),
            json!({"s": "a-1", "n": 3, "k": "v"})
        );
    }

    #[test]
    fn duplicate_output_keys_keep_the_last_value() {
        let t = json!({"a": 1, "b": true, "a.$": "States.MathAdd(1, 1)"});
        let out = eval(t, json!({})).unwrap();
        assert_eq!(out, json!({"a": 2, "b": true}));
        assert_eq!(
            out.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            eval(
                json!({"a.$": "States.MathAdd(1, 1)", "a": 5, "c.$": "States.Array()"}),
                json!({})
            )
            .unwrap(),
            json!({"a": 5, "c": []})
        );
    }

    #[test]
    fn objects_inside_arrays_are_evaluated() {
        let t = json!({"l": [1, {"x.$": "States.Array(1)", "y": [{"z.$": "States.Format('z')"}]}, [{"w.$": "States.MathAdd(2, 2)"}]]});
        assert_eq!(
            eval(t, json!({})).unwrap(),
            json!({"l": [1, {"x": [1], "y": [{"z": "z"}]}, [{"w": 4}]]})
        );
        assert_eq!(
            eval(json!([{"a.$": "States.Array()"}]), json!({})).unwrap(),
            json!([{"a": []}])
        );
    }

    #[test]
    fn compile_errors_carry_the_location() {
        let (loc, msg) = PayloadTemplate::compile(&json!({"a": {"b.$": 1}})).unwrap_err();
        assert_eq!(loc, "/a/b.$");
        assert!(msg.starts_with("The value for the field 'b.$' must be a valid JSONPath or a valid intrinsic function call"), "{msg}");
        let (loc, _) =
            PayloadTemplate::compile(&json!({"x": [{"y": {"z.$": "nope"}}]})).unwrap_err();
        assert_eq!(loc, "/x/0/y/z.$");
        let (loc, msg) = PayloadTemplate::compile(&json!({"f.$": "States.Nope()"})).unwrap_err();
        assert_eq!(loc, "/f.$");
        assert!(msg.contains("unknown intrinsic function"));
        assert!(PayloadTemplate::compile(&json!({"f.$": "States.MathAdd(1)"})).is_err());
    }

    #[test]
    fn uses_context_is_detected() {
        let t = PayloadTemplate::compile(
            &json!({"a": [{"b.$": "States.Format('{}', States.UUID())"}]}),
        )
        .unwrap();
        assert!(!t.uses_context());
        assert!(!t.is_literal());
    }

    // ---- with paths (need the JSONPath module) ----

    #[test]
    fn paths_context_and_variables() {
        let input = json!({"input_value": "v", "n": 2, "arr": [1, 2]});
        let ctx =
            json!({"Map": {"Item": {"Value": "Hello", "Index": 0}}, "Execution": {"Id": "e"}});
        let mut vars = Map::new();
        vars.insert("Question".into(), json!("Who?"));
        vars.insert("tpl".into(), json!("It's {}!"));
        let t = json!({
            "constant": "c",
            "value.$": "$.input_value",
            "all.$": "$",
            "item.$": "$$.Map.Item.Value",
            "q.$": "$Question",
            "f.$": "States.Format($tpl, $$.Map.Item.Value)",
            "nested": {"sum.$": "States.MathAdd($.n, 3)", "lit": [1, 2]},
            "list": [{"x.$": "$.arr"}, "plain", {"y": 1}]
        });
        let compiled = PayloadTemplate::compile(&t).unwrap();
        assert!(compiled.uses_context());
        let out = eval_with(&t, &input, &ctx, &vars).unwrap();
        assert_eq!(
            out,
            json!({
                "constant": "c",
                "value": "v",
                "all": input,
                "item": "Hello",
                "q": "Who?",
                "f": "It's Hello!",
                "nested": {"sum": 5, "lit": [1, 2]},
                "list": [{"x": [1, 2]}, "plain", {"y": 1}]
            })
        );
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["constant", "value", "all", "item", "q", "f", "nested", "list"]
        );
    }

    #[test]
    fn missing_path_is_a_runtime_error() {
        let e = eval(json!({"value.$": "$.no_such_jsonpath"}), json!({"a": 1})).unwrap_err();
        assert_eq!(e.name, ErrorName::Runtime);
        assert_eq!(
            e.cause,
            "The JSONPath '$.no_such_jsonpath' specified for the field 'value.$' could not be found in the input '{\"a\":1}'"
        );
        let ctx = json!({"Execution": {"Input": {"a": 1}}});
        let e = eval_with(
            &json!({"value.$": "$$.Execution.Input.no_such_jsonpath"}),
            &json!({"b": 2}),
            &ctx,
            &Map::new(),
        )
        .unwrap_err();
        assert_eq!(e.name, ErrorName::Runtime);
        assert_eq!(
            e.cause,
            "The JSONPath '$$.Execution.Input.no_such_jsonpath' specified for the field 'value.$' could not be found in the input '{\"Execution\":{\"Input\":{\"a\":1}}}'"
        );
        let e = eval(json!({"v.$": "$undefinedVar"}), json!({})).unwrap_err();
        assert_eq!(e.name, ErrorName::Runtime);
    }

    #[test]
    fn path_expr_for_fail_fields() {
        let p = PathExpr::parse("$.ErrorX").unwrap();
        let input = json!({"Error": "E"});
        let entropy = SeededEntropy::new(1);
        let ctx = json!({});
        let scope = Scope {
            input: &input,
            context: &ctx,
            vars: &crate::asl::scope::NoVars,
            entropy: &entropy,
        };
        let e = p.eval(&scope, "ErrorPath").unwrap_err();
        assert_eq!(
            e.cause,
            "The JSONPath '$.ErrorX' specified for the field 'ErrorPath' could not be found in the input '{\"Error\":\"E\"}'"
        );
        let p = PathExpr::parse("States.Format('{}!', $.Error)").unwrap();
        assert_eq!(p.eval(&scope, "CausePath").unwrap(), json!("E!"));
        assert!(PathExpr::parse("nope").is_err());
    }
}
