//! Which of the server's replies answers which of the client's messages.
//!
//! The relay decides about a message before the server has answered the
//! ones sent before it, and clients pipeline: they send the next batch (a
//! Query, or extended-protocol messages up to Sync) before the last one is
//! answered. After an error the server skips the rest of its batch, so the
//! Describes and Parses in it are never answered. [`Pipeline`] numbers the
//! batches as they are sent and as they are answered (ReadyForQuery), and
//! matches the answers that matter:
//! - ParseComplete, CloseComplete and the CommandComplete of `PREPARE`,
//!   `DEALLOCATE` or `DISCARD ALL` change the session's prepared statements
//!   ([`Statements`]);
//! - a ParameterDescription gives a statement's parameter types, which
//!   decode its binary Bind values for the guardrails;
//! - a RowDescription or NoData answering a Describe of a portal gives the
//!   columns of the rows its Execute returns, which masking needs. The
//!   gateway describes a portal itself when the client executes it without
//!   (as tokio-postgres does with statements it prepared earlier); the
//!   answer to such a Describe is for the gateway only.
//!
//! A batch ends with a Query or a Sync, and the server answers each with
//! one ReadyForQuery, except a Sync it reads while copying data in (`COPY …
//! FROM STDIN`): it ignores those. tokio-postgres and libpq send one before
//! the data of an extended-protocol COPY. So whether such a Sync ends a
//! batch depends on whether the server began the COPY ([`CopyIn`]); the
//! relay waits for that answer before counting it.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::plugins::bindings::types::SqlStatement;

use super::frame::BodyReader;
use super::params::oid_list;
use super::statements::{Effect, Lookup, Prepared, Room, Statements};

/// A Describe awaiting its answer. `injected`: the gateway's own, whose
/// answer is not for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Describe {
    Statement { name: String, injected: bool },
    Portal { injected: bool },
}

/// What a RowDescription or NoData answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Described {
    /// A Describe of a statement: no rows follow.
    Statement { injected: bool },
    /// A Describe of a portal: the rows of its Execute follow. `injected`:
    /// the gateway's own Describe, not to be passed to the client.
    Portal { injected: bool },
    /// A simple Query's result.
    Query,
}

/// Whether the server reads COPY data for a `COPY … FROM STDIN` the client
/// sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyIn {
    #[default]
    Idle,
    /// Sent in this batch; the server has not answered yet.
    Pending(u64),
    /// The server began it (CopyInResponse) and reads data.
    Reading,
    /// The server failed it, or skipped it after an earlier error.
    Declined,
}

#[derive(Default)]
pub struct Pipeline {
    statements: Statements,
    /// Describes forwarded and not answered yet, in order, with their batch.
    describes: VecDeque<(u64, Describe)>,
    /// Batches (Query or Sync) the client has sent …
    sent: u64,
    /// … and those the server has answered with ReadyForQuery.
    answered: u64,
    copy: CopyIn,
    /// CopyInResponses still to come for the COPY … FROM STDIN sent.
    copies_expected: usize,
    /// The last batch an ErrorResponse failed.
    failed_batch: Option<u64>,
    /// Batches ended by the gateway's own Sync: their ReadyForQuery is not
    /// the client's.
    gateway_syncs: VecDeque<u64>,
}

impl Pipeline {
    /// The batch the next forwarded message belongs to.
    pub fn batch(&self) -> u64 {
        self.sent
    }

    /// Batches the server has answered.
    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// A Parse of statement `name` is forwarded.
    pub fn parsing(&mut self, name: String, statement: Arc<Prepared>) {
        self.statements.parsing(self.sent, name, statement);
    }

    /// A Close is forwarded.
    pub fn closing(&mut self, kind: u8, name: &str) {
        self.statements.closing(self.sent, kind, name);
    }

    /// Statements are forwarded to run (a Query, or an Execute).
    pub fn running(&mut self, statements: &[SqlStatement], record: Option<u64>) {
        self.statements.running(self.sent, statements, record);
    }

    /// The statement `name` as the server will have it for the next message.
    pub fn statement(&self, name: &str) -> Lookup {
        self.statements.lookup(name, self.sent)
    }

    /// Whether the next message may make these changes to the statement
    /// names (see [`Statements::room`]).
    pub fn room(&self, effects: &[Effect<'_>]) -> Room {
        self.statements.room(effects, self.sent)
    }

    /// A Describe is forwarded.
    pub fn describing(&mut self, body: &[u8]) {
        let mut r = BodyReader::new(body, "Describe");
        let describe = match (r.u8(), r.cstr()) {
            (Ok(b'S'), Ok(name)) => Describe::Statement {
                name: name.to_string(),
                injected: false,
            },
            (Ok(b'P'), Ok(_)) => Describe::Portal { injected: false },
            // The server refuses it, and skips the rest of the batch.
            _ => return,
        };
        self.describes.push_back((self.sent, describe));
    }

    /// The gateway's own Describe of a portal is forwarded.
    pub fn describing_for_gateway(&mut self) {
        self.describes
            .push_back((self.sent, Describe::Portal { injected: true }));
    }

    /// The gateway's own Describe of statement `name` is to be forwarded;
    /// `false` (not to be sent) when the batch already failed.
    pub fn describing_statement_for_gateway(&mut self, name: &str) -> bool {
        if self.batch_failed() {
            return false;
        }
        let describe = Describe::Statement {
            name: name.to_string(),
            injected: true,
        };
        self.describes.push_back((self.sent, describe));
        true
    }

    /// Whether a Describe of a statement the gateway sent awaits its answer
    /// (it is dropped if its batch fails).
    pub fn gateway_describing_statement(&self) -> bool {
        self.describes
            .iter()
            .any(|(_, d)| matches!(d, Describe::Statement { injected: true, .. }))
    }

    /// Describes and statement changes waiting for the server's answer. The
    /// server answers nothing while it skips the rest of a failed batch, so
    /// only the relay can bound them.
    pub fn backlog(&self) -> usize {
        self.describes.len() + self.statements.pending()
    }

    /// A Query or Sync is forwarded that ends a batch.
    pub fn batch_sent(&mut self) {
        self.sent += 1;
    }

    /// `copies` COPY … FROM STDIN statements are forwarded (before their
    /// Query ends the batch). In a batch that already failed, the server
    /// skips them.
    pub fn copy_sent(&mut self, copies: usize) {
        if self.batch_failed() {
            self.copy = CopyIn::Declined;
            self.copies_expected = 0;
        } else {
            self.copy = CopyIn::Pending(self.sent);
            self.copies_expected = copies;
        }
    }

    /// Whether an ErrorResponse already failed the batch being sent: the
    /// server skips the rest of it.
    pub fn batch_failed(&self) -> bool {
        self.failed_batch == Some(self.sent)
    }

    /// The gateway sends a Sync of its own, ending the batch.
    pub fn sync_for_gateway(&mut self) {
        self.gateway_syncs.push_back(self.sent);
        self.sent += 1;
    }

    pub fn copy_state(&self) -> CopyIn {
        self.copy
    }

    /// A CopyInResponse: the server reads COPY data. `false` when the
    /// gateway did not expect one (a COPY it did not see sent).
    pub fn copy_in_response(&mut self) -> bool {
        if self.copies_expected == 0 {
            return false;
        }
        self.copies_expected -= 1;
        self.copy = CopyIn::Reading;
        true
    }

    fn drop_answered(&mut self) {
        while self
            .describes
            .front()
            .is_some_and(|(batch, _)| *batch < self.answered)
        {
            self.describes.pop_front();
        }
    }

    /// A ParameterDescription answers the oldest Describe of the batch being
    /// answered, a Describe of a statement (its RowDescription or NoData
    /// follows). Whether the gateway sent that Describe.
    pub fn parameter_description(&mut self, body: &[u8]) -> bool {
        self.drop_answered();
        let Some((batch, Describe::Statement { name, injected })) = self.describes.front() else {
            return false;
        };
        if *batch != self.answered {
            return false;
        }
        let injected = *injected;
        if let Ok(types) = oid_list(&mut BodyReader::new(body, "ParameterDescription")) {
            let name = name.clone();
            self.statements.described(&name, types);
        }
        injected
    }

    /// A RowDescription or NoData: what it answers.
    pub fn row_description(&mut self) -> Described {
        self.drop_answered();
        match self.describes.front() {
            Some((batch, _)) if *batch == self.answered => {}
            _ => return Described::Query,
        }
        match self.describes.pop_front() {
            Some((_, Describe::Statement { injected, .. })) => Described::Statement { injected },
            Some((_, Describe::Portal { injected })) => Described::Portal { injected },
            None => Described::Query,
        }
    }

    pub fn parse_complete(&mut self) {
        self.statements.parse_complete(self.answered);
    }

    pub fn close_complete(&mut self) {
        self.statements.close_complete(self.answered);
    }

    pub fn command_complete(&mut self, body: &[u8]) {
        if let Ok(tag) = BodyReader::new(body, "CommandComplete").cstr() {
            self.statements.command_complete(self.answered, tag);
        }
    }

    /// After an ErrorResponse the server skips the rest of its batch: the
    /// batch's pending Describes will not be answered, its pending changes
    /// to the statements will not happen.
    pub fn failed(&mut self) {
        self.failed_batch = Some(self.answered);
        self.batch_ends();
    }

    /// What ends with the batch being answered, by an ErrorResponse or its
    /// ReadyForQuery: its COPY, its Describes, its namespace changes.
    fn batch_ends(&mut self) {
        let answered = self.answered;
        // An error ends the server's COPY (and the rest of its Query): it
        // reads Syncs again. A ReadyForQuery ends it too.
        let copy_ends = match self.copy {
            CopyIn::Pending(batch) => batch == answered,
            CopyIn::Reading => true,
            CopyIn::Idle | CopyIn::Declined => false,
        };
        if copy_ends {
            self.copy = CopyIn::Declined;
            self.copies_expected = 0;
        }
        self.describes.retain(|(batch, _)| *batch != answered);
        self.statements.failed(answered);
    }

    /// A ReadyForQuery ends the batch being answered: whether it answers
    /// the gateway's own Sync (not to be passed to the client).
    pub fn ready(&mut self) -> bool {
        let answered = self.answered;
        self.batch_ends();
        self.answered += 1;
        while self.gateway_syncs.front().is_some_and(|b| *b < answered) {
            self.gateway_syncs.pop_front();
        }
        if self.gateway_syncs.front() == Some(&answered) {
            self.gateway_syncs.pop_front();
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(types: &[i32]) -> Vec<u8> {
        let mut b = (types.len() as i16).to_be_bytes().to_vec();
        for t in types {
            b.extend_from_slice(&t.to_be_bytes());
        }
        b
    }

    fn types(p: &Pipeline, name: &str) -> Vec<u32> {
        match p.statement(name) {
            Lookup::Ready(Some(s)) => s.types.clone(),
            _ => Vec::new(),
        }
    }

    fn prepared(types: Vec<u32>) -> Arc<Prepared> {
        Prepared::new("select", Arc::from(Vec::new()), types, None, false)
    }

    #[test]
    fn types_come_from_the_parse_then_the_description() {
        let mut t = Pipeline::default();
        t.parsing("s1".into(), prepared(vec![0, 23]));
        assert_eq!(types(&t, "s1"), [0, 23]);
        t.describing(b"Ss1\0");
        t.batch_sent();
        t.parse_complete();
        t.parameter_description(&description(&[25, 23]));
        assert_eq!(
            t.row_description(),
            Described::Statement { injected: false }
        );
        t.ready();
        assert_eq!(types(&t, "s1"), [25, 23]);
        // A Describe left unanswered by an error does not shift the next,
        // even when the next batch was sent before the failed one ended.
        t.parsing(String::new(), prepared(Vec::new()));
        t.describing(b"Sgone\0");
        t.batch_sent();
        t.parsing(String::new(), prepared(Vec::new()));
        t.describing(b"S\0");
        t.batch_sent();
        t.failed();
        t.ready();
        t.parse_complete();
        t.parameter_description(&description(&[20]));
        assert_eq!(
            t.row_description(),
            Described::Statement { injected: false }
        );
        t.ready();
        assert_eq!(types(&t, ""), [20]);
    }

    #[test]
    fn row_descriptions_are_matched_to_their_describes() {
        let mut t = Pipeline::default();
        // A Query's own RowDescription.
        t.batch_sent();
        assert_eq!(t.row_description(), Described::Query);
        t.ready();
        // The client's Describe of a portal, then the gateway's.
        t.describing(b"P\0");
        t.describing_for_gateway();
        t.batch_sent();
        assert_eq!(t.row_description(), Described::Portal { injected: false });
        assert_eq!(t.row_description(), Described::Portal { injected: true });
        t.ready();
        // A failed batch's Describes are never answered.
        t.describing_for_gateway();
        t.batch_sent();
        t.batch_sent();
        t.failed();
        t.ready();
        assert_eq!(t.row_description(), Described::Query);
    }
}
