//! The local state folder (`--state DIR`, default `.mapfleet/`): executions, so runs can be
//! resumed and described, and callbacks sent by `mapfleet send-task-*`.
//!
//! ```text
//! DIR/executions/<name>.json   an execution checkpoint (written atomically)
//! DIR/callbacks/<token>.json   a pending SendTaskSuccess/Failure/Heartbeat
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use mapfleet_core::engine::{Callback, CallbackSource, Execution};
use serde_json::{json, Value};

pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    fn executions(&self) -> PathBuf {
        self.root.join("executions")
    }

    fn callbacks(&self) -> PathBuf {
        self.root.join("callbacks")
    }

    fn execution_path(&self, name: &str) -> PathBuf {
        self.executions().join(format!("{}.json", sanitize(name)))
    }

    pub fn save(&self, exec: &Execution) -> io::Result<()> {
        fs::create_dir_all(self.executions())?;
        let path = self.execution_path(&exec.info.name);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec(exec).map_err(io::Error::other)?;
        fs::write(&tmp, text)?;
        fs::rename(tmp, path)
    }

    /// Loads an execution by name or ARN.
    pub fn load(&self, name_or_arn: &str) -> io::Result<Option<Execution>> {
        let name = name_or_arn.rsplit(':').next().unwrap_or(name_or_arn);
        let path = self.execution_path(name);
        if !path.exists() {
            return Ok(None);
        }
        let text = fs::read(path)?;
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(io::Error::other)
    }

    pub fn put_callback(&self, token: &str, body: &Value) -> io::Result<()> {
        fs::create_dir_all(self.callbacks())?;
        let path = self.callbacks().join(format!("{}.json", sanitize(token)));
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec(body).map_err(io::Error::other)?)?;
        fs::rename(tmp, path)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl CallbackSource for StateDir {
    fn poll(&self, owns: &dyn Fn(&str) -> bool) -> Vec<Callback> {
        let Ok(entries) = fs::read_dir(self.callbacks()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Ok(text) = fs::read(&path) else { continue };
            let Ok(v) = serde_json::from_slice::<Value>(&text) else {
                continue;
            };
            let token = v
                .get("taskToken")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if !owns(&token) {
                continue;
            }
            let cb = match v.get("kind").and_then(Value::as_str) {
                Some("success") => Callback::Success {
                    token,
                    output: v.get("output").cloned().unwrap_or(json!({})),
                },
                Some("failure") => Callback::Failure {
                    token,
                    error: v.get("error").and_then(Value::as_str).map(str::to_string),
                    cause: v.get("cause").and_then(Value::as_str).map(str::to_string),
                },
                _ => Callback::Heartbeat { token },
            };
            let _ = fs::remove_file(&path);
            out.push(cb);
        }
        out
    }
}
