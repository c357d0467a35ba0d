//! What the gateway remembers of each exchange, and the one place it is
//! handed on.
//!
//! Every response the HTTP listener sends (forwarded, refused or failed) is
//! wrapped in [`Recorded`], which counts the bytes that actually reach the
//! agent and calls [`exchange`] exactly once: when the body ends, fails or is
//! dropped (the agent went away). That call is the hook the session recorder
//! and the audit log attach to.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::{Method, Response};

use super::body::{Body, BoxError};
use super::listener::ActivityGuard;
use super::secrets::Needles;
use super::session::ClientTrail;
use super::upload::UploadWatch;
use crate::recording::entry::BodyCapture;

/// Bodies kept in a record are cut to this many bytes.
pub const BODY_CAPTURE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Sent upstream; the upstream's answer (possibly masked) went back.
    Forwarded,
    /// A guardrail denied it.
    Denied,
    /// A guardrail asked for approval; refused until approvals land.
    ApprovalRequired,
    /// Refused by the gateway: authentication, access, limits, bad input.
    Refused,
    /// The upstream failed, timed out, or its answer could not be masked.
    UpstreamError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Denied => "denied",
            Outcome::ApprovalRequired => "approval_required",
            Outcome::Refused => "refused",
            Outcome::UpstreamError => "upstream_error",
        }
    }
}

impl Outcome {
    const ALL: usize = 5;

    fn index(self) -> usize {
        self as usize
    }
}

/// One HTTP connection's request metrics, registered on first use and then
/// reused: `counter!` with owned labels builds its key and looks it up in
/// the registry on every call, a measurable part of a small exchange.
pub struct ConnMetrics {
    connection: String,
    requests: [OnceLock<metrics::Counter>; Outcome::ALL],
    duration: OnceLock<metrics::Histogram>,
}

impl std::fmt::Debug for ConnMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnMetrics")
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl ConnMetrics {
    pub fn new(connection: &str) -> Self {
        Self {
            connection: connection.to_string(),
            requests: [const { OnceLock::new() }; Outcome::ALL],
            duration: OnceLock::new(),
        }
    }

    fn requests(&self, outcome: Outcome) -> &metrics::Counter {
        self.requests[outcome.index()].get_or_init(|| {
            metrics::counter!(
                "sluice_http_requests_total",
                "connection" => self.connection.clone(),
                "outcome" => outcome.as_str(),
            )
        })
    }

    fn duration(&self) -> &metrics::Histogram {
        self.duration.get_or_init(|| {
            metrics::histogram!(
                "sluice_http_request_duration_seconds",
                "connection" => self.connection.clone(),
            )
        })
    }
}

/// The verdict that decided, when a plugin decided.
#[derive(Debug, Clone)]
pub struct RecordedVerdict {
    pub plugin: String,
    pub rule: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct Masking {
    /// Bodies (or events) a masker replaced.
    pub replaced: u64,
    /// Entity → count, summed over the exchange.
    pub detections: Vec<(String, u32)>,
}

impl From<&crate::plugins::MaskReport> for Masking {
    fn from(report: &crate::plugins::MaskReport) -> Self {
        Self {
            replaced: report.cells_changed,
            detections: report
                .detections
                .iter()
                .map(|d| (d.entity.clone(), d.count))
                .collect(),
        }
    }
}

impl Masking {
    /// Adds a pass of the same exchange (its headers, then its body).
    pub fn add(into: &mut Option<Masking>, more: Masking) {
        let Some(m) = into else {
            *into = Some(more);
            return;
        };
        m.replaced += more.replaced;
        for (entity, n) in more.detections {
            match m.detections.iter_mut().find(|(e, _)| *e == entity) {
                Some((_, count)) => *count = count.saturating_add(n),
                None => m.detections.push((entity, n)),
            }
        }
    }
}

/// One exchange, as handed to [`exchange`].
#[derive(Debug)]
pub struct ExchangeRecord {
    pub session_id: Arc<str>,
    pub client_addr: SocketAddr,
    pub method: Method,
    /// The path as the agent sent it (before normalisation).
    pub raw_path: String,
    pub query: Option<String>,
    pub connection: Option<String>,
    /// The normalised path below the connection.
    pub path: Option<String>,
    pub subject: Option<String>,
    /// The connection the path names, before it is known to exist (for the
    /// audit record of a refusal).
    pub asked: Option<String>,
    /// A refused exchange's machine-readable reason: the identity layer's
    /// (`expired`, `denied_subject`, …) or the problem's code.
    pub refusal: Option<String>,
    pub status: u16,
    pub outcome: Outcome,
    pub verdict: Option<RecordedVerdict>,
    /// MCP method and tool, when the request was a JSON-RPC call.
    pub mcp: Vec<(String, Option<String>)>,
    /// Request body bytes received from the agent (what was read of it).
    pub request_bytes: Arc<AtomicU64>,
    /// Response body bytes sent to the agent.
    pub response_bytes: u64,
    pub masking: Option<Masking>,
    /// The body the guardrails saw, cut to [`BODY_CAPTURE_BYTES`].
    pub request_body: Option<Bytes>,
    /// The (masked) response body when it was buffered, cut likewise.
    pub response_body: Option<Bytes>,
    pub started: Instant,
    pub duration: Duration,
    /// False when the response body failed or the agent left before its end.
    pub completed: bool,
    /// Position in the agent connection, taken when the request arrived.
    pub n: u64,
    /// When the request arrived (ms since the epoch).
    pub time_ms: u64,
    /// The URL as the agent addressed the gateway, absolute.
    pub url: String,
    pub http_version: String,
    /// The agent's request headers, its credentials redacted.
    pub request_headers: Vec<(String, String)>,
    /// The response headers the agent received.
    pub response_headers: Vec<(String, String)>,
    /// The first bytes of the response body as sent to the agent, up to
    /// `capture_limit`.
    pub response_capture: Vec<u8>,
    pub capture_limit: usize,
    /// The connection's trail, told about the exchange when it is done.
    pub trail: Option<Arc<ClientTrail>>,
    /// The connection's metric handles, once the connection is known.
    pub metrics: Option<Arc<ConnMetrics>>,
    /// The agent's `Authorization`: its token is taken out of everything
    /// recorded (see [`exchange`]).
    pub authorization: Option<hyper::header::HeaderValue>,
    /// The connection's credential, likewise.
    pub credential: Option<Arc<Needles>>,
    /// Raised when the response stream was cut because it held the
    /// credential.
    pub echoed: Option<Arc<AtomicBool>>,
}

impl ExchangeRecord {
    /// Everything recorded of the request's head, the agent's token taken
    /// out (see [`super::auth::without_token`]).
    pub fn without_token(&mut self, token: &str) {
        let clean = |text: &mut String| {
            if let Some(clean) = super::auth::without_token(token, text) {
                *text = clean;
            }
        };
        clean(&mut self.raw_path);
        clean(&mut self.url);
        self.query.iter_mut().for_each(clean);
        self.path.iter_mut().for_each(clean);
        self.asked.iter_mut().for_each(clean);
        self.connection.iter_mut().for_each(clean);
        for (_, value) in &mut self.request_headers {
            clean(value);
        }
    }

    pub fn new(
        session_id: Arc<str>,
        client_addr: SocketAddr,
        method: Method,
        uri: &hyper::Uri,
    ) -> Self {
        Self {
            session_id,
            client_addr,
            method,
            raw_path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            connection: None,
            path: None,
            subject: None,
            asked: None,
            refusal: None,
            status: 0,
            outcome: Outcome::Refused,
            verdict: None,
            mcp: Vec::new(),
            request_bytes: Arc::new(AtomicU64::new(0)),
            response_bytes: 0,
            masking: None,
            request_body: None,
            response_body: None,
            started: Instant::now(),
            duration: Duration::ZERO,
            completed: false,
            n: 0,
            time_ms: crate::recording::now_ms(),
            url: String::new(),
            http_version: String::new(),
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            response_capture: Vec::new(),
            capture_limit: 0,
            trail: None,
            metrics: None,
            authorization: None,
            credential: None,
            echoed: None,
        }
    }

    /// The last line of defence: whatever the checks let through, the
    /// agent's token and the connection's credential are taken out of every
    /// text the record keeps (the request's head was cleaned as refused, see
    /// [`ExchangeRecord::without_token`]), bodies included, before it is
    /// logged, recorded or audited. `captured` is the response body as
    /// kept. Texts shorter than the secrets are not searched, and nothing
    /// is copied where they are absent.
    fn scrub(&mut self, captured: &mut Vec<u8>, bodies: bool) {
        let authorization = self.authorization.take();
        let credential = self.credential.take();
        let s = Scrubber {
            token: authorization
                .as_ref()
                .and_then(|v| super::auth::bearer_value(v).ok())
                .filter(|t| t.len() >= super::auth::MIN_TOKEN)
                .map(|t| (t, super::secrets::token_shortest(t))),
            token_needles: std::cell::OnceCell::new(),
            credential: credential.as_deref(),
        };
        let text = |value: &mut String| s.text(value);
        for field in [&mut self.raw_path, &mut self.url] {
            text(field);
        }
        for field in [
            &mut self.query,
            &mut self.path,
            &mut self.asked,
            &mut self.connection,
        ] {
            field.iter_mut().for_each(text);
        }
        for (_, value) in self
            .request_headers
            .iter_mut()
            .chain(self.response_headers.iter_mut())
        {
            text(value);
        }
        // Plugins' words and MCP names come from the request too.
        if let Some(v) = self.verdict.as_mut() {
            text(&mut v.reason);
        }
        for (method, tool) in &mut self.mcp {
            text(method);
            tool.iter_mut().for_each(text);
        }
        if !bodies {
            return;
        }
        if let Some(body) = self.request_body.as_ref().and_then(|b| s.bytes(b)) {
            self.request_body = Some(Bytes::from(body));
        }
        if let Some(body) = s.bytes(captured) {
            *captured = body;
        }
    }
}

/// The secrets [`ExchangeRecord::scrub`] takes out. The token's search is
/// built only for a text long enough to hold it.
struct Scrubber<'a> {
    /// The token, and the shortest text that can hold a part of it.
    token: Option<(&'a str, usize)>,
    token_needles: std::cell::OnceCell<Option<Needles>>,
    credential: Option<&'a Needles>,
}

impl Scrubber<'_> {
    fn token(&self, len: usize) -> Option<&Needles> {
        let (token, _) = self.token.filter(|(_, shortest)| len >= *shortest)?;
        self.token_needles
            .get_or_init(|| Needles::token(token))
            .as_ref()
    }

    fn text(&self, value: &mut String) {
        for n in [self.token(value.len()), self.credential]
            .into_iter()
            .flatten()
        {
            if let Some(clean) = n.replace_str(value) {
                *value = clean;
            }
        }
    }

    fn bytes(&self, value: &[u8]) -> Option<Vec<u8>> {
        let mut clean: Option<Vec<u8>> = None;
        for n in [self.token(value.len()), self.credential]
            .into_iter()
            .flatten()
        {
            if let Some(c) = n.replace(clean.as_deref().unwrap_or(value)) {
                clean = Some(c);
            }
        }
        clean
    }
}

pub fn capture(bytes: &Bytes) -> Bytes {
    bytes.slice(..bytes.len().min(BODY_CAPTURE_BYTES))
}

/// Called once per exchange, after its last byte (or its failure): counts
/// and logs it, and hands it to the connection's trail (recording and
/// audit log).
pub fn exchange(mut record: ExchangeRecord) {
    if record
        .echoed
        .as_ref()
        .is_some_and(|e| e.load(Ordering::Relaxed))
    {
        // Cut: the agent got the response up to where the credential began.
        record.outcome = Outcome::UpstreamError;
        record.refusal = Some("credential_echoed".to_string());
        tracing::warn!(
            session = %record.session_id,
            connection = record.connection.as_deref().unwrap_or(""),
            "the upstream's response held the connection's credential; the stream was cut"
        );
    }
    let mut captured = std::mem::take(&mut record.response_capture);
    let cut = record.response_bytes > captured.len() as u64;
    record.scrub(&mut captured, record.capture_limit > 0);
    let connection = record.connection.as_deref().unwrap_or("");
    match &record.metrics {
        Some(m) => {
            m.requests(record.outcome).increment(1);
            m.duration().record(record.duration.as_secs_f64());
        }
        // Refused before a connection was known: rare, labelled "".
        None => {
            let m = ConnMetrics::new(connection);
            m.requests(record.outcome).increment(1);
            m.duration().record(record.duration.as_secs_f64());
        }
    }
    tracing::debug!(
        session = %record.session_id,
        connection,
        subject = record.subject.as_deref().unwrap_or(""),
        method = %record.method,
        path = record.path.as_deref().unwrap_or(&record.raw_path),
        status = record.status,
        outcome = record.outcome.as_str(),
        request_bytes = record.request_bytes.load(Ordering::Relaxed),
        response_bytes = record.response_bytes,
        duration_ms = record.duration.as_secs_f64() * 1000.0,
        completed = record.completed,
        "http exchange"
    );
    if let Some(trail) = record.trail.take() {
        let body = if record.capture_limit == 0 {
            None
        } else {
            let mut b = BodyCapture::of(&captured, record.capture_limit);
            if let Some(b) = b.as_mut() {
                b.truncated |= cut;
            }
            b
        };
        trail.exchange(record, body);
    }
}

/// A response body that reports its exchange when it is done.
pub struct Recorded {
    inner: Body,
    record: Option<ExchangeRecord>,
    _activity: ActivityGuard,
}

/// Wraps a response so that its exchange is recorded when its body is done.
pub fn attach(
    resp: Response<Body>,
    mut record: ExchangeRecord,
    activity: ActivityGuard,
) -> Response<Recorded> {
    record.status = resp.status().as_u16();
    if record.trail.as_ref().is_some_and(|t| t.records()) {
        record.response_headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
    }
    resp.map(|inner| Recorded {
        inner,
        record: Some(record),
        _activity: activity,
    })
}

impl Recorded {
    fn finish(&mut self, completed: bool) {
        if let Some(mut r) = self.record.take() {
            r.completed = completed;
            r.duration = r.started.elapsed();
            exchange(r);
        }
    }
}

impl HttpBody for Recorded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(r)) = (frame.data_ref(), self.record.as_mut()) {
                    r.response_bytes += data.len() as u64;
                    let room = r.capture_limit.saturating_sub(r.response_capture.len());
                    if room > 0 {
                        r.response_capture
                            .extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                if self.inner.is_end_stream() {
                    self.finish(true);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Ready(None) => self.finish(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        let done = self.inner.is_end_stream();
        self.finish(done);
    }
}

/// Counts the bytes of a request body streamed to the upstream, and drops
/// its trailers: they are the agent's, unseen by the guardrails and not
/// cleaned as headers are (an `authorization` trailer would reach an HTTP/2
/// upstream).
pub struct Counted<B> {
    inner: B,
    count: Arc<AtomicU64>,
    /// For a body streamed upstream: its pace, which sets when the answer
    /// is due (see [`super::upload`]).
    watch: Option<UploadWatch>,
}

impl<B> Counted<B> {
    pub fn new(inner: B, count: Arc<AtomicU64>) -> Self {
        Self {
            inner,
            count,
            watch: None,
        }
    }

    /// Counted, and watched as it streams.
    pub fn watched(inner: B, count: Arc<AtomicU64>) -> (Self, UploadWatch) {
        let watch = UploadWatch::new();
        let body = Self {
            inner,
            count,
            watch: Some(watch.clone()),
        };
        (body, watch)
    }
}

impl<B> HttpBody for Counted<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        loop {
            let polled = Pin::new(&mut self.inner).poll_frame(cx);
            if let Poll::Ready(Some(Ok(frame))) = &polled {
                match frame.data_ref() {
                    Some(data) => {
                        self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    None => continue,
                }
            }
            if let Some(watch) = &self.watch {
                watch.polled(&polled, self.inner.is_end_stream());
            }
            return polled;
        }
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end && let Some(watch) = &self.watch {
            watch.ended();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test]
    async fn streamed_request_bodies_lose_their_trailers() {
        let mut trailers = hyper::HeaderMap::new();
        trailers.insert("authorization", "Bearer agent".parse().unwrap());
        let frames = vec![
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::trailers(trailers)),
        ];
        let body = StreamBody::new(futures_util::stream::iter(frames));
        let count = Arc::new(AtomicU64::new(0));
        let collected = Counted::new(body, count.clone()).collect().await.unwrap();
        assert!(collected.trailers().is_none());
        assert_eq!(collected.to_bytes(), "abc");
        assert_eq!(count.load(Ordering::Relaxed), 3);
    }
}
