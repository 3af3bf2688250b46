//! DynamoDB `AttributeValue`s in their JSON wire form (`{"S": "x"}`, `{"N": "1"}`,
//! `{"B": "<base64>"}`, `{"SS": [...]}`, `{"NS": [...]}`, `{"BS": [...]}`, `{"M": {...}}`,
//! `{"L": [...]}`, `{"BOOL": true}`, `{"NULL": true}`), both ways, as Step Functions passes
//! them in `Key`, `Item`, `ExpressionAttributeValues` and returns them in `Item`/`Attributes`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::Blob;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    #[error("an AttributeValue must be an object with exactly one type key, not {0}")]
    NotOneKey(String),
    #[error(
        "unknown AttributeValue type '{0}' (expected S, N, B, SS, NS, BS, M, L, BOOL or NULL)"
    )]
    UnknownType(String),
    #[error("AttributeValue '{kind}' needs {expected}, not {found}")]
    BadValue {
        kind: String,
        expected: &'static str,
        found: String,
    },
    #[error("AttributeValue 'B' is not valid base64: {0}")]
    BadBase64(String),
    #[error("an item must be an object of attribute values, not {0}")]
    NotAnItem(String),
    #[error("attribute '{name}': {source}")]
    In {
        name: String,
        #[source]
        source: Box<AttrError>,
    },
}

fn bad(kind: &str, expected: &'static str, found: &Value) -> AttrError {
    AttrError::BadValue {
        kind: kind.to_string(),
        expected,
        found: found.to_string(),
    }
}

/// A number: DynamoDB's wire form is a string; a JSON number is accepted too.
fn number(kind: &str, v: &Value) -> Result<String, AttrError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(bad(kind, "a number string", other)),
    }
}

fn blob(v: &Value) -> Result<Blob, AttrError> {
    let s = v.as_str().ok_or_else(|| bad("B", "a base64 string", v))?;
    STANDARD
        .decode(s)
        .map(Blob::new)
        .map_err(|e| AttrError::BadBase64(e.to_string()))
}

fn list<'a>(kind: &str, v: &'a Value) -> Result<&'a Vec<Value>, AttrError> {
    v.as_array().ok_or_else(|| bad(kind, "a list", v))
}

/// One attribute value from its wire form.
pub fn from_json(v: &Value) -> Result<AttributeValue, AttrError> {
    let obj = match v {
        Value::Object(m) if m.len() == 1 => m,
        other => return Err(AttrError::NotOneKey(other.to_string())),
    };
    let Some((kind, inner)) = obj.iter().next() else {
        return Err(AttrError::NotOneKey(v.to_string()));
    };
    Ok(match kind.as_str() {
        "S" => AttributeValue::S(
            inner
                .as_str()
                .ok_or_else(|| bad("S", "a string", inner))?
                .to_string(),
        ),
        "N" => AttributeValue::N(number("N", inner)?),
        "B" => AttributeValue::B(blob(inner)?),
        "BOOL" => AttributeValue::Bool(
            inner
                .as_bool()
                .ok_or_else(|| bad("BOOL", "a boolean", inner))?,
        ),
        "NULL" => AttributeValue::Null(
            inner
                .as_bool()
                .ok_or_else(|| bad("NULL", "a boolean", inner))?,
        ),
        "SS" => AttributeValue::Ss(
            list("SS", inner)?
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad("SS", "strings", s))
                })
                .collect::<Result<_, _>>()?,
        ),
        "NS" => AttributeValue::Ns(
            list("NS", inner)?
                .iter()
                .map(|n| number("NS", n))
                .collect::<Result<_, _>>()?,
        ),
        "BS" => AttributeValue::Bs(
            list("BS", inner)?
                .iter()
                .map(blob)
                .collect::<Result<_, _>>()?,
        ),
        "L" => AttributeValue::L(
            list("L", inner)?
                .iter()
                .map(from_json)
                .collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(item_from_json(inner)?),
        other => return Err(AttrError::UnknownType(other.to_string())),
    })
}

/// A map of attribute values (`Item`, `Key`, `ExpressionAttributeValues`, `M`).
pub fn item_from_json(v: &Value) -> Result<HashMap<String, AttributeValue>, AttrError> {
    let obj = v
        .as_object()
        .ok_or_else(|| AttrError::NotAnItem(v.to_string()))?;
    obj.iter()
        .map(|(name, value)| {
            from_json(value)
                .map(|a| (name.clone(), a))
                .map_err(|e| AttrError::In {
                    name: name.clone(),
                    source: Box::new(e),
                })
        })
        .collect()
}

/// One attribute value in its wire form.
pub fn to_json(a: &AttributeValue) -> Value {
    let (kind, inner) = match a {
        AttributeValue::S(s) => ("S", Value::String(s.clone())),
        AttributeValue::N(n) => ("N", Value::String(n.clone())),
        AttributeValue::B(b) => ("B", Value::String(STANDARD.encode(b.as_ref()))),
        AttributeValue::Bool(b) => ("BOOL", Value::Bool(*b)),
        AttributeValue::Null(b) => ("NULL", Value::Bool(*b)),
        AttributeValue::Ss(v) => (
            "SS",
            Value::Array(v.iter().cloned().map(Value::String).collect()),
        ),
        AttributeValue::Ns(v) => (
            "NS",
            Value::Array(v.iter().cloned().map(Value::String).collect()),
        ),
        AttributeValue::Bs(v) => (
            "BS",
            Value::Array(
                v.iter()
                    .map(|b| Value::String(STANDARD.encode(b.as_ref())))
                    .collect(),
            ),
        ),
        AttributeValue::L(v) => ("L", Value::Array(v.iter().map(to_json).collect())),
        AttributeValue::M(m) => ("M", item_to_json(m)),
        // A type this SDK does not know: nothing faithful to show.
        _ => return Value::Null,
    };
    let mut m = Map::new();
    m.insert(kind.to_string(), inner);
    Value::Object(m)
}

/// A map of attribute values, its keys sorted (DynamoDB gives no order).
pub fn item_to_json(item: &HashMap<String, AttributeValue>) -> Value {
    let mut names: Vec<&String> = item.keys().collect();
    names.sort();
    let mut m = Map::new();
    for name in names {
        if let Some(a) = item.get(name) {
            m.insert(name.clone(), to_json(a));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_type_round_trips() {
        let item = json!({
            "b": {"B": "aGk="},
            "bool": {"BOOL": true},
            "bs": {"BS": ["aGk=", "aG8="]},
            "l": {"L": [{"S": "x"}, {"N": "2"}, {"NULL": true}]},
            "m": {"M": {"inner": {"M": {"deep": {"SS": ["a", "b"]}}}}},
            "n": {"N": "1.5"},
            "ns": {"NS": ["1", "2"]},
            "null": {"NULL": true},
            "s": {"S": "x"},
            "ss": {"SS": ["a"]}
        });
        let parsed = item_from_json(&item).unwrap();
        assert_eq!(
            parsed.get("b"),
            Some(&AttributeValue::B(Blob::new(b"hi".to_vec())))
        );
        assert_eq!(item_to_json(&parsed), item);
    }

    #[test]
    fn numbers_may_be_json_numbers() {
        assert_eq!(
            from_json(&json!({"N": 3})).unwrap(),
            AttributeValue::N("3".into())
        );
    }

    #[test]
    fn malformed_values_are_errors() {
        assert!(matches!(
            from_json(&json!({"X": "1"})),
            Err(AttrError::UnknownType(_))
        ));
        assert!(matches!(
            from_json(&json!({"S": "1", "N": "1"})),
            Err(AttrError::NotOneKey(_))
        ));
        assert!(matches!(
            from_json(&json!("x")),
            Err(AttrError::NotOneKey(_))
        ));
        assert!(matches!(
            from_json(&json!({"B": "%%"})),
            Err(AttrError::BadBase64(_))
        ));
        assert!(matches!(
            from_json(&json!({"BOOL": "yes"})),
            Err(AttrError::BadValue { .. })
        ));
        let e = item_from_json(&json!({"k": {"S": 1}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "attribute 'k': AttributeValue 'S' needs a string, not 1"
        );
    }
}
