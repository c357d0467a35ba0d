//! The HTTP side of the gateway: agents call `https://gateway/<connection>/<path>`
//! with their own bearer token; the gateway verifies it, applies the
//! connection's access policy, runs the request through the guardrails,
//! forwards it with the connection's credential (never the agent's token)
//! and runs the response through the maskers.
//!
//! ```text
//! listener (TLS/ALPN, limits) ─▶ proxy::handle ─▶ route ─▶ auth ─▶ policy
//!     ─▶ inspect (body ≤ limit, MCP JSON-RPC) ─▶ guardrails
//!     ─▶ upstream (pooled, TLS, credential, timeouts)
//!     ─▶ masking (whole body, or per event) ─▶ record::exchange ─▶ session (recording, audit)
//! ```
//!
//! The credential is kept out of what the agent receives and what is
//! recorded, and the agent's token out of what the upstream receives and
//! what is recorded ([`secrets`]).

mod ambiguity;
mod auth;
pub mod body;
pub mod config;
pub mod decode;
mod events;
mod headers;
mod inspect;
mod json_keys;
pub mod listener;
mod masking;
pub mod mcp;
pub mod problem;
pub mod proxy;
pub mod record;
mod redirects;
mod response_headers;
pub mod route;
mod secrets;
mod session;
mod upload;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ConfigError, ConnectionKind};
use crate::identity::Verifier;
use crate::plugins::PluginHost;
use crate::tls::{TlsError, TlsFiles};

pub use listener::HttpListener;
pub use proxy::{HttpConnection, HttpGateway};

#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    #[error("[http] needs both tls_cert and tls_key, or neither")]
    HalfTlsPair,
    #[error("[http] TLS: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Upstream(#[from] upstream::UpstreamSetupError),
}

/// Builds the HTTP listener and its connections from the configuration.
pub fn from_config(
    config: &Config,
    verifier: Verifier,
    plugins: Arc<PluginHost>,
    recorder: crate::recording::Recorder,
    audit: crate::audit::Audit,
    workers: usize,
) -> Result<Arc<HttpListener>, HttpSetupError> {
    let files = match (&config.http.tls_cert, &config.http.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        (None, None) => None,
        _ => return Err(HttpSetupError::HalfTlsPair),
    };
    let alpn = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tls = crate::tls::server_config_with_alpn(files.as_ref(), &config.gateway.state_dir, alpn)?;

    let mut connections = std::collections::HashMap::new();
    for c in config
        .connections
        .iter()
        .filter(|c| c.kind == ConnectionKind::Http)
    {
        let cfg = c.http()?;
        let conn = HttpConnection {
            name: c.name.clone(),
            policy: c.policy()?,
            plugins: c.plugins.clone(),
            upstream: upstream::Upstream::new(c, &cfg, workers)?,
            max_request_body: cfg.max_request_body_bytes,
            stream_large_requests: cfg.stream_large_requests,
            max_response_body: cfg.max_response_body_bytes,
            mcp: cfg.mcp,
            metrics: Arc::new(record::ConnMetrics::new(&c.name)),
        };
        connections.insert(c.name.clone(), Arc::new(conn));
    }
    let gateway = Arc::new(HttpGateway {
        connections,
        verifier,
        plugins,
        body_timeout: Duration::from_millis(config.http.body_timeout_ms),
        underscore_headers: config.http.underscore_headers,
        max_header_bytes: config.http.max_header_bytes,
        recorder,
        audit,
    });
    Ok(HttpListener::new(gateway, tls, config.http.clone()))
}
