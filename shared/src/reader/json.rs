//! JSON documents (spec §2.3.4) and JSON Lines (§2.3.5), streamed.
//!
//! JSON: a splitter walks the document byte by byte without building it: it follows
//! `ItemsPointer` (RFC 6901) by skipping sibling values, then cuts the target array into its
//! elements. Only one element is in memory at a time (then parsed with serde_json, which also
//! validates it). A checkpoint is the byte offset just after the last element returned; resuming
//! continues from there expecting `,` or the closing bracket. Reading stops at the end of the
//! target container: whatever follows in the document is not read.
//!
//! Decided from the spec and recordings:
//! * a document (or pointer-less target) that is not an array fails with the recorded cause
//!   `Attempting to map over non-iterable node.` — including a top-level object: the 2023 AWS
//!   recording wins over the 2025 doc sentence about objects;
//! * an `ItemsPointer` that reaches an object iterates its entries (2025 doc): each value is an
//!   item and its key is [`Item::key`](super::Item::key); a pointer that reaches a scalar is
//!   non-iterable; one that reaches nothing fails with `PointerNotFound`;
//! * an item larger than 8 MB fails (`ItemTooLarge`).
//!
//! JSONL: one JSON value per line; lines that are empty or only whitespace are skipped
//! (the spec leaves it open and recommends skipping); a line that is not exactly one JSON
//! value is a malformed-JSONL error naming its line and offset.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{Format, ReaderError, MAX_ITEM_BYTES};
use super::source::ByteSource;

/// What the JSON splitter is cutting into items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JsonContainer {
    Array,
    Object,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

pub(crate) struct JsonObject {
    pub src: ByteSource,
    pointer: Option<String>,
    /// `None` until the target container is entered.
    pub container: Option<JsonContainer>,
    /// Right after `[`/`{` (no element read yet) vs after an element.
    first: bool,
    done: bool,
    buf: Vec<u8>,
}

enum Scan {
    /// A value was consumed (and captured, when asked).
    Value,
    /// End of input inside or before a value.
    Eof,
}

impl JsonObject {
    /// A fresh read (`container: None`) or a resumed one (after an element of `container`).
    pub fn new(src: ByteSource, pointer: Option<String>, container: Option<JsonContainer>) -> Self {
        JsonObject {
            src,
            pointer,
            container,
            first: false,
            done: false,
            buf: Vec::new(),
        }
    }

    fn malformed(&self, message: impl Into<String>, index: Option<u64>) -> ReaderError {
        ReaderError::Malformed {
            format: Format::Json,
            at: self.src.location(index),
            message: message.into(),
        }
    }

    fn io(&self, e: std::io::Error, index: Option<u64>) -> ReaderError {
        self.src.io_error(e, index)
    }

    /// Skips whitespace; returns the next byte without consuming it.
    fn peek_token(&mut self, index: Option<u64>) -> Result<Option<u8>, ReaderError> {
        loop {
            let chunk = match self.src.available() {
                Ok(c) => c,
                Err(e) => return Err(self.io(e, index)),
            };
            if chunk.is_empty() {
                return Ok(None);
            }
            match chunk.iter().position(|&b| !is_ws(b)) {
                Some(i) => {
                    let b = chunk[i];
                    self.src.consume(i);
                    return Ok(Some(b));
                }
                None => {
                    let n = chunk.len();
                    self.src.consume(n);
                }
            }
        }
    }

    fn describe(b: Option<u8>) -> String {
        match b {
            None => "the end of the object".into(),
            Some(b) if b.is_ascii_graphic() => format!("'{}'", b as char),
            Some(b) => format!("byte 0x{b:02x}"),
        }
    }

    /// Consumes one JSON value starting at the next byte (whitespace already skipped). When
    /// `capture`, its bytes go to `self.buf` (at most `limit`).
    fn scan_value(
        &mut self,
        capture: bool,
        limit: usize,
        index: Option<u64>,
    ) -> Result<Scan, ReaderError> {
        self.buf.clear();
        let start = self.src.location(index);
        let first = match self.src.peek().map_err(|e| self.io(e, index))? {
            None => return Ok(Scan::Eof),
            Some(b) => b,
        };
        let mut depth: usize = 0;
        let mut total: usize = 0;
        let mut in_str = false;
        let mut esc = false;
        let scalar = !matches!(first, b'{' | b'[' | b'"');
        loop {
            let chunk = match self.src.available() {
                Ok(c) => c,
                Err(e) => return Err(self.io(e, index)),
            };
            if chunk.is_empty() {
                // A scalar may end at the end of input; anything else is cut short.
                return Ok(if scalar && total > 0 {
                    Scan::Value
                } else {
                    Scan::Eof
                });
            }
            let mut end: Option<usize> = None;
            for (i, &b) in chunk.iter().enumerate() {
                if scalar {
                    if is_ws(b) || matches!(b, b',' | b']' | b'}' | b':') {
                        end = Some(i);
                        break;
                    }
                    continue;
                }
                if in_str {
                    if esc {
                        esc = false;
                    } else if b == b'\\' {
                        esc = true;
                    } else if b == b'"' {
                        in_str = false;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    continue;
                }
                match b {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        if depth == 0 {
                            // A closer where a value should start.
                            end = Some(i);
                            break;
                        }
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let n = end.unwrap_or(chunk.len());
            if capture {
                if self.buf.len() + n > limit {
                    return Err(ReaderError::ItemTooLarge { at: start, limit });
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
            self.src.consume(n);
            total += n;
            if end.is_some() {
                if total == 0 && scalar {
                    // Nothing that can start a value.
                    let b = self.src.peek().ok().flatten();
                    return Err(self.malformed(
                        format!("expected a JSON value but found {}", Self::describe(b)),
                        index,
                    ));
                }
                return Ok(Scan::Value);
            }
        }
    }

    fn expect(&mut self, want: u8, what: &str, index: Option<u64>) -> Result<(), ReaderError> {
        match self.peek_token(index)? {
            Some(b) if b == want => {
                self.src.consume(1);
                Ok(())
            }
            other => Err(self.malformed(
                format!("expected {what} but found {}", Self::describe(other)),
                index,
            )),
        }
    }

    /// Reads an object key (`"…"`), decoded.
    fn read_key(&mut self, index: Option<u64>) -> Result<String, ReaderError> {
        match self.peek_token(index)? {
            Some(b'"') => {}
            other => {
                return Err(self.malformed(
                    format!("expected an object key but found {}", Self::describe(other)),
                    index,
                ))
            }
        }
        let at = self.src.location(index);
        match self.scan_value(true, MAX_ITEM_BYTES, index)? {
            Scan::Value => {
                serde_json::from_slice::<String>(&self.buf).map_err(|e| ReaderError::Malformed {
                    format: Format::Json,
                    at,
                    message: format!("invalid object key: {e}"),
                })
            }
            Scan::Eof => Err(self.malformed("unexpected end of the object inside a key", index)),
        }
    }

    fn skip(&mut self, index: Option<u64>) -> Result<(), ReaderError> {
        match self.scan_value(false, 0, index)? {
            Scan::Value => Ok(()),
            Scan::Eof => Err(self.malformed("unexpected end of the object", index)),
        }
    }

    /// Walks from the document start to the container to iterate.
    fn enter(&mut self) -> Result<(), ReaderError> {
        self.src.skip_bom().map_err(|e| self.io(e, None))?;
        let pointer = self.pointer.clone();
        if let Some(p) = &pointer {
            let tokens: Vec<String> = p
                .split('/')
                .skip(1)
                .map(|t| t.replace("~1", "/").replace("~0", "~"))
                .collect();
            let uri = self.src.uri.clone();
            let not_found = || ReaderError::PointerNotFound {
                pointer: p.clone(),
                uri: uri.clone(),
            };
            for token in &tokens {
                match self.peek_token(None)? {
                    Some(b'{') => {
                        self.src.consume(1);
                        let mut found = false;
                        let mut first = true;
                        loop {
                            match self.peek_token(None)? {
                                Some(b'}') if first => break,
                                _ => {}
                            }
                            first = false;
                            let key = self.read_key(None)?;
                            self.expect(b':', "':'", None)?;
                            self.peek_token(None)?;
                            if &key == token {
                                found = true;
                                break;
                            }
                            self.skip(None)?;
                            match self.peek_token(None)? {
                                Some(b',') => self.src.consume(1),
                                Some(b'}') => break,
                                other => {
                                    return Err(self.malformed(
                                        format!(
                                            "expected ',' or '}}' but found {}",
                                            Self::describe(other)
                                        ),
                                        None,
                                    ))
                                }
                            }
                        }
                        if !found {
                            return Err(not_found());
                        }
                    }
                    Some(b'[') => {
                        self.src.consume(1);
                        // RFC 6901 array index: `0` or digits without a leading zero.
                        let idx = if token == "0"
                            || (!token.starts_with('0')
                                && !token.is_empty()
                                && token.bytes().all(|b| b.is_ascii_digit()))
                        {
                            token.parse::<u64>().ok()
                        } else {
                            None
                        };
                        let Some(idx) = idx else {
                            return Err(not_found());
                        };
                        if self.peek_token(None)? == Some(b']') {
                            return Err(not_found());
                        }
                        let mut i = 0u64;
                        loop {
                            self.peek_token(None)?;
                            if i == idx {
                                break;
                            }
                            self.skip(None)?;
                            i += 1;
                            match self.peek_token(None)? {
                                Some(b',') => self.src.consume(1),
                                Some(b']') => return Err(not_found()),
                                other => {
                                    return Err(self.malformed(
                                        format!(
                                            "expected ',' or ']' but found {}",
                                            Self::describe(other)
                                        ),
                                        None,
                                    ))
                                }
                            }
                        }
                    }
                    None => return Err(self.malformed("unexpected end of the object", None)),
                    Some(_) => return Err(not_found()),
                }
            }
        }
        match self.peek_token(None)? {
            Some(b'[') => {
                self.src.consume(1);
                self.container = Some(JsonContainer::Array);
            }
            Some(b'{') if pointer.is_some() => {
                self.src.consume(1);
                self.container = Some(JsonContainer::Object);
            }
            None => return Err(self.malformed("the object is empty", None)),
            Some(b'{' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                return Err(ReaderError::NonIterable {
                    uri: self.src.uri.clone(),
                })
            }
            other => {
                return Err(self.malformed(
                    format!("expected a JSON value but found {}", Self::describe(other)),
                    None,
                ))
            }
        }
        self.first = true;
        Ok(())
    }

    /// The next element (and its key when iterating an object).
    pub fn next_entry(
        &mut self,
        index: u64,
    ) -> Result<Option<(Value, Option<String>)>, ReaderError> {
        if self.done {
            return Ok(None);
        }
        let Some(container) = self.container else {
            self.enter()?;
            return self.next_entry(index);
        };
        let ix = Some(index);
        let close = if container == JsonContainer::Array {
            b']'
        } else {
            b'}'
        };
        let next = self.peek_token(ix)?;
        if self.first {
            if next == Some(close) {
                self.src.consume(1);
                self.done = true;
                return Ok(None);
            }
        } else {
            match next {
                Some(b',') => self.src.consume(1),
                Some(b) if b == close => {
                    self.src.consume(1);
                    self.done = true;
                    return Ok(None);
                }
                other => {
                    let want = if container == JsonContainer::Array {
                        "',' or ']'"
                    } else {
                        "',' or '}'"
                    };
                    return Err(self.malformed(
                        format!("expected {want} but found {}", Self::describe(other)),
                        ix,
                    ));
                }
            }
        }
        self.first = false;
        let key = if container == JsonContainer::Object {
            let k = self.read_key(ix)?;
            self.expect(b':', "':'", ix)?;
            Some(k)
        } else {
            None
        };
        match self.peek_token(ix)? {
            None => return Err(self.malformed("unexpected end of the object", ix)),
            Some(b) if b == close || b == b',' => {
                return Err(self.malformed(
                    format!(
                        "expected a JSON value but found {}",
                        Self::describe(Some(b))
                    ),
                    ix,
                ))
            }
            Some(_) => {}
        }
        let at = self.src.location(ix);
        match self.scan_value(true, MAX_ITEM_BYTES, ix)? {
            Scan::Eof => Err(ReaderError::Malformed {
                format: Format::Json,
                at,
                message: "unexpected end of the object inside an item".into(),
            }),
            Scan::Value => match serde_json::from_slice::<Value>(&self.buf) {
                Ok(v) => Ok(Some((v, key))),
                Err(e) => Err(ReaderError::Malformed {
                    format: Format::Json,
                    at,
                    message: e.to_string(),
                }),
            },
        }
    }
}

/// JSON Lines: one value per line.
pub(crate) struct JsonlObject {
    pub src: ByteSource,
    line: Vec<u8>,
}

impl JsonlObject {
    pub fn new(src: ByteSource) -> Self {
        JsonlObject {
            src,
            line: Vec::new(),
        }
    }

    pub fn next_value(&mut self, index: u64) -> Result<Option<Value>, ReaderError> {
        if self.src.offset == 0 {
            self.src
                .skip_bom()
                .map_err(|e| self.src.io_error(e, Some(index)))?;
        }
        loop {
            let at = self.src.location(Some(index));
            self.line.clear();
            let mut ended = false;
            loop {
                let chunk = self.src.fill(Some(index))?;
                if chunk.is_empty() {
                    break;
                }
                let (n, nl) = match chunk.iter().position(|&b| b == b'\n') {
                    Some(i) => (i, true),
                    None => (chunk.len(), false),
                };
                if self.line.len() + n > MAX_ITEM_BYTES {
                    return Err(ReaderError::ItemTooLarge {
                        at,
                        limit: MAX_ITEM_BYTES,
                    });
                }
                self.line.extend_from_slice(&chunk[..n]);
                self.src.consume(n + usize::from(nl));
                if nl {
                    ended = true;
                    break;
                }
            }
            let text = self.line.trim_ascii();
            if text.is_empty() {
                if !ended {
                    return Ok(None);
                }
                continue;
            }
            return match serde_json::from_slice::<Value>(text) {
                Ok(v) => Ok(Some(v)),
                Err(e) => Err(ReaderError::Malformed {
                    format: Format::Jsonl,
                    at,
                    message: e.to_string(),
                }),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Cursor;

    fn src_at(text: &[u8], offset: u64, line: u64) -> ByteSource {
        ByteSource::new(
            Some(Box::new(Cursor::new(text[offset as usize..].to_vec()))),
            offset,
            line,
            "s3://b/f.json".into(),
        )
    }

    fn all(text: &str, pointer: Option<&str>) -> Result<Vec<(Value, Option<String>)>, ReaderError> {
        let mut o = JsonObject::new(
            src_at(text.as_bytes(), 0, 1),
            pointer.map(String::from),
            None,
        );
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(e) = o.next_entry(i)? {
            out.push(e);
            i += 1;
        }
        Ok(out)
    }

    fn values(text: &str, pointer: Option<&str>) -> Vec<Value> {
        all(text, pointer)
            .unwrap()
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    #[test]
    fn top_level_array() {
        let doc = r#"[{"verdict":"true","statement_date":"6/11/2008"}, {"verdict": "false"}, {"verdict":"mostly-true"}]"#;
        assert_eq!(
            values(doc, None),
            vec![
                json!({"verdict":"true","statement_date":"6/11/2008"}),
                json!({"verdict":"false"}),
                json!({"verdict":"mostly-true"})
            ]
        );
        assert_eq!(
            values(
                " [1, -2.5e3 ,\"a,]\\\"\", true,false,null,[[]],{}] trailing",
                None
            ),
            vec![
                json!(1),
                json!(-2.5e3),
                json!("a,]\""),
                json!(true),
                json!(false),
                json!(null),
                json!([[]]),
                json!({})
            ]
        );
        assert_eq!(values("[]", None), Vec::<Value>::new());
        assert_eq!(values("\u{feff}[1]", None), vec![json!(1)]);
    }

    #[test]
    fn non_iterable_documents() {
        let e = all(r#"{"Hello":"world"}"#, None).unwrap_err();
        assert_eq!(e.cause(), "Attempting to map over non-iterable node.");
        assert_eq!(e.error(), "States.ItemReaderFailed");
        assert!(matches!(
            all("42", None),
            Err(ReaderError::NonIterable { .. })
        ));
        assert!(matches!(
            all("\"s\"", None),
            Err(ReaderError::NonIterable { .. })
        ));
        assert!(matches!(
            all(r#"{"a": 1}"#, Some("/a")),
            Err(ReaderError::NonIterable { .. })
        ));
    }

    #[test]
    fn items_pointer() {
        let doc = r#"{"x": [9], "inventory": {"skip": {"products": 1}, "products": {"featured": [{"id":1},{"id":2}], "other": []}}}"#;
        assert_eq!(
            values(doc, Some("/inventory/products/featured")),
            vec![json!({"id":1}), json!({"id":2})]
        );
        assert_eq!(values(doc, Some("/x")), vec![json!(9)]);
        // Into arrays by index, escaped tokens.
        let doc = r#"{"a/b": [[1], [2, 3]], "m~n": [4]}"#;
        assert_eq!(values(doc, Some("/a~1b/1")), vec![json!(2), json!(3)]);
        assert_eq!(values(doc, Some("/m~0n")), vec![json!(4)]);
        // An object target iterates entries: value + key.
        let got = all(r#"{"data": {"k1": {"v": 1}, "k2": [2]}}"#, Some("/data")).unwrap();
        assert_eq!(
            got,
            vec![
                (json!({"v": 1}), Some("k1".into())),
                (json!([2]), Some("k2".into()))
            ]
        );
        assert_eq!(all(r#"{"data": {}}"#, Some("/data")).unwrap(), vec![]);
    }

    #[test]
    fn pointer_to_nothing() {
        for p in ["/nope", "/a/5", "/a/01", "/a/-", "/s/x", "/a/x"] {
            let e = all(r#"{"a": [1, 2], "s": "str"}"#, Some(p)).unwrap_err();
            assert!(
                matches!(&e, ReaderError::PointerNotFound { pointer, .. } if pointer == p),
                "{p}: {e:?}"
            );
            assert!(e.cause().contains("s3://b/f.json"));
        }
    }

    #[test]
    fn malformed_positions() {
        // Missing comma between items 1 and 2 (0-based), on line 3.
        let doc = "[\n{\"a\":1},\n{\"a\":2} {\"a\":3}]";
        let e = all(doc, None).unwrap_err();
        match &e {
            ReaderError::Malformed {
                format: Format::Json,
                at,
                ..
            } => {
                assert_eq!(at.line, Some(3));
                assert_eq!(at.offset, Some(19));
                assert_eq!(at.index, Some(2));
            }
            other => panic!("{other:?}"),
        }
        // An invalid element: serde's message, the element's start.
        let e = all("[1, {\"a\": tru}]", None).unwrap_err();
        match &e {
            ReaderError::Malformed { at, .. } => {
                assert_eq!((at.offset, at.index), (Some(4), Some(1)))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            all("[1, 2", None),
            Err(ReaderError::Malformed { .. })
        ));
        assert!(matches!(
            all("[1, {\"a\": [", None),
            Err(ReaderError::Malformed { .. })
        ));
        assert!(matches!(
            all("[1,]", None),
            Err(ReaderError::Malformed { .. })
        ));
        assert!(matches!(all("", None), Err(ReaderError::Malformed { .. })));
        assert!(matches!(
            all("xyz", None),
            Err(ReaderError::Malformed { .. })
        ));
        assert!(matches!(
            all("[,1]", None),
            Err(ReaderError::Malformed { .. })
        ));
    }

    #[test]
    fn resume_after_each_element() {
        let doc = "{\"p\": [ {\"a\": [1,2]},\n \"x\" , 3 ,{\"b\":\"]\"}\n]}";
        let full = values(doc, Some("/p"));
        assert_eq!(full.len(), 4);
        let mut o = JsonObject::new(src_at(doc.as_bytes(), 0, 1), Some("/p".into()), None);
        for k in 0..full.len() {
            o.next_entry(k as u64).unwrap().unwrap();
            let (off, line, c) = (o.src.offset, o.src.line, o.container);
            let mut r = JsonObject::new(src_at(doc.as_bytes(), off, line), Some("/p".into()), c);
            let mut rest = Vec::new();
            let mut i = k as u64 + 1;
            while let Some((v, _)) = r.next_entry(i).unwrap() {
                rest.push(v);
                i += 1;
            }
            assert_eq!(rest, full[k + 1..].to_vec(), "after {k}");
        }
    }

    #[test]
    fn item_too_large() {
        let doc = format!("[1, \"{}\"]", "x".repeat(MAX_ITEM_BYTES));
        match all(&doc, None) {
            Err(ReaderError::ItemTooLarge { at, limit }) => {
                assert_eq!(limit, MAX_ITEM_BYTES);
                assert_eq!((at.offset, at.index), (Some(4), Some(1)));
            }
            other => panic!("{other:?}"),
        }
        // Skipped siblings are not limited.
        let doc = format!(
            "{{\"big\": \"{}\", \"a\": [1]}}",
            "x".repeat(MAX_ITEM_BYTES + 10)
        );
        assert_eq!(values(&doc, Some("/a")), vec![json!(1)]);
    }

    fn jsonl(text: &str) -> Result<Vec<Value>, ReaderError> {
        let mut o = JsonlObject::new(src_at(text.as_bytes(), 0, 1));
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(v) = o.next_value(i)? {
            out.push(v);
            i += 1;
        }
        Ok(out)
    }

    #[test]
    fn jsonl_lines() {
        assert_eq!(
            jsonl("{\"n\":1}\n{\"n\":2}\n").unwrap(),
            vec![json!({"n":1}), json!({"n":2})]
        );
        assert_eq!(
            jsonl("1\r\n\n  \n\"two\"\r\n[3]").unwrap(),
            vec![json!(1), json!("two"), json!([3])]
        );
        assert_eq!(jsonl("").unwrap(), Vec::<Value>::new());
        assert_eq!(jsonl("\n\n").unwrap(), Vec::<Value>::new());
    }

    #[test]
    fn jsonl_errors() {
        let e = jsonl("{\"n\":1}\n\n{\"n\":2} {\"n\":3}\n").unwrap_err();
        match &e {
            ReaderError::Malformed {
                format: Format::Jsonl,
                at,
                ..
            } => {
                assert_eq!((at.line, at.offset, at.index), (Some(3), Some(9), Some(1)));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            e.cause().starts_with(
                "Malformed JSONL in s3://b/f.json (line 3, byte offset 9, item index 1)"
            ),
            "{}",
            e.cause()
        );
        assert!(matches!(
            jsonl("{\"n\":\n1}\n"),
            Err(ReaderError::Malformed { .. })
        ));
        let big = format!("\"{}\"\n", "x".repeat(MAX_ITEM_BYTES));
        assert!(matches!(jsonl(&big), Err(ReaderError::ItemTooLarge { .. })));
    }
}
