//! Events nobody waits for ([`super::Audit::emit`]), held back from the
//! writer thread until something else wakes it.
//!
//! Waking the writer costs a futex call and a context switch, which on a
//! busy gateway costs more than writing the record. A PostgreSQL statement
//! makes two records: its write-ahead record, awaited, and its completion,
//! which nobody waits for. Queued here, the completion is written with the
//! next write-ahead record, ahead of it (by the session that appends it,
//! or by the writer thread), and the log keeps each session's order.
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

    /// An event nobody waits for: queued, and an idle writer woken for it.
    /// It stays here rather than travel in the wake-up, so that whoever
    /// writes next (the writer thread or an inline append) writes it first.
    pub(crate) fn emit(&self, item: Item, tx: &Sender<Command>) -> Result<(), Closed> {
        let mut s = self.lock();
        s.items.push(item);
        if std::mem::take(&mut s.writer_asleep) {
            return tx.send(Command::Wake).map_err(|_| Closed);
        }
        Ok(())
    }

    /// After an inline append: a writer asleep without a deadline must
    /// learn that the log has unsynced records.
    pub(crate) fn wake_if_asleep(&self, tx: &Sender<Command>) {
        if std::mem::take(&mut self.lock().writer_asleep) {
            let _ = tx.send(Command::Wake);
        }
    }

    /// For the writer thread, under the writer's lock: everything queued.
    /// It goes before the write-ahead records the channel brought: a session
    /// queues events only while it waits for none of its appends, so those
    /// of a session waiting on the channel were queued before its append.
    /// (Moving them into the channel instead would hide them from an
    /// inline append committing meanwhile.)
    pub(crate) fn take(&self) -> Vec<Item> {
        let mut s = self.lock();
        s.writer_asleep = false;
        std::mem::take(&mut s.items)
    }

    /// For an inline append, under the writer's lock: everything queued
    /// before it.
    pub(crate) fn take_items(&self) -> Vec<Item> {
        std::mem::take(&mut self.lock().items)
    }

    /// For an idle writer about to sleep without a deadline: `false` when
    /// events are waiting, else the next emit will wake it.
    pub(crate) fn sleep(&self) -> bool {
        let mut s = self.lock();
        s.writer_asleep = s.items.is_empty();
        s.writer_asleep
    }
}
