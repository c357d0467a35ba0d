//! The agent-facing HTTP listener: TLS (HTTP/2 or HTTP/1.1 by ALPN), plain
//! HTTP from loopback when allowed, and the bounds that keep slow or idle
//! clients from holding the gateway: a deadline for the TLS handshake and
//! each request head (a head begun and not finished in time is answered
//! 408; a connection with no head begun, new or idle after a response, is
//! closed without a word), a size limit on heads, a cap on open
//! connections, and an idle timeout that also covers HTTP/2 (whose first
//! request is held to the head deadline too).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::HttpListenerConfig;
use crate::workers::Workers;

use super::auth::TokenCache;
use reclaim::{Reclaimable, Reclaimed};

mod reclaim;
use super::headers::ClientOrigin;
use super::problem::Problem;
use super::proxy::{self, Client, HttpGateway};
use super::session::ClientTrail;

/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

pub struct HttpListener {
    gateway: Arc<HttpGateway>,
    tls: Arc<rustls::ServerConfig>,
    settings: HttpListenerConfig,
    slots: Arc<Semaphore>,
    builder: auto::Builder<TokioExecutor>,
}

impl HttpListener {
    pub fn new(
        gateway: Arc<HttpGateway>,
        tls: Arc<rustls::ServerConfig>,
        settings: HttpListenerConfig,
    ) -> Arc<Self> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(settings.header_timeout_ms))
            // The read buffer bounds the request head: past it, the
            // parser's own 431 with no body.
            .max_buf_size(hard_head_limit(settings.max_header_bytes))
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(
                u32::try_from(hard_head_limit(settings.max_header_bytes)).unwrap_or(u32::MAX),
            )
            .max_concurrent_streams(256)
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(20));
        Arc::new(Self {
            gateway,
            tls,
            slots: Arc::new(Semaphore::new(settings.max_connections)),
            settings,
            builder,
        })
    }

    /// Accepts clients and serves each connection on one of `workers`.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, workers: Arc<Workers>) {
        loop {
            // Past the cap, new clients wait in the kernel's accept queue.
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                return;
            };
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("http accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Handed over unregistered: the worker's own I/O driver takes it.
            let tcp = match tcp.into_std() {
                Ok(tcp) => tcp,
                Err(e) => {
                    tracing::warn!(%peer, "http accept failed: {e}");
                    continue;
                }
            };
            let this = self.clone();
            workers.spawn(async move {
                match TcpStream::from_std(tcp) {
                    Ok(tcp) => this.connection(tcp, peer, permit).await,
                    Err(e) => tracing::warn!(%peer, "http accept failed: {e}"),
                }
            });
        }
    }

    async fn connection(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        _slot: OwnedSemaphorePermit,
    ) {
        let _ = tcp.set_nodelay(true);
        let deadline = Duration::from_millis(self.settings.header_timeout_ms);
        let mut first = [0u8; 1];
        match tokio::time::timeout(deadline, tcp.peek(&mut first)).await {
            Ok(Ok(1)) => {}
            _ => return,
        }
        if first[0] == TLS_HANDSHAKE {
            let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.clone());
            match tokio::time::timeout(deadline, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => self.serve_http(stream, peer, true).await,
                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        } else if self.settings.allow_plaintext_loopback && peer.ip().is_loopback() {
            self.serve_http(tcp, peer, false).await;
        } else {
            refuse_plaintext(tcp).await;
        }
    }

    async fn serve_http<S>(&self, stream: S, peer: SocketAddr, tls: bool)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let session_id: Arc<str> = new_id().into();
        let trail = Arc::new(ClientTrail::new(
            session_id.clone(),
            peer,
            tls,
            self.gateway.recorder.clone(),
            self.gateway.audit.clone(),
        ));
        let client = Arc::new(Client {
            session_id,
            peer,
            peer_text: peer.to_string(),
            origin: ClientOrigin::new(peer, tls),
            tls,
            tokens: TokenCache::default(),
            trail: trail.clone(),
        });
        let activity = Arc::new(Activity::new());
        let gateway = self.gateway.clone();
        let tracker = activity.clone();
        let service = service_fn(move |req| {
            let gateway = gateway.clone();
            let client = client.clone();
            let guard = tracker.begin();
            async move { Ok::<_, Infallible>(proxy::handle(&gateway, &client, req, guard).await) }
        });
        let (io, reclaim) = Reclaimable::new(stream);
        // Boxed so that it can be dropped, giving the stream back, before
        // a 408 is written on it.
        let mut conn = Box::pin(self.builder.serve_connection(TokioIo::new(io), service));
        let idle_limit = Duration::from_secs(self.settings.idle_timeout_secs);
        let mut tick = tokio::time::interval(idle_limit.min(Duration::from_secs(1)));
        let mut closing = false;
        // hyper's header timer starts only once the HTTP version is known,
        // from the first bytes: a TLS client that sends nothing after its
        // handshake would otherwise be held until the idle timeout. (A
        // plain-HTTP one was already waited for, in `connection`.)
        let first_bytes =
            tokio::time::sleep(Duration::from_millis(self.settings.header_timeout_ms));
        tokio::pin!(first_bytes);
        let mut waiting = true;
        let mut stalled_h2 = false;
        let result = loop {
            tokio::select! {
                result = conn.as_mut() => break Some(result),
                _ = &mut first_bytes, if waiting => {
                    if !reclaim.has_read() {
                        break None;
                    }
                    // hyper keeps no head timer for HTTP/2: a connection
                    // that has not completed its first request by now
                    // (a preface or a header block trickled, or nothing
                    // after the preface) is cut off as an HTTP/1.1 head
                    // would be. Later requests' heads are bounded by the
                    // idle timeout.
                    if reclaim.http2() && !activity.begun() {
                        stalled_h2 = true;
                        break None;
                    }
                    waiting = false;
                }
                _ = tick.tick(), if !closing => {
                    if activity.idle_for().is_some_and(|idle| idle >= idle_limit) {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        };
        drop(conn);
        let ending = match result {
            Some(Ok(())) if closing => "idle_timeout",
            Some(Ok(())) => "closed",
            Some(Err(e)) if is_head_timeout(&*e) => match reclaim.take() {
                Reclaimed::Begun(stream) => {
                    tracing::debug!(%peer, "http request head timed out");
                    answer_head_timeout(stream, self.settings.header_timeout_ms).await;
                    "header_timeout"
                }
                Reclaimed::Unflushed => {
                    tracing::debug!(%peer, "http request head timed out with a response unsent: no 408");
                    "header_timeout"
                }
                // No head begun: a kept-alive connection idle since its last
                // response (or a new one that sent nothing). Closed without
                // a word, and recorded as it was before there was a 408.
                Reclaimed::Idle => {
                    tracing::debug!(%peer, "http connection idle past the header deadline");
                    "connection_error"
                }
            },
            Some(Err(e)) => {
                tracing::debug!(%peer, "http connection ended: {e}");
                "connection_error"
            }
            None if stalled_h2 => {
                tracing::debug!(%peer, "no HTTP/2 request completed within the header deadline");
                "header_timeout"
            }
            None => {
                tracing::debug!(%peer, "nothing arrived within the header deadline");
                "connection_error"
            }
        };
        trail.end(ending);
    }
}

/// Whether hyper gave up on a connection at its header deadline
/// (`header_read_timeout`). hyper 1.x answers the head errors it knows (400,
/// 414, 431) itself but closes this one without a word (`Server::on_error`
/// has no status for it), and offers no hook to answer it: the listener
/// does, on the stream it takes back. Its `HeaderTimeout` is the one error
/// `is_timeout` reports with no cause; HTTP/2's keep-alive timeout carries
/// one.
///
/// hyper raises it whether or not any of a head arrived: its timer runs from
/// the moment it starts waiting for a head, on a new connection and on a
/// kept-alive one after each response (`State::idle` sets `notify_read` so
/// that the next `poll_read_head` starts it), and fires as this same error
/// with nothing read. So the error alone does not say that a client
/// stalled; [`Reclaim::take`] tells, from what was read since the last
/// response.
fn is_head_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<hyper::Error>()
        .is_some_and(|e| e.is_timeout() && std::error::Error::source(e).is_none())
}

/// The 408 for a head that did not arrive in time, bounded by the same
/// deadline: a client that does not read does not hold the slot.
async fn answer_head_timeout<S: AsyncWrite + Unpin>(stream: S, header_timeout_ms: u64) {
    let problem = Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "header_timeout",
        format!(
            "the request line and headers did not arrive within {header_timeout_ms} ms \
             (http.header_timeout_ms)"
        ),
    );
    let deadline = Duration::from_millis(header_timeout_ms);
    let _ = tokio::time::timeout(deadline, answer_and_close(stream, &problem)).await;
}

/// How much of a request head the HTTP parsers read. A head over
/// `max_header_bytes` but within this is read whole and answered 431 with a
/// problem document naming the limit; past it, the parser answers 431
/// itself (HTTP/1.1: no body, connection closed; HTTP/2: the stream is
/// refused), having buffered no more than this.
pub fn hard_head_limit(max_header_bytes: usize) -> usize {
    max_header_bytes.saturating_mul(4)
}

/// A plain-HTTP request on the TLS port from a client not allowed to send
/// one: answered once, without reading it, then closed.
async fn refuse_plaintext(tcp: TcpStream) {
    let problem = Problem::bad_request(
        "tls_required",
        "this listener speaks HTTPS: the agent token must travel over TLS",
    );
    answer_and_close(tcp, &problem).await;
}

/// `problem` as the one HTTP/1.1 response on a connection that no HTTP
/// parser owns (any more), then the end of the connection.
async fn answer_and_close<S: AsyncWrite + Unpin>(mut stream: S, problem: &Problem) {
    let body = problem.to_json().to_string();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        problem.status.as_u16(),
        problem.title(),
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Requests in flight on one connection, and when the last one finished.
pub struct Activity {
    in_flight: AtomicUsize,
    /// A request has arrived.
    begun: AtomicBool,
    since: Instant,
    /// Milliseconds after `since` of the last change.
    last: AtomicU64,
}

/// Held by a response until its body is done: the connection is busy.
pub struct ActivityGuard(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            begun: AtomicBool::new(false),
            since: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    pub fn begin(self: &Arc<Self>) -> ActivityGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.begun.store(true, Ordering::Relaxed);
        self.touch();
        ActivityGuard(self.clone())
    }

    fn begun(&self) -> bool {
        self.begun.load(Ordering::Relaxed)
    }

    /// How long the connection has had nothing in flight; `None` while busy.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = self.since.elapsed();
        Some(now.saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed))))
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A session id: random, or (should the OS generator fail) a process-wide
/// counter and the time, which are still unique; an id names a session, it
/// grants nothing.
fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut b = [0u8; 16];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        b[..8].copy_from_slice(&n.to_be_bytes());
        b[8..].copy_from_slice(&t.to_be_bytes());
    }
    b.iter().map(|b| format!("{b:02x}")).collect()
}
