//! A request body streamed to the upstream, watched as it goes: the
//! upstream's answer is not due until the body has been sent (an upload
//! that takes longer than `response_timeout_ms` is not the upstream being
//! slow), and while it is being sent, a pause longer than the body timeout
//! is the agent's stall (408) or the upstream no longer reading (504).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::body::BoxError;

/// What the sending side sees of a [`Watched`] body.
#[derive(Clone)]
pub struct UploadWatch(Arc<State>);

struct State {
    started: Instant,
    /// Milliseconds after `started` of the last frame (or the end).
    last_ms: AtomicU64,
    done: AtomicBool,
    /// The body was last polled for more and the agent had none yet.
    awaiting_agent: AtomicBool,
}

/// Where an upload stands, for the response deadline.
pub enum Stage {
    /// Sent whole (or failed) at this instant: the answer is due from here.
    Sent(Instant),
    /// Still being sent; the last byte moved at this instant.
    Sending { last: Instant, awaiting_agent: bool },
}

impl UploadWatch {
    fn touch(&self) {
        let ms = u64::try_from(self.0.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.store(ms, Ordering::Relaxed);
    }

    pub fn stage(&self) -> Stage {
        let last = self.0.started + Duration::from_millis(self.0.last_ms.load(Ordering::Relaxed));
        if self.0.done.load(Ordering::Relaxed) {
            Stage::Sent(last)
        } else {
            Stage::Sending {
                last,
                awaiting_agent: self.0.awaiting_agent.load(Ordering::Relaxed),
            }
        }
    }
}

pub struct Watched<B> {
    inner: B,
    watch: UploadWatch,
}

impl<B> Watched<B> {
    pub fn new(inner: B) -> (Self, UploadWatch) {
        let watch = UploadWatch(Arc::new(State {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            done: AtomicBool::new(false),
            awaiting_agent: AtomicBool::new(false),
        }));
        (
            Self {
                inner,
                watch: watch.clone(),
            },
            watch,
        )
    }
}

impl<B> HttpBody for Watched<B>
where
    B: HttpBody<Data = Bytes, Error = BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let state = &self.watch.0;
        match &polled {
            Poll::Pending => state.awaiting_agent.store(true, Ordering::Relaxed),
            Poll::Ready(Some(Ok(_))) => {
                state.awaiting_agent.store(false, Ordering::Relaxed);
                self.watch.touch();
                // hyper asks `is_end_stream` rather than polling past a
                // body's announced length.
                if self.inner.is_end_stream() {
                    state.done.store(true, Ordering::Relaxed);
                }
            }
            Poll::Ready(None | Some(Err(_))) => {
                self.watch.touch();
                state.done.store(true, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end && !self.watch.0.done.swap(true, Ordering::Relaxed) {
            self.watch.touch();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
