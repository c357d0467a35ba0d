//! Body plumbing: one boxed body type for both directions, bounded
//! collection of a body the gateway must inspect, a buffered prefix put back
//! in front of the rest of a stream, and a channel-fed body for responses
//! rewritten on the fly.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use tokio::sync::mpsc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed_unsync()
}

pub fn incoming(body: Incoming) -> Body {
    body.map_err(BoxError::from).boxed_unsync()
}

/// How long, and how much of, a dropped request body is read (see
/// [`AgentBody`]), once its sender is known.
const DRAIN: Drain = Drain {
    time: Duration::from_secs(10),
    bytes: 64 << 20,
};
/// The same for a client whose token was not accepted: it holds its
/// connection slot for less.
const DRAIN_UNKNOWN: Drain = Drain {
    time: Duration::from_secs(2),
    bytes: 8 << 20,
};
/// Longest the client may pause while it is.
const DRAIN_IDLE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy)]
struct Drain {
    time: Duration,
    bytes: usize,
}
/// Bodies drained at once in the process; past it, a dropped body is not
/// read (the client may meet a reset, as before draining existed).
const MAX_DRAINS: usize = 1024;

static DRAINS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The agent's request body. Dropped before its end (a refusal answered
/// without reading it, an upstream that answered early), the rest is read
/// and discarded for a while on a task of its own, as nginx's lingering
/// close does: a client that sends its whole body before it reads the
/// answer would otherwise meet a reset (HTTP/1.1) or an `RST_STREAM`
/// (HTTP/2) instead of the 413 or 403 waiting for it. Not for a client
/// that asked `Expect: 100-continue` and was answered before the body was
/// read: it waits for the answer, and reading would invite the body the
/// answer refuses. Bounded in time, bytes and bodies at once, more tightly
/// before the agent's token is accepted.
pub struct AgentBody {
    inner: Option<Incoming>,
    expects_continue: bool,
    /// Read from: a `100 Continue` went out.
    read: bool,
    ended: bool,
    drain: Drain,
}

impl AgentBody {
    pub fn new(inner: Incoming, expects_continue: bool) -> Self {
        Self {
            inner: Some(inner),
            expects_continue,
            read: false,
            ended: false,
            drain: DRAIN_UNKNOWN,
        }
    }

    /// The agent's token was accepted: a refusal from here on drains the
    /// body for longer.
    pub fn authenticated(&mut self) {
        self.drain = DRAIN;
    }
}

impl HttpBody for AgentBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.read = true;
        let polled = match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        };
        if let Poll::Ready(None | Some(Err(_))) = polled {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for AgentBody {
    fn drop(&mut self) {
        if self.is_end_stream() || (self.expects_continue && !self.read) {
            return;
        }
        let Some(body) = self.inner.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let taken = DRAINS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < MAX_DRAINS).then_some(n + 1)
        });
        if taken.is_ok() {
            let slot = DrainSlot;
            let limits = self.drain;
            runtime.spawn(async move {
                drain(body, limits).await;
                drop(slot);
            });
        }
    }
}

/// One of [`MAX_DRAINS`], given back however the drain ends (a runtime
/// shutting down drops the task unfinished).
struct DrainSlot;

impl Drop for DrainSlot {
    fn drop(&mut self) {
        DRAINS.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn drain(mut body: Incoming, limits: Drain) {
    let until = tokio::time::Instant::now() + limits.time;
    let mut left = limits.bytes;
    while tokio::time::Instant::now() < until {
        match tokio::time::timeout(DRAIN_IDLE, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, Bytes::len);
                match left.checked_sub(n) {
                    Some(rest) => left = rest,
                    None => return,
                }
            }
            _ => return,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("the body did not arrive within {0:?}")]
    Timeout(Duration),
    #[error("reading the body: {0}")]
    Read(BoxError),
}

/// A body read up to a limit.
pub struct Collected<B> {
    /// Up to `limit + 1` bytes: one more than the limit tells "longer".
    pub bytes: Bytes,
    /// The whole body is in `bytes`.
    pub complete: bool,
    /// What is left of the stream when `complete` is false.
    pub rest: Option<B>,
}

/// Reads `body` until it ends or more than `limit` bytes have arrived,
/// within `deadline`. Trailers are dropped: nothing the gateway inspects
/// travels in them.
pub async fn collect<B>(
    mut body: B,
    limit: usize,
    deadline: Duration,
) -> Result<Collected<B>, CollectError>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let read = async {
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| CollectError::Read(e.into()))?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                if buf.len() > limit {
                    return Ok((buf.freeze(), false));
                }
            }
        }
        Ok((buf.freeze(), true))
    };
    let (bytes, complete) = tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| CollectError::Timeout(deadline))??;
    Ok(Collected {
        bytes,
        complete,
        rest: (!complete).then_some(body),
    })
}

/// A prefix already read, then the rest of the stream.
pub struct Prefixed<B> {
    prefix: Option<Bytes>,
    rest: B,
}

impl<B> Prefixed<B> {
    pub fn new(prefix: Bytes, rest: B) -> Self {
        Self {
            prefix: (!prefix.is_empty()).then_some(prefix),
            rest,
        }
    }
}

impl<B> HttpBody for Prefixed<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        Pin::new(&mut self.rest)
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let extra = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        // `SizeHint`'s setters assert lower <= upper at every step: raise
        // the upper bound before the lower one.
        let mut hint = SizeHint::new();
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(extra));
        }
        hint.set_lower(rest.lower().saturating_add(extra));
        hint
    }
}

/// A body fed by a task through a channel. An `Err` item aborts the
/// response (the connection or stream is reset): that is how a stream that
/// can no longer be masked ends without sending anything unmasked.
pub struct Channel {
    rx: mpsc::Receiver<Result<Bytes, BoxError>>,
}

pub fn channel(depth: usize) -> (mpsc::Sender<Result<Bytes, BoxError>>, Channel) {
    let (tx, rx) = mpsc::channel(depth);
    (tx, Channel { rx })
}

impl HttpBody for Channel {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collect_stops_one_past_the_limit_and_keeps_the_rest() {
        let body = Full::new(Bytes::from_static(b"0123456789"));
        let c = collect(body, 20, Duration::from_secs(1)).await.unwrap();
        assert!(c.complete && c.rest.is_none());
        assert_eq!(&c.bytes[..], b"0123456789");

        let (tx, rx) = channel(4);
        for chunk in ["abc", "def", "ghi"] {
            tx.send(Ok(Bytes::from(chunk))).await.unwrap();
        }
        drop(tx);
        let c = collect(rx, 4, Duration::from_secs(1)).await.unwrap();
        assert!(!c.complete);
        assert_eq!(&c.bytes[..], b"abcdef");
        let rest = Prefixed::new(c.bytes, c.rest.unwrap());
        let all = rest.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"abcdefghi");
    }

    #[test]
    fn a_prefix_adds_to_an_exact_length() {
        // A streamed request body with a Content-Length: the part read
        // for the guardrails, then the rest of a known length.
        let body = Prefixed::new(
            Bytes::from_static(b"ab"),
            Full::new(Bytes::from_static(b"cdef")),
        );
        assert_eq!(body.size_hint().exact(), Some(6));
    }

    #[tokio::test]
    async fn collect_times_out() {
        let (_tx, rx) = channel(1);
        let err = collect(rx, 4, Duration::from_millis(20))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, CollectError::Timeout(_)));
    }
}
