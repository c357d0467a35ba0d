//! Which SQL phases a session's selective guardrails judge (see
//! [`super::Chain::check_sql`]).

use std::sync::{Arc, Mutex};

use super::bindings::types::SqlPhase;
use super::plugin::Plugin;

/// Which SQL phases each selective guardrail judges in one session: asked
/// once per plugin generation, so that a reloaded plugin is asked again.
#[derive(Default)]
pub struct PhaseSelections {
    known: Mutex<Vec<(Arc<str>, u64, PhaseSet)>>,
}

/// SQL phases as bits (looked up on every Bind: no allocation).
#[derive(Clone, Copy)]
pub(super) struct PhaseSet(u8);

impl PhaseSet {
    pub(super) const EVERY: PhaseSet = PhaseSet(u8::MAX);

    fn bit(phase: SqlPhase) -> u8 {
        match phase {
            SqlPhase::SimpleQuery => 1,
            SqlPhase::Parse => 2,
            SqlPhase::Bind => 4,
            SqlPhase::FunctionCall => 8,
        }
    }

    pub(super) fn of(phases: &[SqlPhase]) -> Self {
        PhaseSet(phases.iter().fold(0, |bits, &p| bits | Self::bit(p)))
    }

    pub(super) fn has(self, phase: SqlPhase) -> bool {
        self.0 & Self::bit(phase) != 0
    }
}

impl PhaseSelections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Arc<str>, u64, PhaseSet)>> {
        // Entries are replaced whole: a poisoned lock holds no half-update.
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn get(&self, plugin: &Plugin) -> Option<PhaseSet> {
        self.lock()
            .iter()
            .find(|(n, g, _)| **n == *plugin.name() && *g == plugin.generation())
            .map(|&(_, _, p)| p)
    }

    pub(super) fn put(&self, plugin: &Plugin, phases: PhaseSet) {
        let mut known = self.lock();
        known.retain(|(n, _, _)| **n != *plugin.name());
        known.push((plugin.name_arc(), plugin.generation(), phases));
    }
}
