//! The client's stream as hyper and the listener share it (see
//! [`Reclaimable`]).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client's stream, shared with hyper so that the listener can take it
/// back after hyper has given up on the connection. It also tells whether
/// a request head had begun (bytes read since hyper last wrote a response)
/// and whether all hyper wrote reached the client (flushed): a 408 is
/// written only for a head begun, never on an idle connection (a client
/// reusing it would read the 408 as the answer to its next request), and
/// never into the middle of a response.
pub(super) struct Reclaimable<S>(Arc<Mutex<Shared<S>>>);

struct Shared<S> {
    stream: Option<S>,
    /// Bytes written and not yet flushed: part of a response may be unsent.
    unflushed: bool,
    /// Bytes read since hyper last wrote: the start of a request head it
    /// has not finished (or of a body it read after answering, see
    /// [`Reclaim::take`]).
    unanswered: bool,
    /// Bytes read at all.
    read: bool,
    /// The first bytes read, as far as they go along the HTTP/2 preface.
    preface: usize,
    /// They left it: not HTTP/2 with prior knowledge or by ALPN.
    not_preface: bool,
}

/// What an HTTP/2 connection starts with (RFC 9113, 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The listener's handle on a [`Reclaimable`] stream.
pub(super) struct Reclaim<S>(Arc<Mutex<Shared<S>>>);

/// What the listener may do with the stream after hyper's header deadline.
pub(super) enum Reclaimed<S> {
    /// A head had begun and all hyper wrote was flushed: the stream, to
    /// answer 408 on.
    Begun(S),
    /// A head had begun, but part of a response may still be unsent.
    Unflushed,
    /// Nothing read since the last response (or at all): an idle
    /// connection, closed without a word.
    Idle,
}

impl<S> Reclaimable<S> {
    pub(super) fn new(stream: S) -> (Self, Reclaim<S>) {
        let shared = Arc::new(Mutex::new(Shared {
            stream: Some(stream),
            unflushed: false,
            unanswered: false,
            read: false,
            preface: 0,
            not_preface: false,
        }));
        (Self(shared.clone()), Reclaim(shared))
    }

    fn lock(&self) -> MutexGuard<'_, Shared<S>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S> Reclaim<S> {
    /// Whether anything was read from the stream yet.
    pub(super) fn has_read(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).read
    }

    /// Whether what was read so far is (the start of) an HTTP/2 connection.
    pub(super) fn http2(&self) -> bool {
        let s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.preface > 0 && !s.not_preface
    }

    /// The stream, if a request head had begun and everything written to
    /// it was flushed.
    ///
    /// "Begun" is judged by bytes read since hyper last wrote (an HTTP/1.1
    /// server writes only responses): what was read before a response
    /// belongs to the request it answers, so a kept-alive connection that
    /// merely idles is `Idle`. Not by bytes read since the last flush:
    /// hyper flushes on every pass of its dispatch loop, with nothing to
    /// write too, so that would forget a partial head as soon as it was
    /// read. Two rare cases are judged wrong, each towards what hyper did
    /// before the 408: a partial head pipelined behind a request (read
    /// before that request's response) is taken as `Idle`, and the rest of
    /// a body hyper drains after an early response as a head `Begun`.
    pub(super) fn take(self) -> Reclaimed<S> {
        let mut shared = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !shared.unanswered {
            return Reclaimed::Idle;
        }
        if shared.unflushed {
            return Reclaimed::Unflushed;
        }
        match shared.stream.take() {
            Some(stream) => Reclaimed::Begun(stream),
            None => Reclaimed::Unflushed,
        }
    }
}

fn taken<T>() -> Poll<io::Result<T>> {
    Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
}

impl<S: AsyncRead + Unpin> AsyncRead for Reclaimable<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut shared = self.lock();
        let Some(s) = shared.stream.as_mut() else {
            return taken();
        };
        let before = buf.filled().len();
        let read = Pin::new(s).poll_read(cx, buf);
        if buf.filled().len() > before {
            shared.unanswered = true;
            shared.read = true;
            shared.follow_preface(&buf.filled()[before..]);
        }
        read
    }
}

impl<S> Shared<S> {
    fn follow_preface(&mut self, read: &[u8]) {
        if self.not_preface || self.preface == H2_PREFACE.len() {
            return;
        }
        let expected = &H2_PREFACE[self.preface..];
        let n = read.len().min(expected.len());
        if read[..n] == expected[..n] {
            self.preface += n;
        } else {
            self.not_preface = true;
        }
    }

    /// After a write: once bytes of a response went out, what was read
    /// before belongs to the request it answers.
    fn wrote(&mut self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.unanswered = false;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Reclaimable<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut shared = self.lock();
        shared.unflushed = true;
        let Some(s) = shared.stream.as_mut() else {
            return taken();
        };
        let written = Pin::new(s).poll_write(cx, buf);
        shared.wrote(&written);
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut shared = self.lock();
        shared.unflushed = true;
        let Some(s) = shared.stream.as_mut() else {
            return taken();
        };
        let written = Pin::new(s).poll_write_vectored(cx, bufs);
        shared.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.lock()
            .stream
            .as_ref()
            .is_some_and(AsyncWrite::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut shared = self.lock();
        let Some(s) = shared.stream.as_mut() else {
            return taken();
        };
        let flushed = Pin::new(s).poll_flush(cx);
        if matches!(flushed, Poll::Ready(Ok(()))) {
            shared.unflushed = false;
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.lock().stream.as_mut() {
            Some(s) => Pin::new(s).poll_shutdown(cx),
            None => taken(),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn is_idle<S>(r: &Reclaimed<S>) -> bool {
        matches!(r, Reclaimed::Idle)
    }

    /// The 408 goes only where hyper left nothing half sent.
    #[tokio::test]
    async fn the_stream_comes_back_only_when_everything_was_flushed() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let (mut io, reclaim) = Reclaimable::new(ours);
        io.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        theirs.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert!(io.read(&mut [0u8; 64]).await.unwrap() > 0);
        drop(io);
        assert!(
            matches!(reclaim.take(), Reclaimed::Unflushed),
            "written, not flushed"
        );

        let (ours, mut theirs) = tokio::io::duplex(1024);
        let (mut io, reclaim) = Reclaimable::new(ours);
        theirs.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert!(io.read(&mut [0u8; 64]).await.unwrap() > 0);
        let Reclaimed::Begun(mut stream) = reclaim.take() else {
            panic!("a head begun, nothing written");
        };
        stream.write_all(b"more").await.unwrap();
        // hyper, had it kept its end, finds the stream gone.
        assert_eq!(
            io.write(b"x").await.unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
    }

    /// Only a head begun since the last response is answered: an idle
    /// connection, new or kept alive, is closed without a word.
    #[tokio::test]
    async fn a_head_is_begun_by_bytes_read_since_the_last_response() {
        let (ours, _theirs) = tokio::io::duplex(1024);
        let (io, reclaim) = Reclaimable::new(ours);
        assert!(!reclaim.has_read());
        drop(io);
        assert!(is_idle(&reclaim.take()), "nothing read");

        let (ours, mut theirs) = tokio::io::duplex(1024);
        let (mut io, reclaim) = Reclaimable::new(ours);
        theirs.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(io.read(&mut [0u8; 64]).await.unwrap() > 0);
        assert!(reclaim.has_read());
        io.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        io.flush().await.unwrap();
        // hyper flushes on every pass of its loop, nothing written or not.
        io.flush().await.unwrap();
        let shared = Reclaim(io.0.clone());
        assert!(is_idle(&shared.take()), "kept alive, idle");

        theirs.write_all(b"GET / HT").await.unwrap();
        assert!(io.read(&mut [0u8; 64]).await.unwrap() > 0);
        io.flush().await.unwrap();
        assert!(
            matches!(reclaim.take(), Reclaimed::Begun(_)),
            "a second head begun"
        );
    }
}
