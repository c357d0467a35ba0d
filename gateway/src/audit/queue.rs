//! Events nobody waits for ([`super::Audit::emit`]), held back from the
//! writer thread until something else wakes it.
//!
//! Waking the writer costs a futex call and a context switch, which on a
//! busy gateway costs more than writing the record. A PostgreSQL statement
//! makes two records: its write-ahead record, awaited (the writer must wake
//! for it), and its completion, which nobody waits for. Queued here, the
//! completion goes to the writer together with the session's next
//! write-ahead record, ahead of it, so a busy session wakes the writer once
//! per statement instead of twice, and the log keeps each session's order.
//!
//! No event waits long: while events flow the writer looks here at least
//! every [`LINGER`], and a writer that has been idle for [`IDLE_AFTER`]
//! sleeps only once it has said so here, so that the next emit wakes it.

use std::sync::Mutex;
use std::sync::mpsc::Sender;
use std::time::Duration;

use super::writer::{Command, Item};

/// Longest an emitted event waits for the writer while events flow.
pub(crate) const LINGER: Duration = Duration::from_millis(5);
/// Without events for this long the writer sleeps until woken.
pub(crate) const IDLE_AFTER: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct Queued {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    items: Vec<Item>,
    /// The writer sleeps without a deadline for these items: an emit must
    /// wake it.
    writer_asleep: bool,
}

/// The writer thread is gone.
pub(crate) struct Closed;

impl Queued {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Pushes and takes leave the state whole at every point.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An event nobody waits for: queued, or sent at once to an idle writer.
    pub(crate) fn emit(&self, item: Item, tx: &Sender<Command>) -> Result<(), Closed> {
        let mut s = self.lock();
        if s.writer_asleep {
            // The queue is empty while the writer sleeps: order is kept.
            return tx.send(Command::Append(item)).map_err(|_| Closed);
        }
        s.items.push(item);
        Ok(())
    }

    /// An event the caller waits for, sent after everything queued before
    /// it. The lock is held across both sends so that no other sender's
    /// message lands between a session's queued events and its next one.
    pub(crate) fn append(&self, item: Item, tx: &Sender<Command>) -> Result<(), Closed> {
        let mut s = self.lock();
        if !s.items.is_empty() {
            let earlier = std::mem::take(&mut s.items);
            tx.send(Command::Queued(earlier)).map_err(|_| Closed)?;
        }
        tx.send(Command::Append(item)).map_err(|_| Closed)
    }

    /// For the writer, once it has taken what the channel held: everything
    /// queued since (which is newer than all of that).
    pub(crate) fn take(&self) -> Vec<Item> {
        let mut s = self.lock();
        s.writer_asleep = false;
        std::mem::take(&mut s.items)
    }

    /// For an idle writer about to sleep without a deadline: `false` when
    /// events are waiting, else the next emit will wake it.
    pub(crate) fn sleep(&self) -> bool {
        let mut s = self.lock();
        s.writer_asleep = s.items.is_empty();
        s.writer_asleep
    }
}
