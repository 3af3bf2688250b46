//! One state: type and field checks, then the per-type parsers (Map and Choice live in their
//! own modules), I/O fields, Retry and Catch.

use serde_json::{Map as JsonMap, Value};

use super::super::model::{
    Catcher, DynString, Dynamic, Fail, Io, Jitter, Parallel, Pass, PathField, QueryLanguage,
    Retrier, State, StateKind, Succeed, Task, Template, Wait, WaitFor,
};
use super::super::template::PathExpr;
use super::super::timestamp;
use super::{at, field, MachineKind, Names, Parser};

pub(super) const STATE_TYPES: [&str; 8] = [
    "Task", "Choice", "Parallel", "Map", "Pass", "Wait", "Succeed", "Fail",
];

const COMMON: [&str; 3] = ["Type", "Comment", "QueryLanguage"];

/// Fields each state type accepts (besides [`COMMON`]), in either language.
fn type_fields(ty: &str) -> &'static [&'static str] {
    match ty {
        "Pass" => &[
            "InputPath",
            "OutputPath",
            "Result",
            "ResultPath",
            "Parameters",
            "Output",
            "Assign",
            "Next",
            "End",
        ],
        "Task" => &[
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "Arguments",
            "Output",
            "Assign",
            "Resource",
            "Credentials",
            "ResultSelector",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Next",
            "End",
        ],
        "Wait" => &[
            "InputPath",
            "OutputPath",
            "Output",
            "Assign",
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
            "Next",
            "End",
        ],
        "Parallel" => &[
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "Arguments",
            "Output",
            "Assign",
            "ResultSelector",
            "Retry",
            "Catch",
            "Branches",
            "Next",
            "End",
        ],
        "Map" => &[
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "Output",
            "Assign",
            "ResultSelector",
            "Retry",
            "Catch",
            "ItemProcessor",
            "Iterator",
            "ItemsPath",
            "Items",
            "ItemSelector",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "Label",
            "Next",
            "End",
        ],
        "Choice" => &[
            "InputPath",
            "OutputPath",
            "Output",
            "Assign",
            "Choices",
            "Default",
        ],
        "Succeed" => &["InputPath", "OutputPath", "Output"],
        "Fail" => &["Error", "Cause", "ErrorPath", "CausePath"],
        _ => &[],
    }
}

/// State fields that only exist in JSONPath states.
pub(super) const JSONPATH_ONLY: [&str; 16] = [
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Result",
    "ItemsPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "SecondsPath",
    "TimestampPath",
    "MaxConcurrencyPath",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCountPath",
    "ErrorPath",
    "CausePath",
];

/// State fields that only exist in JSONata states.
pub(super) const JSONATA_ONLY: [&str; 3] = ["Arguments", "Output", "Items"];

/// The message for a field of the other query language.
pub(super) fn wrong_language_msg(ql: QueryLanguage, field: &str) -> String {
    let other = match ql {
        QueryLanguage::JsonPath => QueryLanguage::Jsonata,
        QueryLanguage::Jsonata => QueryLanguage::JsonPath,
    };
    format!(
        "The QueryLanguage is set to '{}', but field '{field}' is only supported for the '{}' QueryLanguage",
        ql.as_str(),
        other.as_str()
    )
}

/// A state object whose fields have been checked against its type and language: `get` only
/// returns accepted fields, so that a rejected field is reported once.
pub(super) struct St<'a> {
    pub obj: &'a JsonMap<String, Value>,
    pub loc: String,
    pub ql: QueryLanguage,
    accepted: Vec<&'a str>,
    /// The accepted fields as an object (built once, for the helpers that take an object).
    accepted_fields: JsonMap<String, Value>,
}

impl<'a> St<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        if self.accepted.contains(&key) {
            self.obj.get(key)
        } else {
            None
        }
    }
    pub fn at(&self, key: &str) -> String {
        at(&self.loc, key)
    }
    /// The accepted fields as an object (for helpers that take one).
    pub fn fields(&self) -> &JsonMap<String, Value> {
        &self.accepted_fields
    }
}

impl Parser {
    /// Parses one state.
    pub(super) fn state(
        &mut self,
        name: &str,
        v: &Value,
        loc: &str,
        names: &Names,
        depth: usize,
    ) -> Option<State> {
        let obj = self.as_object(v, loc)?;
        if !self.require(obj, &["Type"], loc) {
            return None;
        }
        let ty = self.enum_str(field(obj, "Type"), &STATE_TYPES, &at(loc, "Type"))?;
        let comment = self.opt_string(obj, "Comment", loc);

        // Query language: declared, else the machine's.
        let mut ql = self.top_ql;
        let mut downgraded = false;
        if let Some(q) = obj.get("QueryLanguage") {
            match self.enum_str(q, &["JSONPath", "JSONata"], &at(loc, "QueryLanguage")) {
                Some("JSONata") => ql = QueryLanguage::Jsonata,
                Some(_) => {
                    if self.top_ql == QueryLanguage::Jsonata {
                        self.schema("'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine", loc);
                        downgraded = true;
                    }
                    ql = QueryLanguage::JsonPath;
                }
                None => {}
            }
        }

        // Fields by type, then by language.
        let allowed = type_fields(ty);
        let mut accepted: Vec<&str> = Vec::new();
        for key in obj.keys() {
            let k = key.as_str();
            if COMMON.contains(&k) {
                continue;
            }
            if !allowed.contains(&k) {
                self.schema(format!("Field '{k}' is not supported"), at(loc, k));
                continue;
            }
            let wrong = match ql {
                QueryLanguage::Jsonata => JSONPATH_ONLY.contains(&k),
                QueryLanguage::JsonPath => JSONATA_ONLY.contains(&k),
            };
            if wrong {
                if !downgraded {
                    self.schema(wrong_language_msg(ql, k), loc);
                }
                continue;
            }
            accepted.push(k);
        }
        let accepted_fields = obj
            .iter()
            .filter(|(k, _)| accepted.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let st = St {
            obj,
            loc: loc.to_string(),
            ql,
            accepted,
            accepted_fields,
        };

        let kind = match ty {
            "Pass" => self.pass(&st, names).map(StateKind::Pass),
            "Task" => self.task(&st, names).map(StateKind::Task),
            "Choice" => self.choice_state(&st, names).map(StateKind::Choice),
            "Wait" => self.wait(&st, names).map(StateKind::Wait),
            "Succeed" => self
                .io(&st, false)
                .map(|io| StateKind::Succeed(Succeed { io })),
            "Fail" => self.fail(&st).map(StateKind::Fail),
            "Parallel" => self.parallel(&st, names, depth).map(StateKind::Parallel),
            "Map" => self.map_state(&st, names, depth).map(StateKind::Map),
            _ => None,
        }?;
        Some(State {
            name: name.to_string(),
            comment,
            query_language: ql,
            kind,
        })
    }

    /// The I/O fields of a state (those it accepts). `parameters`: whether `Parameters` /
    /// `Arguments` are the state's parameters (not for Map, whose `Parameters` is the legacy
    /// `ItemSelector`).
    pub(super) fn io(&mut self, st: &St<'_>, parameters: bool) -> Option<Io> {
        let fields = st.fields();
        let input_path = self.path_field(fields, "InputPath", &st.loc, false);
        let result_path = self.path_field(fields, "ResultPath", &st.loc, true);
        let output_path = self.path_field(fields, "OutputPath", &st.loc, false);
        let mut ok = input_path.is_some() && result_path.is_some() && output_path.is_some();

        let mut params = None;
        if parameters {
            if let Some(v) = st.get("Parameters") {
                params = self
                    .payload_template(v, &st.at("Parameters"), true)
                    .map(Template::JsonPath);
                ok &= params.is_some();
            }
            if let Some(v) = st.get("Arguments") {
                params = self
                    .jsonata_object_or_expr(v, &st.at("Arguments"))
                    .map(Template::Jsonata);
                ok &= params.is_some();
            }
        }
        let mut result_selector = None;
        if let Some(v) = st.get("ResultSelector") {
            result_selector = self.payload_template(v, &st.at("ResultSelector"), true);
            ok &= result_selector.is_some();
        }
        let mut output = None;
        if let Some(v) = st.get("Output") {
            output = self.jsonata_template(v, &st.at("Output"));
            ok &= output.is_some();
        }
        let mut assign = None;
        if let Some(v) = st.get("Assign") {
            assign = self.assign(v, st.ql, &st.at("Assign"));
            ok &= assign.is_some();
        }
        if !ok {
            return None;
        }
        Some(Io {
            input_path: input_path?,
            parameters: params,
            result_selector,
            result_path: result_path?,
            output_path: output_path?,
            output,
            assign,
        })
    }

    fn pass(&mut self, st: &St<'_>, names: &Names) -> Option<Pass> {
        let io = self.io(st, true);
        let result = st.get("Result").cloned();
        let transition = self.transition(st.fields(), &st.loc, names);
        Some(Pass {
            io: io?,
            result,
            transition: transition?,
        })
    }

    fn task(&mut self, st: &St<'_>, names: &Names) -> Option<Task> {
        let io = self.io(st, true);
        let mut ok = true;

        let resource = if self.require(st.obj, &["Resource"], &st.loc) {
            let r = self
                .as_str(field(st.obj, "Resource"), &st.at("Resource"))
                .map(str::to_string);
            if let Some(r) = &r {
                if !looks_like_arn(r) {
                    self.schema(
                        format!(
                            "The resource provided {r} is not recognized. The value is not a valid resource ARN, or the resource is not available in this region."
                        ),
                        st.at("Resource"),
                    );
                    ok = false;
                }
            }
            r
        } else {
            None
        };

        let mut credentials = None;
        if let Some(v) = st.get("Credentials") {
            credentials = self.credentials(v, st.ql, &st.at("Credentials"));
            ok &= credentials.is_some();
        }

        let timeout = self.seconds_pair(st, "TimeoutSeconds", "TimeoutSecondsPath");
        let heartbeat = self.seconds_pair(st, "HeartbeatSeconds", "HeartbeatSecondsPath");
        if let (Some(Some(Dynamic::Literal(h))), t) = (&heartbeat, &timeout) {
            let limit = match t {
                Some(Some(Dynamic::Literal(t))) => Some(*t),
                Some(None) => Some(99_999_999),
                _ => None,
            };
            if let Some(limit) = limit {
                if *h >= limit {
                    self.schema(
                        format!("The value for the field 'HeartbeatSeconds' must be smaller than TimeoutSeconds ({limit})"),
                        st.at("HeartbeatSeconds"),
                    );
                    ok = false;
                }
            }
        }

        let retry = self.retriers(st);
        let catch = self.catchers(st, names);
        let transition = self.transition(st.fields(), &st.loc, names);
        if !ok {
            return None;
        }
        Some(Task {
            io: io?,
            resource: resource?,
            credentials,
            timeout_seconds: timeout?,
            heartbeat_seconds: heartbeat?,
            retry: retry?,
            catch: catch?,
            transition: transition?,
        })
    }

    /// `TimeoutSeconds`/`TimeoutSecondsPath` or `HeartbeatSeconds`/`HeartbeatSecondsPath`:
    /// `Some(None)` when neither is given, `None` on error.
    fn seconds_pair(
        &mut self,
        st: &St<'_>,
        literal: &str,
        path: &str,
    ) -> Option<Option<Dynamic<u64>>> {
        if self.exclusive(st.fields(), &[literal, path], &st.loc) > 1 {
            return None;
        }
        if let Some(v) = st.get(literal) {
            return self
                .dyn_u64(v, st.ql, 1, Some(99_999_999), &st.at(literal))
                .map(Some);
        }
        if let Some(v) = st.get(path) {
            return self
                .reference_path(v, path, &st.at(path))
                .map(|p| Some(Dynamic::Path(p)));
        }
        Some(None)
    }

    /// Task `Credentials`: `{"RoleArn": …}` or (JSONPath) `{"RoleArn.$": …}`.
    fn credentials(&mut self, v: &Value, ql: QueryLanguage, loc: &str) -> Option<Template> {
        let obj = self.as_object(v, loc)?;
        match ql {
            QueryLanguage::JsonPath => {
                self.check_fields(obj, &["RoleArn", "RoleArn.$"], loc);
                let n = self.exclusive(obj, &["RoleArn", "RoleArn.$"], loc);
                if n == 0 {
                    self.schema("The field 'RoleArn' is required but was missing", loc);
                    return None;
                }
                if let Some(r) = obj.get("RoleArn") {
                    self.as_str(r, &at(loc, "RoleArn"))?;
                }
                let t = self.payload_template(v, loc, true)?;
                if n == 1 && obj.len() == 1 {
                    Some(Template::JsonPath(t))
                } else {
                    None
                }
            }
            QueryLanguage::Jsonata => {
                self.check_fields(obj, &["RoleArn"], loc);
                if !self.require(obj, &["RoleArn"], loc) {
                    return None;
                }
                self.as_str(field(obj, "RoleArn"), &at(loc, "RoleArn"))?;
                let t = self.jsonata_template(v, loc)?;
                if obj.len() == 1 {
                    Some(Template::Jsonata(t))
                } else {
                    None
                }
            }
        }
    }

    fn wait(&mut self, st: &St<'_>, names: &Names) -> Option<Wait> {
        let io = self.io(st, false);
        let fields = st.fields();
        let mut wait = None;
        // The JSONata state only accepts Seconds/Timestamp, the others were already reported.
        let candidates: &[&str] = match st.ql {
            QueryLanguage::JsonPath => &["Seconds", "Timestamp", "SecondsPath", "TimestampPath"],
            QueryLanguage::Jsonata => &["Seconds", "Timestamp"],
        };
        let any_path_rejected = st.ql == QueryLanguage::Jsonata
            && (st.obj.contains_key("SecondsPath") || st.obj.contains_key("TimestampPath"));
        let one = if any_path_rejected
            && !fields.contains_key("Seconds")
            && !fields.contains_key("Timestamp")
        {
            false
        } else {
            self.exactly_one(fields, candidates, &st.loc)
        };
        if one {
            if let Some(v) = st.get("Seconds") {
                wait = self
                    .dyn_u64(v, st.ql, 0, Some(99_999_999), &st.at("Seconds"))
                    .map(WaitFor::Seconds);
            } else if let Some(v) = st.get("SecondsPath") {
                wait = self
                    .reference_path(v, "SecondsPath", &st.at("SecondsPath"))
                    .map(|p| WaitFor::Seconds(Dynamic::Path(p)));
            } else if let Some(v) = st.get("Timestamp") {
                wait = self
                    .timestamp_field(v, st.ql, &st.at("Timestamp"))
                    .map(WaitFor::Timestamp);
            } else if let Some(v) = st.get("TimestampPath") {
                wait = self
                    .reference_path(v, "TimestampPath", &st.at("TimestampPath"))
                    .map(|p| WaitFor::Timestamp(Dynamic::Path(p)));
            }
        }
        let transition = self.transition(fields, &st.loc, names);
        Some(Wait {
            io: io?,
            wait: wait?,
            transition: transition?,
        })
    }

    /// A literal RFC 3339 timestamp, or (JSONata) an expression.
    pub(super) fn timestamp_field(
        &mut self,
        v: &Value,
        ql: QueryLanguage,
        loc: &str,
    ) -> Option<Dynamic<String>> {
        let s = self.as_str(v, loc)?;
        if ql == QueryLanguage::Jsonata {
            match self.jsonata_expr(s, loc) {
                Ok(Some(t)) => return Some(Dynamic::Jsonata(t)),
                Ok(None) => {}
                Err(()) => return None,
            }
        }
        if timestamp::parse(s).is_some() {
            Some(Dynamic::Literal(s.to_string()))
        } else {
            self.schema("String does not match RFC3339 timestamp", loc);
            None
        }
    }

    fn fail(&mut self, st: &St<'_>) -> Option<Fail> {
        let fields = st.fields();
        let e = self.exclusive(fields, &["Error", "ErrorPath"], &st.loc);
        let c = self.exclusive(fields, &["Cause", "CausePath"], &st.loc);
        let error = self.fail_string(st, "Error", "ErrorPath");
        let cause = self.fail_string(st, "Cause", "CausePath");
        if e > 1 || c > 1 {
            return None;
        }
        Some(Fail {
            error: error?,
            cause: cause?,
        })
    }

    /// Fail `Error`/`ErrorPath` or `Cause`/`CausePath`: `Some(None)` when absent.
    fn fail_string(&mut self, st: &St<'_>, literal: &str, path: &str) -> Option<Option<DynString>> {
        if let Some(v) = st.get(literal) {
            let loc = st.at(literal);
            let s = self.as_str(v, &loc)?;
            if st.ql == QueryLanguage::Jsonata {
                match self.jsonata_expr(s, &loc) {
                    Ok(Some(t)) => return Some(Some(DynString::Jsonata(t))),
                    Ok(None) => {}
                    Err(()) => return None,
                }
            }
            return Some(Some(DynString::Literal(s.to_string())));
        }
        if let Some(v) = st.get(path) {
            let loc = st.at(path);
            let s = self.as_str(v, &loc)?;
            return self
                .fail_path(s, path, &loc)
                .map(|p| Some(DynString::Path(p)));
        }
        Some(None)
    }

    /// Fail `ErrorPath`/`CausePath`: a reference path or one of the allowed intrinsics.
    fn fail_path(&mut self, s: &str, field: &str, loc: &str) -> Option<PathExpr> {
        const ALLOWED: [&str; 7] = [
            "States.Format",
            "States.JsonToString",
            "States.ArrayGetItem",
            "States.Base64Encode",
            "States.Base64Decode",
            "States.Hash",
            "States.UUID",
        ];
        let trimmed = s.trim_start();
        if trimmed.starts_with("States.") {
            let fname = trimmed.split('(').next().unwrap_or("").trim();
            if !ALLOWED.contains(&fname) {
                self.schema(
                    format!(
                        "The value for the field '{field}' must be a valid Reference Path or one of the intrinsic functions [{}]",
                        ALLOWED.join(", ")
                    ),
                    loc,
                );
                return None;
            }
        }
        match PathExpr::parse(s) {
            Ok(PathExpr::Path(p)) if !p.is_reference() => {
                self.schema(
                    format!("The value for the field '{field}' must be a valid Reference Path"),
                    loc,
                );
                None
            }
            Ok(p) => Some(p),
            Err(e) => {
                self.schema(
                    format!("The value for the field '{field}' must be a valid Reference Path or a valid intrinsic function call: {e}"),
                    loc,
                );
                None
            }
        }
    }

    fn parallel(&mut self, st: &St<'_>, names: &Names, depth: usize) -> Option<Parallel> {
        let io = self.io(st, true);
        let mut branches = Some(Vec::new());
        if self.require(st.obj, &["Branches"], &st.loc) {
            let bloc = st.at("Branches");
            match self.as_nonempty_array(field(st.obj, "Branches"), &bloc) {
                Some(items) => {
                    for (i, b) in items.iter().enumerate() {
                        let loc = at(&bloc, &i.to_string());
                        let m = self
                            .as_object(b, &loc)
                            .and_then(|o| self.machine(o, &loc, MachineKind::Branch, depth + 1));
                        match (m, branches.as_mut()) {
                            (Some(m), Some(v)) => v.push(m),
                            _ => branches = None,
                        }
                    }
                }
                None => branches = None,
            }
        } else {
            branches = None;
        }
        let retry = self.retriers(st);
        let catch = self.catchers(st, names);
        let transition = self.transition(st.fields(), &st.loc, names);
        Some(Parallel {
            io: io?,
            branches: branches?,
            retry: retry?,
            catch: catch?,
            transition: transition?,
        })
    }

    // ----- Retry / Catch -----

    /// `ErrorEquals`: a non-empty array of strings; `States.ALL` alone. Also returns whether
    /// it contains `States.ALL`.
    fn error_equals(
        &mut self,
        obj: &JsonMap<String, Value>,
        loc: &str,
    ) -> Option<(Vec<String>, bool)> {
        let v = obj.get("ErrorEquals")?;
        let eloc = at(loc, "ErrorEquals");
        let items = self.as_nonempty_array(v, &eloc)?;
        let mut names = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.as_str(item, &at(&eloc, &i.to_string())) {
                Some(s) => names.push(s.to_string()),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let has_all = names.iter().any(|n| n == "States.ALL");
        if has_all && names.len() > 1 {
            self.schema("The field 'ErrorEquals' cannot contain 'States.ALL' together with other error names", eloc);
            return None;
        }
        Some((names, has_all))
    }

    pub(super) fn retriers(&mut self, st: &St<'_>) -> Option<Vec<Retrier>> {
        let Some(v) = st.get("Retry") else {
            return Some(Vec::new());
        };
        let rloc = st.at("Retry");
        let items = self.as_array(v, &rloc)?;
        let mut out = Some(Vec::new());
        for (i, item) in items.iter().enumerate() {
            let loc = at(&rloc, &i.to_string());
            let r = self.retrier(item, &loc, i + 1 == items.len());
            match (r, out.as_mut()) {
                (Some(r), Some(o)) => o.push(r),
                _ => out = None,
            }
        }
        out
    }

    fn retrier(&mut self, v: &Value, loc: &str, last: bool) -> Option<Retrier> {
        let obj = self.as_object(v, loc)?;
        self.check_fields(
            obj,
            &[
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ],
            loc,
        );
        self.require(obj, &["ErrorEquals"], loc);
        let errors = self.error_equals(obj, loc);
        if let Some((_, true)) = &errors {
            if !last {
                self.schema(
                    "A Retrier with 'States.ALL' in 'ErrorEquals' must be the last Retrier",
                    at(loc, "ErrorEquals"),
                );
                return None;
            }
        }
        let mut ok = true;
        let mut interval = 1;
        if let Some(v) = obj.get("IntervalSeconds") {
            match self.int_in(v, 0, Some(99_999_999), &at(loc, "IntervalSeconds")) {
                Some(n) => interval = n,
                None => ok = false,
            }
        }
        let mut attempts = 3;
        if let Some(v) = obj.get("MaxAttempts") {
            match self.int_in(v, 0, Some(99_999_999), &at(loc, "MaxAttempts")) {
                Some(n) => attempts = n,
                None => ok = false,
            }
        }
        let mut backoff = 2.0;
        if let Some(v) = obj.get("BackoffRate") {
            match self.num_in(v, 1.0, None, &at(loc, "BackoffRate")) {
                Some(n) => backoff = n,
                None => ok = false,
            }
        }
        let mut max_delay = None;
        if let Some(v) = obj.get("MaxDelaySeconds") {
            match self.int_in(v, 1, Some(31_622_400), &at(loc, "MaxDelaySeconds")) {
                Some(n) => max_delay = Some(n),
                None => ok = false,
            }
        }
        let mut jitter = Jitter::None;
        if let Some(v) = obj.get("JitterStrategy") {
            match self.enum_str(v, &["FULL", "NONE"], &at(loc, "JitterStrategy")) {
                Some("FULL") => jitter = Jitter::Full,
                Some(_) => {}
                None => ok = false,
            }
        }
        if obj.get("Comment").is_some() {
            ok &= self.opt_string(obj, "Comment", loc).is_some();
        }
        let (error_equals, _) = errors?;
        if !ok {
            return None;
        }
        Some(Retrier {
            error_equals,
            interval_seconds: interval,
            max_attempts: attempts,
            backoff_rate: backoff,
            max_delay_seconds: max_delay,
            jitter,
        })
    }

    pub(super) fn catchers(&mut self, st: &St<'_>, names: &Names) -> Option<Vec<Catcher>> {
        let Some(v) = st.get("Catch") else {
            return Some(Vec::new());
        };
        let cloc = st.at("Catch");
        let items = self.as_array(v, &cloc)?;
        let mut out = Some(Vec::new());
        for (i, item) in items.iter().enumerate() {
            let loc = at(&cloc, &i.to_string());
            let c = self.catcher(item, &loc, st.ql, names, i + 1 == items.len());
            match (c, out.as_mut()) {
                (Some(c), Some(o)) => o.push(c),
                _ => out = None,
            }
        }
        out
    }

    fn catcher(
        &mut self,
        v: &Value,
        loc: &str,
        ql: QueryLanguage,
        names: &Names,
        last: bool,
    ) -> Option<Catcher> {
        let obj = self.as_object(v, loc)?;
        let mut ok = true;
        for key in obj.keys() {
            match key.as_str() {
                "ErrorEquals" | "Next" | "Assign" | "Comment" => {}
                "ResultPath" if ql == QueryLanguage::JsonPath => {}
                "Output" if ql == QueryLanguage::Jsonata => {}
                "ResultPath" | "Output" => {
                    self.schema(wrong_language_msg(ql, key), loc);
                    ok = false;
                }
                other => {
                    self.schema(format!("Field '{other}' is not supported"), at(loc, other));
                    ok = false;
                }
            }
        }
        self.require(obj, &["ErrorEquals", "Next"], loc);
        let errors = self.error_equals(obj, loc);
        if let Some((_, true)) = &errors {
            if !last {
                self.schema(
                    "A Catcher with 'States.ALL' in 'ErrorEquals' must be the last Catcher",
                    at(loc, "ErrorEquals"),
                );
                return None;
            }
        }
        let next = obj
            .get("Next")
            .and_then(|n| self.resolve(n, "Next", &at(loc, "Next"), names));
        let mut result_path = Some(PathField::Default);
        let mut output = None;
        match ql {
            QueryLanguage::JsonPath => {
                result_path = self.path_field(obj, "ResultPath", loc, true);
            }
            QueryLanguage::Jsonata => {
                if let Some(v) = obj.get("Output") {
                    output = self.jsonata_template(v, &at(loc, "Output"));
                    ok &= output.is_some();
                }
            }
        }
        let mut assign = None;
        if let Some(v) = obj.get("Assign") {
            assign = self.assign(v, ql, &at(loc, "Assign"));
            ok &= assign.is_some();
        }
        if obj.get("Comment").is_some() {
            ok &= self.opt_string(obj, "Comment", loc).is_some();
        }
        let (error_equals, _) = errors?;
        if !ok {
            return None;
        }
        Some(Catcher {
            error_equals,
            next: next?,
            result_path: result_path?,
            output,
            assign,
        })
    }
}

/// Whether a Task `Resource` looks like an ARN (`arn:partition:service:region:account:…`).
fn looks_like_arn(r: &str) -> bool {
    let parts: Vec<&str> = r.split(':').collect();
    parts.len() >= 6 && parts[0] == "arn" && !parts[1].is_empty() && !parts[2].is_empty()
}
