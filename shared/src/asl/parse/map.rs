//! Map states: the processor, items, selector, concurrency, tolerance, label, and the
//! Distributed-mode `ItemReader` / `ItemBatcher` / `ResultWriter` (validated, kept as JSON).

use serde_json::{Map as JsonMap, Value};

use super::super::model::{
    Dynamic, ExecutionType, ItemsSource, Map, ProcessorConfig, ProcessorMode, QueryLanguage,
    Template,
};
use super::codes::{DUPLICATE_LABEL_NAME, INVALID_LABEL_NAME};
use super::state::{wrong_language_msg, St};
use super::{at, field, is_jsonata, obj_loc, MachineKind, Names, Parser};

const LABEL_MAX_LEN: usize = 40;

impl Parser {
    pub(super) fn map_state(&mut self, st: &St<'_>, names: &Names, depth: usize) -> Option<Map> {
        let io = self.io(st, false);
        let fields = st.fields();
        let mut ok = true;

        // ItemProcessor (or legacy Iterator).
        let mut processor = None;
        let mut config = Some(ProcessorConfig::default());
        if self.exactly_one(fields, &["ItemProcessor", "Iterator"], &st.loc) {
            let key = if fields.contains_key("ItemProcessor") {
                "ItemProcessor"
            } else {
                "Iterator"
            };
            let ploc = st.at(key);
            if let Some(pobj) = self.as_object(field(fields, key), &ploc) {
                config = self.processor_config(pobj, &ploc);
                processor = self.machine(pobj, &ploc, MachineKind::Processor, depth + 1);
            } else {
                config = None;
            }
        } else {
            ok = false;
        }

        // Items.
        let mut items = None;
        if let Some(v) = st.get("ItemsPath") {
            items = self
                .reference_path(v, "ItemsPath", &st.at("ItemsPath"))
                .map(ItemsSource::Path);
            ok &= items.is_some();
        }
        if let Some(v) = st.get("Items") {
            items = self.items(v, &st.at("Items")).map(ItemsSource::Jsonata);
            ok &= items.is_some();
        }

        // ItemSelector (or legacy Parameters).
        let mut item_selector = None;
        if self.exclusive(fields, &["ItemSelector", "Parameters"], &st.loc) > 1 {
            ok = false;
        } else {
            let key = if fields.contains_key("ItemSelector") {
                "ItemSelector"
            } else {
                "Parameters"
            };
            if let Some(v) = st.get(key) {
                let loc = st.at(key);
                item_selector = match st.ql {
                    QueryLanguage::JsonPath => {
                        self.payload_template(v, &loc, true).map(Template::JsonPath)
                    }
                    QueryLanguage::Jsonata => self.jsonata_template(v, &loc).map(Template::Jsonata),
                };
                ok &= item_selector.is_some();
            }
        }

        let max_concurrency =
            self.dyn_pair_u64(st, "MaxConcurrency", "MaxConcurrencyPath", 0, None);
        let tolerated_failure_count = self.dyn_pair_u64(
            st,
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            0,
            None,
        );
        let tolerated_failure_percentage = self.dyn_pair_f64(
            st,
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            0.0,
            Some(100.0),
        );

        let mut label = None;
        if let Some(v) = st.get("Label") {
            label = self.label(v, &st.at("Label"));
            ok &= label.is_some();
        }

        let mut item_reader = None;
        if let Some(v) = st.get("ItemReader") {
            ok &= self.item_reader(v, st.ql, &st.at("ItemReader"));
            item_reader = Some(v.clone());
        }
        let mut item_batcher = None;
        if let Some(v) = st.get("ItemBatcher") {
            ok &= self.item_batcher(v, st.ql, &st.at("ItemBatcher"));
            item_batcher = Some(v.clone());
        }
        let mut result_writer = None;
        if let Some(v) = st.get("ResultWriter") {
            ok &= self.result_writer(v, st.ql, &st.at("ResultWriter"));
            result_writer = Some(v.clone());
        }

        let retry = self.retriers(st);
        let catch = self.catchers(st, names);
        let transition = self.transition(fields, &st.loc, names);
        if !ok {
            return None;
        }
        Some(Map {
            io: io?,
            item_processor: Box::new(processor?),
            processor_config: config?,
            items,
            item_selector,
            max_concurrency: max_concurrency?,
            tolerated_failure_percentage: tolerated_failure_percentage?,
            tolerated_failure_count: tolerated_failure_count?,
            label,
            item_reader,
            item_batcher,
            result_writer,
            retry: retry?,
            catch: catch?,
            transition: transition?,
        })
    }

    /// `ProcessorConfig`: `Mode` INLINE|DISTRIBUTED, `ExecutionType` STANDARD|EXPRESS
    /// (required in DISTRIBUTED mode, not supported in INLINE mode).
    fn processor_config(
        &mut self,
        processor: &JsonMap<String, Value>,
        ploc: &str,
    ) -> Option<ProcessorConfig> {
        let Some(v) = processor.get("ProcessorConfig") else {
            return Some(ProcessorConfig::default());
        };
        let loc = at(ploc, "ProcessorConfig");
        let obj = self.as_object(v, &loc)?;
        self.check_fields(obj, &["Mode", "ExecutionType"], &loc);
        let mut ok = true;
        let mut mode = ProcessorMode::Inline;
        if let Some(m) = obj.get("Mode") {
            match self.enum_str(m, &["INLINE", "DISTRIBUTED"], &at(&loc, "Mode")) {
                Some("DISTRIBUTED") => mode = ProcessorMode::Distributed,
                Some(_) => {}
                None => ok = false,
            }
        }
        let mut execution_type = ExecutionType::Standard;
        match obj.get("ExecutionType") {
            Some(e) => {
                if ok && mode == ProcessorMode::Inline {
                    self.schema(
                        "Field 'ExecutionType' is not supported",
                        at(&loc, "ExecutionType"),
                    );
                    ok = false;
                } else {
                    match self.enum_str(e, &["STANDARD", "EXPRESS"], &at(&loc, "ExecutionType")) {
                        Some("EXPRESS") => execution_type = ExecutionType::Express,
                        Some(_) => {}
                        None => ok = false,
                    }
                }
            }
            None => {
                if mode == ProcessorMode::Distributed {
                    self.require(obj, &["ExecutionType"], &loc);
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        Some(ProcessorConfig {
            mode,
            execution_type,
        })
    }

    /// JSONata `Items`: an array, an object, or a `{% %}` expression.
    fn items(&mut self, v: &Value, loc: &str) -> Option<super::super::jsonata::JsonataTemplate> {
        match v {
            Value::Array(_) | Value::Object(_) => self.jsonata_template(v, loc),
            Value::String(s) if is_jsonata(s) => self.jsonata_template(v, loc),
            Value::String(s) if s.starts_with("{%") => {
                self.schema(super::JSONATA_DELIMITERS_MSG, loc);
                None
            }
            _ => {
                self.schema(
                    "Expected value of type Array, Object or a JSONata expression",
                    loc,
                );
                None
            }
        }
    }

    /// A literal/JSONata integer field and its `…Path` form: `Some(None)` when neither.
    fn dyn_pair_u64(
        &mut self,
        st: &St<'_>,
        literal: &str,
        path: &str,
        min: u64,
        max: Option<u64>,
    ) -> Option<Option<Dynamic<u64>>> {
        if self.exclusive(st.fields(), &[literal, path], &st.loc) > 1 {
            return None;
        }
        if let Some(v) = st.get(literal) {
            return self.dyn_u64(v, st.ql, min, max, &st.at(literal)).map(Some);
        }
        if let Some(v) = st.get(path) {
            return self
                .reference_path(v, path, &st.at(path))
                .map(|p| Some(Dynamic::Path(p)));
        }
        Some(None)
    }

    fn dyn_pair_f64(
        &mut self,
        st: &St<'_>,
        literal: &str,
        path: &str,
        min: f64,
        max: Option<f64>,
    ) -> Option<Option<Dynamic<f64>>> {
        if self.exclusive(st.fields(), &[literal, path], &st.loc) > 1 {
            return None;
        }
        if let Some(v) = st.get(literal) {
            return self.dyn_f64(v, st.ql, min, max, &st.at(literal)).map(Some);
        }
        if let Some(v) = st.get(path) {
            return self
                .reference_path(v, path, &st.at(path))
                .map(|p| Some(Dynamic::Path(p)));
        }
        Some(None)
    }

    /// `Label`: 1–40 characters, none of the reserved ones, unique in the definition.
    fn label(&mut self, v: &Value, loc: &str) -> Option<String> {
        let s = self.as_str(v, loc)?;
        let len = s.chars().count();
        if len == 0 {
            self.error(INVALID_LABEL_NAME, "Label cannot be empty", loc);
            return None;
        }
        if len > LABEL_MAX_LEN {
            self.error(
                INVALID_LABEL_NAME,
                format!("Label '{s}' exceeds the {LABEL_MAX_LEN}-character limit allowed by the service"),
                loc,
            );
            return None;
        }
        let invalid = |c: char| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '?' | '*'
                        | '<'
                        | '>'
                        | '{'
                        | '}'
                        | '['
                        | ']'
                        | ':'
                        | ';'
                        | ','
                        | '\\'
                        | '|'
                        | '^'
                        | '~'
                        | '$'
                        | '#'
                        | '%'
                        | '&'
                        | '`'
                        | '"'
                )
        };
        if s.chars().any(invalid) {
            self.error(
                INVALID_LABEL_NAME,
                format!("Label '{}' contains invalid characters", s.escape_debug()),
                loc,
            );
            return None;
        }
        if self.labels.contains_key(s) {
            self.error(
                DUPLICATE_LABEL_NAME,
                format!("Duplicate Label name: {s}"),
                loc,
            );
            return None;
        }
        self.labels.insert(s.to_string(), loc.to_string());
        Some(s.to_string())
    }

    /// The language-specific parameters object of `ItemReader`/`ResultWriter`
    /// (`Parameters` in JSONPath, `Arguments` in JSONata). Returns whether it is valid.
    fn integration_parameters(
        &mut self,
        obj: &JsonMap<String, Value>,
        ql: QueryLanguage,
        loc: &str,
    ) -> bool {
        let mut ok = true;
        match ql {
            QueryLanguage::JsonPath => {
                if obj.contains_key("Arguments") {
                    self.schema(wrong_language_msg(ql, "Arguments"), loc);
                    ok = false;
                }
                if let Some(p) = obj.get("Parameters") {
                    ok &= self
                        .payload_template(p, &at(loc, "Parameters"), true)
                        .is_some();
                }
            }
            QueryLanguage::Jsonata => {
                if obj.contains_key("Parameters") {
                    self.schema(wrong_language_msg(ql, "Parameters"), loc);
                    ok = false;
                }
                if let Some(a) = obj.get("Arguments") {
                    ok &= self
                        .jsonata_object_or_expr(a, &at(loc, "Arguments"))
                        .is_some();
                }
            }
        }
        ok
    }

    /// A literal/JSONata integer in a Distributed-mode object, with its JSONPath `…Path` form.
    fn sub_int_pair(
        &mut self,
        obj: &JsonMap<String, Value>,
        ql: QueryLanguage,
        (literal, path): (&str, &str),
        (min, max): (u64, Option<u64>),
        loc: &str,
    ) -> bool {
        let mut ok = true;
        if self.exclusive(obj, &[literal, path], loc) > 1 {
            ok = false;
        }
        if let Some(v) = obj.get(literal) {
            ok &= self.dyn_u64(v, ql, min, max, &at(loc, literal)).is_some();
        }
        if let Some(v) = obj.get(path) {
            if ql == QueryLanguage::Jsonata {
                self.schema(wrong_language_msg(ql, path), loc);
                ok = false;
            } else {
                ok &= self.reference_path(v, path, &at(loc, path)).is_some();
            }
        }
        ok
    }

    /// `ItemReader` (§2.3): `Resource` (s3:getObject | s3:listObjectsV2), `Parameters` /
    /// `Arguments`, `ReaderConfig`.
    fn item_reader(&mut self, v: &Value, ql: QueryLanguage, loc: &str) -> bool {
        let Some(obj) = self.as_object(v, loc) else {
            return false;
        };
        let before = self.diags.len();
        self.check_fields(
            obj,
            &["Resource", "Parameters", "Arguments", "ReaderConfig"],
            loc,
        );
        self.require(obj, &["Resource"], loc);
        let mut list_objects = false;
        if let Some(r) = obj.get("Resource") {
            let rloc = at(loc, "Resource");
            if let Some(r) = self.as_str(r, &rloc) {
                match s3_action(r) {
                    Some("getObject") => {}
                    Some("listObjectsV2") => list_objects = true,
                    _ => self.schema(
                        "The field 'Resource' does not match any of the allowed values. Examples: [arn:<partition>:states:::s3:getObject, arn:<partition>:states:::s3:listObjectsV2]",
                        rloc,
                    ),
                }
            }
        }
        self.integration_parameters(obj, ql, loc);
        if let Some(rc) = obj.get("ReaderConfig") {
            self.reader_config(rc, ql, list_objects, &at(loc, "ReaderConfig"));
        }
        self.diags.len() == before
    }

    fn reader_config(&mut self, v: &Value, ql: QueryLanguage, list_objects: bool, loc: &str) {
        let Some(obj) = self.as_object(v, loc) else {
            return;
        };
        self.check_fields(
            obj,
            &[
                "InputType",
                "Transformation",
                "ManifestType",
                "CSVHeaderLocation",
                "CSVHeaders",
                "CSVDelimiter",
                "MaxItems",
                "MaxItemsPath",
                "ItemsPointer",
            ],
            loc,
        );
        let input_type = obj.get("InputType").and_then(|t| {
            self.enum_str(
                t,
                &["CSV", "JSON", "JSONL", "PARQUET", "MANIFEST"],
                &at(loc, "InputType"),
            )
        });
        let transformation = obj.get("Transformation").and_then(|t| {
            self.enum_str(t, &["NONE", "LOAD_AND_FLATTEN"], &at(loc, "Transformation"))
        });
        let manifest_type = obj.get("ManifestType").and_then(|t| {
            self.enum_str(
                t,
                &["ATHENA_DATA", "S3_INVENTORY"],
                &at(loc, "ManifestType"),
            )
        });
        let header_location = obj
            .get("CSVHeaderLocation")
            .and_then(|t| self.enum_str(t, &["FIRST_ROW", "GIVEN"], &at(loc, "CSVHeaderLocation")));
        if let Some(d) = obj.get("CSVDelimiter") {
            self.enum_str(
                d,
                &["COMMA", "PIPE", "SEMICOLON", "SPACE", "TAB"],
                &at(loc, "CSVDelimiter"),
            );
        }
        if let Some(h) = obj.get("CSVHeaders") {
            let hloc = at(loc, "CSVHeaders");
            if let Some(items) = self.as_nonempty_array(h, &hloc) {
                for (i, item) in items.iter().enumerate() {
                    self.as_str(item, &at(&hloc, &i.to_string()));
                }
            }
        }
        if header_location == Some("GIVEN") && !obj.contains_key("CSVHeaders") {
            self.require(obj, &["CSVHeaders"], loc);
        }
        // CSV options only make sense for CSV data.
        if matches!(input_type, Some("JSON" | "JSONL" | "PARQUET")) {
            for f in ["CSVHeaderLocation", "CSVHeaders", "CSVDelimiter"] {
                if obj.contains_key(f) {
                    self.schema(format!("Field '{f}' is not supported"), at(loc, f));
                }
            }
        }
        if input_type == Some("CSV") && !obj.contains_key("CSVHeaderLocation") {
            self.schema("The field 'CSVHeaderLocation' is required", loc);
        }
        match manifest_type {
            Some("S3_INVENTORY") if obj.contains_key("InputType") => {
                self.schema("Field 'InputType' is not supported", at(loc, "InputType"));
            }
            Some("ATHENA_DATA") => match input_type {
                Some("CSV" | "JSONL" | "PARQUET") => {}
                Some(_) => self.schema(
                    "Value should be one of the following: [CSV, JSONL, PARQUET]",
                    at(loc, "InputType"),
                ),
                None => {
                    if !obj.contains_key("InputType") {
                        self.require(obj, &["InputType"], loc);
                    }
                }
            },
            _ => {}
        }
        if transformation == Some("LOAD_AND_FLATTEN") {
            if !list_objects {
                self.schema(
                    "The field 'Transformation' with value 'LOAD_AND_FLATTEN' is only supported with the s3:listObjectsV2 resource",
                    at(loc, "Transformation"),
                );
            }
            if !obj.contains_key("InputType") {
                self.require(obj, &["InputType"], loc);
            }
        }
        self.sub_int_pair(
            obj,
            ql,
            ("MaxItems", "MaxItemsPath"),
            (0, Some(100_000_000)),
            loc,
        );
        if let Some(p) = obj.get("ItemsPointer") {
            let ploc = at(loc, "ItemsPointer");
            if let Some(s) = self.as_str(p, &ploc) {
                if !(s.is_empty() || s.starts_with('/')) {
                    self.schema(
                        "The value for the field 'ItemsPointer' must be a valid JSON Pointer",
                        ploc,
                    );
                }
            }
        }
    }

    /// `ItemBatcher` (§2.5).
    fn item_batcher(&mut self, v: &Value, ql: QueryLanguage, loc: &str) -> bool {
        let Some(obj) = self.as_object(v, loc) else {
            return false;
        };
        let before = self.diags.len();
        const SIZE_FIELDS: [&str; 4] = [
            "MaxItemsPerBatch",
            "MaxItemsPerBatchPath",
            "MaxInputBytesPerBatch",
            "MaxInputBytesPerBatchPath",
        ];
        self.check_fields(
            obj,
            &[
                SIZE_FIELDS[0],
                SIZE_FIELDS[1],
                SIZE_FIELDS[2],
                SIZE_FIELDS[3],
                "BatchInput",
            ],
            loc,
        );
        if !SIZE_FIELDS.iter().any(|f| obj.contains_key(*f)) {
            self.schema(
                format!(
                    "This object should have at least one of the following fields: [{}]",
                    SIZE_FIELDS.join(", ")
                ),
                obj_loc(loc),
            );
        }
        self.sub_int_pair(
            obj,
            ql,
            ("MaxItemsPerBatch", "MaxItemsPerBatchPath"),
            (1, None),
            loc,
        );
        self.sub_int_pair(
            obj,
            ql,
            ("MaxInputBytesPerBatch", "MaxInputBytesPerBatchPath"),
            (1, Some(262_144)),
            loc,
        );
        if let Some(b) = obj.get("BatchInput") {
            let bloc = at(loc, "BatchInput");
            match ql {
                QueryLanguage::JsonPath => {
                    self.payload_template(b, &bloc, false);
                }
                QueryLanguage::Jsonata => {
                    self.jsonata_template(b, &bloc);
                }
            }
        }
        self.diags.len() == before
    }

    /// `ResultWriter` (§2.8): `WriterConfig` alone, `Resource` + `Parameters`/`Arguments`, or
    /// all three.
    fn result_writer(&mut self, v: &Value, ql: QueryLanguage, loc: &str) -> bool {
        let Some(obj) = self.as_object(v, loc) else {
            return false;
        };
        let before = self.diags.len();
        self.check_fields(
            obj,
            &["Resource", "Parameters", "Arguments", "WriterConfig"],
            loc,
        );
        let params_field = match ql {
            QueryLanguage::JsonPath => "Parameters",
            QueryLanguage::Jsonata => "Arguments",
        };
        let has_resource = obj.contains_key("Resource");
        let has_params = obj.contains_key(params_field);
        let has_config = obj.contains_key("WriterConfig");
        if (!has_config && !has_resource && !has_params) || has_resource != has_params {
            self.schema(
                format!(
                    "The field 'ResultWriter' must specify WriterConfig alone, Resource with {params_field}, or all three fields"
                ),
                obj_loc(loc),
            );
        }
        if let Some(r) = obj.get("Resource") {
            let rloc = at(loc, "Resource");
            if let Some(r) = self.as_str(r, &rloc) {
                if s3_action(r) != Some("putObject") {
                    self.schema(
                        "The field 'Resource' does not match any of the allowed values. Examples: [arn:<partition>:states:::s3:putObject]",
                        rloc,
                    );
                }
            }
        }
        self.integration_parameters(obj, ql, loc);
        if let Some(Value::Object(p)) = obj.get(params_field) {
            let ploc = at(loc, params_field);
            let has_bucket = p.contains_key("Bucket")
                || (ql == QueryLanguage::JsonPath && p.contains_key("Bucket.$"));
            if !has_bucket {
                self.require(p, &["Bucket"], &ploc);
            }
        }
        if let Some(wc) = obj.get("WriterConfig") {
            let wloc = at(loc, "WriterConfig");
            if let Some(w) = self.as_object(wc, &wloc) {
                self.check_fields(w, &["OutputType", "Transformation"], &wloc);
                self.require(w, &["OutputType"], &wloc);
                if let Some(o) = w.get("OutputType") {
                    self.enum_str(o, &["JSON", "JSONL"], &at(&wloc, "OutputType"));
                }
                if let Some(t) = w.get("Transformation") {
                    self.enum_str(
                        t,
                        &["NONE", "COMPACT", "FLATTEN"],
                        &at(&wloc, "Transformation"),
                    );
                }
            }
        }
        self.diags.len() == before
    }
}

/// `arn:<partition>:states:::s3:<action>` → `<action>`.
fn s3_action(resource: &str) -> Option<&str> {
    let rest = resource.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    if partition.is_empty() {
        return None;
    }
    let action = rest.strip_prefix("states:::s3:")?;
    if action.contains(':') {
        None
    } else {
        Some(action)
    }
}
