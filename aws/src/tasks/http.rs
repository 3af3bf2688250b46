//! The HTTP Task: `arn:aws:states:::http:invoke`, with blocking `ureq`.
//!
//! Parameters: `ApiEndpoint`, `Method`, `Headers`, `QueryParameters`, `RequestBody`,
//! `Transform.RequestBodyEncoding` (`NONE` | `URL_ENCODED`) with
//! `Transform.RequestEncodingOptions.ArrayFormat` (`INDICES` | `REPEAT` | `COMMAS` |
//! `BRACKETS`). `Authentication` / `InvocationConfig` (the EventBridge connection) is accepted
//! and ignored: no credentials, headers, query or body parameters from a connection are added.
//!
//! Result: `{"Headers": {name: [values]}, "ResponseBody": <JSON when it parses, else the
//! text>, "StatusCode": 200, "StatusText": "OK"}`. A non-2xx status fails the task with
//! `States.Http.StatusCode.<code>`; the cause is the status text, as observed on AWS (the
//! response body is not kept — reported in public write-ups of the HTTP Task; the AWS docs do
//! not give the cause's form). Requests time out after 60 s (`States.Http.Socket`, as for
//! connection failures). Forbidden request headers and binary responses fail with
//! `States.Runtime`, as the Step Functions guide ("Call HTTPS APIs") describes.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use mapfleet_core::engine::TaskOutcome;
use serde_json::{json, Map, Value};
use ureq::{ReadWrite, TlsConnector};

use super::errors::TaskError;
use super::Params;

/// The HTTP Task's hard request timeout.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `http:invoke` tasks.
pub struct HttpInvoker {
    /// Built on the first HTTP Task: TLS roots are read then, not at start-up.
    agent: std::sync::OnceLock<ureq::Agent>,
    user_agent: String,
}

impl HttpInvoker {
    fn agent(&self) -> &ureq::Agent {
        self.agent.get_or_init(|| {
            let mut builder = ureq::AgentBuilder::new().timeout(HTTP_TIMEOUT);
            if let Some(tls) = RustlsConnector::new() {
                builder = builder.tls_connector(Arc::new(tls));
            }
            builder.build()
        })
    }

    pub fn new(region: Option<String>) -> Self {
        HttpInvoker {
            agent: std::sync::OnceLock::new(),
            user_agent: format!(
                "Amazon|StepFunctions|HttpInvoke|{}",
                region.unwrap_or_else(|| "us-east-1".into())
            ),
        }
    }

    pub fn invoke(&self, input: &Value) -> TaskOutcome {
        match self.call(input) {
            Ok(v) => TaskOutcome::Succeeded(v),
            Err(e) => e.into(),
        }
    }

    fn call(&self, input: &Value) -> Result<Value, TaskError> {
        let p = Params::new(input, "States.Runtime");
        let endpoint = p.req_str("ApiEndpoint")?;
        let method = p.req_str("Method")?.to_ascii_uppercase();
        if !["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"].contains(&method.as_str())
        {
            return Err(p.fail(format!("Unsupported HTTP method '{method}'")));
        }
        let mut request = self
            .agent()
            .request(&method, endpoint)
            .set("User-Agent", &self.user_agent);
        let headers = header_pairs(p.get("Headers"))?;
        for (name, value) in &headers {
            if is_forbidden_header(name) {
                return Err(p.fail(format!(
                    "The request header '{name}' is not allowed in an HTTP Task"
                )));
            }
            request = request.set(name, value);
        }
        for (k, v) in query_pairs(p.get("QueryParameters")) {
            request = request.query(&k, &v);
        }
        let transform = p.object("Transform")?;
        let url_encoded = transform
            .and_then(|t| t.get("RequestBodyEncoding"))
            .and_then(Value::as_str)
            == Some("URL_ENCODED");
        let array_format = transform
            .and_then(|t| t.get("RequestEncodingOptions"))
            .and_then(|o| o.get("ArrayFormat"))
            .and_then(Value::as_str)
            .unwrap_or("INDICES");
        let has_header = |n: &str| headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
        let result = match p.get("RequestBody") {
            None => request.call(),
            Some(body) if url_encoded => {
                if !has_header("content-type") {
                    request = request.set("Content-Type", "application/x-www-form-urlencoded");
                }
                request.send_string(&url_encode_body(body, array_format))
            }
            Some(Value::String(s)) => request.send_string(s),
            Some(body) => {
                if !has_header("content-type") {
                    request = request.set("Content-Type", "application/json");
                }
                request.send_string(&body.to_string())
            }
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                let text = r.status_text().to_string();
                return Err(TaskError::new(
                    format!("States.Http.StatusCode.{code}"),
                    text,
                ));
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(TaskError::new(
                    "States.Http.Socket",
                    format!("The HTTP request to {endpoint} failed: {t}"),
                ))
            }
        };
        response_value(response)
    }
}

fn response_value(response: ureq::Response) -> Result<Value, TaskError> {
    let status = response.status();
    let status_text = response.status_text().to_string();
    let mut headers = Map::new();
    for name in response.headers_names() {
        let values: Vec<Value> = response.all(&name).into_iter().map(|v| json!(v)).collect();
        headers.insert(name, Value::Array(values));
    }
    let content_type = response.content_type().to_ascii_lowercase();
    if is_binary(&content_type) {
        return Err(TaskError::new(
            "States.Runtime",
            format!("The HTTP Task does not support responses of content type '{content_type}'"),
        ));
    }
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(10 * 1024 * 1024)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            TaskError::new(
                "States.Http.Socket",
                format!("Reading the response failed: {e}"),
            )
        })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        TaskError::new(
            "States.Runtime",
            "The HTTP response body is not readable as a string",
        )
    })?;
    Ok(json!({
        "Headers": headers,
        "ResponseBody": response_body(&content_type, &text),
        "StatusCode": status,
        "StatusText": status_text,
    }))
}

/// The body as JSON when it is JSON (by content type, or when there is none), else the text.
pub fn response_body(content_type: &str, text: &str) -> Value {
    let json_type = content_type.contains("json") || content_type.is_empty();
    if json_type && !text.trim().is_empty() {
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            return v;
        }
    }
    Value::String(text.to_string())
}

fn is_binary(content_type: &str) -> bool {
    content_type == "application/octet-stream"
        || content_type.starts_with("image/")
        || content_type.starts_with("video/")
        || content_type.starts_with("audio/")
}

/// Request headers Step Functions refuses.
pub fn is_forbidden_header(name: &str) -> bool {
    const FORBIDDEN: &[&str] = &[
        "a-im",
        "accept-charset",
        "accept-datetime",
        "accept-encoding",
        "authorization",
        "cache-control",
        "connection",
        "content-encoding",
        "content-md5",
        "date",
        "expect",
        "forwarded",
        "from",
        "host",
        "http2-settings",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "max-forwards",
        "origin",
        "pragma",
        "proxy-authorization",
        "referer",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
        "warning",
    ];
    let n = name.to_ascii_lowercase();
    FORBIDDEN.contains(&n.as_str())
        || n.starts_with("x-forwarded-")
        || n.starts_with("x-amz-")
        || n.starts_with("x-amzn-")
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `Headers` as name/value pairs: an object (a list value repeats the header), or a list of
/// `{name: value}` objects.
fn header_pairs(headers: Option<&Value>) -> Result<Vec<(String, String)>, TaskError> {
    let mut out = Vec::new();
    let mut add = |m: &Map<String, Value>| {
        for (k, v) in m {
            match v {
                Value::Array(items) => {
                    out.extend(items.iter().map(|i| (k.clone(), scalar_text(i))))
                }
                other => out.push((k.clone(), scalar_text(other))),
            }
        }
    };
    match headers {
        None => {}
        Some(Value::Object(m)) => add(m),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::Object(m) => add(m),
                    other => {
                        return Err(TaskError::new(
                            "States.Runtime",
                            format!("Headers entries must be objects, not {other}"),
                        ))
                    }
                }
            }
        }
        Some(other) => {
            return Err(TaskError::new(
                "States.Runtime",
                format!("Headers must be an object, not {other}"),
            ))
        }
    }
    Ok(out)
}

/// `QueryParameters` as pairs: a list value repeats the key.
fn query_pairs(query: Option<&Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(Value::Object(m)) = query {
        for (k, v) in m {
            match v {
                Value::Array(items) => {
                    out.extend(items.iter().map(|i| (k.clone(), scalar_text(i))))
                }
                other => out.push((k.clone(), scalar_text(other))),
            }
        }
    }
    out
}

fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// `Transform.RequestBodyEncoding: URL_ENCODED`: an object as a form, arrays in
/// `array_format` (`INDICES`: `a[0]=x&a[1]=y`, `REPEAT`: `a=x&a=y`, `COMMAS`: `a=x,y`,
/// `BRACKETS`: `a[]=x&a[]=y`), nested objects as `a[b]=x`. A string body is sent as is.
pub fn url_encode_body(body: &Value, array_format: &str) -> String {
    fn walk(key: &str, v: &Value, fmt: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, inner) in m {
                    let sub = if key.is_empty() {
                        k.clone()
                    } else {
                        format!("{key}[{k}]")
                    };
                    walk(&sub, inner, fmt, out);
                }
            }
            Value::Array(items) => match fmt {
                "COMMAS" => {
                    let joined: Vec<String> = items.iter().map(scalar_text).collect();
                    out.push(format!(
                        "{}={}",
                        form_escape(key),
                        form_escape(&joined.join(","))
                    ));
                }
                "REPEAT" => items.iter().for_each(|i| walk(key, i, fmt, out)),
                "BRACKETS" => items
                    .iter()
                    .for_each(|i| walk(&format!("{key}[]"), i, fmt, out)),
                _ => items
                    .iter()
                    .enumerate()
                    .for_each(|(n, i)| walk(&format!("{key}[{n}]"), i, fmt, out)),
            },
            other => out.push(format!(
                "{}={}",
                form_escape(key),
                form_escape(&scalar_text(other))
            )),
        }
    }
    match body {
        Value::String(s) => s.clone(),
        other => {
            let mut parts = Vec::new();
            walk("", other, array_format, &mut parts);
            parts.join("&")
        }
    }
}

/// HTTPS through rustls (the SDK's own TLS stack) with the platform's root certificates.
struct RustlsConnector(Arc<rustls::ClientConfig>);

impl RustlsConnector {
    fn new() -> Option<Self> {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Some(RustlsConnector(Arc::new(config)))
    }
}

struct TlsStream(rustls::StreamOwned<rustls::ClientConnection, Box<dyn ReadWrite>>);

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsStream")
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl ReadWrite for TlsStream {
    fn socket(&self) -> Option<&TcpStream> {
        self.0.get_ref().socket()
    }
}

impl TlsConnector for RustlsConnector {
    fn connect(
        &self,
        dns_name: &str,
        mut io: Box<dyn ReadWrite>,
    ) -> Result<Box<dyn ReadWrite>, ureq::Error> {
        let host = dns_name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let name = rustls::pki_types::ServerName::try_from(host)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut conn =
            rustls::ClientConnection::new(self.0.clone(), name).map_err(io::Error::other)?;
        conn.complete_io(&mut io)?;
        Ok(Box::new(TlsStream(rustls::StreamOwned::new(conn, io))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_array_formats() {
        let body = json!({"a": ["x", "y z"], "n": 1, "o": {"k": "v"}});
        assert_eq!(
            url_encode_body(&body, "INDICES"),
            "a%5B0%5D=x&a%5B1%5D=y+z&n=1&o%5Bk%5D=v"
        );
        assert_eq!(url_encode_body(&body, "REPEAT"), "a=x&a=y+z&n=1&o%5Bk%5D=v");
        assert_eq!(url_encode_body(&body, "COMMAS"), "a=x%2Cy+z&n=1&o%5Bk%5D=v");
        assert_eq!(
            url_encode_body(&body, "BRACKETS"),
            "a%5B%5D=x&a%5B%5D=y+z&n=1&o%5Bk%5D=v"
        );
    }

    #[test]
    fn bodies_and_headers() {
        assert_eq!(
            response_body("application/json", "{\"a\":1}"),
            json!({"a": 1})
        );
        assert_eq!(response_body("text/plain", "123"), json!("123"));
        assert_eq!(
            response_body("application/json", "not json"),
            json!("not json")
        );
        assert!(is_forbidden_header("Authorization"));
        assert!(is_forbidden_header("X-Amz-Date"));
        assert!(!is_forbidden_header("X-Custom"));
    }
}
