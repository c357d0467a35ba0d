//! The HTTP data path's test peers: a real upstream (a hyper server, over
//! plain HTTP or TLS with its own CA, HTTP/2 by ALPN) that records what it
//! receives, and the `sluice` binary started with an `[http]` listener.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sha2::Digest as _;

type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// Path and query.
    pub uri: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub const EMAILS_JSON: &str = r#"{"users":[{"name":"Ann","email":"ann@example.com"},{"name":"Bob","email":"bob.smith@example.org"}],"note":"write to help@example.net"}"#;

/// Personal data of several kinds, as JSON (`pii.json`), text (`pii.txt`),
/// a form (`pii.form`) and streamed JSON lines (`pii.ndjson`).
pub const PII_JSON: &str = r#"{"customers":[{"name":"Ann Lee","email":"ann.lee@example.com","phone":"+44 20 7946 0958","card":"4242 4242 4242 4242","iban":"DE89 3704 0044 0532 0130 00","ssn":"536-90-4399","seen_from":"203.0.113.9"}],"auth":"Bearer abc123def456ghi789","total":120.5}"#;
pub const PII_TEXT: &str =
    "Ann Lee <ann.lee@example.com>, card 4242-4242-4242-4242, key AKIAIOSFODNN7EXAMPLE\n";
pub const PII_FORM: &str = "email=ann.lee%40example.com&phone=%2B1+415+555+2671&note=ok";
pub const PII_NDJSON: [&str; 2] = [
    "{\"email\":\"bob@example.org\",\"n\":1}\n",
    "{\"ip\":\"10.1.2.3\",\"n\":2}\n",
];

/// The upstream: routes by the last path segment, records every request.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// PEM of the CA that signed its certificate, when it speaks TLS.
    pub ca_pem: Option<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    pub async fn start_tls() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(tls: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (acceptor, ca_pem) = if tls {
            let (config, ca) = tls_config();
            (
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
                Some(ca),
            )
        } else {
            (None, None)
        };
        let record = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let record = record.clone();
                        async move { Ok::<_, Infallible>(answer(req, record).await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(a) => {
                            if let Ok(s) = a.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(s), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            seen,
            ca_pem,
            task,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://localhost:{}", self.addr.port())
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the upstream saw a request")
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// A server configuration for `localhost` signed by a fresh CA, and the CA's PEM.
pub fn tls_config() -> (rustls::ServerConfig, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (config, ca.pem())
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<BoxBody> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_str(content_type).unwrap());
    r
}

fn streamed(content_type: &str, chunks: Vec<Bytes>, gap: Duration) -> Response<BoxBody> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        for c in chunks {
            if tx.send(c).await.is_err() {
                return;
            }
            tokio::time::sleep(gap).await;
        }
    });
    let mut r = Response::new(ChanBody(rx).boxed());
    r.headers_mut()
        .insert("content-type", HeaderValue::from_str(content_type).unwrap());
    r
}

/// A body fed through a channel: chunks as they are sent (chunked encoding).
struct ChanBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

async fn answer(req: Request<Incoming>, record: Arc<Mutex<Vec<Seen>>>) -> Response<BoxBody> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let req = Request::from_parts(parts, ());
    let seen = Seen {
        method: req.method().clone(),
        uri: req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        version: req.version(),
        headers: req.headers().clone(),
        body: body.clone(),
    };
    record.lock().unwrap().push(seen);
    let last = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    let req = req.map(|_| ());
    route(&last, &req, body).await
}

async fn route(last: &str, req: &Request<()>, body: Bytes) -> Response<BoxBody> {
    let q = |key: &str, default: usize| {
        req.uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(default)
    };
    match last {
        // Redirects naming the upstream itself (absolute, by its Host),
        // by absolute path, outside the `/base` of connection `plain`, and
        // relative, climbing out of it.
        "redirect" | "redirect-path" | "redirect-out" | "redirect-climb" => {
            let host = req
                .headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("")
                .to_string();
            let location = match last {
                "redirect" => format!("http://{host}/base/moved/here?x=1"),
                "redirect-path" => "/base/moved/here".to_string(),
                "redirect-climb" => "../../billing/x".to_string(),
                _ => format!("http://{host}/outside"),
            };
            let mut r = reply(StatusCode::FOUND, "text/plain", "moved");
            r.headers_mut()
                .insert("location", HeaderValue::from_str(&location).unwrap());
            r
        }
        "emails" => reply(StatusCode::OK, "application/json", EMAILS_JSON),
        "pii.json" => reply(StatusCode::OK, "application/json", PII_JSON),
        "pii.txt" => reply(StatusCode::OK, "text/plain; charset=utf-8", PII_TEXT),
        "pii.form" => reply(
            StatusCode::OK,
            "application/x-www-form-urlencoded",
            PII_FORM,
        ),
        "pii.ndjson" => streamed(
            "application/x-ndjson",
            PII_NDJSON
                .iter()
                .map(|l| Bytes::from_static(l.as_bytes()))
                .collect(),
            Duration::from_millis(20),
        ),
        "emails.txt" => reply(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "mail ann@example.com today",
        ),
        "emails.gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(EMAILS_JSON.as_bytes()).unwrap();
            let mut r = reply(StatusCode::OK, "application/json", e.finish().unwrap());
            let h = r.headers_mut();
            h.insert("content-encoding", HeaderValue::from_static("gzip"));
            h.insert("etag", HeaderValue::from_static("\"gz1\""));
            h.insert("accept-ranges", HeaderValue::from_static("bytes"));
            r
        }
        "emails.zst" => {
            let mut r = reply(StatusCode::OK, "application/json", "(pretend zstd)");
            r.headers_mut()
                .insert("content-encoding", HeaderValue::from_static("zstd"));
            r
        }
        // Two types: a masker told the first could pass it as it is.
        "emails.two-types" => {
            let mut r = reply(StatusCode::OK, "application/octet-stream", EMAILS_JSON);
            r.headers_mut()
                .append("content-type", HeaderValue::from_static("application/json"));
            r
        }
        // A range the agent did not ask for (the gateway drops Range).
        "emails.partial" => {
            let mut r = reply(StatusCode::PARTIAL_CONTENT, "application/json", EMAILS_JSON);
            let len = EMAILS_JSON.len();
            let range = format!("bytes 0-{}/{}", len - 1, len + 100);
            r.headers_mut()
                .insert("content-range", HeaderValue::from_str(&range).unwrap());
            r
        }
        "emails.type-list" => reply(
            StatusCode::OK,
            "application/octet-stream, application/json",
            EMAILS_JSON,
        ),
        "download" => {
            let n = q("bytes", 1024);
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            reply(StatusCode::OK, "application/octet-stream", data)
        }
        "chunked" => {
            let chunks = (0..q("chunks", 5))
                .map(|i| Bytes::from(format!("chunk {i}\n")))
                .collect();
            streamed("text/plain", chunks, Duration::from_millis(20))
        }
        "sse" => {
            let events = vec![
                Bytes::from("event: greeting\ndata: {\"to\":\"ann@example.com\"}\n\n"),
                Bytes::from(": keep-alive from bob@example.org\n\n"),
                Bytes::from("data: plain text for carol@"),
                Bytes::from("example.com\ndata: second line\n\n"),
                Bytes::from("id: dave@example.com\nowner: erin@example.com\ndata: ok\n\n"),
            ];
            streamed("text/event-stream", events, Duration::from_millis(20))
        }
        // An event whose data is UTF-16: an address no masker can read.
        "sse-utf16" => {
            let mut data = b"data: ".to_vec();
            data.extend("ann@example.com".encode_utf16().flat_map(u16::to_le_bytes));
            data.extend_from_slice(b"\n\n");
            let events = vec![Bytes::from("data: first\n\n"), Bytes::from(data)];
            streamed("text/event-stream", events, Duration::from_millis(20))
        }
        // The same two events in one write.
        "sse-utf16-together" => {
            let mut data = b"data: first\n\ndata: ".to_vec();
            data.extend("ann@example.com".encode_utf16().flat_map(u16::to_le_bytes));
            data.extend_from_slice(b"\n\n");
            streamed("text/event-stream", vec![Bytes::from(data)], Duration::ZERO)
        }
        // Data in response headers, not the body.
        "headers" => {
            let mut r = reply(StatusCode::CREATED, "application/json", "{}");
            let h = r.headers_mut();
            h.insert(
                "location",
                HeaderValue::from_static("/users/ann@example.com"),
            );
            h.append("x-owner", HeaderValue::from_static("bob@example.org"));
            h.append(
                "x-owner",
                HeaderValue::from_static("team lead carol@example.com"),
            );
            h.insert("x-request-id", HeaderValue::from_static("r-42"));
            h.insert("server", HeaderValue::from_static("test-upstream"));
            r.extensions_mut()
                .insert(hyper::ext::ReasonPhrase::from_static(
                    b"Made for dave@example.com",
                ));
            r
        }
        // Free text in headers of a fixed syntax: a media type's parameter,
        // an entity tag.
        "headers-typed" => {
            let mut r = reply(
                StatusCode::OK,
                "text/csv; name=\"ann@example.com.csv\"",
                "a,b\n",
            );
            let h = r.headers_mut();
            h.insert("etag", HeaderValue::from_static("\"bob@example.org\""));
            h.insert(
                "last-modified",
                HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
            );
            r
        }
        // A protocol switch nobody asked for.
        "upgrade" => {
            let mut r = reply(StatusCode::SWITCHING_PROTOCOLS, "text/plain", "");
            r.headers_mut()
                .insert("upgrade", HeaderValue::from_static("websocket"));
            r
        }
        // A header value that is not UTF-8 (ISO 8859-1 "café@…").
        "headers-latin1" => {
            let mut r = reply(StatusCode::OK, "application/json", "{}");
            r.headers_mut().insert(
                "x-owner",
                HeaderValue::from_bytes(b"caf\xe9@example.com").unwrap(),
            );
            r
        }
        "slow" => {
            tokio::time::sleep(Duration::from_millis(q("ms", 3000) as u64)).await;
            reply(StatusCode::OK, "application/json", "{}")
        }
        "upload" => {
            let digest = hex(&sha2::Sha256::digest(&body));
            let text = format!("{{\"len\":{},\"sha256\":\"{digest}\"}}", body.len());
            reply(StatusCode::OK, "application/json", text)
        }
        "mcp" => mcp_answer(&body),
        "anything" => echo(req),
        // A header named as `name` says.
        "header-named" => {
            let mut r = reply(StatusCode::OK, "application/json", "{}");
            let name = param(req, "name").unwrap_or_default();
            r.headers_mut().insert(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("1"),
            );
            r
        }
        // The credential the request carried, in the response's headers
        // and reason phrase.
        "echo-headers" => {
            let value = credential_seen(req);
            let percent: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
            let mut r = reply(StatusCode::OK, "application/json", "{}");
            let h = r.headers_mut();
            for (name, v) in [
                ("x-echo", value.clone()),
                ("set-cookie", format!("k={value}; Path=/")),
                ("location", format!("/next?key={percent}")),
                (
                    "link",
                    format!("<https://elsewhere.example/?k={value}>; rel=\"next\""),
                ),
                ("x-plain", "nothing to hide".to_string()),
            ] {
                h.append(name, HeaderValue::from_str(&v).unwrap());
            }
            r.extensions_mut().insert(
                hyper::ext::ReasonPhrase::try_from(format!("OK {value}").into_bytes()).unwrap(),
            );
            r
        }
        // An event stream whose second event echoes the credential, in
        // pieces of five bytes.
        "echo-sse" => {
            let value = credential_seen(req);
            let event = format!("data: {{\"seen\":\"{value}\"}}\n\n");
            let mut chunks = vec![Bytes::from("data: first\n\n")];
            chunks.extend(event.as_bytes().chunks(5).map(Bytes::copy_from_slice));
            chunks.push(Bytes::from("data: last\n\n"));
            streamed("text/event-stream", chunks, Duration::from_millis(5))
        }
        _ => {
            let text = serde_json::json!({
                "method": req.method().as_str(),
                "uri": req.uri().to_string(),
                "len": body.len(),
            });
            reply(StatusCode::OK, "application/json", text.to_string())
        }
    }
}

/// The credential a request carried: its API-key header, or else its
/// `Authorization`.
fn credential_seen(req: &Request<()>) -> String {
    req.headers()
        .get("x-api-key")
        .or_else(|| req.headers().get("authorization"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn param(req: &Request<()>, key: &str) -> Option<String> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// The request's headers echoed as JSON, as httpbin's `/anything` does
/// (with the password of basic auth decoded), the values spelled as
/// `style` says: as they are, with `/` escaped (`php`), every character a
/// `\u` escape (`unicode`), percent-encoded (`percent`) or in base64
/// (`base64`). `gzip=1` compresses the body, `chunked=1` sends it in pieces
/// of seven bytes without a length, `utf16=1` sends it in UTF-16 (with a
/// byte order mark), `coding=X` labels it `Content-Encoding: X`.
fn echo(req: &Request<()>) -> Response<BoxBody> {
    use base64::Engine as _;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let style = param(req, "style").unwrap_or_default();
    let spell = |v: &str| -> String {
        match style.as_str() {
            "php" => v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('/', "\\/"),
            "unicode" => v.chars().map(|c| format!("\\u{:04x}", c as u32)).collect(),
            "percent" => v.bytes().map(|b| format!("%{b:02X}")).collect(),
            "base64" => b64.encode(v),
            _ => {
                let quoted = serde_json::to_string(v).unwrap();
                quoted[1..quoted.len() - 1].to_string()
            }
        }
    };
    let mut fields: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let basic = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| b64.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    if let Some((_, password)) = basic.as_deref().and_then(|b| b.split_once(':')) {
        fields.push(("password".to_string(), password.to_string()));
    }
    let members: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("\"{k}\":\"{}\"", spell(v)))
        .collect();
    let text = format!(
        "{{\"url\":\"{}\",\"headers\":{{{}}}}}",
        req.uri(),
        members.join(",")
    );
    let mut r = if param(req, "chunked").is_some() {
        let chunks = text
            .as_bytes()
            .chunks(7)
            .map(Bytes::copy_from_slice)
            .collect();
        streamed("application/json", chunks, Duration::from_millis(2))
    } else if param(req, "gzip").is_some() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        let mut r = reply(StatusCode::OK, "application/json", e.finish().unwrap());
        r.headers_mut()
            .insert("content-encoding", HeaderValue::from_static("gzip"));
        r
    } else if param(req, "utf16").is_some() {
        let mut body = vec![0xff, 0xfe];
        body.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        reply(StatusCode::OK, "application/json; charset=utf-16", body)
    } else {
        reply(StatusCode::OK, "application/json", text)
    };
    if let Some(coding) = param(req, "coding") {
        r.headers_mut()
            .insert("content-encoding", HeaderValue::from_str(&coding).unwrap());
    }
    r.headers_mut()
        .insert("etag", HeaderValue::from_static("\"echo\""));
    r
}

fn mcp_answer(body: &[u8]) -> Response<BoxBody> {
    let msg: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let tool = msg["params"]["name"].as_str().unwrap_or("?");
    let result = serde_json::json!({
        "jsonrpc": "2.0",
        "id": msg["id"],
        "result": {"content": [{"type": "text", "text": format!("ran {tool}; owner dave@example.com")}]},
    });
    reply(StatusCode::OK, "application/json", result.to_string())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

/// The `sluice` binary with an HTTP listener (TLS, and plain HTTP from
/// loopback) and the configuration's `[[connections]]`.
pub struct Gateway {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub admin: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// `extra` is appended to the config (plugin tables, connections);
    /// `plugins` are copied from `target/plugins/` into the plugin dir.
    pub fn start(plugins: &[&str], extra: &str, env: &[(&str, &str)]) -> Self {
        Self::start_with_files(plugins, extra, env, &[])
    }

    /// As [`Gateway::start`], first writing `files` (name, text) beside the
    /// config.
    pub fn start_with_files(
        plugins: &[&str],
        extra: &str,
        env: &[(&str, &str)],
        files: &[(&str, &str)],
    ) -> Self {
        Self::launch(plugins, "", extra, env, files)
    }

    /// As [`Gateway::start`], with `http` added to the `[http]` table.
    #[allow(dead_code)]
    pub fn start_with_http(plugins: &[&str], http: &str, extra: &str) -> Self {
        Self::launch(plugins, http, extra, &[], &[])
    }

    fn launch(
        plugins: &[&str],
        http: &str,
        extra: &str,
        env: &[(&str, &str)],
        files: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            write_file(dir.path(), name, text);
        }
        let plugin_dir = dir.path().join("plugins");
        std::fs::create_dir(&plugin_dir).unwrap();
        for p in plugins {
            std::fs::copy(super::component(p), plugin_dir.join(format!("{p}.wasm"))).unwrap();
        }
        let (port, admin) = (super::free_port(), super::free_port());
        let config = format!(
            r#"
[gateway]
state_dir = "state"
[listen]
http = "127.0.0.1:{port}"
admin = "127.0.0.1:{admin}"
[identity]
leeway_secs = 0
[http]
allow_plaintext_loopback = true
header_timeout_ms = 1500
body_timeout_ms = 1500
{http}
[plugins]
dir = "plugins"
{extra}
"#
        );
        std::fs::write(dir.path().join("sluice.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args(["--config", "sluice.toml", "serve"])
            .current_dir(dir.path())
            .env("SLUICE_LOG", "info,sluice::http=debug")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut gw = Gateway {
            child,
            dir,
            port,
            admin,
        };
        gw.wait_ready(plugins.len());
        gw
    }

    fn wait_ready(&mut self, plugins: usize) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the gateway exited ({status}):\n{}", self.log());
            }
            if let Ok(out) = Command::new("curl")
                .args([
                    "-sf",
                    &format!("http://127.0.0.1:{}/api/v1/plugins", self.admin),
                ])
                .output()
            {
                let text = String::from_utf8_lossy(&out.stdout);
                if out.status.success() && text.matches("\"active\"").count() >= plugins {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "gateway not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// The gateway's self-signed listener certificate, for clients to trust.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("state/tls/listener-cert.pem")
    }

    pub fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn token(&self, subject: &str, groups: &[&str], ttl: &str) -> String {
        let mut args = vec!["token", "issue", "--subject", subject, "--ttl", ttl];
        for g in groups {
            args.extend(["--group", g]);
        }
        super::process::sluice_ok(self.dir.path(), &args)
            .trim()
            .to_string()
    }

    /// A reqwest client trusting the gateway's certificate.
    pub fn client(&self) -> reqwest::Client {
        self.client_builder().build().unwrap()
    }

    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let pem = std::fs::read(self.cert()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .timeout(Duration::from_secs(30))
    }

    /// curl through the gateway over TLS: (status, body, `-w` output).
    pub fn curl(&self, args: &[&str]) -> CurlOutput {
        let out = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(self.cert())
            .args([
                "-o",
                "-",
                "-w",
                "\n%{http_code} %{http_version} %{num_connects}",
            ])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, meta) = text.rsplit_once('\n').unwrap_or(("", &text));
        let mut meta = meta.split(' ');
        CurlOutput {
            status: meta.next().and_then(|s| s.parse().ok()).unwrap_or(0),
            version: meta.next().unwrap_or("").to_string(),
            body: body.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub struct CurlOutput {
    pub status: u16,
    pub version: String,
    pub body: String,
    pub stderr: String,
}

/// Writes `text` to a file in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}
