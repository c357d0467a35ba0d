//! The HTTP keys of `sluice.toml`: the `[http]` listener table and the keys
//! of a `kind = "http"` connection.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{ConfigError, ConnectionConfig};

/// `[http]`: the agent-facing HTTP listener (HTTP/1.1 and HTTP/2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpListenerConfig {
    /// PEM certificate chain and key. Default: the self-signed pair in
    /// `<state_dir>/tls/`, the same one the PostgreSQL listener uses.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Accept plain HTTP from loopback clients on the same port (TLS is
    /// told apart by its first byte). Default false: tokens travel over TLS.
    #[serde(default)]
    pub allow_plaintext_loopback: bool,
    /// Time a client has to send a complete request head, also the longest
    /// a keep-alive connection may sit between requests. Default 10000.
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// Time a client has to send a body the gateway buffers for inspection.
    /// Default 30000.
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// A connection (HTTP/2 included) with no request in flight for this
    /// long is closed. Default 60.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Largest request head (request line and headers), in bytes; over it
    /// the answer is 431. Default 32768, at least 8192.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Open client connections at most; more wait in the accept queue.
    /// Default 10000.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// What becomes of request headers with `_` in their name. Default
    /// `drop`.
    #[serde(default)]
    pub underscore_headers: UnderscoreHeaders,
}

/// Request headers whose name holds an underscore (`X_Env`). CGI, WSGI and
/// Rack upstreams read `_` and `-` alike (`HTTP_X_ENV`), so `X_Env` reaches
/// them as `X-Env` while a guardrail's rule on `X-Env` does not see it, and
/// `X_Api_Key` can stand beside (or in for) the credential the gateway
/// injects. nginx and gunicorn drop such headers by default for this reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnderscoreHeaders {
    /// Removed before the guardrails and the upstream see the request (the
    /// recording keeps them, as the agent sent them).
    #[default]
    Drop,
    /// The request is refused with 400 `underscore_header`.
    Refuse,
    /// Forwarded; a request where such a name and another one read the
    /// same with `_` as `-` (`X_Env` and `X-Env`) is refused with 400
    /// `ambiguous_header`.
    Pass,
}

impl Default for HttpListenerConfig {
    fn default() -> Self {
        Self {
            tls_cert: None,
            tls_key: None,
            allow_plaintext_loopback: false,
            header_timeout_ms: default_header_timeout_ms(),
            body_timeout_ms: default_body_timeout_ms(),
            idle_timeout_secs: default_idle_timeout_secs(),
            max_header_bytes: default_max_header_bytes(),
            max_connections: default_max_connections(),
            underscore_headers: UnderscoreHeaders::default(),
        }
    }
}

fn default_header_timeout_ms() -> u64 {
    10_000
}
fn default_body_timeout_ms() -> u64 {
    30_000
}
fn default_idle_timeout_secs() -> u64 {
    60
}
fn default_max_header_bytes() -> usize {
    32 * 1024
}
fn default_max_connections() -> usize {
    10_000
}

/// How the gateway authenticates to an HTTP upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// No credential is added.
    #[default]
    None,
    /// `Authorization: Bearer <secret>`.
    Bearer,
    /// `Authorization: Basic base64(<credential_user>:<secret>)`.
    Basic,
    /// `<credential_header>: <secret>`, e.g. an API key header.
    Header,
}

/// The upstream keys of a `kind = "http"` connection (`upstream` is its base
/// URL, `http://` or `https://`, optionally with a path prefix).
#[derive(Debug, Clone, Deserialize)]
pub struct HttpUpstreamConfig {
    #[serde(default)]
    pub credential: CredentialKind,
    /// Environment variable holding the secret.
    pub credential_env: Option<String>,
    /// File holding the secret (first line).
    pub credential_file: Option<PathBuf>,
    /// Header name for `credential = "header"`.
    pub credential_header: Option<String>,
    /// User name for `credential = "basic"`.
    pub credential_user: Option<String>,
    /// PEM CAs an `https` upstream's certificate must chain to; default:
    /// the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Default 5000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time from sending the request to the upstream's response head; also
    /// bounds reading a body the gateway buffers for masking. Default 30000.
    #[serde(default = "default_response_timeout_ms")]
    pub response_timeout_ms: u64,
    /// Request bodies up to this size are buffered and shown to the
    /// guardrails; a longer one is refused with 413. Default 1 MiB.
    #[serde(default = "default_max_request_body")]
    pub max_request_body_bytes: usize,
    /// Forward request bodies over the limit anyway, the guardrails seeing
    /// only their first `max_request_body_bytes` (`body-complete = false`).
    /// Default false.
    #[serde(default)]
    pub stream_large_requests: bool,
    /// Response bodies (after decompression) are buffered up to this size
    /// for the maskers; a longer one is refused with 502. For event streams,
    /// the limit of one event. Default 8 MiB.
    #[serde(default = "default_max_response_body")]
    pub max_response_body_bytes: usize,
    /// The upstream is a Model Context Protocol endpoint (streamable HTTP):
    /// JSON-RPC requests reach the guardrails with their method, and tool
    /// calls with the tool's name and arguments. Default false.
    #[serde(default)]
    pub mcp: bool,
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_response_timeout_ms() -> u64 {
    30_000
}
fn default_max_request_body() -> usize {
    1024 * 1024
}
fn default_max_response_body() -> usize {
    8 * 1024 * 1024
}

pub(crate) const HTTP_KEYS: &[&str] = &[
    "credential",
    "credential_env",
    "credential_file",
    "credential_header",
    "credential_user",
    "ca_file",
    "connect_timeout_ms",
    "response_timeout_ms",
    "max_request_body_bytes",
    "stream_large_requests",
    "max_response_body_bytes",
    "mcp",
];

impl ConnectionConfig {
    /// The upstream settings of an HTTP connection.
    pub fn http(&self) -> Result<HttpUpstreamConfig, ConfigError> {
        let http: HttpUpstreamConfig = self.keys(HTTP_KEYS)?;
        let invalid = |m: &str| ConfigError::Invalid(format!("connection {:?}: {m}", self.name));
        let url = url::Url::parse(&self.upstream)
            .map_err(|e| invalid(&format!("upstream {:?} is not a URL: {e}", self.upstream)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(
                "upstream must be an http:// or https:// URL with a host",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(invalid(
                "upstream must not carry a query, a fragment or credentials (use credential_*)",
            ));
        }
        let secret = http.credential_env.is_some() || http.credential_file.is_some();
        match http.credential {
            CredentialKind::None if secret => {
                return Err(invalid(
                    "credential_env/credential_file need a credential kind",
                ));
            }
            CredentialKind::None => {}
            _ if !secret => {
                return Err(invalid(
                    "the credential needs credential_env or credential_file",
                ));
            }
            CredentialKind::Header if http.credential_header.is_none() => {
                return Err(invalid("credential = \"header\" needs credential_header"));
            }
            CredentialKind::Basic if http.credential_user.is_none() => {
                return Err(invalid("credential = \"basic\" needs credential_user"));
            }
            _ => {}
        }
        if let Some(name) = &http.credential_header
            && hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            return Err(invalid(&format!(
                "credential_header {name:?} is not a header name"
            )));
        }
        if http.connect_timeout_ms == 0 || http.response_timeout_ms == 0 {
            return Err(invalid("timeouts must be at least 1 ms"));
        }
        Ok(http)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn parse(keys: &str) -> Result<Config, String> {
        let text =
            format!("[[connections]]\nname = \"api\"\nkind = \"http\"\nallow_all = true\n{keys}\n");
        Config::parse(&text, Path::new("/etc/sluice")).map_err(|e| e.to_string())
    }

    #[test]
    fn http_connections_are_validated() {
        let ok = parse("upstream = \"https://api.internal/v1\"\ncredential = \"header\"\ncredential_header = \"X-Api-Key\"\ncredential_file = \"key\"").unwrap();
        let http = ok.connections[0].http().unwrap();
        assert_eq!(http.max_request_body_bytes, 1024 * 1024);
        assert_eq!(
            http.credential_file.as_deref(),
            Some(Path::new("/etc/sluice/key")),
            "relative to the config file"
        );
        let cases = [
            ("upstream = \"127.0.0.1:80\"", "not a URL"),
            ("upstream = \"ftp://x\"", "http:// or https://"),
            ("upstream = \"http://x/?a=1\"", "must not carry a query"),
            (
                "upstream = \"http://x\"\ncredential = \"bearer\"",
                "needs credential_env",
            ),
            (
                "upstream = \"http://x\"\ncredential_env = \"T\"",
                "need a credential kind",
            ),
            (
                "upstream = \"http://x\"\ncredential = \"basic\"\ncredential_env = \"T\"",
                "credential_user",
            ),
            (
                "upstream = \"http://x\"\ncredential = \"header\"\ncredential_env = \"T\"",
                "credential_header",
            ),
            (
                "upstream = \"http://x\"\ndatabase = \"app\"",
                "unknown key(s) database",
            ),
            (
                "upstream = \"http://x\"\nresponse_timeout_ms = 0",
                "at least 1 ms",
            ),
        ];
        for (keys, needle) in cases {
            let err = parse(keys).unwrap_err();
            assert!(err.contains(needle), "{keys}: {err}");
        }
    }

    #[test]
    fn listener_limits_are_checked() {
        let err = Config::parse("[http]\nmax_header_bytes = 100\n", Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("8192"), "{err}");
        let c = Config::parse("", Path::new(".")).unwrap();
        assert_eq!(c.http.header_timeout_ms, 10_000);
        assert!(!c.http.allow_plaintext_loopback);
    }
}
