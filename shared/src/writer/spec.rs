//! `ResultWriter` after evaluation: where to export, in what format (spec §2.8).

use serde_json::Value;

use super::WriterError;

/// AWS's per-file rollover size: 5 GB (S3's single-object PUT limit, 5 GiB), spec §3.1.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// `WriterConfig.OutputType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum OutputType {
    /// Each result file is one JSON array.
    #[default]
    Json,
    /// Each result file holds one record per line.
    Jsonl,
}

impl OutputType {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputType::Json => "JSON",
            OutputType::Jsonl => "JSONL",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "JSON" => Some(OutputType::Json),
            "JSONL" => Some(OutputType::Jsonl),
            _ => None,
        }
    }
}

/// `WriterConfig.Transformation`: what a **successful** child contributes. Failed, timed-out,
/// aborted and pending children are always full (`NONE`) records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Transformation {
    /// The full execution record (metadata, `Input`/`Output` as JSON text).
    None,
    /// The child's output (parsed JSON): the classic Map result.
    Compact,
    /// The child's output; an array output is spliced into the surrounding array.
    Flatten,
}

impl Transformation {
    pub fn as_str(self) -> &'static str {
        match self {
            Transformation::None => "NONE",
            Transformation::Compact => "COMPACT",
            Transformation::Flatten => "FLATTEN",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "NONE" => Some(Transformation::None),
            "COMPACT" => Some(Transformation::Compact),
            "FLATTEN" => Some(Transformation::Flatten),
            _ => None,
        }
    }
}

/// Where results are exported: the evaluated `Parameters` (JSONPath) or `Arguments` (JSONata).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Destination {
    pub bucket: String,
    /// As given (`""` when absent); see [`WriterSpec::folder`] for how it joins the key.
    pub prefix: String,
}

/// A `ResultWriter` whose `Parameters`/`Arguments` the engine has evaluated.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WriterSpec {
    /// `None`: `WriterConfig` only, nothing is exported; the transformation shapes the state's
    /// result instead.
    pub destination: Option<Destination>,
    pub output_type: OutputType,
    pub transformation: Transformation,
    /// A result file is closed and the next index opened before it would grow past this.
    pub max_file_bytes: u64,
}

impl WriterSpec {
    /// Parses the ResultWriter object after evaluation:
    /// `{"Resource": …, "Parameters"|"Arguments": {"Bucket": "…", "Prefix": "…"},
    ///   "WriterConfig": {"OutputType": "JSON"|"JSONL", "Transformation": …}}`.
    ///
    /// Defaults (spec §2.8): exporting without `Transformation` ⇒ `NONE`; `WriterConfig` alone
    /// without `Transformation` ⇒ `COMPACT` (the classic result); no `WriterConfig` ⇒ `JSON`.
    pub fn from_json(v: &Value) -> Result<Self, WriterError> {
        let obj = v
            .as_object()
            .ok_or_else(|| invalid("The field 'ResultWriter' must be an object"))?;
        let params = match (obj.get("Parameters"), obj.get("Arguments")) {
            (Some(p), _) | (None, Some(p)) => Some(p),
            (None, None) => None,
        };
        let destination = match (obj.get("Resource"), params) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "The ResultWriter has a Resource but no Parameters or Arguments",
                ));
            }
            (_, Some(p)) => Some(destination(p)?),
        };
        let config = match obj.get("WriterConfig") {
            None => None,
            Some(Value::Object(c)) => Some(c),
            Some(_) => return Err(invalid("The field 'WriterConfig' must be an object")),
        };
        if destination.is_none() && config.is_none() {
            return Err(invalid(
                "The field 'ResultWriter' must specify WriterConfig alone, Resource with Parameters, or all three fields",
            ));
        }
        let mut output_type = OutputType::Json;
        let mut transformation = None;
        if let Some(c) = config {
            match c.get("OutputType") {
                Some(Value::String(s)) => {
                    output_type = OutputType::parse(s).ok_or_else(|| {
                        invalid(format!(
                            "Invalid WriterConfig OutputType '{s}': expected JSON or JSONL"
                        ))
                    })?;
                }
                Some(other) => {
                    return Err(invalid(format!("Invalid WriterConfig OutputType {other}")))
                }
                None => {
                    return Err(invalid(
                        "The field 'OutputType' is required in WriterConfig",
                    ))
                }
            }
            match c.get("Transformation") {
                Some(Value::String(s)) => {
                    transformation = Some(Transformation::parse(s).ok_or_else(|| {
                        invalid(format!(
                            "Invalid WriterConfig Transformation '{s}': expected NONE, COMPACT or FLATTEN"
                        ))
                    })?);
                }
                Some(other) => {
                    return Err(invalid(format!(
                        "Invalid WriterConfig Transformation {other}"
                    )))
                }
                None => {}
            }
        }
        let transformation = transformation.unwrap_or(if destination.is_some() {
            Transformation::None
        } else {
            Transformation::Compact
        });
        Ok(WriterSpec {
            destination,
            output_type,
            transformation,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        })
    }

    /// The same spec with another rollover size (tests; at least 1 byte).
    pub fn with_max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes.max(1);
        self
    }

    /// Whether results go to the object store (`Resource` + `Parameters`/`Arguments`).
    pub fn exports(&self) -> bool {
        self.destination.is_some()
    }

    /// The transformation of the Map state's own result when nothing is exported: this spec's
    /// when it has `WriterConfig` only, `COMPACT` without a ResultWriter (`None`).
    pub fn inline_transformation(spec: Option<&WriterSpec>) -> Transformation {
        match spec {
            Some(s) if !s.exports() => s.transformation,
            _ => Transformation::Compact,
        }
    }

    /// The folder of a Map Run's objects, `<Prefix>/<mapRunId>/`. An empty prefix adds no
    /// segment and a prefix ending in `/` gets no second one (as LocalStack does; AWS's own
    /// handling is unconfirmed, spec §14.6).
    pub fn folder(&self, map_run_arn: &str) -> Option<String> {
        self.destination
            .as_ref()
            .map(|d| folder(&d.prefix, map_run_arn))
    }

    /// `<Prefix>/<mapRunId>/manifest.json`.
    pub fn manifest_key(&self, map_run_arn: &str) -> Option<String> {
        self.folder(map_run_arn)
            .map(|f| format!("{f}{MANIFEST_NAME}"))
    }

    /// The Map state's result when exporting: `{"MapRunArn", "ResultWriterDetails": {"Bucket",
    /// "Key"}}` (spec §2.8, vector §12.2); `None` for `WriterConfig` only.
    pub fn state_result(&self, map_run_arn: &str) -> Option<Value> {
        let d = self.destination.as_ref()?;
        Some(super::map_state_result(
            map_run_arn,
            &d.bucket,
            &format!("{}{MANIFEST_NAME}", folder(&d.prefix, map_run_arn)),
        ))
    }
}

pub(crate) const MANIFEST_NAME: &str = "manifest.json";

/// The Map Run id: the last `:` segment of the Map Run ARN (spec §4.1).
pub fn map_run_id(map_run_arn: &str) -> &str {
    map_run_arn.rsplit(':').next().unwrap_or(map_run_arn)
}

fn folder(prefix: &str, map_run_arn: &str) -> String {
    let id = map_run_id(map_run_arn);
    if prefix.is_empty() {
        format!("{id}/")
    } else if prefix.ends_with('/') {
        format!("{prefix}{id}/")
    } else {
        format!("{prefix}/{id}/")
    }
}

fn destination(p: &Value) -> Result<Destination, WriterError> {
    let p = p
        .as_object()
        .ok_or_else(|| invalid("The ResultWriter Parameters must be an object"))?;
    let bucket = match p.get("Bucket") {
        Some(Value::String(b)) if !b.is_empty() => b.clone(),
        Some(Value::String(_)) => return Err(invalid("The ResultWriter Bucket must not be empty")),
        Some(other) => {
            return Err(invalid(format!(
                "The ResultWriter Bucket must be a string, got {other}"
            )))
        }
        None => return Err(invalid("The ResultWriter Parameters must contain a Bucket")),
    };
    let prefix = match p.get("Prefix") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(invalid(format!(
                "The ResultWriter Prefix must be a string, got {other}"
            )))
        }
    };
    Ok(Destination { bucket, prefix })
}

fn invalid(message: impl Into<String>) -> WriterError {
    WriterError::InvalidSpec {
        message: message.into(),
    }
}
