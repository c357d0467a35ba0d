//! The admin listener: health, readiness, Prometheus metrics and the JSON API.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::identity::Verifier;
use crate::plugins::PluginHost;

pub struct AdminState {
    pub plugins: Arc<PluginHost>,
    pub identity: Verifier,
    pub metrics: Option<PrometheusHandle>,
    /// Where session recordings are; `None` when recording is off.
    pub sessions: Option<std::path::PathBuf>,
}

type Body = Full<Bytes>;

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// HEAD is answered as GET (hyper leaves the body out).
fn method(req: &Request<Incoming>) -> &Method {
    match req.method() {
        &Method::HEAD => &Method::GET,
        m => m,
    }
}

fn route(state: &AdminState, req: &Request<Incoming>) -> Response<Body> {
    match (method(req), req.uri().path()) {
        (&Method::GET, "/healthz") => json(StatusCode::OK, serde_json::json!({"status": "ok"})),
        (&Method::GET, "/readyz") => {
            let waiting: Vec<&str> = [
                (!state.plugins.ready()).then_some("plugins not scanned yet"),
                (!state.identity.is_ready()).then_some("no issuer keys loaded yet"),
            ]
            .into_iter()
            .flatten()
            .collect();
            if waiting.is_empty() {
                json(StatusCode::OK, serde_json::json!({"status": "ready"}))
            } else {
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"status": "starting", "detail": waiting}),
                )
            }
        }
        // The embedded dev issuer publishes its keys where its `iss` points.
        (&Method::GET, "/.well-known/jwks.json") => match state.identity.dev_issuer() {
            Some(dev) => json(StatusCode::OK, dev.jwks_json()),
            None => not_found("no embedded dev issuer: tokens come from the configured issuers"),
        },
        (&Method::GET, "/.well-known/openid-configuration") => match state.identity.dev_issuer() {
            Some(dev) => json(StatusCode::OK, dev.discovery_document()),
            None => not_found("no embedded dev issuer: tokens come from the configured issuers"),
        },
        (&Method::GET, "/metrics") => {
            let text = state
                .metrics
                .as_ref()
                .map(|h| h.render())
                .unwrap_or_default();
            let mut resp = Response::new(Full::new(Bytes::from(text)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        }
        (&Method::GET, "/api/v1/plugins") => json(
            StatusCode::OK,
            serde_json::json!({ "plugins": state.plugins.statuses() }),
        ),
        (_, path) if GET_ROUTES.contains(&path) || sessions_path(path).is_some() => {
            method_not_allowed(req.method(), path)
        }
        (_, path) => not_found(&format!("no admin route {path}")),
    }
}

/// The admin listener's fixed routes, all read-only (the sessions API,
/// `/api/v1/sessions[/...]`, is too).
const GET_ROUTES: &[&str] = &[
    "/healthz",
    "/readyz",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/metrics",
    "/api/v1/plugins",
];

/// What follows `/api/v1/sessions` in a path of the sessions API.
fn sessions_path(path: &str) -> Option<&str> {
    path.strip_prefix("/api/v1/sessions")
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A known path asked with a method it does not answer (RFC 9110 15.5.6).
fn method_not_allowed(method: &Method, path: &str) -> Response<Body> {
    let mut resp = json(
        StatusCode::METHOD_NOT_ALLOWED,
        serde_json::json!({
            "error": "method_not_allowed",
            "detail": format!("{path} answers GET and HEAD only, not {method}"),
        }),
    );
    resp.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    resp
}

/// `/ID/har` of a session that is not an HTTP one: its recording exists,
/// but a HAR holds HTTP exchanges only (as `sessions export --har` says).
/// `None` for anything else, left to the sessions API.
fn har_of_other_protocol(
    dir: &std::path::Path,
    rest: &str,
) -> Option<(StatusCode, serde_json::Value)> {
    let id = rest.strip_prefix('/')?.strip_suffix("/har")?;
    let path = crate::recording::read::resolve(dir, id).ok()?;
    let summary = crate::recording::read::summary(&path).ok()??;
    (summary.protocol != "http").then(|| {
        (
            StatusCode::CONFLICT,
            serde_json::json!({
                "error": "conflict",
                "detail": format!(
                    "session {} is a {} session, not an HTTP session: HAR holds HTTP exchanges only",
                    summary.id, summary.protocol
                ),
            }),
        )
    })
}

async fn respond(state: &AdminState, req: Request<Incoming>) -> Response<Body> {
    let (Some(rest), &Method::GET) = (sessions_path(req.uri().path()), method(&req)) else {
        return route(state, &req);
    };
    let Some(dir) = state.sessions.clone() else {
        return not_found("session recording is off ([recording] enabled = false)");
    };
    let rest = rest.to_string();
    let query = req.uri().query().map(str::to_string);
    // Reading recordings is file I/O: off the runtime's threads.
    let answer = tokio::task::spawn_blocking(move || {
        har_of_other_protocol(&dir, &rest)
            .unwrap_or_else(|| crate::recording::api::route(&dir, &rest, query.as_deref()))
    })
    .await;
    match answer {
        Ok((status, value)) => json(status, value),
        Err(_) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "internal", "detail": "the request failed"}),
        ),
    }
}

fn not_found(detail: &str) -> Response<Body> {
    json(
        StatusCode::NOT_FOUND,
        serde_json::json!({"error": "not_found", "detail": detail}),
    )
}

/// Serves the admin API until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("admin accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&state, req).await) }
            });
            let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = conn {
                tracing::debug!(%peer, "admin connection ended: {e}");
            }
        });
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
