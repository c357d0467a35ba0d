//! What the guardrails (and the gateway's own rules) say about a message
//! before the relay forwards it: a simple Query, a Parse, a Bind; and how
//! the gateway refuses a message it cannot read.

use std::sync::Arc;

use crate::plugins::bindings::types::{
    Request, SqlPhase, SqlRequest, SqlStatement, StatementFlags,
};
use crate::plugins::{Chain, Decision, RefusalCause};

use super::errors::{Severity, error_response, error_response_at, sqlstate};
use super::frame::{Frame, FrameError};
use super::parity;
use super::recorded::Bind;
use super::relay::{RelayContext, RelayError};
use super::statements::{MAX_NAMED, Prepared};

/// A statement the checks let through: its analysis and its audit record.
pub(super) struct Allowed {
    pub statements: Arc<[SqlStatement]>,
    pub record: Option<u64>,
    /// The guardrail generations that allowed it.
    pub epoch: u64,
}

/// A statement text as the server would read it (sessions are UTF-8), or
/// the error PostgreSQL gives for one that is not: the session goes on.
pub(super) fn sql_text<'a>(
    ctx: &RelayContext,
    raw: &'a [u8],
    phase: SqlPhase,
) -> Result<&'a str, Frame> {
    std::str::from_utf8(raw).map_err(|e| {
        let reason = format!(
            "invalid byte sequence for encoding \"UTF8\" at byte {}",
            e.valid_up_to()
        );
        ctx.audit.refused("", phase, "not-utf8", &reason);
        error_response(
            Severity::Error,
            sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
            &reason,
        )
    })
}

pub(super) fn fence_refusal(why: &str) -> Frame {
    error_response(
        Severity::Error,
        sqlstate::INSUFFICIENT_PRIVILEGE,
        &format!("statement refused: {why}"),
    )
}

/// The error PostgreSQL gives for a message whose length is right but whose
/// body does not hold its fields (a string without its NUL, a count or a
/// length past the end, bytes after the last field, a name that is not
/// UTF-8), recorded. The server keeps the session after it, and so does the
/// gateway: the relay refuses the message like a statement (it is never
/// forwarded). Any other error ends the session.
pub(super) fn malformed(
    ctx: &RelayContext,
    phase: SqlPhase,
    e: FrameError,
) -> Result<Frame, RelayError> {
    let (code, message) = match &e {
        FrameError::Unterminated { .. } => {
            (sqlstate::PROTOCOL_VIOLATION, "invalid string in message")
        }
        FrameError::Truncated { .. } => (
            sqlstate::PROTOCOL_VIOLATION,
            "insufficient data left in message",
        ),
        FrameError::TrailingData { .. } | FrameError::Malformed { .. } => {
            (sqlstate::PROTOCOL_VIOLATION, "invalid message format")
        }
        FrameError::NotUtf8 { .. } => (
            sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
            "invalid byte sequence for encoding \"UTF8\"",
        ),
        _ => return Err(RelayError::Client(e)),
    };
    ctx.audit
        .refused("", phase, "malformed-message", &format!("{message}: {e}"));
    let detail = format!("{e}; the gateway refused the message, the session goes on");
    Ok(error_response_at(
        Severity::Error,
        code,
        message,
        Some(&detail),
        None,
    ))
}

/// The refusal, recorded, of a statement that would prepare one named
/// statement more than the gateway keeps track of.
pub(super) fn statement_limit(ctx: &RelayContext, text: &str, phase: SqlPhase) -> Frame {
    let why = format!(
        "statement refused: the session would hold more than {MAX_NAMED} named prepared \
         statements, the most the gateway keeps track of; close those no longer needed (a \
         Close message, or DEALLOCATE) before preparing more, or use the unnamed statement"
    );
    ctx.audit
        .refused(text, phase, "too-many-prepared-statements", &why);
    error_response(Severity::Error, sqlstate::PROGRAM_LIMIT_EXCEEDED, &why)
}

/// The longest prepared statement or portal name the server tells apart:
/// it compares names on their first `NAMEDATALEN - 1` bytes, so two longer
/// names sharing those would be one statement (or portal) at the server and
/// two at the gateway.
pub(super) const MAX_NAME_BYTES: usize = 63;

/// The refusal, recorded, of an extended-protocol message naming a prepared
/// statement (or, with `portal`, a portal) longer than [`MAX_NAME_BYTES`]:
/// refused rather than forwarded, so that the gateway never tracks as two
/// what the server holds as one.
pub(super) fn name_too_long(
    ctx: &RelayContext,
    phase: SqlPhase,
    portal: bool,
    name: &str,
) -> Frame {
    let what = if portal {
        "portal"
    } else {
        "prepared statement"
    };
    let shown = match name.char_indices().nth(20) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_string(),
    };
    let why = format!(
        "{what} name \"{shown}\" is too long: at most {MAX_NAME_BYTES} bytes (PostgreSQL \
         compares names on their first {MAX_NAME_BYTES} bytes)"
    );
    ctx.audit.refused("", phase, "name-too-long", &why);
    let detail = format!(
        "the name is {} bytes; the gateway refused the message, the session goes on",
        name.len()
    );
    error_response_at(
        Severity::Error,
        sqlstate::NAME_TOO_LONG,
        &why,
        Some(&detail),
        None,
    )
}

/// What allows the statement forwarded, or the ErrorResponse refusing it.
pub(super) async fn check(
    ctx: &RelayContext,
    text: &str,
    phase: SqlPhase,
    name: Option<String>,
    unseen: &mut bool,
) -> Result<Allowed, Frame> {
    let statements = analyse(ctx, text, phase, unseen).await?;
    judge(ctx, text, phase, name, statements).await
}

/// The statements of `text`, unless the gateway's own rules refuse them
/// (the first half of [`check`]).
pub(super) async fn analyse(
    ctx: &RelayContext,
    text: &str,
    phase: SqlPhase,
    unseen: &mut bool,
) -> Result<Arc<[SqlStatement]>, Frame> {
    let statements = analysed(ctx, text, phase).await?;
    *unseen = statements.iter().any(parity::runs_unseen_code);
    if let Some(why) = statements.iter().find_map(parity::statement_refusal) {
        return Err(error_response(
            Severity::Error,
            sqlstate::INSUFFICIENT_PRIVILEGE,
            &format!("statement refused: {why}"),
        ));
    }
    Ok(statements)
}

/// What the guardrails say about analysed statements, recorded (the second
/// half of [`check`]).
pub(super) async fn judge(
    ctx: &RelayContext,
    text: &str,
    phase: SqlPhase,
    name: Option<String>,
    statements: Arc<[SqlStatement]>,
) -> Result<Allowed, Frame> {
    let refuse = |code: &str, message: String| Err(error_response(Severity::Error, code, &message));
    let chain = match ctx.host.chain(&ctx.plugins) {
        Ok(c) => c,
        Err(r) => {
            ctx.audit.denied(text, phase, &r);
            return refuse(sqlstate::INSUFFICIENT_PRIVILEGE, r.to_string());
        }
    };
    if chain.has_maskers()
        && statements
            .iter()
            .any(|s| s.flags.contains(StatementFlags::COPY_TO_CLIENT))
    {
        let why = "COPY … TO STDOUT is refused on this connection: its results must be masked, and masking applies to query results only";
        ctx.audit.refused(text, phase, "copy-out-masked", why);
        return refuse(sqlstate::INSUFFICIENT_PRIVILEGE, why.into());
    }
    if statements.is_empty() {
        let record = ctx.audit.allowed(text, phase, name.as_deref(), &[]).await?;
        return Ok(Allowed {
            statements,
            record,
            epoch: chain.guardrail_epoch(),
        });
    }
    let asked = Asked {
        text,
        phase,
        statements: statements.to_vec(),
        parameters: Vec::new(),
        name: name.clone(),
    };
    guardrails(ctx, &chain, asked).await?;
    let record = ctx
        .audit
        .allowed(text, phase, name.as_deref(), &statements)
        .await?;
    Ok(Allowed {
        statements,
        record,
        epoch: chain.guardrail_epoch(),
    })
}

/// A request for the guardrails.
struct Asked<'a> {
    text: &'a str,
    phase: SqlPhase,
    statements: Vec<SqlStatement>,
    parameters: Vec<Option<String>>,
    name: Option<String>,
}

impl Asked<'_> {
    fn into_request(self) -> Request {
        Request::Sql(SqlRequest {
            text: self.text.to_string(),
            phase: self.phase,
            statements: self.statements,
            parameters: self.parameters,
            statement_name: self.name,
        })
    }
}

/// The guardrails' verdict: `Ok` for an allow, else the recorded refusal.
async fn guardrails(ctx: &RelayContext, chain: &Chain, asked: Asked<'_>) -> Result<(), Frame> {
    let (text, phase) = (asked.text, asked.phase);
    let decision = chain
        .check_sql(&ctx.session, &asked.into_request(), phase, &ctx.phases)
        .await;
    match decision {
        Decision::Allow => Ok(()),
        refused => Err(refusal(ctx, text, phase, refused)),
    }
}

/// A setting requested at startup, checked as the `SET` that makes it
/// (`text`, see [`super::settings`]): by the gateway's own rules and the
/// guardrails, as a simple Query. An allowed one is no statement the
/// session runs, so it gets no write-ahead record: the session's start
/// event lists it. A refusal is recorded like a statement's.
pub(super) async fn startup_setting(ctx: &RelayContext, text: &str) -> Result<(), Frame> {
    let phase = SqlPhase::SimpleQuery;
    let statements = analysed(ctx, text, phase).await?;
    if let Some(why) = statements.iter().find_map(parity::statement_refusal) {
        ctx.audit.refused(text, phase, "startup-setting", &why);
        return Err(fence_refusal(&why));
    }
    let chain = match ctx.host.chain(&ctx.plugins) {
        Ok(c) => c,
        Err(r) => return Err(refusal(ctx, text, phase, Decision::Deny(r))),
    };
    if !chain.has_guardrails() {
        return Ok(());
    }
    let asked = Asked {
        text,
        phase,
        statements: statements.to_vec(),
        parameters: Vec::new(),
        name: None,
    };
    guardrails(ctx, &chain, asked).await
}

/// The ErrorResponse for a deny or require-approval (never an allow),
/// recorded.
fn refusal(ctx: &RelayContext, text: &str, phase: SqlPhase, decision: Decision) -> Frame {
    // A guardrail that could not judge (a deadline passed under load, a
    // trap, a plugin not loaded) is not a policy: clients retry on class
    // 53, never on 42501.
    let code = match &decision {
        Decision::Deny(r) if r.cause != RefusalCause::Policy => sqlstate::INSUFFICIENT_RESOURCES,
        _ => sqlstate::INSUFFICIENT_PRIVILEGE,
    };
    let message = match decision {
        Decision::Deny(r) => {
            ctx.audit.denied(text, phase, &r);
            r.to_string()
        }
        Decision::Allow => "statement refused".to_string(),
        Decision::RequireApproval(a) => {
            ctx.audit.approval_required(text, phase, &a);
            format!(
                "statement requires approval (plugin `{}`, rule {}): {}; approvals are not available on this gateway yet",
                a.plugin, a.rule, a.reason
            )
        }
    };
    error_response(Severity::Error, code, &message)
}

/// The statements of `text`, or the recorded refusal of a text the parser
/// rejects (never forwarded unchecked).
async fn analysed(
    ctx: &RelayContext,
    text: &str,
    phase: SqlPhase,
) -> Result<Arc<[SqlStatement]>, Frame> {
    if let Some(limit) = ctx.analyzer.too_long(text) {
        let why = format!(
            "statement refused: its text is {} bytes, over the {limit} the gateway analyses \
             ([postgres] max_statement_bytes); send it in smaller statements, or rows with COPY",
            text.len()
        );
        ctx.audit.refused(text, phase, "statement-too-long", &why);
        return Err(error_response(
            Severity::Error,
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            &why,
        ));
    }
    ctx.analyzer.analyze_for_session(text).await.map_err(|e| {
        let why = format!("statement refused: it could not be analysed: {e}");
        if e.internal {
            ctx.audit.refused(text, phase, "analysis-failed", &why);
            return error_response(Severity::Error, sqlstate::INTERNAL_ERROR, &why);
        }
        ctx.audit.refused(text, phase, "parse-error", &why);
        // The parser is the server's own: the client gets what the server
        // would have said (its message, code and position), so that tools
        // draw their caret and match their messages as usual; the detail
        // says who refused.
        let code = if e.message.contains("stack depth limit exceeded")
            || e.message.contains("nested too deeply")
        {
            sqlstate::STATEMENT_TOO_COMPLEX
        } else {
            sqlstate::SYNTAX_ERROR
        };
        error_response_at(
            Severity::Error,
            code,
            &e.message,
            Some("the gateway refused the statement: it could not be analysed"),
            e.cursor_position,
        )
    })
}

/// A Bind with parameters goes to the guardrails with the values bound
/// (binary ones decoded by the statement's parameter types, see
/// [`super::params`]; `none` where they cannot be), the prepared
/// statement's text and its analysis (for SQL `PREPARE`, those of that
/// statement). A Bind of a statement the gateway does not know is
/// refused as the server refuses one it lacks (26000). `statement`
/// is the one the server will bind, as [`super::statements`] tracks it.
/// A connection without guardrails has nobody to ask, and the guardrails
/// that do not judge binds (`select-phases`) have seen the statement when
/// it was prepared, as a Bind without parameters brings nothing its Parse
/// did not show: such Binds are forwarded without looking anything up —
/// unless a guardrail has been reloaded since the statement was prepared
/// (or it was prepared with SQL `PREPARE`), when every guardrail judges it
/// once more, as the policy now stands (see [`Chain::recheck_bind`]).
/// `None` forwards it; an allowed Bind is not an audit record of its own
/// (the Execute's write-ahead record covers it).
pub(super) async fn check_bind(
    ctx: &RelayContext,
    bind: &Bind<'_>,
    statement: Option<&Prepared>,
) -> Option<Frame> {
    let text = statement.map_or("", |s| &s.text);
    let with_values = bind.parameter_count() > 0;
    if !with_values && statement.is_none() {
        // Nothing to judge; the server refuses a statement it lacks.
        return None;
    }
    let chain = match ctx.host.chain(&ctx.plugins) {
        Ok(c) if c.has_guardrails() => c,
        Ok(_) => return None,
        Err(r) => return Some(refusal(ctx, text, SqlPhase::Bind, Decision::Deny(r))),
    };
    let epoch = chain.guardrail_epoch();
    let rejudge = statement.is_some_and(|s| s.judged_under() != epoch);
    if statement.is_some()
        && !rejudge
        && (!with_values
            || !chain
                .judges_phase(&ctx.session, SqlPhase::Bind, &ctx.phases)
                .await)
    {
        return None;
    }
    // The gateway follows every way a client prepares and deallocates, so
    // a statement it does not know is one the server does not know either
    // (a client re-preparing after DEALLOCATE ALL counts on 26000), unless
    // server-side code prepared it, whose parameters would then reach
    // nothing the guardrails can judge: refused either way, as the server
    // refuses a missing one.
    let Some(statement) = statement else {
        let why = match bind.statement {
            "" => "unnamed prepared statement does not exist".to_string(),
            name => format!("prepared statement \"{name}\" does not exist"),
        };
        ctx.audit
            .refused("", SqlPhase::Bind, "unknown-statement", &why);
        return Some(error_response(
            Severity::Error,
            sqlstate::INVALID_SQL_STATEMENT_NAME,
            &why,
        ));
    };
    let asked = Asked {
        text,
        phase: SqlPhase::Bind,
        statements: statement.statements.to_vec(),
        parameters: bind.guardrail_parameters(&statement.types),
        name: Some(bind.statement.to_string()),
    };
    if !rejudge {
        return guardrails(ctx, &chain, asked).await.err();
    }
    let prepared = Asked {
        text,
        phase: SqlPhase::Parse,
        statements: asked.statements.clone(),
        parameters: Vec::new(),
        name: asked.name.clone(),
    };
    let decision = chain
        .recheck_bind(
            &ctx.session,
            &asked.into_request(),
            &prepared.into_request(),
            &ctx.phases,
        )
        .await;
    match decision {
        Decision::Allow => {
            statement.judged_by(epoch);
            None
        }
        refused => Some(refusal(ctx, text, SqlPhase::Bind, refused)),
    }
}
