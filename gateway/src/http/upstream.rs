//! The client side: one pooled hyper client per connection, TLS verified
//! against the system's roots or the connection's CA (HTTP/2 when the
//! upstream offers it by ALPN), the connection's credential, and the two
//! timeouts that turn a dead upstream into 502 and a slow one into 504.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{ConnectionConfig, CredentialKind, HttpUpstreamConfig};

use super::body::Body;
use super::problem::Problem;
use super::secrets::Needles;
use super::upload::{Stage, UploadWatch};

#[derive(Debug, thiserror::Error)]
pub enum UpstreamSetupError {
    #[error("connection {name:?}: {message}")]
    Invalid { name: String, message: String },
    #[error("connection {name:?}: {source}")]
    Tls {
        name: String,
        source: crate::tls::TlsError,
    },
}

type Pooled = Client<HttpsConnector<HttpConnector>, Body>;

pub struct Upstream {
    /// One pool per session worker, and a last one for any other thread.
    /// A pooled connection's I/O runs on the worker that opened it; shared
    /// between workers, half the requests would hand their bytes to the
    /// other thread and wait for it to be woken, twice per exchange.
    clients: Box<[Pooled]>,
    scheme: hyper::http::uri::Scheme,
    authority: hyper::http::uri::Authority,
    base_path: String,
    /// `Host` for a plain-HTTP upstream, made once: the client would
    /// format it from the URI on every request. Plain connections speak
    /// HTTP/1 only (the connector offers HTTP/2 by ALPN, over TLS, where
    /// `:authority` carries the host instead and this stays `None`).
    host: Option<HeaderValue>,
    credential: Option<(HeaderName, HeaderValue)>,
    /// The credential's secret in the forms an upstream could echo it in.
    secrets: Option<Arc<Needles>>,
    response_timeout: Duration,
}

impl Upstream {
    /// `workers`: how many session workers will send through it.
    pub fn new(
        c: &ConnectionConfig,
        cfg: &HttpUpstreamConfig,
        workers: usize,
    ) -> Result<Self, UpstreamSetupError> {
        let invalid = |message: String| UpstreamSetupError::Invalid {
            name: c.name.clone(),
            message,
        };
        let uri: Uri = c
            .upstream
            .parse()
            .map_err(|e| invalid(format!("upstream {:?}: {e}", c.upstream)))?;
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            return Err(invalid(format!(
                "upstream {:?} needs a scheme and a host",
                c.upstream
            )));
        };

        let tls = crate::tls::client_config(cfg.ca_file.as_deref()).map_err(|source| {
            UpstreamSetupError::Tls {
                name: c.name.clone(),
                source,
            }
        })?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_millis(cfg.connect_timeout_ms)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let clients = (0..=workers)
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .pool_timer(TokioTimer::new())
                    .timer(TokioTimer::new())
                    .pool_idle_timeout(Duration::from_secs(60))
                    .pool_max_idle_per_host(256)
                    .build(connector.clone())
            })
            .collect();

        let host = (scheme == hyper::http::uri::Scheme::HTTP)
            .then(|| host_header(&uri))
            .flatten();
        let (credential, secrets) = match credential(c, cfg).map_err(invalid)? {
            Some((header, secrets)) => (Some(header), secrets),
            None => (None, None),
        };
        if credential.is_some() && secrets.is_none() {
            tracing::warn!(
                connection = %c.name,
                "the credential is shorter than {} bytes: responses are not searched for it, \
                 and an upstream that echoes it hands it to the agent",
                super::secrets::MIN_SECRET
            );
        }
        Ok(Self {
            clients,
            scheme,
            authority,
            base_path: uri.path().to_string(),
            host,
            credential,
            secrets: secrets.map(Arc::new),
            response_timeout: Duration::from_millis(cfg.response_timeout_ms),
        })
    }

    /// Where this upstream is mounted, for redirects pointing into it.
    pub fn mount<'a>(&'a self, connection: &'a str) -> super::redirects::Mount<'a> {
        super::redirects::Mount {
            scheme: &self.scheme,
            authority: &self.authority,
            base: &self.base_path,
            connection,
        }
    }

    pub fn credential(&self) -> Option<&(HeaderName, HeaderValue)> {
        self.credential.as_ref()
    }

    /// What to search the upstream's answers for; `None` when the
    /// connection injects no credential (or one too short to search for).
    pub fn secrets(&self) -> Option<&Arc<Needles>> {
        self.secrets.as_ref()
    }

    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    /// The upstream URI for a path below the connection and a raw query.
    pub fn uri(&self, path: &str, query: Option<&str>) -> Result<Uri, Problem> {
        let mut pq = super::route::join(&self.base_path, path);
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| {
                Problem::bad_request("bad_path", format!("cannot form the upstream URI: {e}"))
            })
    }

    /// Sends a request; the answer's head must arrive within the response
    /// timeout.
    /// Sends `req` and waits for the head of the answer: within the
    /// response timeout of the request body's end. While a streamed body
    /// (`upload`, with the body timeout) is still being sent, a pause in it
    /// longer than the body timeout ends the exchange: 408 when the agent
    /// stopped sending, 504 when the upstream stopped reading.
    pub async fn send(
        &self,
        mut req: Request<Body>,
        upload: Option<(&UploadWatch, Duration)>,
    ) -> Result<Response<hyper::body::Incoming>, Problem> {
        if let Some(host) = &self.host {
            req.headers_mut().insert(hyper::header::HOST, host.clone());
        }
        let last = self.clients.len() - 1;
        let client = &self.clients[crate::workers::current().map_or(last, |i| i.min(last))];
        let started = Instant::now();
        let response = client.request(req);
        tokio::pin!(response);
        // What the deadline is follows the upload: re-read at each one.
        let late = loop {
            let stage = upload.map(|(w, pause)| (w.stage(), pause));
            let due = match &stage {
                None => started + self.response_timeout,
                Some((Stage::Sent(at), _)) => *at + self.response_timeout,
                Some((Stage::Sending { last, .. }, pause)) => *last + *pause,
            };
            if Instant::now() >= due {
                match stage {
                    Some((Stage::Sending { awaiting_agent, .. }, pause)) => {
                        return Err(stalled_upload(awaiting_agent, pause));
                    }
                    _ => break None,
                }
            }
            tokio::select! {
                sent = &mut response => break Some(sent),
                () = tokio::time::sleep_until(due.into()) => {}
            }
        };
        match late {
            Some(Ok(resp)) => Ok(resp),
            Some(Err(e)) => {
                let what = if e.is_connect() {
                    "the gateway could not connect to the upstream"
                } else {
                    "the upstream connection failed"
                };
                Err(Problem::upstream(
                    StatusCode::BAD_GATEWAY,
                    "upstream_unavailable",
                    format!("{what}: {}", error_chain(&e)),
                ))
            }
            None => Err(Problem::upstream(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!(
                    "the upstream did not answer within {} ms",
                    self.response_timeout.as_millis()
                ),
            )),
        }
    }
}

/// A streamed request body that stopped moving for `pause`.
fn stalled_upload(awaiting_agent: bool, pause: Duration) -> Problem {
    if awaiting_agent {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body stopped arriving for {} ms (http.body_timeout_ms)",
                pause.as_millis()
            ),
        )
    } else {
        Problem::upstream(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            format!(
                "the upstream stopped reading the request body for {} ms",
                pause.as_millis()
            ),
        )
    }
}

/// The `Host` an HTTP/1 client sends for `uri`: its host, and its port
/// unless that is the scheme's default (as hyper-util's client writes it).
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default_port = if uri.scheme() == Some(&hyper::http::uri::Scheme::HTTPS) {
        443
    } else {
        80
    };
    match uri.port() {
        Some(port) if port.as_u16() != default_port => {
            HeaderValue::from_str(&format!("{host}:{port}")).ok()
        }
        _ => HeaderValue::from_str(host).ok(),
    }
}

/// An error and its causes on one line, e.g. `client error (Connect): tcp
/// connect error: Connection refused (os error 111)`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

type Credential = ((HeaderName, HeaderValue), Option<Needles>);

/// The header that carries the connection's credential, read once at
/// startup from its environment variable or file, and the secret's forms
/// to keep out of what the agent receives: the secret itself, and for basic
/// auth the encoded `user:secret` too (a short password is not searched
/// for alone, but that is long enough).
fn credential(
    c: &ConnectionConfig,
    cfg: &HttpUpstreamConfig,
) -> Result<Option<Credential>, String> {
    if cfg.credential == CredentialKind::None {
        return Ok(None);
    }
    let secret = crate::config::read_secret(
        cfg.credential_env.as_deref(),
        cfg.credential_file.as_deref(),
    )?
    .ok_or("the credential needs credential_env or credential_file")?;
    if secret.is_empty() {
        return Err(format!(
            "the credential of connection {:?} is empty",
            c.name
        ));
    }
    let (name, value, secrets) = match cfg.credential {
        CredentialKind::Bearer => {
            let secrets = Needles::credential(&[secret.as_bytes()]);
            (
                hyper::header::AUTHORIZATION,
                format!("Bearer {secret}"),
                secrets,
            )
        }
        CredentialKind::Basic => {
            let user = cfg.credential_user.as_deref().unwrap_or_default();
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
            let secrets = Needles::credential(&[secret.as_bytes(), encoded.as_bytes()]);
            (
                hyper::header::AUTHORIZATION,
                format!("Basic {encoded}"),
                secrets,
            )
        }
        CredentialKind::Header => {
            let name = cfg.credential_header.as_deref().unwrap_or_default();
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("credential_header {name:?} is not a header name"))?;
            let secrets = Needles::credential(&[secret.as_bytes()]);
            (name, secret, secrets)
        }
        CredentialKind::None => return Ok(None),
    };
    let mut value = HeaderValue::from_str(&value)
        .map_err(|_| "the credential contains characters not allowed in a header".to_string())?;
    // Never added to an HTTP/2 header compression table.
    value.set_sensitive(true);
    Ok(Some(((name, value), secrets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_names_the_port_only_when_it_is_not_the_default() {
        let host = |u: &str| host_header(&u.parse().unwrap()).unwrap();
        assert_eq!(host("http://api.internal:8080/v1"), "api.internal:8080");
        assert_eq!(host("http://api.internal:80/v1"), "api.internal");
        assert_eq!(host("http://api.internal"), "api.internal");
        assert_eq!(host("http://[::1]:9000"), "[::1]:9000");
        assert_eq!(host("https://api.example:443"), "api.example");
        assert_eq!(host("https://api.example:80"), "api.example:80");
    }
}
