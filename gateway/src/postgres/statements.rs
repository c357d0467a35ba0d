//! The session's prepared statements, as the server holds them.
//!
//! A Bind reaches the guardrails with its statement's text and analysis, and
//! its binary values decoded by the statement's parameter types; each
//! execution's audit record names the text it runs. All of that must be what
//! the server will run, not what the client last asked for: a Parse of a
//! name in use fails, so does a Parse the server cannot plan, a Close after
//! an error in its batch is skipped, and SQL `PREPARE`, `DEALLOCATE` and
//! `DISCARD ALL` change the same namespace. So a change is journaled when its
//! message is forwarded and applied when the server acknowledges it
//! (ParseComplete, CloseComplete, the command's CommandComplete), in the
//! server's order; an error drops the rest of its batch's changes, as the
//! server skips the rest of the batch.
//!
//! A lookup made before those acknowledgements arrive may count on the
//! changes of its own batch: should one fail, the server skips the rest of
//! the batch, the message looked up for included. It cannot count on a
//! change from an earlier batch, and says to wait until that batch is
//! answered ([`Lookup::AfterBatch`]).
//!
//! The gateway keeps at most [`MAX_NAMED`] named statements per session: a
//! message that would prepare one more is refused ([`Statements::room`]),
//! so that the server never holds a statement the gateway does not know.
//! Names are the server's: it compares them on their first 63 bytes, so a
//! protocol message naming a longer one is refused before it gets here
//! ([`super::checks::name_too_long`]); SQL names are cut to 63 bytes by the
//! parser, the server's as the analysis'.
//!
//! Out of sight: statements that server-side code (a function, a DO block)
//! prepares or deallocates through SPI.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::plugins::bindings::types::SqlStatement;

mod limit;

pub use limit::{MAX_NAMED, Room};

/// A prepared statement.
pub struct Prepared {
    pub text: Arc<str>,
    /// Its analysis, as the guardrails saw it when it was prepared.
    pub statements: Arc<[SqlStatement]>,
    /// Parameter types: those the Parse declared, completed by the server's
    /// ParameterDescription (0 = unknown).
    pub types: Vec<u32>,
    /// The audit record written before it was prepared.
    pub record: Option<u64>,
    /// Whether the execution that record covers has happened (SQL `PREPARE`
    /// records the preparation only: its executions get records of their own).
    executed: AtomicBool,
    /// The guardrail generations that last allowed it (see
    /// [`crate::plugins::Chain::guardrail_epoch`]); 0 when unknown. Binds
    /// skip the guardrails that do not judge binds only under these.
    judged_under: AtomicU64,
}

impl Prepared {
    pub fn new(
        text: &str,
        statements: Arc<[SqlStatement]>,
        types: Vec<u32>,
        record: Option<u64>,
        executed: bool,
    ) -> Arc<Self> {
        Self::with(text, statements, types, record, executed, 0)
    }

    /// A statement of a Parse the guardrails of `epoch` allowed.
    pub fn judged(
        text: &str,
        statements: Arc<[SqlStatement]>,
        types: Vec<u32>,
        record: Option<u64>,
        epoch: u64,
    ) -> Arc<Self> {
        Self::with(text, statements, types, record, false, epoch)
    }

    fn with(
        text: &str,
        statements: Arc<[SqlStatement]>,
        types: Vec<u32>,
        record: Option<u64>,
        executed: bool,
        epoch: u64,
    ) -> Arc<Self> {
        Arc::new(Self {
            text: text.into(),
            statements,
            types,
            record,
            executed: AtomicBool::new(executed),
            judged_under: AtomicU64::new(epoch),
        })
    }

    pub fn judged_under(&self) -> u64 {
        self.judged_under.load(Ordering::Relaxed)
    }

    /// Every guardrail of `epoch` allowed it again.
    pub fn judged_by(&self, epoch: u64) {
        self.judged_under.store(epoch, Ordering::Relaxed);
    }

    /// Whether the execution its record covers is still to come.
    pub fn fresh(&self) -> bool {
        !self.executed.load(Ordering::Relaxed)
    }

    /// Marks an execution; `true` for the one its record covers.
    pub fn first_execution(&self) -> bool {
        !self.executed.swap(true, Ordering::Relaxed)
    }

    fn with_types(&self, types: Vec<u32>) -> Arc<Self> {
        Arc::new(Self {
            text: self.text.clone(),
            statements: self.statements.clone(),
            types,
            record: self.record,
            executed: AtomicBool::new(!self.fresh()),
            judged_under: AtomicU64::new(self.judged_under()),
        })
    }
}

enum Change {
    Define(String, Arc<Prepared>),
    Drop(String),
    DropAll,
    /// A Close of a portal: acknowledged like a statement's, changes nothing.
    Nothing,
}

/// What a message does to the statement names, should it run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect<'a> {
    Define(&'a str),
    Drop(&'a str),
    /// DEALLOCATE ALL, DISCARD ALL: every named statement.
    DropAll,
}

impl Change {
    fn effect(&self) -> Option<Effect<'_>> {
        Some(match self {
            Change::Define(n, _) => Effect::Define(n),
            Change::Drop(n) => Effect::Drop(n),
            Change::DropAll => Effect::DropAll,
            Change::Nothing => return None,
        })
    }

    fn touches(&self, name: &str) -> bool {
        match self {
            Change::Define(n, _) | Change::Drop(n) => n == name,
            // DEALLOCATE ALL and DISCARD ALL leave the unnamed statement.
            Change::DropAll => !name.is_empty(),
            Change::Nothing => false,
        }
    }
}

/// CommandComplete tags of the SQL commands that change the namespace.
const NAMESPACE_TAGS: [&str; 4] = ["PREPARE", "DEALLOCATE", "DEALLOCATE ALL", "DISCARD ALL"];

#[derive(Debug, PartialEq)]
enum Ack {
    ParseComplete,
    CloseComplete,
    /// The CommandComplete tag of the SQL command.
    Command(String),
}

struct Pending {
    batch: u64,
    change: Change,
    ack: Ack,
}

/// What a lookup found.
pub enum Lookup {
    /// The statement the server will run, if any.
    Ready(Option<Arc<Prepared>>),
    /// It depends on a change sent in this batch, not answered yet.
    AfterBatch(u64),
}

#[derive(Default)]
pub struct Statements {
    known: HashMap<String, Arc<Prepared>>,
    journal: VecDeque<Pending>,
}

impl Statements {
    /// A Parse of statement `name` is forwarded in `batch`.
    pub fn parsing(&mut self, batch: u64, name: String, statement: Arc<Prepared>) {
        self.journal.push_back(Pending {
            batch,
            change: Change::Define(name, statement),
            ack: Ack::ParseComplete,
        });
    }

    /// A Close (of a statement: `kind` b'S') is forwarded in `batch`.
    pub fn closing(&mut self, batch: u64, kind: u8, name: &str) {
        let change = if kind == b'S' {
            Change::Drop(name.to_string())
        } else {
            Change::Nothing
        };
        self.journal.push_back(Pending {
            batch,
            change,
            ack: Ack::CloseComplete,
        });
    }

    /// Statements are forwarded to run in `batch` (a Query, or an Execute of
    /// a prepared statement), recorded as `record`: their `PREPARE`,
    /// `DEALLOCATE` and `DISCARD ALL` change the namespace.
    pub fn running(&mut self, batch: u64, statements: &[SqlStatement], record: Option<u64>) {
        for st in statements {
            if let Some(change) = change_of(st, record) {
                self.journal.push_back(Pending {
                    batch,
                    change,
                    ack: Ack::Command(st.command_tag.clone()),
                });
            }
        }
    }

    /// Whether statements with these summaries change the namespace.
    pub fn changes_namespace(statements: &[SqlStatement]) -> bool {
        statements.iter().any(|st| effect_of(st).is_some())
    }

    /// What statements with these summaries do to the namespace, in order.
    pub fn effects(statements: &[SqlStatement]) -> Vec<Effect<'_>> {
        statements.iter().filter_map(effect_of).collect()
    }

    /// The statement `name` as the server will have it for a message sent
    /// in `batch`.
    pub fn lookup(&self, name: &str, batch: u64) -> Lookup {
        let mut current = self.known.get(name).cloned();
        let mut wait = None;
        for p in self.journal.iter().filter(|p| p.change.touches(name)) {
            if p.batch < batch {
                wait = Some(p.batch);
            }
            match &p.change {
                // A named statement in use stays: the server refuses the
                // Parse (and skips the rest of its batch).
                Change::Define(n, s) if n.is_empty() || current.is_none() => {
                    current = Some(s.clone());
                }
                Change::Define(..) | Change::Nothing => {}
                Change::Drop(_) | Change::DropAll => current = None,
            }
        }
        match wait {
            Some(batch) => Lookup::AfterBatch(batch),
            None => Lookup::Ready(current),
        }
    }

    /// A ParseComplete of batch `answered`.
    pub fn parse_complete(&mut self, answered: u64) {
        self.acknowledged(answered, |a| *a == Ack::ParseComplete);
    }

    /// A CloseComplete of batch `answered`.
    pub fn close_complete(&mut self, answered: u64) {
        self.acknowledged(answered, |a| *a == Ack::CloseComplete);
    }

    /// A CommandComplete of batch `answered`. One of a namespace command the
    /// journal did not expect (run through a statement the gateway does not
    /// know) leaves the gateway knowing no statement: it no longer claims
    /// any text or types.
    pub fn command_complete(&mut self, answered: u64, tag: &str) {
        let expected = self.acknowledged(answered, |a| matches!(a, Ack::Command(t) if t == tag));
        if !expected && NAMESPACE_TAGS.contains(&tag) {
            self.known.clear();
        }
    }

    /// Changes waiting for the server.
    pub fn pending(&self) -> usize {
        self.journal.len()
    }

    /// The server described statement `name`: its parameter types.
    pub fn described(&mut self, name: &str, types: Vec<u32>) {
        if let Some(s) = self.known.get_mut(name) {
            *s = s.with_types(types);
        }
    }

    /// An ErrorResponse in batch `answered`: the server skips the rest of
    /// the batch, so its changes not yet acknowledged never happen.
    pub fn failed(&mut self, answered: u64) {
        self.forget_before(answered);
        // The server drops the unnamed statement before it parses the next
        // one: if that Parse is what failed, there is none. Whether it
        // failed or was skipped is not told apart; either way the gateway
        // no longer claims to know the unnamed statement.
        if let Some(Pending {
            batch,
            change: Change::Define(name, _),
            ..
        }) = self.journal.front()
            && *batch == answered
            && name.is_empty()
        {
            self.known.remove("");
        }
        while self.journal.front().is_some_and(|p| p.batch <= answered) {
            self.journal.pop_front();
        }
    }

    fn forget_before(&mut self, answered: u64) {
        while self.journal.front().is_some_and(|p| p.batch < answered) {
            self.journal.pop_front();
        }
    }

    /// Applies the oldest change if `ack` acknowledges it; whether it did.
    fn acknowledged(&mut self, answered: u64, ack: impl Fn(&Ack) -> bool) -> bool {
        self.forget_before(answered);
        if !self
            .journal
            .front()
            .is_some_and(|p| p.batch == answered && ack(&p.ack))
        {
            return false;
        }
        let Some(p) = self.journal.pop_front() else {
            return false;
        };
        match p.change {
            // Past the limit only through what the gateway did not see
            // coming (server-side code): that statement stays unknown.
            Change::Define(name, s) => {
                if name.is_empty() || self.named() < MAX_NAMED || self.known.contains_key(&name) {
                    self.known.insert(name, s);
                }
            }
            Change::Drop(name) => {
                self.known.remove(&name);
            }
            Change::DropAll => self.known.retain(|name, _| name.is_empty()),
            Change::Nothing => {}
        }
        true
    }
}

/// What a SQL statement does to the namespace, if anything.
fn effect_of(st: &SqlStatement) -> Option<Effect<'_>> {
    Some(match (st.node.as_str(), &st.prepared_name) {
        ("PrepareStmt", Some(name)) => Effect::Define(name),
        ("DeallocateStmt", Some(name)) => Effect::Drop(name),
        ("DeallocateStmt", None) => Effect::DropAll,
        ("DiscardStmt", _) if st.command_tag == "DISCARD ALL" => Effect::DropAll,
        _ => return None,
    })
}

/// The change a SQL statement makes to the namespace, if any.
fn change_of(st: &SqlStatement, record: Option<u64>) -> Option<Change> {
    Some(match effect_of(st)? {
        Effect::Define(name) => {
            let analysis: Arc<[SqlStatement]> = Arc::from(vec![st.clone()]);
            Change::Define(
                name.to_string(),
                Prepared::new(&st.text, analysis, Vec::new(), record, true),
            )
        }
        Effect::Drop(name) => Change::Drop(name.to_string()),
        Effect::DropAll => Change::DropAll,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(text: &str) -> Arc<Prepared> {
        Prepared::new(text, Arc::from(Vec::new()), vec![23], None, false)
    }

    fn text(s: &Statements, name: &str, batch: u64) -> Option<String> {
        match s.lookup(name, batch) {
            Lookup::Ready(p) => p.map(|p| p.text.to_string()),
            Lookup::AfterBatch(b) => Some(format!("wait for {b}")),
        }
    }

    #[test]
    fn changes_apply_when_the_server_acknowledges_them() {
        let mut s = Statements::default();
        s.parsing(0, "s1".into(), statement("one"));
        // The same batch may count on it; the next must wait.
        assert_eq!(text(&s, "s1", 0).as_deref(), Some("one"));
        assert_eq!(text(&s, "s1", 1).as_deref(), Some("wait for 0"));
        s.parse_complete(0);
        assert_eq!(text(&s, "s1", 1).as_deref(), Some("one"));

        // A Parse of a name in use changes nothing, acknowledged or not.
        s.parsing(1, "s1".into(), statement("two"));
        assert_eq!(text(&s, "s1", 1).as_deref(), Some("one"));
        s.failed(1);
        assert_eq!(text(&s, "s1", 2).as_deref(), Some("one"));

        // A Close skipped after an error never happened.
        s.closing(2, b'S', "s1");
        assert_eq!(text(&s, "s1", 2), None);
        s.failed(2);
        assert_eq!(text(&s, "s1", 3).as_deref(), Some("one"));

        // A Parse the server refused leaves the name free.
        s.parsing(3, "s2".into(), statement("bad"));
        s.failed(3);
        assert_eq!(text(&s, "s2", 4), None);
        s.parsing(4, "s2".into(), statement("good"));
        s.parse_complete(4);
        assert_eq!(text(&s, "s2", 5).as_deref(), Some("good"));
    }

    #[test]
    fn sql_commands_change_the_namespace_when_they_complete() {
        let mut s = Statements::default();
        s.parsing(0, "s1".into(), statement("one"));
        s.parse_complete(0);
        let sql = crate::sql::Analyzer::new(0);
        let deallocate = sql.analyze("SELECT 1; DEALLOCATE s1").unwrap();
        assert!(Statements::changes_namespace(&deallocate));
        s.running(1, &deallocate, None);
        // Another command's completion is not this one's.
        s.command_complete(1, "SELECT 1");
        assert_eq!(text(&s, "s1", 2).as_deref(), Some("wait for 1"));
        s.command_complete(1, "DEALLOCATE");
        assert_eq!(text(&s, "s1", 2), None);

        s.parsing(2, "s1".into(), statement("again"));
        s.parse_complete(2);
        let discard = sql.analyze("DISCARD ALL").unwrap();
        s.running(3, &discard, None);
        s.failed(3);
        assert_eq!(text(&s, "s1", 4).as_deref(), Some("again"));
        assert!(!Statements::changes_namespace(
            &sql.analyze("DISCARD PLANS").unwrap()
        ));
        // DISCARD ALL leaves the unnamed statement.
        s.parsing(5, "".into(), statement("unnamed"));
        s.parse_complete(5);
        s.running(6, &discard, None);
        s.command_complete(6, "DISCARD ALL");
        assert_eq!(text(&s, "", 7).as_deref(), Some("unnamed"));
        assert_eq!(text(&s, "s1", 7), None);
        // A namespace command the journal did not expect: nothing is known.
        s.command_complete(7, "DEALLOCATE");
        assert_eq!(text(&s, "", 8), None);
        // PREPARE defines the name once it completes.
        let prepare = sql.analyze("PREPARE s3(int) AS SELECT $1").unwrap();
        s.running(8, &prepare, None);
        s.command_complete(8, "PREPARE");
        assert!(text(&s, "s3", 9).is_some_and(|t| t.starts_with("PREPARE s3")));
    }

    #[test]
    fn sql_names_are_those_the_server_keeps() {
        // The server's parser cuts identifiers to 63 bytes, and so does the
        // analysis: SQL names agree with the server's (protocol names over
        // 63 bytes are refused, see `checks::name_too_long`).
        let sql = crate::sql::Analyzer::new(0);
        let long = format!("{}1", "a".repeat(63));
        let stem = &long[..63];
        for text in [
            format!("PREPARE {long} AS SELECT 1"),
            format!("PREPARE \"{long}\" AS SELECT 1"),
            format!("DEALLOCATE {long}"),
        ] {
            let statements = sql.analyze(&text).unwrap();
            let name = match Statements::effects(&statements)[..] {
                [Effect::Define(name) | Effect::Drop(name)] => name.to_string(),
                ref other => panic!("{text}: {other:?}"),
            };
            assert_eq!(name, stem, "{text}");
        }
        let execute = sql.analyze(&format!("EXECUTE {long}")).unwrap();
        assert_eq!(execute[0].prepared_name.as_deref(), Some(stem));
        // Cut on a character boundary, as the server cuts it.
        let wide = "é".repeat(40);
        let statements = sql
            .analyze(&format!("PREPARE \"{wide}\" AS SELECT 1"))
            .unwrap();
        assert_eq!(
            Statements::effects(&statements),
            [Effect::Define(&"é".repeat(31))]
        );
    }

    #[test]
    fn a_described_statement_keeps_its_execution_state() {
        let mut s = Statements::default();
        s.parsing(0, "".into(), statement("one"));
        s.parse_complete(0);
        let Lookup::Ready(Some(p)) = s.lookup("", 1) else {
            panic!("known")
        };
        assert!(p.first_execution());
        s.described("", vec![25]);
        let Lookup::Ready(Some(p)) = s.lookup("", 1) else {
            panic!("known")
        };
        assert_eq!(p.types, [25]);
        assert!(!p.fresh());
        // A failed Parse of the unnamed statement leaves none.
        s.parsing(1, "".into(), statement("two"));
        s.failed(1);
        assert_eq!(text(&s, "", 2), None);
    }
}
