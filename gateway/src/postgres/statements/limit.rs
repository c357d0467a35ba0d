//! The bound on the named statements a session holds: a message that would
//! prepare one more than [`MAX_NAMED`] is refused (54000) rather than
//! forwarded, so that the server never holds a statement the gateway does
//! not know (whose Binds would reach the guardrails without a text).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Effect, Prepared, Statements};

/// Named statements a session may hold through the gateway (the unnamed one
/// aside). Each costs the gateway its text and analysis.
pub const MAX_NAMED: usize = 10_000;

/// Whether a message may define the statements it defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    Fits,
    /// One more than [`MAX_NAMED`].
    Full,
    /// It depends on changes sent in this batch, not answered yet.
    AfterBatch(u64),
}

impl Statements {
    /// Whether a message sent in `batch` doing `effects` leaves the session
    /// at most [`MAX_NAMED`] named statements. Changes of its own batch
    /// count: should one fail, the server skips the message. Near the
    /// limit, those of an earlier batch must be answered first: a Close may
    /// be skipped, a Parse refused.
    pub fn room(&self, effects: &[Effect<'_>], batch: u64) -> Room {
        let defines = effects
            .iter()
            .filter(|e| matches!(e, Effect::Define(n) if !n.is_empty()))
            .count();
        if defines == 0 || self.named() + self.journal.len() + defines <= MAX_NAMED {
            return Room::Fits;
        }
        let earlier = self
            .journal
            .iter()
            .filter(|p| p.batch < batch && p.change.effect().is_some_and(names_one))
            .map(|p| p.batch)
            .max();
        if let Some(earlier) = earlier {
            return Room::AfterBatch(earlier);
        }
        let mut names = Names::new(&self.known);
        for effect in self.journal.iter().filter_map(|p| p.change.effect()) {
            names.apply(effect);
        }
        for &effect in effects {
            if let Effect::Define(n) = effect
                && !n.is_empty()
                && !names.has(n)
                && names.count() >= MAX_NAMED
            {
                return Room::Full;
            }
            names.apply(effect);
        }
        Room::Fits
    }

    /// Named statements the gateway knows the server holds.
    pub(super) fn named(&self) -> usize {
        self.known.len() - usize::from(self.known.contains_key(""))
    }
}

/// Whether `effect` changes a named statement (the unnamed one is not
/// counted).
fn names_one(effect: Effect<'_>) -> bool {
    !matches!(effect, Effect::Define("") | Effect::Drop(""))
}

/// The names as they will be once some changes happen: the known ones,
/// changed without copying them.
struct Names<'a> {
    known: &'a HashMap<String, Arc<Prepared>>,
    /// Every known name was dropped.
    cleared: bool,
    removed: HashSet<&'a str>,
    added: HashSet<&'a str>,
}

impl<'a> Names<'a> {
    fn new(known: &'a HashMap<String, Arc<Prepared>>) -> Self {
        Self {
            known,
            cleared: false,
            removed: HashSet::new(),
            added: HashSet::new(),
        }
    }

    fn was_known(&self, name: &str) -> bool {
        !self.cleared && !self.removed.contains(name) && self.known.contains_key(name)
    }

    fn has(&self, name: &str) -> bool {
        self.added.contains(name) || self.was_known(name)
    }

    /// Named statements.
    fn count(&self) -> usize {
        let known = if self.cleared {
            0
        } else {
            self.known.len() - usize::from(self.known.contains_key("")) - self.removed.len()
        };
        known + self.added.len()
    }

    fn apply(&mut self, effect: Effect<'a>) {
        match effect {
            _ if !names_one(effect) => {}
            // A name in use stays: the server refuses the Parse.
            Effect::Define(n) => {
                if !self.has(n) {
                    self.added.insert(n);
                }
            }
            Effect::Drop(n) => {
                if !self.added.remove(n) && self.was_known(n) {
                    self.removed.insert(n);
                }
            }
            Effect::DropAll => {
                self.cleared = true;
                self.removed.clear();
                self.added.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(text: &str) -> Arc<Prepared> {
        Prepared::new(text, Arc::from(Vec::new()), vec![23], None, false)
    }

    #[test]
    fn named_statements_are_bounded() {
        let mut s = Statements::default();
        for i in 0..MAX_NAMED {
            s.parsing(0, format!("s{i}"), statement("one"));
            s.parse_complete(0);
        }
        let one_more = [Effect::Define("one_more")];
        assert_eq!(s.room(&one_more, 1), Room::Full);
        // The unnamed statement replaces itself; a name in use is the
        // server's to refuse.
        assert_eq!(s.room(&[Effect::Define("")], 1), Room::Fits);
        assert_eq!(s.room(&[Effect::Define("s0")], 1), Room::Fits);

        // A Close in the same batch frees a name; one of an earlier batch
        // must be answered first, as it may be skipped.
        s.closing(1, b'S', "s0");
        assert_eq!(s.room(&one_more, 1), Room::Fits);
        s.parsing(1, "one_more".into(), statement("two"));
        assert_eq!(s.room(&[Effect::Define("and_another")], 1), Room::Full);
        assert_eq!(s.room(&one_more, 2), Room::AfterBatch(1));
        s.failed(1);
        // The unnamed statement of an earlier batch changes no count.
        s.parsing(2, String::new(), statement("unnamed"));
        assert_eq!(s.room(&one_more, 3), Room::Full);
        s.failed(2);
        assert_eq!(s.room(&one_more, 2), Room::Full);
        s.closing(3, b'S', "s0");
        s.close_complete(3);
        assert_eq!(s.room(&one_more, 4), Room::Fits);

        // SQL commands count in their order.
        let sql = crate::sql::Analyzer::new(0);
        let replace = sql.analyze("DEALLOCATE s1; PREPARE a AS SELECT 1").unwrap();
        assert_eq!(s.room(&Statements::effects(&replace), 4), Room::Fits);
        let two = sql
            .analyze("PREPARE a AS SELECT 1; PREPARE b AS SELECT 1")
            .unwrap();
        assert_eq!(s.room(&Statements::effects(&two), 4), Room::Full);
        let after_all = sql
            .analyze("DEALLOCATE ALL; PREPARE a AS SELECT 1; PREPARE b AS SELECT 1")
            .unwrap();
        assert_eq!(s.room(&Statements::effects(&after_all), 4), Room::Fits);
    }
}
