//! Session workers: one single-threaded tokio runtime per core, each with
//! its own I/O driver, for the data path's sessions.
//!
//! A relayed session is a ping-pong of small reads and writes. On the
//! work-stealing runtime every readiness event may wake an idle sibling
//! worker to look for work, and a session's socket events are dispatched
//! by whichever thread holds the I/O driver; with a runtime per core a
//! session's sockets, timers and task stay on one thread. On two cores, a
//! bare tokio TCP relay under `pgbench -S -M prepared -c 8` went from 0.96×
//! to 1.18× PgBouncer's throughput; the gateway itself gained ~6% there and
//! ~13% under `just bench-http`.
//!
//! Sessions are handed out round-robin as they are accepted; a session
//! never moves. Everything else (listeners, the admin API, reloads,
//! deliveries) stays on the main runtime.

use std::cell::Cell;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// The index of the worker this thread runs, if it runs one.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The worker running the calling thread: `None` off the workers (the main
/// runtime, tests). State kept per worker (pooled upstream connections)
/// is indexed by it, so that a session only meets connections whose I/O its
/// own thread drives.
pub fn current() -> Option<usize> {
    CURRENT.with(Cell::get)
}

pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    /// Each worker runs until its sender is dropped.
    running: Mutex<Vec<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Workers {
    /// `threads` workers; 0: one per core the process may use.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let n = match threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Self::with_threads(n)
    }

    pub fn with_threads(n: usize) -> std::io::Result<Self> {
        let mut handles = Vec::with_capacity(n);
        let mut running = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("sluice-session-{i}"))
                .spawn(move || {
                    CURRENT.with(|c| c.set(Some(i)));
                    // Sessions run while this waits; dropping the runtime
                    // then drops them (their recordings flush on drop).
                    let _ = runtime.block_on(stopped);
                    drop(runtime);
                })?;
            running.push((stop, thread));
        }
        Ok(Self {
            handles,
            next: AtomicUsize::new(0),
            running: Mutex::new(running),
        })
    }

    /// How many workers run sessions.
    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// Runs a session on the next worker. Sockets must be registered inside
    /// the future (e.g. `TcpStream::from_std`), so that the worker's own
    /// I/O driver serves them.
    pub fn spawn<F>(&self, session: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles[i].spawn(session);
    }

    /// Stops every worker and waits for its sessions to be dropped. Blocks.
    pub fn shutdown(&self) {
        let running = std::mem::take(&mut *self.running.lock().unwrap_or_else(|e| e.into_inner()));
        for (stop, thread) in running {
            drop(stop);
            let _ = thread.join();
        }
    }
}
