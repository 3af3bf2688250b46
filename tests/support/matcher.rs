//! Placeholder-aware comparison of a result with a recorded case: a port of
//! `tests/conformance/matcher.py` (see its README for the rules).

use regex::Regex;
use serde_json::Value;

pub struct Matcher {
    bare: Vec<String>,
    token: Regex,
}

impl Matcher {
    /// `placeholders`: the case's bare placeholder words.
    pub fn new(placeholders: &[String]) -> Self {
        let mut bare: Vec<String> = placeholders
            .iter()
            .filter(|b| !b.is_empty())
            .cloned()
            .collect();
        bare.sort_by_key(|b| std::cmp::Reverse(b.len()));
        bare.dedup();
        let token = Regex::new(r"<[A-Za-z0-9_\-:.+ /]{1,120}>").expect("a valid regex");
        Matcher { bare, token }
    }

    fn is_pure_placeholder(&self, s: &str) -> bool {
        self.token
            .find(s)
            .map(|m| m.start() == 0 && m.end() == s.len())
            .unwrap_or(false)
            || self.bare.iter().any(|b| b == s)
    }

    fn string_pattern(&self, expected: &str) -> Option<Regex> {
        let mut toks: Vec<String> = self
            .token
            .find_iter(expected)
            .map(|m| m.as_str().to_string())
            .collect();
        for b in &self.bare {
            if expected.contains(b.as_str()) {
                toks.push(b.clone());
            }
        }
        if toks.is_empty() {
            return None;
        }
        toks.sort_by_key(|t| std::cmp::Reverse(t.len()));
        toks.dedup();
        let alt = toks
            .iter()
            .map(|t| regex::escape(t))
            .collect::<Vec<_>>()
            .join("|");
        let splitter = Regex::new(&format!("({alt})")).ok()?;
        let mut rx = String::from("(?s)^");
        let mut last = 0;
        for m in splitter.find_iter(expected) {
            rx.push_str(&regex::escape(&expected[last..m.start()]));
            rx.push_str("(.*?)");
            last = m.end();
        }
        rx.push_str(&regex::escape(&expected[last..]));
        rx.push('$');
        Regex::new(&rx).ok()
    }

    /// `None` when `actual` matches `expected`, else a short reason.
    pub fn check(&self, expected: &Value, actual: &Value, path: &str) -> Option<String> {
        match (expected, actual) {
            (Value::String(e), Value::String(a)) if e == a => None,
            (Value::String(e), a) if !a.is_string() && self.is_pure_placeholder(e) => None,
            (Value::String(e), Value::String(a)) => match self.string_pattern(e) {
                Some(rx) if rx.is_match(a) => None,
                _ => Some(format!("{path}: expected {e:?}, got {a:?}")),
            },
            (Value::String(e), a) => {
                Some(format!("{path}: expected string {e:?}, got {}", short(a)))
            }
            (Value::Object(e), Value::Object(a)) => {
                let missing: Vec<&String> = e.keys().filter(|k| !a.contains_key(*k)).collect();
                let extra: Vec<&String> = a.keys().filter(|k| !e.contains_key(*k)).collect();
                if !missing.is_empty() || !extra.is_empty() {
                    return Some(format!(
                        "{path}: keys differ: missing={missing:?} extra={extra:?}"
                    ));
                }
                e.iter()
                    .find_map(|(k, v)| self.check(v, &a[k], &format!("{path}.{k}")))
            }
            (Value::Object(_), a) => Some(format!("{path}: expected object, got {}", short(a))),
            (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
                .iter()
                .zip(a)
                .enumerate()
                .find_map(|(i, (x, y))| self.check(x, y, &format!("{path}[{i}]"))),
            (Value::Array(e), a) => Some(format!(
                "{path}: expected array of {}, got {}",
                e.len(),
                short(a)
            )),
            (Value::Bool(e), Value::Bool(a)) if e == a => None,
            (Value::Null, Value::Null) => None,
            (Value::Number(e), Value::Number(a)) => {
                let same = match (e.as_i64(), a.as_i64()) {
                    (Some(x), Some(y)) => x == y,
                    _ => e.as_f64() == a.as_f64(),
                };
                if same {
                    None
                } else {
                    Some(format!("{path}: expected {e}, got {a}"))
                }
            }
            (e, a) => Some(format!("{path}: expected {}, got {}", short(e), short(a))),
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(80).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}
