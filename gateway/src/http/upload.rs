//! A request body streamed to the upstream, watched as it goes (by the
//! wrapper that counts its bytes, [`super::record::Counted`]): the
//! upstream's answer is not due until the body has been sent (an upload
//! that takes longer than `response_timeout_ms` is not the upstream being
//! slow), and while it is being sent, a pause longer than the body timeout
//! is the agent's stall (408) or the upstream no longer reading (504).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

/// How far a streamed request body has gone, shared by the body and the
/// exchange waiting for the upstream's answer.
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
    pub fn new() -> Self {
        Self(Arc::new(State {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            done: AtomicBool::new(false),
            awaiting_agent: AtomicBool::new(false),
        }))
    }

    /// What one poll of the body gave; `end`: the body says it has ended
    /// (hyper asks `is_end_stream` rather than polling past a body's
    /// announced length).
    pub fn polled<T, E>(&self, polled: &Poll<Option<Result<T, E>>>, end: bool) {
        match polled {
            Poll::Pending => self.0.awaiting_agent.store(true, Ordering::Relaxed),
            Poll::Ready(Some(Ok(_))) => {
                self.0.awaiting_agent.store(false, Ordering::Relaxed);
                self.touch();
                if end {
                    self.0.done.store(true, Ordering::Relaxed);
                }
            }
            Poll::Ready(None | Some(Err(_))) => self.ended(),
        }
    }

    /// The body has ended (or failed): the answer is due from now.
    pub fn ended(&self) {
        if !self.0.done.load(Ordering::Relaxed) {
            self.touch();
            self.0.done.store(true, Ordering::Relaxed);
        }
    }

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
