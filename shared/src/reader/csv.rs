//! Delimited text (spec §2.3.6), hand-written.
//!
//! Why not the `csv` crate: its `escape` option only applies inside quoted fields and keeps
//! the escaped byte's meaning RFC-style, while Step Functions (a) lets a backslash escape `\`,
//! `"` and the delimiter anywhere, (b) silently drops a backslash before any other character,
//! and (c) collapses a doubled quote `""` to `"` even in an unquoted field (the documented
//! example `{""MyKey"":""MyValue""}` yields `{"MyKey":"MyValue"}`), which RFC 4180 readers
//! keep verbatim. Its `Position` would not save much either: our byte source already tracks
//! offsets and lines through decompression.
//!
//! Rules implemented (one state machine, so checkpoints are plain byte offsets):
//! * records end at `\n`, `\r\n` or `\r` outside quotes; an empty line is no record (so a
//!   trailing newline adds no item, spec table); a line of spaces is a record;
//! * a field that starts with `"` is quoted: delimiters and newlines inside are data, `""` is
//!   one `"`, the next single `"` closes it; bytes after the closing quote up to the delimiter
//!   are appended as unquoted data;
//! * in unquoted data `""` is one `"` and a single `"` is kept as is;
//! * `\` followed by `\`, `"` or the delimiter yields that byte as data (never a quote or a
//!   separator); followed by anything else the backslash is dropped and the byte is read
//!   normally; a backslash at the end of the object is dropped;
//! * every value is a string (invalid UTF-8 becomes U+FFFD, as Java's decoders do);
//! * fewer fields than headers ⇒ `""` for the rest; more ⇒ the extra fields are ignored;
//! * an unterminated quoted field at the end of the object is a malformed-CSV error.
//!
//! Decided where the spec is silent: empty lines are skipped everywhere (also before the
//! header); a repeated name in a first-row header fails like repeated `CSVHeaders`
//! (`CSV headers cannot contain duplicates.`), since an item cannot hold two equal keys.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::error::{Format, Location, ReaderError, MAX_CSV_HEADER_BYTES, MAX_ITEM_BYTES};
use super::source::ByteSource;
use super::spec::CsvHeader;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    FieldStart,
    Unquoted,
    UnquotedQuote,
    Quoted,
    QuotedQuote,
    Escape { quoted: bool },
    CrSeen,
}

/// Where a record started (for error messages).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordStart {
    pub offset: u64,
    pub line: u64,
}

pub(crate) struct CsvParser {
    delimiter: u8,
    field: Vec<u8>,
    pub fields: Vec<String>,
}

impl CsvParser {
    pub fn new(delimiter: u8) -> Self {
        CsvParser {
            delimiter,
            field: Vec::new(),
            fields: Vec::new(),
        }
    }

    fn push_field(&mut self) {
        self.fields
            .push(String::from_utf8_lossy(&self.field).into_owned());
        self.field.clear();
    }

    /// Reads the next non-empty record into `self.fields`. `Ok(None)` at the end of the object.
    /// `limit`: the most bytes one record may take; `on_limit` builds the error.
    pub fn read_record(
        &mut self,
        src: &mut ByteSource,
        limit: usize,
        index: Option<u64>,
        on_limit: &dyn Fn(Location) -> ReaderError,
    ) -> Result<Option<RecordStart>, ReaderError> {
        self.fields.clear();
        self.field.clear();
        let d = self.delimiter;
        loop {
            // One record (possibly an empty line, which is skipped).
            let start = RecordStart {
                offset: src.offset,
                line: src.line,
            };
            let mut st = St::FieldStart;
            let mut used: usize = 0;
            let mut ended = false;
            let mut any = false;
            while !ended {
                let chunk = match src.available() {
                    Ok(c) => c,
                    Err(e) => return Err(src.io_error(e, index)),
                };
                if chunk.is_empty() {
                    break;
                }
                let mut i = 0;
                while i < chunk.len() {
                    let b = chunk[i];
                    match st {
                        St::CrSeen => {
                            if b == b'\n' {
                                i += 1;
                            }
                            ended = true;
                            break;
                        }
                        St::FieldStart => match b {
                            b'"' => {
                                st = St::Quoted;
                                any = true;
                            }
                            b'\\' => {
                                st = St::Escape { quoted: false };
                                any = true;
                            }
                            b'\n' => {
                                if any || !self.fields.is_empty() {
                                    self.fields
                                        .push(String::from_utf8_lossy(&self.field).into_owned());
                                    self.field.clear();
                                }
                                i += 1;
                                ended = true;
                                break;
                            }
                            b'\r' => {
                                if any || !self.fields.is_empty() {
                                    self.fields
                                        .push(String::from_utf8_lossy(&self.field).into_owned());
                                    self.field.clear();
                                }
                                st = St::CrSeen;
                            }
                            _ if b == d => {
                                self.fields
                                    .push(String::from_utf8_lossy(&self.field).into_owned());
                                self.field.clear();
                                any = true;
                            }
                            _ => {
                                self.field.push(b);
                                st = St::Unquoted;
                                any = true;
                            }
                        },
                        St::Unquoted => match b {
                            b'\n' => {
                                self.fields
                                    .push(String::from_utf8_lossy(&self.field).into_owned());
                                self.field.clear();
                                i += 1;
                                ended = true;
                                break;
                            }
                            b'\r' => {
                                self.fields
                                    .push(String::from_utf8_lossy(&self.field).into_owned());
                                self.field.clear();
                                st = St::CrSeen;
                            }
                            b'\\' => st = St::Escape { quoted: false },
                            b'"' => st = St::UnquotedQuote,
                            _ if b == d => {
                                self.fields
                                    .push(String::from_utf8_lossy(&self.field).into_owned());
                                self.field.clear();
                                st = St::FieldStart;
                            }
                            _ => self.field.push(b),
                        },
                        St::UnquotedQuote => {
                            self.field.push(b'"');
                            st = St::Unquoted;
                            if b == b'"' {
                                // `""` in unquoted data is one quote.
                            } else {
                                // A lone quote is data; read `b` again as unquoted data.
                                continue;
                            }
                        }
                        St::Quoted => match b {
                            b'"' => st = St::QuotedQuote,
                            b'\\' => st = St::Escape { quoted: true },
                            _ => self.field.push(b),
                        },
                        St::QuotedQuote => {
                            if b == b'"' {
                                self.field.push(b'"');
                                st = St::Quoted;
                            } else {
                                // The closing quote: whatever follows is unquoted data.
                                st = St::Unquoted;
                                continue;
                            }
                        }
                        St::Escape { quoted } => {
                            let back = if quoted { St::Quoted } else { St::Unquoted };
                            st = back;
                            if b == b'\\' || b == b'"' || b == d {
                                self.field.push(b);
                            } else {
                                // The backslash is dropped; `b` is read normally.
                                continue;
                            }
                        }
                    }
                    i += 1;
                }
                used += i;
                src.consume(i);
                if used > limit {
                    return Err(on_limit(Location {
                        uri: src.uri.clone(),
                        line: Some(start.line),
                        offset: Some(start.offset),
                        index,
                    }));
                }
            }
            if !ended {
                // End of the object.
                match st {
                    St::Quoted | St::Escape { quoted: true } => {
                        return Err(ReaderError::Malformed {
                            format: Format::Csv,
                            at: Location {
                                uri: src.uri.clone(),
                                line: Some(start.line),
                                offset: Some(start.offset),
                                index,
                            },
                            message: "unterminated quoted field at the end of the object".into(),
                        })
                    }
                    St::UnquotedQuote => {
                        self.field.push(b'"');
                        self.push_field();
                    }
                    St::FieldStart => {
                        if any || !self.fields.is_empty() {
                            self.push_field();
                        }
                    }
                    St::CrSeen => {}
                    _ => self.push_field(),
                }
                if self.fields.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(start));
            }
            if !self.fields.is_empty() {
                return Ok(Some(start));
            }
            // An empty line: read on.
        }
    }
}

/// Builds `{header_i: value_i}`: missing values are `""`, extra values are ignored.
pub(crate) fn row_object(header: &[String], fields: &mut Vec<String>) -> Value {
    let mut m = Map::with_capacity(header.len());
    let mut values = fields.drain(..);
    for h in header {
        m.insert(h.clone(), Value::String(values.next().unwrap_or_default()));
    }
    Value::Object(m)
}

pub(crate) fn check_duplicates(header: &[String]) -> Result<(), ReaderError> {
    let mut seen = std::collections::HashSet::with_capacity(header.len());
    for h in header {
        if !seen.insert(h.as_str()) {
            return Err(ReaderError::DuplicateCsvHeaders);
        }
    }
    Ok(())
}

/// A CSV object: header handling on top of [`CsvParser`].
pub(crate) struct CsvObject {
    pub src: ByteSource,
    parser: CsvParser,
    mode: CsvHeader,
    pub header: Option<Arc<Vec<String>>>,
}

impl CsvObject {
    /// `header`: the first-row header recorded in a checkpoint, if the object was started.
    pub fn new(
        src: ByteSource,
        mode: CsvHeader,
        delimiter: u8,
        header: Option<Vec<String>>,
    ) -> Result<Self, ReaderError> {
        let header = match (&mode, header) {
            (CsvHeader::Given(h), _) => {
                check_duplicates(h)?;
                Some(Arc::new(h.clone()))
            }
            (CsvHeader::FirstRow, h) => h.map(Arc::new),
        };
        Ok(CsvObject {
            src,
            parser: CsvParser::new(delimiter),
            mode,
            header,
        })
    }

    /// The header comes from the object (and so belongs in checkpoints).
    pub fn first_row(&self) -> bool {
        self.mode == CsvHeader::FirstRow
    }

    pub fn next_value(&mut self, index: u64) -> Result<Option<Value>, ReaderError> {
        if self.header.is_none() {
            if self.mode != CsvHeader::FirstRow {
                return Err(ReaderError::BadResume {
                    message: "CSV header missing".into(),
                });
            }
            self.src
                .skip_bom()
                .map_err(|e| self.src.io_error(e, None))?;
            let uri = self.src.uri.clone();
            let too_big = move |_at: Location| ReaderError::HeaderTooLarge {
                uri: uri.clone(),
                limit: MAX_CSV_HEADER_BYTES,
            };
            match self
                .parser
                .read_record(&mut self.src, MAX_CSV_HEADER_BYTES, None, &too_big)?
            {
                None => return Ok(None),
                Some(_) => {
                    let h = std::mem::take(&mut self.parser.fields);
                    check_duplicates(&h)?;
                    self.header = Some(Arc::new(h));
                }
            }
        } else if self.src.offset == 0 {
            self.src
                .skip_bom()
                .map_err(|e| self.src.io_error(e, None))?;
        }
        let too_big = |at: Location| ReaderError::ItemTooLarge {
            at,
            limit: MAX_ITEM_BYTES,
        };
        match self
            .parser
            .read_record(&mut self.src, MAX_ITEM_BYTES, Some(index), &too_big)?
        {
            None => Ok(None),
            Some(_) => {
                let header = self.header.clone().unwrap_or_default();
                Ok(Some(row_object(&header, &mut self.parser.fields)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Cursor;

    fn src(text: &[u8]) -> ByteSource {
        ByteSource::new(
            Some(Box::new(Cursor::new(text.to_vec()))),
            0,
            1,
            "s3://b/f.csv".into(),
        )
    }

    fn records(text: &str, d: u8) -> Vec<Vec<String>> {
        let mut s = src(text.as_bytes());
        let mut p = CsvParser::new(d);
        let mut out = Vec::new();
        let lim = |at: Location| ReaderError::ItemTooLarge { at, limit: 0 };
        while p
            .read_record(&mut s, 1 << 20, None, &lim)
            .unwrap()
            .is_some()
        {
            out.push(p.fields.clone());
        }
        out
    }

    fn items(text: &str, mode: CsvHeader, d: u8) -> Result<Vec<Value>, ReaderError> {
        let mut o = CsvObject::new(src(text.as_bytes()), mode, d, None)?;
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(v) = o.next_value(i)? {
            out.push(v);
            i += 1;
        }
        Ok(out)
    }

    fn r(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn observed_first_row_table() {
        // spec §2.3.6 observed AWS results, one file.
        let text =
            "Col1,Col2,Col3\nValue1,Value2,Value3\nValue4,Value5,Value6\n,,,\ntrue,1,'HelloWorld'\nNull,None,\n   \n";
        let got = items(text, CsvHeader::FirstRow, b',').unwrap();
        assert_eq!(
            got,
            vec![
                json!({"Col1":"Value1","Col2":"Value2","Col3":"Value3"}),
                json!({"Col1":"Value4","Col2":"Value5","Col3":"Value6"}),
                json!({"Col1":"","Col2":"","Col3":""}),
                json!({"Col1":"true","Col2":"1","Col3":"'HelloWorld'"}),
                json!({"Col1":"Null","Col2":"None","Col3":""}),
                json!({"Col1":"   ","Col2":"","Col3":""}),
            ]
        );
    }

    #[test]
    fn observed_typed_and_empty_headers() {
        let got = items(
            "0,True,{}\nValue4,Value5,Value6\n",
            CsvHeader::FirstRow,
            b',',
        )
        .unwrap();
        assert_eq!(
            got,
            vec![json!({"0":"Value4","True":"Value5","{}":"Value6"})]
        );
        let got = items(
            "H1,\nValue4,Value5,Value6\n,,,\n",
            CsvHeader::FirstRow,
            b',',
        )
        .unwrap();
        assert_eq!(
            got,
            vec![json!({"H1":"Value4","":"Value5"}), json!({"H1":"","":""})]
        );
        // Key order follows the header.
        let keys: Vec<String> = got[0].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, vec!["H1", ""]);
    }

    #[test]
    fn observed_given_headers() {
        let text = "Value1,Value2,Value3\nValue4,Value5,Value6\n,,,\ntrue,1,'HelloWorld'\nNull,None,\n   \n";
        let got = items(text, CsvHeader::Given(r(&["H1"])), b',').unwrap();
        assert_eq!(
            got,
            vec![
                json!({"H1":"Value1"}),
                json!({"H1":"Value4"}),
                json!({"H1":""}),
                json!({"H1":"true"}),
                json!({"H1":"Null"}),
                json!({"H1":"   "})
            ]
        );
        let got = items(text, CsvHeader::Given(r(&["H1", "H2", "H3"])), b',').unwrap();
        assert_eq!(got[0], json!({"H1":"Value1","H2":"Value2","H3":"Value3"}));
        assert_eq!(got.len(), 6);
        let e = items(text, CsvHeader::Given(r(&["H1", "H1", "H3"])), b',').unwrap_err();
        assert_eq!(e.cause(), "CSV headers cannot contain duplicates.");
        assert_eq!(e.error(), "States.ItemReaderFailed");
    }

    #[test]
    fn duplicate_first_row_headers_fail() {
        let e = items("a,b,a\n1,2,3\n", CsvHeader::FirstRow, b',').unwrap_err();
        assert_eq!(e, ReaderError::DuplicateCsvHeaders);
    }

    #[test]
    fn documented_quoting_example() {
        let line = "abc,123,\"This string contains commas, a double quotation marks (\"\"), and a newline (\n)\",{\"\"MyKey\"\":\"\"MyValue\"\"},\"[1,2,3]\"\n";
        let h = r(&["MyLetters", "MyNumbers", "MyString", "MyObject", "MyArray"]);
        let got = items(line, CsvHeader::Given(h), b',').unwrap();
        assert_eq!(
            got,
            vec![json!({
                "MyLetters": "abc",
                "MyNumbers": "123",
                "MyString": "This string contains commas, a double quotation marks (\"), and a newline (\n)",
                "MyObject": "{\"MyKey\":\"MyValue\"}",
                "MyArray": "[1,2,3]"
            })]
        );
    }

    #[test]
    fn backslash_rules() {
        // `\\` ⇒ `\` (documented path example).
        assert_eq!(
            records("C:\\\\Program Files\\\\MyApp.exe,6534512\n", b','),
            vec![r(&["C:\\Program Files\\MyApp.exe", "6534512"])]
        );
        // `\,` is data, `\"` is a quote, `\x` drops the backslash.
        assert_eq!(
            records("a\\,b,c\\\"d,e\\xf\n", b','),
            vec![r(&["a,b", "c\"d", "exf"])]
        );
        // Inside quotes too; the escaped quote does not close the field.
        assert_eq!(records("\"a\\\"b,c\",d\n", b','), vec![r(&["a\"b,c", "d"])]);
        // The delimiter is what can be escaped: with PIPE, `\,` drops the backslash.
        assert_eq!(records("a\\|b|c\\,d\n", b'|'), vec![r(&["a|b", "c,d"])]);
        // A backslash before a newline is dropped and the newline still ends the record.
        assert_eq!(records("a\\\nb\n", b','), vec![r(&["a"]), r(&["b"])]);
        // A trailing backslash is dropped.
        assert_eq!(records("a\\", b','), vec![r(&["a"])]);
    }

    #[test]
    fn quotes() {
        assert_eq!(records("\"\",x\n", b','), vec![r(&["", "x"])]);
        assert_eq!(records("\"a\"\"b\"\n", b','), vec![r(&["a\"b"])]);
        assert_eq!(records("ab\"c,d\n", b','), vec![r(&["ab\"c", "d"])]);
        assert_eq!(records("\"ab\"cd,e\n", b','), vec![r(&["abcd", "e"])]);
        assert_eq!(records("a\"", b','), vec![r(&["a\""])]);
        assert_eq!(
            records("\"multi\nline\",2\n3,4", b','),
            vec![r(&["multi\nline", "2"]), r(&["3", "4"])]
        );
    }

    #[test]
    fn line_endings_and_blank_lines() {
        assert_eq!(
            records("a,b\r\nc,d\r\n", b','),
            vec![r(&["a", "b"]), r(&["c", "d"])]
        );
        assert_eq!(
            records("a,b\rc,d", b','),
            vec![r(&["a", "b"]), r(&["c", "d"])]
        );
        assert_eq!(
            records("\n\na\n\n\r\nb\n\n", b','),
            vec![r(&["a"]), r(&["b"])]
        );
        assert_eq!(records("", b','), Vec::<Vec<String>>::new());
        assert_eq!(records(",\n", b','), vec![r(&["", ""])]);
        assert_eq!(records("x,", b','), vec![r(&["x", ""])]);
    }

    #[test]
    fn delimiters() {
        assert_eq!(records("a|b|c\n", b'|'), vec![r(&["a", "b", "c"])]);
        assert_eq!(records("a;b,c\n", b';'), vec![r(&["a", "b,c"])]);
        assert_eq!(records("a b  c\n", b' '), vec![r(&["a", "b", "", "c"])]);
        assert_eq!(
            records("a\tb\t\"c\td\"\n", b'\t'),
            vec![r(&["a", "b", "c\td"])]
        );
    }

    #[test]
    fn unterminated_quote_names_position() {
        let e = items("h1,h2\nok,1\n\"open,2\nmore\n", CsvHeader::FirstRow, b',').unwrap_err();
        match &e {
            ReaderError::Malformed {
                format: Format::Csv,
                at,
                ..
            } => {
                assert_eq!(at.line, Some(3));
                assert_eq!(at.offset, Some(11));
                assert_eq!(at.index, Some(1));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            e.cause()
                .contains("s3://b/f.csv (line 3, byte offset 11, item index 1)"),
            "{}",
            e.cause()
        );
    }

    #[test]
    fn limits() {
        let big_header = format!("{}\n1\n", "h".repeat(MAX_CSV_HEADER_BYTES + 1));
        assert!(matches!(
            items(&big_header, CsvHeader::FirstRow, b','),
            Err(ReaderError::HeaderTooLarge { .. })
        ));
        let big_row = format!("h\n{}\n", "x".repeat(MAX_ITEM_BYTES + 1));
        match items(&big_row, CsvHeader::FirstRow, b',') {
            Err(ReaderError::ItemTooLarge { at, .. }) => {
                assert_eq!(at.line, Some(2));
                assert_eq!(at.offset, Some(2));
                assert_eq!(at.index, Some(0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bom_and_utf8() {
        let got = items("\u{feff}name\nJosé\n", CsvHeader::FirstRow, b',').unwrap();
        assert_eq!(got, vec![json!({"name": "José"})]);
        let mut bytes = b"h\n".to_vec();
        bytes.extend_from_slice(&[0x61, 0xff, 0x62, b'\n']);
        let mut o = CsvObject::new(src(&bytes), CsvHeader::FirstRow, b',', None).unwrap();
        assert_eq!(o.next_value(0).unwrap(), Some(json!({"h": "a\u{fffd}b"})));
    }

    #[test]
    fn header_only_and_empty() {
        assert_eq!(
            items("h1,h2\n", CsvHeader::FirstRow, b',').unwrap(),
            Vec::<Value>::new()
        );
        assert_eq!(
            items("", CsvHeader::FirstRow, b',').unwrap(),
            Vec::<Value>::new()
        );
        assert_eq!(
            items("", CsvHeader::Given(r(&["a"])), b',').unwrap(),
            Vec::<Value>::new()
        );
    }
}
