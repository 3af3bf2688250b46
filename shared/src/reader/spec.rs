//! `ItemReader` → [`ReaderSpec`]: the resolved reader configuration (spec §2.3.1, §2.3.2).
//!
//! The engine evaluates `Parameters` (JSONPath) / `Arguments` (JSONata) and any `MaxItemsPath`
//! first; what reaches [`ReaderSpec::from_json`] holds concrete values.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ReaderError;

/// The cap on `MaxItems`: reading always stops after this many items (spec §2.3.3).
pub const MAX_ITEMS_CAP: u64 = 100_000_000;

/// What to read and how many items at most.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderSpec {
    pub source: Source,
    /// The effective item limit: `MaxItems` (0 ⇒ none) clamped to [`MAX_ITEMS_CAP`].
    pub max_items: u64,
}

/// Where the items come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Source {
    /// `s3:getObject` of one CSV/JSON/JSONL/Parquet object.
    Object {
        object: ObjectRef,
        format: FileFormat,
    },
    /// `s3:listObjectsV2`: object metadata (`load: None`) or, with `LOAD_AND_FLATTEN`, the
    /// records of every listed object.
    Listing {
        bucket: String,
        prefix: String,
        load: Option<FileFormat>,
    },
    /// `ManifestType: ATHENA_DATA`: the records of every data file the manifest lists.
    AthenaManifest {
        manifest: ObjectRef,
        format: FileFormat,
    },
    /// `ManifestType: S3_INVENTORY` / `InputType: MANIFEST`: the rows of every inventory data file.
    Inventory { manifest: ObjectRef, delimiter: u8 },
}

/// One object to `GetObject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub expected_bucket_owner: Option<String>,
}

/// How one data object is parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FileFormat {
    Csv(CsvOptions),
    /// `items_pointer`: an RFC 6901 JSON Pointer to the array (or object) to iterate; `None` or
    /// `""` ⇒ the whole document.
    Json {
        items_pointer: Option<String>,
    },
    Jsonl,
    Parquet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvOptions {
    pub header: CsvHeader,
    /// The field separator byte.
    pub delimiter: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CsvHeader {
    FirstRow,
    Given(Vec<String>),
}

impl FileFormat {
    pub fn name(&self) -> &'static str {
        match self {
            FileFormat::Csv(_) => "CSV",
            FileFormat::Json { .. } => "JSON",
            FileFormat::Jsonl => "JSONL",
            FileFormat::Parquet => "PARQUET",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputType {
    Csv,
    Json,
    Jsonl,
    Parquet,
    Manifest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    GetObject,
    ListObjectsV2,
}

fn resource_of(s: &str) -> Option<Resource> {
    // Any partition: arn:aws:…, arn:aws-cn:…, arn:aws-us-gov:…
    let rest = s.strip_prefix("arn:")?;
    let (_partition, action) = rest.split_once(":states:::")?;
    match action {
        "s3:getObject" => Some(Resource::GetObject),
        "s3:listObjectsV2" => Some(Resource::ListObjectsV2),
        _ => None,
    }
}

fn enum_field<'a>(
    cfg: &'a Map<String, Value>,
    field: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, ReaderError> {
    match cfg.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s.as_str())),
        Some(other) => Err(ReaderError::InvalidField {
            field: field.to_string(),
            message: format!("{other} is not one of {}", allowed.join(", ")),
        }),
    }
}

fn opt_string(params: &Map<String, Value>, field: &str) -> Result<Option<String>, ReaderError> {
    match params.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ReaderError::InvalidField {
            field: field.to_string(),
            message: format!("{other} is not a string"),
        }),
    }
}

fn req_string(params: &Map<String, Value>, field: &str) -> Result<String, ReaderError> {
    match params.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ReaderError::MissingParameter {
            field: field.to_string(),
        }),
    }
}

/// `MaxItems` rules (spec §2.3.8): 0 ⇒ no limit, negative ⇒ `field MaxItems must be positive`,
/// non-integer ⇒ `States.Runtime`, above the cap ⇒ the cap.
fn max_items_of(v: &Value) -> Result<u64, ReaderError> {
    let not_int = || ReaderError::MaxItemsNotInteger {
        value: match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    };
    let n: i128 = match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u as i128
            } else if let Some(i) = n.as_i64() {
                i as i128
            } else {
                let f = n.as_f64().ok_or_else(not_int)?;
                if f.fract() != 0.0 || !f.is_finite() {
                    return Err(not_int());
                }
                if f < 0.0 {
                    return Err(ReaderError::MaxItemsNegative);
                }
                // Whole floats (`2.0`) count as integers; huge ones clamp below.
                f.min(u64::MAX as f64) as i128
            }
        }
        // A numeric string (as a JSONata expression or Path may hand over).
        Value::String(s) => s.trim().parse::<i128>().map_err(|_| not_int())?,
        _ => return Err(not_int()),
    };
    if n < 0 {
        return Err(ReaderError::MaxItemsNegative);
    }
    if n == 0 {
        return Ok(MAX_ITEMS_CAP);
    }
    Ok((n as u128).min(MAX_ITEMS_CAP as u128) as u64)
}

fn delimiter_of(cfg: &Map<String, Value>) -> Result<u8, ReaderError> {
    Ok(
        match enum_field(
            cfg,
            "CSVDelimiter",
            &["COMMA", "PIPE", "SEMICOLON", "SPACE", "TAB"],
        )? {
            None | Some("COMMA") => b',',
            Some("PIPE") => b'|',
            Some("SEMICOLON") => b';',
            Some("SPACE") => b' ',
            _ => b'\t',
        },
    )
}

fn csv_options(cfg: &Map<String, Value>) -> Result<CsvOptions, ReaderError> {
    let location = enum_field(cfg, "CSVHeaderLocation", &["FIRST_ROW", "GIVEN"])?;
    let headers = match cfg.get("CSVHeaders") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for h in items {
                match h {
                    Value::String(s) => out.push(s.clone()),
                    other => {
                        return Err(ReaderError::InvalidField {
                            field: "CSVHeaders".into(),
                            message: format!("{other} is not a string"),
                        })
                    }
                }
            }
            Some(out)
        }
        Some(other) => {
            return Err(ReaderError::InvalidField {
                field: "CSVHeaders".into(),
                message: format!("{other} is not an array of strings"),
            })
        }
    };
    let header = match (location, headers) {
        (Some("GIVEN"), Some(h)) if !h.is_empty() => CsvHeader::Given(h),
        (Some("GIVEN"), _) => {
            return Err(ReaderError::InvalidCombination {
                message: "CSVHeaderLocation GIVEN requires a non-empty CSVHeaders array".into(),
            })
        }
        (_, Some(_)) => {
            return Err(ReaderError::InvalidCombination {
                message: "CSVHeaders can only be used with CSVHeaderLocation GIVEN".into(),
            })
        }
        (_, None) => CsvHeader::FirstRow,
    };
    Ok(CsvOptions {
        header,
        delimiter: delimiter_of(cfg)?,
    })
}

fn file_format(t: InputType, cfg: &Map<String, Value>) -> Result<FileFormat, ReaderError> {
    let pointer = match cfg.get("ItemsPointer") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => {
            if !p.is_empty() && !p.starts_with('/') {
                return Err(ReaderError::InvalidField {
                    field: "ItemsPointer".into(),
                    message: format!(
                        "'{p}' is not a JSON Pointer (it must be empty or start with '/')"
                    ),
                });
            }
            Some(p.clone())
        }
        Some(other) => {
            return Err(ReaderError::InvalidField {
                field: "ItemsPointer".into(),
                message: format!("{other} is not a string"),
            })
        }
    };
    if pointer.is_some() && t != InputType::Json {
        return Err(ReaderError::InvalidCombination {
            message: "ItemsPointer can only be used with InputType JSON".into(),
        });
    }
    Ok(match t {
        InputType::Csv => FileFormat::Csv(csv_options(cfg)?),
        InputType::Json => FileFormat::Json {
            items_pointer: pointer.filter(|p| !p.is_empty()),
        },
        InputType::Jsonl => FileFormat::Jsonl,
        InputType::Parquet => FileFormat::Parquet,
        InputType::Manifest => {
            return Err(ReaderError::InvalidCombination {
                message: "InputType MANIFEST is not a data file format".into(),
            })
        }
    })
}

impl ReaderSpec {
    /// Parses an evaluated `ItemReader` object: `Resource`, `Parameters` or `Arguments` (with
    /// concrete `Bucket`, `Key`, `Prefix`, `VersionId`, `ExpectedBucketOwner`) and `ReaderConfig`
    /// (with `MaxItems` already resolved to a number).
    pub fn from_json(reader: &Value) -> Result<ReaderSpec, ReaderError> {
        let obj = reader
            .as_object()
            .ok_or_else(|| ReaderError::InvalidField {
                field: "ItemReader".into(),
                message: "must be a JSON object".into(),
            })?;
        let resource_text = match obj.get("Resource") {
            Some(Value::String(s)) => s.as_str(),
            _ => {
                return Err(ReaderError::MissingParameter {
                    field: "Resource".into(),
                })
            }
        };
        let resource =
            resource_of(resource_text).ok_or_else(|| ReaderError::UnsupportedResource {
                resource: resource_text.to_string(),
            })?;
        let empty = Map::new();
        let params = match obj.get("Parameters").or_else(|| obj.get("Arguments")) {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(ReaderError::InvalidField {
                    field: "Parameters".into(),
                    message: "must be a JSON object".into(),
                })
            }
        };
        let cfg = match obj.get("ReaderConfig") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(ReaderError::InvalidField {
                    field: "ReaderConfig".into(),
                    message: "must be a JSON object".into(),
                })
            }
        };

        let input_type = enum_field(
            cfg,
            "InputType",
            &["CSV", "JSON", "JSONL", "PARQUET", "MANIFEST"],
        )?
        .map(|s| match s {
            "CSV" => InputType::Csv,
            "JSON" => InputType::Json,
            "JSONL" => InputType::Jsonl,
            "PARQUET" => InputType::Parquet,
            _ => InputType::Manifest,
        });
        let flatten = enum_field(cfg, "Transformation", &["NONE", "LOAD_AND_FLATTEN"])?
            == Some("LOAD_AND_FLATTEN");
        let manifest_type = enum_field(cfg, "ManifestType", &["ATHENA_DATA", "S3_INVENTORY"])?;

        let max_items = match cfg.get("MaxItems") {
            Some(v) if !v.is_null() => max_items_of(v)?,
            _ => {
                if cfg.get("MaxItemsPath").is_some_and(|v| !v.is_null()) {
                    return Err(ReaderError::InvalidField {
                        field: "MaxItemsPath".into(),
                        message: "must be resolved into MaxItems before the reader starts".into(),
                    });
                }
                MAX_ITEMS_CAP
            }
        };

        let bucket = req_string(params, "Bucket")?;
        let source = match resource {
            Resource::ListObjectsV2 => {
                if manifest_type.is_some() {
                    return Err(ReaderError::InvalidCombination {
                        message: "ManifestType can only be used with arn:aws:states:::s3:getObject"
                            .into(),
                    });
                }
                let prefix = opt_string(params, "Prefix")?.unwrap_or_default();
                let load = match (flatten, input_type) {
                    (true, Some(InputType::Manifest)) | (true, None) => {
                        return Err(ReaderError::InvalidCombination {
                            message: "Transformation LOAD_AND_FLATTEN requires InputType CSV, JSON, JSONL or PARQUET"
                                .into(),
                        })
                    }
                    (true, Some(t)) => Some(file_format(t, cfg)?),
                    (false, Some(_)) => return Err(ReaderError::InvalidCombination {
                        message:
                            "InputType with arn:aws:states:::s3:listObjectsV2 requires Transformation LOAD_AND_FLATTEN"
                                .into(),
                    }),
                    (false, None) => None,
                };
                Source::Listing {
                    bucket,
                    prefix,
                    load,
                }
            }
            Resource::GetObject => {
                if flatten {
                    return Err(ReaderError::InvalidCombination {
                        message:
                            "Transformation LOAD_AND_FLATTEN can only be used with arn:aws:states:::s3:listObjectsV2"
                                .into(),
                    });
                }
                let object = ObjectRef {
                    bucket,
                    key: req_string(params, "Key")?,
                    version_id: opt_string(params, "VersionId")?,
                    expected_bucket_owner: opt_string(params, "ExpectedBucketOwner")?,
                };
                match (manifest_type, input_type) {
                    (Some("S3_INVENTORY"), None | Some(InputType::Manifest))
                    | (None, Some(InputType::Manifest)) => Source::Inventory {
                        manifest: object,
                        delimiter: delimiter_of(cfg)?,
                    },
                    (Some("S3_INVENTORY"), Some(_)) => {
                        return Err(ReaderError::InvalidCombination {
                            message: "ManifestType S3_INVENTORY cannot be used with an InputType"
                                .into(),
                        })
                    }
                    (
                        Some(_athena),
                        Some(t @ (InputType::Csv | InputType::Jsonl | InputType::Parquet)),
                    ) => Source::AthenaManifest {
                        manifest: object,
                        format: file_format(t, cfg)?,
                    },
                    (Some(_athena), _) => {
                        return Err(ReaderError::InvalidCombination {
                            message:
                                "ManifestType ATHENA_DATA requires InputType CSV, JSONL or PARQUET"
                                    .into(),
                        })
                    }
                    (None, Some(t)) => {
                        if t == InputType::Parquet && object.version_id.is_some() {
                            return Err(ReaderError::InvalidCombination {
                                message: "VersionId is not supported with InputType PARQUET".into(),
                            });
                        }
                        Source::Object {
                            format: file_format(t, cfg)?,
                            object,
                        }
                    }
                    (None, None) => return Err(ReaderError::InvalidCombination {
                        message:
                            "ReaderConfig.InputType is required with arn:aws:states:::s3:getObject"
                                .into(),
                    }),
                }
            }
        };
        Ok(ReaderSpec { source, max_items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get(cfg: Value) -> Result<ReaderSpec, ReaderError> {
        ReaderSpec::from_json(&json!({
            "Resource": "arn:aws:states:::s3:getObject",
            "Parameters": {"Bucket": "b", "Key": "k"},
            "ReaderConfig": cfg
        }))
    }

    #[test]
    fn csv_defaults_first_row_comma() {
        let s = get(json!({"InputType": "CSV"})).unwrap();
        assert_eq!(s.max_items, MAX_ITEMS_CAP);
        match s.source {
            Source::Object {
                object,
                format: FileFormat::Csv(o),
            } => {
                assert_eq!(object.bucket, "b");
                assert_eq!(object.key, "k");
                assert_eq!(o.header, CsvHeader::FirstRow);
                assert_eq!(o.delimiter, b',');
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn delimiters() {
        for (name, byte) in [
            ("COMMA", b','),
            ("PIPE", b'|'),
            ("SEMICOLON", b';'),
            ("SPACE", b' '),
            ("TAB", b'\t'),
        ] {
            let s = get(json!({"InputType": "CSV", "CSVDelimiter": name})).unwrap();
            match s.source {
                Source::Object {
                    format: FileFormat::Csv(o),
                    ..
                } => assert_eq!(o.delimiter, byte),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            get(json!({"InputType": "CSV", "CSVDelimiter": "COLON"})),
            Err(ReaderError::InvalidField { field, .. }) if field == "CSVDelimiter"
        ));
    }

    #[test]
    fn given_headers() {
        let s = get(
            json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "b"]}),
        )
        .unwrap();
        match s.source {
            Source::Object {
                format: FileFormat::Csv(o),
                ..
            } => {
                assert_eq!(o.header, CsvHeader::Given(vec!["a".into(), "b".into()]))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            get(json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN"})),
            Err(ReaderError::InvalidCombination { .. })
        ));
        assert!(matches!(
            get(json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": []})),
            Err(ReaderError::InvalidCombination { .. })
        ));
        assert!(matches!(
            get(json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "CSVHeaders": ["a"]})),
            Err(ReaderError::InvalidCombination { .. })
        ));
        assert!(matches!(
            get(json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", 1]})),
            Err(ReaderError::InvalidField { .. })
        ));
    }

    #[test]
    fn max_items_rules() {
        let m = |v: Value| get(json!({"InputType": "JSON", "MaxItems": v})).map(|s| s.max_items);
        assert_eq!(m(json!(2)).unwrap(), 2);
        assert_eq!(m(json!(0)).unwrap(), MAX_ITEMS_CAP);
        assert_eq!(m(json!(100_000_000)).unwrap(), MAX_ITEMS_CAP);
        assert_eq!(m(json!(100_000_001)).unwrap(), MAX_ITEMS_CAP);
        assert_eq!(m(json!(2.0)).unwrap(), 2);
        assert_eq!(m(json!("3")).unwrap(), 3);
        let neg = m(json!(-1)).unwrap_err();
        assert_eq!(neg, ReaderError::MaxItemsNegative);
        assert_eq!(neg.cause(), "field MaxItems must be positive");
        assert_eq!(neg.error(), "States.ItemReaderFailed");
        let frac = m(json!(1.5)).unwrap_err();
        assert!(matches!(frac, ReaderError::MaxItemsNotInteger { .. }));
        assert_eq!(frac.error(), "States.Runtime");
        assert!(matches!(
            m(json!("x")),
            Err(ReaderError::MaxItemsNotInteger { .. })
        ));
        assert!(matches!(
            get(json!({"InputType": "JSON", "MaxItemsPath": "$.n"})),
            Err(ReaderError::InvalidField { field, .. }) if field == "MaxItemsPath"
        ));
    }

    #[test]
    fn json_pointer() {
        let s = get(json!({"InputType": "JSON", "ItemsPointer": "/a/b"})).unwrap();
        assert!(
            matches!(s.source, Source::Object { format: FileFormat::Json { items_pointer: Some(ref p) }, .. } if p == "/a/b")
        );
        let s = get(json!({"InputType": "JSON", "ItemsPointer": ""})).unwrap();
        assert!(matches!(
            s.source,
            Source::Object {
                format: FileFormat::Json {
                    items_pointer: None
                },
                ..
            }
        ));
        assert!(matches!(
            get(json!({"InputType": "JSON", "ItemsPointer": "a"})),
            Err(ReaderError::InvalidField { .. })
        ));
        assert!(matches!(
            get(json!({"InputType": "CSV", "ItemsPointer": "/a"})),
            Err(ReaderError::InvalidCombination { .. })
        ));
    }

    #[test]
    fn manifests() {
        let s = get(json!({"ManifestType": "S3_INVENTORY"})).unwrap();
        assert!(matches!(
            s.source,
            Source::Inventory {
                delimiter: b',',
                ..
            }
        ));
        let s = get(json!({"InputType": "MANIFEST"})).unwrap();
        assert!(matches!(s.source, Source::Inventory { .. }));
        assert!(matches!(
            get(json!({"ManifestType": "S3_INVENTORY", "InputType": "CSV"})),
            Err(ReaderError::InvalidCombination { .. })
        ));
        let s = get(json!({"ManifestType": "ATHENA_DATA", "InputType": "JSONL"})).unwrap();
        assert!(matches!(
            s.source,
            Source::AthenaManifest {
                format: FileFormat::Jsonl,
                ..
            }
        ));
        assert!(matches!(
            get(json!({"ManifestType": "ATHENA_DATA", "InputType": "JSON"})),
            Err(ReaderError::InvalidCombination { .. })
        ));
        assert!(matches!(
            get(json!({"ManifestType": "ATHENA_DATA"})),
            Err(ReaderError::InvalidCombination { .. })
        ));
    }

    #[test]
    fn get_object_rules() {
        assert!(matches!(
            get(json!({})),
            Err(ReaderError::InvalidCombination { .. })
        ));
        assert!(matches!(
            get(json!({"InputType": "JSON", "Transformation": "LOAD_AND_FLATTEN"})),
            Err(ReaderError::InvalidCombination { .. })
        ));
        assert!(matches!(
            get(json!({"InputType": "XML"})),
            Err(ReaderError::InvalidField { .. })
        ));
        let e = ReaderSpec::from_json(&json!({
            "Resource": "arn:aws:states:::s3:getObject",
            "Parameters": {"Bucket": "b"},
            "ReaderConfig": {"InputType": "JSON"}
        }))
        .unwrap_err();
        assert_eq!(
            e,
            ReaderError::MissingParameter {
                field: "Key".into()
            }
        );
        let e = ReaderSpec::from_json(&json!({
            "Resource": "arn:aws:states:::s3:getObject",
            "Parameters": {"Bucket": "b", "Key": "k", "VersionId": "v"},
            "ReaderConfig": {"InputType": "PARQUET"}
        }))
        .unwrap_err();
        assert!(matches!(e, ReaderError::InvalidCombination { .. }));
        // JSONata `Arguments`, another partition, VersionId and owner.
        let s = ReaderSpec::from_json(&json!({
            "Resource": "arn:aws-cn:states:::s3:getObject",
            "Arguments": {"Bucket": "b", "Key": "k", "VersionId": "v1", "ExpectedBucketOwner": "123"},
            "ReaderConfig": {"InputType": "JSONL"}
        }))
        .unwrap();
        match s.source {
            Source::Object {
                object,
                format: FileFormat::Jsonl,
            } => {
                assert_eq!(object.version_id.as_deref(), Some("v1"));
                assert_eq!(object.expected_bucket_owner.as_deref(), Some("123"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ReaderSpec::from_json(
                &json!({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b"}})
            ),
            Err(ReaderError::UnsupportedResource { .. })
        ));
    }

    #[test]
    fn listing_rules() {
        let list = |cfg: Value| {
            ReaderSpec::from_json(&json!({
                "Resource": "arn:aws:states:::s3:listObjectsV2",
                "Parameters": {"Bucket": "b", "Prefix": "p/"},
                "ReaderConfig": cfg
            }))
        };
        let s = list(json!({})).unwrap();
        assert_eq!(
            s.source,
            Source::Listing {
                bucket: "b".into(),
                prefix: "p/".into(),
                load: None
            }
        );
        let s = list(json!({"Transformation": "NONE", "MaxItems": 5})).unwrap();
        assert_eq!(s.max_items, 5);
        let s = list(json!({"Transformation": "LOAD_AND_FLATTEN", "InputType": "JSONL"})).unwrap();
        assert!(matches!(
            s.source,
            Source::Listing {
                load: Some(FileFormat::Jsonl),
                ..
            }
        ));
        assert!(matches!(
            list(json!({"Transformation": "LOAD_AND_FLATTEN"})),
            Err(ReaderError::InvalidCombination { .. })
        ));
        assert!(matches!(
            list(json!({"Transformation": "LOAD_AND_FLATTEN", "InputType": "MANIFEST"})),
            Err(ReaderError::InvalidCombination { .. })
        ));
        assert!(matches!(
            list(json!({"InputType": "CSV"})),
            Err(ReaderError::InvalidCombination { .. })
        ));
        assert!(matches!(
            list(json!({"ManifestType": "ATHENA_DATA"})),
            Err(ReaderError::InvalidCombination { .. })
        ));
        // No ReaderConfig at all, no Prefix.
        let s = ReaderSpec::from_json(&json!({
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": "b"}
        }))
        .unwrap();
        assert_eq!(
            s.source,
            Source::Listing {
                bucket: "b".into(),
                prefix: String::new(),
                load: None
            }
        );
    }

    #[test]
    fn spec_round_trips_through_serde() {
        let s =
            get(json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a"], "MaxItems": 3})).unwrap();
        let text = serde_json::to_string(&s).unwrap();
        let back: ReaderSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
