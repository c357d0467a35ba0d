//! One exchange, in the order of the design's request path:
//! route → token → connection → access policy → plugins resolved →
//! guardrails (with the body when they need it) → upstream with the
//! connection's credential → maskers → the agent. Every step that refuses
//! answers with a problem document naming why; every exchange is recorded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::identity::{ConnectionPolicy, Verifier};
use crate::plugins::PluginHost;
use crate::plugins::bindings::types::{Protocol, Session};

use super::auth::TokenCache;
use super::body::{self, AgentBody, Body, BoxError};
use super::config::UnderscoreHeaders;
use super::headers::{self, ClientOrigin, Origin};
use super::inspect::{self, Inspected, Inspection};
use super::listener::ActivityGuard;
use super::masking::{self, MaskContext};
use super::problem::Problem;
use super::record::{self, ConnMetrics, Counted, ExchangeRecord, Outcome, Recorded};
use super::route::{self, RouteError};
use super::secrets::{Guarded, Needles};
use super::session::ClientTrail;
use super::upstream::Upstream;
use crate::audit::Audit;
use crate::recording::Recorder;

/// A configured HTTP connection, ready to serve.
pub struct HttpConnection {
    pub name: String,
    pub policy: ConnectionPolicy,
    pub plugins: Vec<String>,
    pub upstream: Upstream,
    pub max_request_body: usize,
    pub stream_large_requests: bool,
    pub max_response_body: usize,
    pub mcp: bool,
    pub metrics: Arc<ConnMetrics>,
}

/// What every exchange of the listener shares.
pub struct HttpGateway {
    pub connections: HashMap<String, Arc<HttpConnection>>,
    pub verifier: Verifier,
    pub plugins: Arc<PluginHost>,
    pub body_timeout: Duration,
    pub underscore_headers: UnderscoreHeaders,
    /// `http.max_header_bytes`: the HTTP parsers read heads up to
    /// [`super::listener::hard_head_limit`] of it, and heads between the two
    /// are answered here, with a problem document.
    pub max_header_bytes: usize,
    pub recorder: Recorder,
    pub audit: Audit,
}

/// One agent connection (HTTP/1.1 keep-alive or HTTP/2): the plugins'
/// session.
pub struct Client {
    pub session_id: Arc<str>,
    pub peer: SocketAddr,
    /// `peer` as text, formatted once per connection for every request's
    /// plugin session.
    pub peer_text: String,
    /// The forwarding headers' per-connection part.
    pub origin: ClientOrigin,
    pub tls: bool,
    pub tokens: TokenCache,
    pub trail: Arc<ClientTrail>,
}

pub async fn handle(
    gw: &HttpGateway,
    client: &Client,
    req: Request<Incoming>,
    activity: ActivityGuard,
) -> Response<Recorded> {
    let expects_continue = req
        .headers()
        .get(hyper::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let req = req.map(|b| AgentBody::new(b, expects_continue));
    let head = req.method() == Method::HEAD;
    let mut rec = ExchangeRecord::new(
        client.session_id.clone(),
        client.peer,
        req.method().clone(),
        req.uri(),
    );
    rec.n = client.trail.next_n();
    rec.capture_limit = client.trail.body_limit();
    if client.trail.records() {
        // Only a session recording holds these.
        rec.http_version = format!("{:?}", req.version());
        rec.url = agent_url(client.tls, &req);
        rec.request_headers = headers::for_record(req.headers());
    }
    rec.trail = Some(client.trail.clone());
    // Kept (a reference count, not a copy) so that whatever refuses the
    // request, its records do not keep the agent's token where it should
    // not have been.
    let authorization = req.headers().get(hyper::header::AUTHORIZATION).cloned();
    let result = exchange(gw, client, req, &mut rec, authorization.as_ref()).await;
    // A forwarded request can still have carried it in what the gateway
    // dropped before its checks (a header named with `_`), which the
    // recording keeps.
    if let Some(token) = authorization
        .as_ref()
        .and_then(|v| super::auth::bearer_value(v).ok())
    {
        rec.without_token(token);
    }
    // Taken out of the rest of the record (bodies, the response) when the
    // exchange is done.
    rec.authorization = authorization;
    let resp = match result {
        Ok(resp) => resp,
        Err(problem) => {
            rec.outcome = problem.outcome;
            let layer = ["token_reason", "access_reason"]
                .iter()
                .find_map(|k| problem.extra.get(*k).and_then(|v| v.as_str()));
            rec.refusal = Some(layer.unwrap_or(problem.reason).to_string());
            tracing::info!(
                session = %client.session_id,
                connection = rec.connection.as_deref().unwrap_or(""),
                subject = rec.subject.as_deref().unwrap_or(""),
                "{} {}: {problem}",
                rec.method,
                rec.raw_path
            );
            let resp = problem.into_response();
            // A HEAD's answer has no content: over HTTP/2, DATA frames
            // after it make the client reset the stream (PROTOCOL_ERROR)
            // instead of reading the status.
            if head {
                let (mut parts, _) = resp.into_parts();
                parts.headers.remove(hyper::header::CONTENT_LENGTH);
                Response::from_parts(parts, body::empty())
            } else {
                resp
            }
        }
    };
    record::attach(resp, rec, activity)
}

async fn exchange(
    gw: &HttpGateway,
    client: &Client,
    mut req: Request<AgentBody>,
    rec: &mut ExchangeRecord,
    authorization: Option<&HeaderValue>,
) -> Result<Response<Body>, Problem> {
    if req.method() == Method::CONNECT {
        return Err(Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "CONNECT is not supported: address the gateway as /<connection>/<path>",
        ));
    }
    // An upstream answers TRACE with the request it received, the
    // credential the gateway injected included (Apache's TraceEnable is on
    // by default), and maskers do not know an arbitrary secret.
    if req.method() == Method::TRACE {
        return Err(Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "TRACE is not forwarded: the upstream would echo the credential the gateway adds",
        ));
    }
    let head = headers::head_bytes(req.method(), req.uri(), req.headers());
    if head > gw.max_header_bytes {
        return Err(Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "head_too_large",
            format!(
                "the request line and headers take {head} bytes; this listener accepts at most {} (http.max_header_bytes)",
                gw.max_header_bytes
            ),
        ));
    }
    super::ambiguity::underscored_headers(req.headers_mut(), gw.underscore_headers)?;
    super::ambiguity::check_head(req.method(), req.uri(), req.headers())?;
    // RFC 9112 (3.2): a server answers 400 to an HTTP/1.1 request without
    // a Host, which an upstream may read as any of its virtual hosts.
    if req.version() == hyper::Version::HTTP_11 && !req.headers().contains_key(HOST) {
        return Err(Problem::bad_request(
            "missing_host",
            "an HTTP/1.1 request needs a Host header",
        ));
    }
    let route = route::split(req.uri().path()).map_err(|e| match e {
        RouteError::NoConnection => {
            Problem::new(StatusCode::NOT_FOUND, "unknown_connection", e.to_string())
        }
        other => Problem::bad_request("bad_path", other.to_string()),
    })?;
    rec.path = Some(route.path.clone());
    rec.asked = Some(route.connection.clone());

    // The token first: who may learn which connections exist is decided by
    // the same rule as who may use them.
    let token = super::auth::bearer(req.headers())?;
    // The refusal's records have the token taken out (see `handle`).
    super::auth::only_in_authorization(
        token,
        req.headers(),
        req.uri().authority().map(|a| a.as_str()),
        &route.path,
        req.uri().query(),
    )?;
    let identity = client.tokens.identity(&gw.verifier, token).await?;
    req.body_mut().authenticated();
    rec.subject = Some(identity.subject.clone());
    let Some(conn) = gw.connections.get(&route.connection) else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown_connection",
            format!(
                "connection \"{}\" does not exist on this gateway",
                route.connection
            ),
        ));
    };
    rec.connection = Some(conn.name.clone());
    rec.metrics = Some(conn.metrics.clone());
    rec.credential = conn.upstream.secrets().cloned();
    conn.policy.check(&identity).map_err(|d| {
        Problem::forbidden(
            "access_denied",
            format!("{d} (connection \"{}\")", conn.name),
        )
        .with("access_reason", d.reason())
    })?;
    let chain = gw.plugins.chain(&conn.plugins).map_err(|r| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "plugin_unavailable",
            r.to_string(),
        )
        .with("plugin", r.plugin)
    })?;
    client.trail.begin(&identity, &conn.name).map_err(|e| {
        tracing::error!("{e}");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "recording_unavailable",
            "the gateway cannot record this session, so it does not forward it (see the gateway's log)",
        )
    })?;
    let session = Session {
        id: client.session_id.to_string(),
        connection: conn.name.clone(),
        protocol: Protocol::Http,
        identity: (&identity).into(),
        client_addr: client.peer_text.clone(),
    };

    // The same token, borrowed from what outlives the request's head.
    let token = authorization
        .and_then(|v| super::auth::bearer_value(v).ok())
        .filter(|t| t.len() >= super::auth::MIN_TOKEN);
    let (mut parts, body) = req.into_parts();
    let query = parts.uri.query().map(str::to_string);
    let inspect = chain.has_guardrails() || (conn.mcp && parts.method == Method::POST);
    // `upload`: the body streams (unread, or past what was inspected).
    let (upstream_body, upload) = if inspect {
        let inspection = Inspection {
            conn,
            chain: &chain,
            session: &session,
            parts: &parts,
            path: &route.path,
            query: query.as_deref(),
            body_timeout: gw.body_timeout,
            token,
        };
        match inspect::request(inspection, body, rec).await? {
            Inspected::Forward { body, upload } => (body, upload),
            Inspected::Answer(resp) => return Ok(resp),
        }
    } else {
        if hyper::body::Body::is_end_stream(&body) {
            let body = Counted::new(body, rec.request_bytes.clone());
            (body.map_err(BoxError::from).boxed_unsync(), None)
        } else {
            let (body, upload) = Counted::watched(body, rec.request_bytes.clone());
            (body.map_err(BoxError::from).boxed_unsync(), Some(upload))
        }
    };
    // What was not read whole is searched as it goes: the upload is
    // aborted before the bytes that complete the token leave.
    let mut token_sent = None;
    let upstream_body = match token.filter(|_| upload.is_some()).and_then(Needles::token) {
        Some(needles) => {
            let found = Arc::new(AtomicBool::new(false));
            token_sent = Some(found.clone());
            Guarded::new(
                upstream_body,
                Arc::new(needles),
                found,
                "the agent token is in the request body",
            )
            .boxed_unsync()
        }
        None => upstream_body,
    };

    let masked = chain.has_maskers();
    // Taken out rather than copied: the agent's Host never goes upstream.
    let host = parts.headers.remove(HOST);
    let host = host
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let origin = Origin {
        client: &client.origin,
        host,
    };
    headers::to_upstream(
        &mut parts.headers,
        &origin,
        conn.upstream.credential(),
        masked,
    );
    let mut out = Request::new(upstream_body);
    *out.method_mut() = parts.method.clone();
    *out.uri_mut() = conn.upstream.uri(&route.path, query.as_deref())?;
    *out.headers_mut() = parts.headers;

    let sent = conn
        .upstream
        .send(out, upload.as_ref().map(|w| (w, gw.body_timeout)))
        .await;
    if token_sent.is_some_and(|f| f.load(Ordering::Relaxed)) {
        return Err(super::auth::misplaced("the request body"));
    }
    let resp = sent?;
    // The agent's Upgrade never reaches the upstream (hop-by-hop), so a 101
    // answers nothing it asked, and the connection that follows would be
    // relayed unchecked; HTTP/2 has no 101 at all.
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        return Err(Problem::upstream(
            StatusCode::BAD_GATEWAY,
            "upstream_upgrade",
            "the upstream switched protocols (101), which the gateway does not relay",
        ));
    }
    rec.outcome = Outcome::Forwarded;
    let (mut rparts, rbody) = resp.into_parts();
    headers::strip_hop_by_hop(&mut rparts.headers);
    conn.upstream
        .mount(&conn.name)
        .rewrite(&mut rparts.headers, || {
            conn.upstream.uri(&route.path, query.as_deref()).ok()
        });
    let has_body = parts.method != Method::HEAD
        && !rparts.status.is_informational()
        && rparts.status != StatusCode::NO_CONTENT
        && rparts.status != StatusCode::NOT_MODIFIED;
    if masked {
        // hyper sends an upstream's own reason phrase on to the agent
        // (`HTTP/1.1 200 owner ann@example.com`); clients ignore it, so
        // the standard one goes instead of masking it.
        rparts.extensions.remove::<hyper::ext::ReasonPhrase>();
    }
    if masked
        && let Some(m) =
            super::response_headers::mask(&chain, &session, &mut rparts.headers).await?
    {
        record::Masking::add(&mut rec.masking, m);
    }
    let secrets = conn.upstream.secrets();
    if let Some(secrets) = secrets {
        // After masking and the redirect rewrite: what the agent gets.
        if secrets.replace_in_headers(&mut rparts.headers) {
            tracing::warn!(
                connection = %conn.name,
                "the upstream's response headers held the connection's credential; replaced"
            );
        }
        if rparts
            .extensions
            .get::<hyper::ext::ReasonPhrase>()
            .is_some_and(|r| secrets.holds(r.as_bytes()))
        {
            rparts.extensions.remove::<hyper::ext::ReasonPhrase>();
        }
    }
    if masked && parts.method == Method::HEAD {
        // Refused where the GET would be.
        masking::maskable(&rparts.headers)?;
    }
    if masked && !has_body {
        // The upstream's length, coding and validators describe a body
        // the agent would not get: a GET would be decoded and masked.
        masking::upstream_representation_removed(&mut rparts.headers);
    }
    let body = if masked && has_body {
        let ctx = MaskContext {
            chain,
            session,
            limit: conn.max_response_body,
            deadline: conn.upstream.response_timeout(),
            secrets: secrets.cloned(),
        };
        masking::mask(ctx, &mut rparts, rbody, rec).await?
    } else if let Some(secrets) = secrets.filter(|_| has_body) {
        without_credential(conn, secrets, &mut rparts, rbody, rec).await?
    } else {
        body::incoming(rbody)
    };
    Ok(Response::from_parts(rparts, body))
}

/// Unmasked bodies up to this size (as sent), of a declared length, are
/// read whole on a connection with a credential: an upstream's echo of a
/// request (httpbin's `/anything`) is small as a rule, and then reaches the
/// agent with the credential replaced rather than cut off where it begins.
const SMALL_BODY: usize = 64 * 1024;

/// The upstream's body on a connection without maskers, the credential
/// kept out of it: replaced in a small body read whole (decoded first if
/// compressed, and then sent decoded; its length and validators fixed up),
/// or searched as it streams (as sent, compressed or not) and cut before a
/// match would leave.
async fn without_credential(
    conn: &HttpConnection,
    secrets: &Arc<Needles>,
    parts: &mut hyper::http::response::Parts,
    upstream: Incoming,
    rec: &mut ExchangeRecord,
) -> Result<Body, Problem> {
    let mut guarded = |body: Body| {
        let echoed = Arc::new(AtomicBool::new(false));
        rec.echoed = Some(echoed.clone());
        Guarded::new(
            body,
            secrets.clone(),
            echoed,
            "the upstream's response holds the connection's credential",
        )
        .boxed_unsync()
    };
    // The gateway asked only for codings it decodes: what it cannot read it
    // cannot search.
    let coding = super::decode::coding(&parts.headers).map_err(|e| {
        Problem::upstream(
            StatusCode::BAD_GATEWAY,
            "unsearchable_response",
            format!(
                "{e}, so the response cannot be searched for the connection's credential \
                 (the gateway asks for {} at most)",
                super::decode::ACCEPTED
            ),
        )
    })?;
    let small = parts.status != StatusCode::PARTIAL_CONTENT
        && hyper::body::Body::size_hint(&upstream)
            .exact()
            .is_some_and(|n| n <= SMALL_BODY as u64);
    if !small {
        return Ok(guarded(body::incoming(upstream)));
    }
    let deadline = conn.upstream.response_timeout();
    let collected = body::collect(upstream, SMALL_BODY, deadline)
        .await
        .map_err(|e| match e {
            body::CollectError::Timeout(_) => Problem::upstream(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!(
                    "the upstream did not finish its response within {} ms",
                    deadline.as_millis()
                ),
            ),
            body::CollectError::Read(e) => Problem::upstream(
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                format!("reading the response: {e}"),
            ),
        })?;
    if !collected.complete {
        return Err(Problem::upstream(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            "the response is longer than its Content-Length",
        ));
    }
    let sent = collected.bytes;
    let clean = if coding == super::decode::Coding::Identity {
        secrets.replace(&sent)
    } else {
        match decoded(coding, &sent, conn.max_response_body) {
            Ok(text) => secrets.replace(&text),
            // A client's decoder may still get part of it out.
            Err(e) => {
                return Err(Problem::upstream(
                    StatusCode::BAD_GATEWAY,
                    "unsearchable_response",
                    format!(
                        "the response does not decode ({e}), so it cannot be searched for \
                         the connection's credential"
                    ),
                ));
            }
        }
    };
    let Some(clean) = clean else {
        return Ok(body::full(sent));
    };
    tracing::warn!(
        connection = %conn.name,
        "the upstream's response held the connection's credential; replaced"
    );
    masking::upstream_representation_removed(&mut parts.headers);
    parts.headers.insert(
        hyper::header::CONTENT_LENGTH,
        HeaderValue::from(clean.len()),
    );
    Ok(body::full(clean))
}

fn decoded(
    coding: super::decode::Coding,
    sent: &[u8],
    limit: usize,
) -> Result<Vec<u8>, super::decode::DecodeError> {
    let mut decoder = super::decode::Decoder::new(coding, limit);
    let mut text = decoder.feed(sent)?.to_vec();
    text.extend_from_slice(&decoder.finish()?);
    Ok(text)
}

/// The URL the agent used, for the recording: scheme of its connection,
/// the Host it named, the path and query as sent.
fn agent_url<B>(tls: bool, req: &Request<B>) -> String {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("gateway");
    let scheme = if tls { "https://" } else { "http://" };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut url = String::with_capacity(scheme.len() + host.len() + path.len());
    url.push_str(scheme);
    url.push_str(host);
    url.push_str(path);
    url
}
