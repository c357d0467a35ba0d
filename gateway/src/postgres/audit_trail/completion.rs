//! What the server sent back for a round, read from the frames on their
//! way to the client, and the round's entry and `statement.completed`
//! record once its ReadyForQuery passes.

use crate::audit::kinds;
use crate::postgres::frame::{self, BodyReader, Frame};
use crate::recording::Entry;
use crate::recording::entry::{SqlError, Statement};

use super::Trail;
use super::details::Completed;

/// Rows a CommandComplete tag reports (`SELECT 3`, `INSERT 0 1`, …), or
/// `None` for a tag that carries no count (`EXPLAIN`, `SHOW`, `CALL`,
/// `CREATE TABLE`): whatever rows such a command sent are those relayed.
pub(super) fn tag_rows(tag: &str) -> Option<u64> {
    let mut words = tag.split_whitespace();
    match words.next() {
        Some("SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "COPY" | "FETCH" | "MOVE") => {
            words.last().and_then(|n| n.parse().ok())
        }
        _ => None,
    }
}

impl Trail {
    /// Frames on their way to the client.
    pub fn observe(&self, frames: &[Frame]) {
        let keep_rows = self
            .recording
            .as_ref()
            .map_or(0, |r| r.config().rows_per_statement);
        // Rows of this call not yet added to `uncounted`.
        let mut rows = 0;
        for f in frames {
            match f.tag {
                b'D' => {
                    rows += 1;
                    if keep_rows > 0 {
                        self.lock().done.rows_seen.observe(f, keep_rows);
                    }
                }
                b'T' if keep_rows > 0 => {
                    self.lock().done.rows_seen.observe(f, keep_rows);
                }
                // An Execute with a row limit that has more to give: the
                // rows it sent have no CommandComplete to count them.
                b's' => {
                    let mut s = self.lock();
                    s.done.rows += std::mem::take(&mut s.done.uncounted) + rows;
                    rows = 0;
                    s.done.commands.push("(portal suspended)".into());
                }
                b'C' => {
                    let tag = BodyReader::new(&f.body, "CommandComplete")
                        .cstr()
                        .unwrap_or_default()
                        .to_string();
                    let mut s = self.lock();
                    let relayed = std::mem::take(&mut s.done.uncounted) + rows;
                    s.done.rows += tag_rows(&tag).unwrap_or(relayed);
                    s.done.commands.push(tag);
                    rows = 0;
                }
                b'E' => {
                    let fields = frame::error_fields(&f.body);
                    let field = |c: u8| {
                        fields
                            .iter()
                            .find(|(k, _)| *k == c)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    let mut s = self.lock();
                    if s.done.error.is_none() {
                        s.done.error = Some(SqlError {
                            code: field(b'C'),
                            message: field(b'M'),
                        });
                    }
                }
                b'Z' => {
                    // Rows before an error are counted by nothing.
                    rows = 0;
                    self.complete();
                }
                _ => {}
            }
        }
        if rows > 0 {
            self.lock().done.uncounted += rows;
        }
    }

    fn complete(&self) {
        let (round, done) = {
            let mut s = self.lock();
            let done = std::mem::take(&mut s.done);
            (s.rounds.pop_front(), done)
        };
        let Some(round) = round else { return };
        // Refused rounds have their record already; prepare-only rounds
        // (Parse/Describe/Sync) ran nothing.
        if round.records.is_empty() && round.sql.is_empty() && round.executes == 0 {
            return;
        }
        let duration_ms = round.started.elapsed().as_secs_f64() * 1000.0;
        if let Some(recording) = &self.recording
            && !round.sql.is_empty()
        {
            recording.write(&Entry::Statement(Statement {
                n: round.n,
                time_ms: round.time_ms,
                sql: round.sql,
                verdict: "allow".into(),
                commands: done.commands.clone(),
                rows: done.rows,
                masked: done.masked.clone(),
                duration_ms: Some(duration_ms),
                error: done.error.clone(),
                audit_records: round.records.clone(),
                result: done.rows_seen.into_result(),
                ..Statement::default()
            }));
        }
        self.audit.emit(
            self.event(kinds::STATEMENT_COMPLETED)
                .detail_of(&Completed {
                    commands: &done.commands,
                    duration_ms,
                    error: done.error.as_ref(),
                    masked: &done.masked,
                    records: &round.records,
                    rows: done.rows,
                }),
        );
    }
}
