//! Parsing definition text into a [`Value`] while noticing keys that appear twice in one
//! `States` object (serde_json silently keeps the last one; AWS reports
//! `DUPLICATE_STATE_NAME`).

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map as JsonMap, Number, Value};

/// A key found twice: the location of the object holding it and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Duplicate {
    pub parent: String,
    pub key: String,
}

/// Parses `text`, returning the value and the duplicated state names.
pub(super) fn parse_with_duplicates(
    text: &str,
) -> Result<(Value, Vec<Duplicate>), serde_json::Error> {
    let found = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Seed {
        path: String::new(),
        parent_key: None,
        found: &found,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((value, found.into_inner()))
}

struct Seed<'f> {
    /// JSON-pointer-like location of the value being read.
    path: String,
    /// The key this value is stored under in its parent object.
    parent_key: Option<String>,
    found: &'f RefCell<Vec<Duplicate>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let seed = Seed {
                path: format!("{}/{}", self.path, out.len()),
                parent_key: None,
                found: self.found,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => out.push(v),
                None => break,
            }
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let is_states = self.parent_key.as_deref() == Some("States");
        let mut out = JsonMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let seed = Seed {
                path: format!("{}/{}", self.path, key),
                parent_key: Some(key.clone()),
                found: self.found,
            };
            let value = map.next_value_seed(seed)?;
            if out.contains_key(&key) && is_states {
                self.found.borrow_mut().push(Duplicate {
                    parent: self.path.clone(),
                    key: key.clone(),
                });
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}
