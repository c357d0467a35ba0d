//! What the relay records in the audit log for one PostgreSQL session.
//!
//! Write-ahead: a statement is in the log before the message that runs it
//! reaches the server. A simple Query and a Parse are recorded
//! (`statement.allowed`) once the guardrails allowed them; the first Execute
//! of a parsed statement is covered by that record, each later Execute of it
//! gets its own (`statement.executed`), naming the text the server holds
//! under that name (the relay looks it up, see [`super::statements`]). When
//! the record cannot be written the message is refused instead of forwarded.
//!
//! Completion: the server answers each Query, and each extended-protocol
//! batch up to Sync, with one ReadyForQuery. The trail queues one "round" per
//! such message and, when its ReadyForQuery passes, records what the client
//! saw: command tags, rows, the first error, masked values per entity, and
//! the time from forwarding to ReadyForQuery (`statement.completed`).
//!
//! The session's recording gets the same facts as one entry per refused
//! statement and one per completed round, written before the round's
//! ReadyForQuery is passed to the client (see [`super::recorded`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

use crate::audit::{Audit, EncodedIdentity, Event, bounded_text, kinds};
use crate::plugins::bindings::types::{Detection, Session, SqlPhase, SqlStatement};
use crate::plugins::{ApprovalNeeded, MAX_ENTITY_LABELS, Refusal, RefusalCause};
use crate::recording::Recording;
use crate::recording::entry::{Entry, SqlError, SqlText, Statement};

use super::errors::{Severity, error_response};
use super::frame::Frame;
use super::recorded::{self, RowsCapture};
use super::statements::Prepared;
use details::{Allowed, Executed, Summary, TextField};

/// SQLSTATE of a statement refused because it could not be recorded
/// (`system_error`): the client should not assume it ran.
pub const AUDIT_UNAVAILABLE: &str = "58000";
/// Portals remembered per session; beyond, an Execute's text is recorded as
/// unknown (the record is still written).
const MAX_TRACKED: usize = 10_000;

pub struct Trail {
    audit: Audit,
    session: Session,
    /// The session's identity as events record it, encoded once: every
    /// statement gets two events, and the conversion parses the claims.
    identity: EncodedIdentity,
    recording: Option<Arc<Recording>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Portal → the statement it runs and its bound parameters.
    portals: HashMap<String, Portal>,
    /// Records of the round not yet closed by a Query or Sync.
    current: Vec<u64>,
    /// What the round runs, for the recording.
    current_sql: Vec<SqlText>,
    current_n: Option<u64>,
    current_time_ms: u64,
    executes: u32,
    /// Rounds forwarded, waiting for their ReadyForQuery.
    rounds: VecDeque<Round>,
    done: Completion,
    allowed: u64,
    denied: u64,
}

struct Portal {
    /// The statement's name in the Bind.
    name: String,
    statement: Option<Arc<Prepared>>,
    parameters: Vec<Option<String>>,
}

struct Round {
    records: Vec<u64>,
    sql: Vec<SqlText>,
    n: u64,
    time_ms: u64,
    executes: u32,
    started: Instant,
}

#[derive(Default)]
struct Completion {
    commands: Vec<String>,
    rows: u64,
    error: Option<SqlError>,
    masked: BTreeMap<String, u64>,
    rows_seen: RowsCapture,
    /// Rows sent since the last CommandComplete, which counts its own
    /// (these, when its tag has no count).
    uncounted: u64,
}

fn phase_name(phase: SqlPhase) -> &'static str {
    match phase {
        SqlPhase::SimpleQuery => "simple_query",
        SqlPhase::Parse => "parse",
        SqlPhase::Bind => "bind",
        SqlPhase::FunctionCall => "function_call",
    }
}

impl Trail {
    pub fn new(audit: Audit, session: Session, recording: Option<Arc<Recording>>) -> Self {
        Self {
            audit,
            identity: EncodedIdentity::new(&(&session.identity).into()),
            session,
            recording,
            state: Mutex::new(State::default()),
        }
    }

    /// The recording's entry number for a request arriving now.
    fn next_n(&self) -> u64 {
        self.recording.as_ref().map_or(0, |r| r.next_n())
    }

    fn sql_text(&self, phase: &str, text: &str, name: Option<&str>) -> SqlText {
        SqlText {
            phase: phase.to_string(),
            text: self.text(text),
            statement_name: name.map(str::to_string),
            parameters: Vec::new(),
        }
    }

    /// A refused statement's recording entry, written at once.
    fn record_refusal(&self, text: &str, phase: SqlPhase, verdict: &str, by: Refused<'_>) {
        let Some(recording) = &self.recording else {
            return;
        };
        let entry = Statement {
            n: recording.next_n(),
            time_ms: crate::recording::now_ms(),
            sql: vec![self.sql_text(phase_name(phase), text, None)],
            verdict: verdict.to_string(),
            cause: Some(by.cause.to_string()),
            plugin: by.plugin.map(str::to_string),
            rule: Some(by.rule.to_string()),
            reason: Some(by.reason.to_string()),
            ..Statement::default()
        };
        recording.write(&Entry::Statement(entry));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(&self, kind: &'static str) -> Event {
        Event::new(kind)
            .session_id(self.session.id.clone())
            .connection(self.session.connection.clone())
            .encoded_identity(self.identity.clone())
    }

    fn text(&self, text: &str) -> Value {
        bounded_text(text, self.audit.max_text_bytes())
    }

    /// [`Trail::text`] without copying a text that fits.
    fn text_field<'a>(&self, text: &'a str) -> TextField<'a> {
        if text.len() <= self.audit.max_text_bytes() {
            TextField::Whole(text)
        } else {
            TextField::Cut(self.text(text))
        }
    }

    /// Statements allowed and refused so far, for the session's end record.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.lock();
        (s.allowed, s.denied)
    }

    /// A statement refused by the gateway itself (it does not parse, COPY
    /// out on a masked connection, a FunctionCall).
    pub fn refused(&self, text: &str, phase: SqlPhase, rule: &str, reason: &str) {
        self.lock().denied += 1;
        self.record_refusal(
            text,
            phase,
            "deny",
            Refused {
                cause: "gateway",
                plugin: None,
                rule,
                reason,
            },
        );
        self.audit.emit(
            self.event(kinds::STATEMENT_DENIED)
                .with("phase", phase_name(phase))
                .with("text", self.text(text))
                .with("verdict", "deny")
                .with("cause", "gateway")
                .with("rule", rule)
                .with("reason", reason),
        );
    }

    /// A Parse sent after a refused message of its batch: the server
    /// discards it until Sync, so it is not judged; recorded and audited so
    /// that everything the agent sent is in the trail.
    pub fn skipped(&self, text: &str, name: &str) {
        const REASON: &str = "an earlier message of its batch was refused; the server \
                              discards the rest of the batch until Sync";
        if let Some(recording) = &self.recording {
            let entry = Statement {
                n: recording.next_n(),
                time_ms: crate::recording::now_ms(),
                sql: vec![self.sql_text("parse", text, Some(name))],
                verdict: "skip".into(),
                cause: Some("batch_refused".into()),
                reason: Some(REASON.into()),
                ..Statement::default()
            };
            recording.write(&Entry::Statement(entry));
        }
        self.audit.emit(
            self.event(kinds::STATEMENT_SKIPPED)
                .with("phase", "parse")
                .with("statement_name", name)
                .with("text", self.text(text))
                .with("reason", REASON),
        );
    }

    /// A statement a plugin denied, or refused because a plugin failed or
    /// is missing.
    pub fn denied(&self, text: &str, phase: SqlPhase, refusal: &Refusal) {
        self.lock().denied += 1;
        let cause = match refusal.cause {
            RefusalCause::Policy => "policy",
            RefusalCause::PluginFailure => "plugin_failure",
            RefusalCause::MissingPlugin => "missing_plugin",
        };
        self.record_refusal(
            text,
            phase,
            "deny",
            Refused {
                cause,
                plugin: Some(&refusal.plugin),
                rule: &refusal.rule,
                reason: &refusal.reason,
            },
        );
        self.audit.emit(
            self.event(kinds::STATEMENT_DENIED)
                .with("phase", phase_name(phase))
                .with("text", self.text(text))
                .with("verdict", "deny")
                .with("cause", cause)
                .with("plugin", refusal.plugin.clone())
                .with("rule", refusal.rule.clone())
                .with("reason", refusal.reason.clone()),
        );
    }

    pub fn approval_required(&self, text: &str, phase: SqlPhase, approval: &ApprovalNeeded) {
        self.lock().denied += 1;
        self.record_refusal(
            text,
            phase,
            "require_approval",
            Refused {
                cause: "policy",
                plugin: Some(&approval.plugin),
                rule: &approval.rule,
                reason: &approval.reason,
            },
        );
        self.audit.emit(
            self.event(kinds::STATEMENT_APPROVAL_REQUIRED)
                .with("phase", phase_name(phase))
                .with("text", self.text(text))
                .with("verdict", "require_approval")
                .with("plugin", approval.plugin.clone())
                .with("rule", approval.rule.clone())
                .with("reason", approval.reason.clone())
                .with("approver_groups", approval.approver_groups.clone())
                .with("ttl_seconds", approval.ttl_seconds)
                // Approvals do not exist on this gateway yet: it refuses.
                .with("outcome", "refused"),
        );
    }

    /// Records an allowed Query or Parse before it is forwarded: its record,
    /// or the ErrorResponse to send instead when it could not be recorded.
    pub async fn allowed(
        &self,
        text: &str,
        phase: SqlPhase,
        name: Option<&str>,
        statements: &[SqlStatement],
    ) -> Result<Option<u64>, Frame> {
        let summary: Vec<Summary<'_>> = statements
            .iter()
            .map(|s| Summary {
                command: &s.command_tag,
                node: &s.node,
            })
            .collect();
        let event = self.event(kinds::STATEMENT_ALLOWED).detail_of(&Allowed {
            phase: phase_name(phase),
            statement_name: name,
            statements: &summary,
            text: self.text_field(text),
            verdict: "allow",
        });
        let seq = match self.audit.record(event).await {
            Ok(seq) => seq,
            Err(e) => return Err(self.unrecorded(text, phase, &e.to_string())),
        };
        let item = self
            .recording
            .is_some()
            .then(|| self.sql_text(phase_name(phase), text, name));
        let mut s = self.lock();
        s.allowed += 1;
        s.current.extend(seq);
        if let Some(item) = item {
            // A number per entry, taken as its first request arrives.
            if s.current_n.is_none() {
                s.current_n = Some(self.next_n());
                s.current_time_ms = crate::recording::now_ms();
            }
            s.current_sql.push(item);
        }
        Ok(seq)
    }

    fn unrecorded(&self, text: &str, phase: SqlPhase, why: &str) -> Frame {
        let message = format!(
            "statement refused: the audit log could not record it ({why}); statements are not \
             forwarded unrecorded"
        );
        tracing::error!("{message}");
        self.refused(text, phase, "audit-unavailable", &message);
        error_response(Severity::Error, AUDIT_UNAVAILABLE, &message)
    }

    /// A Bind: which statement the portal runs (as the server held it then:
    /// the portal keeps it even if the name is prepared again), with which
    /// parameters.
    pub fn bind(&self, bind: &recorded::Bind<'_>, statement: Option<Arc<Prepared>>) {
        let parameters = if self.recording.is_some() {
            bind.parameters(self.audit.max_text_bytes())
        } else {
            Vec::new()
        };
        let mut s = self.lock();
        if s.portals.len() < MAX_TRACKED || s.portals.contains_key(bind.portal) {
            s.portals.insert(
                bind.portal.to_string(),
                Portal {
                    name: bind.statement.to_string(),
                    statement,
                    parameters,
                },
            );
        }
    }

    /// The statement portal `portal` runs, as its Bind found it.
    pub fn portal_statement(&self, portal: &str) -> Option<Arc<Prepared>> {
        self.lock()
            .portals
            .get(portal)
            .and_then(|p| p.statement.clone())
    }

    /// An Execute of `portal`, which runs `statement` (`None`: unknown to
    /// the gateway), before it is forwarded. `Some` refuses it.
    pub async fn execute(&self, portal: &str, statement: Option<&Prepared>) -> Option<Frame> {
        let event = {
            let mut guard = self.lock();
            let s = &mut *guard;
            let (name, parameters) = s
                .portals
                .get(portal)
                .map(|p| (p.name.clone(), p.parameters.clone()))
                .unzip();
            if self.recording.is_some() {
                self.record_execute(
                    s,
                    name.as_deref(),
                    statement,
                    parameters.unwrap_or_default(),
                );
            }
            let detail = match statement {
                // The statement's own record was written before its Parse
                // went out, and covers its first execution.
                Some(p) if p.first_execution() => {
                    s.executes += 1;
                    return None;
                }
                Some(p) => Executed {
                    note: None,
                    parsed_record: Some(p.record),
                    portal,
                    statement_name: name.as_deref().unwrap_or_default(),
                    text: Some(self.text_field(&p.text)),
                },
                None => Executed {
                    note: Some("the statement's text is unknown to the gateway"),
                    parsed_record: None,
                    portal,
                    statement_name: name.as_deref().unwrap_or_default(),
                    text: None,
                },
            };
            self.event(kinds::STATEMENT_EXECUTED).detail_of(&detail)
        };
        match self.audit.record(event).await {
            Ok(seq) => {
                let mut s = self.lock();
                s.current.extend(seq);
                s.executes += 1;
                None
            }
            Err(e) => Some(self.unrecorded("", SqlPhase::Bind, &e.to_string())),
        }
    }

    /// The recording's view of an Execute: the parameters join the Parse
    /// of the same round when there is one (the usual unnamed-statement
    /// flow), else the execution is an item of its own.
    fn record_execute(
        &self,
        s: &mut State,
        name: Option<&str>,
        statement: Option<&Prepared>,
        parameters: Vec<Option<String>>,
    ) {
        let parsed_here = s.current_sql.iter_mut().rev().find(|i| {
            i.phase == "parse" && i.statement_name.as_deref() == name && i.parameters.is_empty()
        });
        if let (Some(item), true) = (parsed_here, statement.is_some_and(Prepared::fresh)) {
            item.parameters = parameters;
            return;
        }
        let text = statement.map_or(Value::Null, |p| self.text(&p.text));
        if s.current_n.is_none() {
            s.current_n = Some(self.next_n());
            s.current_time_ms = crate::recording::now_ms();
        }
        s.current_sql.push(SqlText {
            phase: "execute".into(),
            text,
            statement_name: name.map(str::to_string),
            parameters,
        });
    }

    /// A Query or Sync that ends a batch was forwarded: it closes a round.
    pub fn batch_sent(&self) {
        let mut s = self.lock();
        let round = Round {
            records: std::mem::take(&mut s.current),
            sql: std::mem::take(&mut s.current_sql),
            n: s.current_n.take().unwrap_or(0),
            time_ms: std::mem::take(&mut s.current_time_ms),
            executes: std::mem::take(&mut s.executes),
            started: Instant::now(),
        };
        s.rounds.push_back(round);
    }

    /// Masked values of one batch.
    pub fn masked(&self, detections: &[Detection]) {
        if detections.is_empty() {
            return;
        }
        let mut s = self.lock();
        for d in detections {
            // Each batch's names are bounded; a statement's batches are not.
            let entity = if s.done.masked.len() >= MAX_ENTITY_LABELS
                && !s.done.masked.contains_key(&d.entity)
            {
                "other".to_string()
            } else {
                d.entity.clone()
            };
            let n = s.done.masked.entry(entity).or_default();
            *n = n.saturating_add(u64::from(d.count));
        }
    }
}

/// Who refused a statement, for its recording entry.
struct Refused<'a> {
    cause: &'a str,
    plugin: Option<&'a str>,
    rule: &'a str,
    reason: &'a str,
}

mod completion;
mod details;
#[cfg(test)]
mod tests;
