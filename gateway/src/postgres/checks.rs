//! What the guardrails (and the gateway's own rules) say about a message
//! before the relay forwards it: a simple Query, a Parse, a Bind.

use std::sync::Arc;

use crate::plugins::Decision;
use crate::plugins::bindings::types::{
    Request, SqlPhase, SqlRequest, SqlStatement, StatementFlags,
};

use super::errors::{Severity, error_response, sqlstate};
use super::frame::Frame;
use super::parity;
use super::recorded::Bind;
use super::relay::RelayContext;

pub(super) fn fence_refusal(why: &str) -> Frame {
    error_response(
        Severity::Error,
        sqlstate::INSUFFICIENT_PRIVILEGE,
        &format!("statement refused: {why}"),
    )
}

/// `None` to forward the statement, or the ErrorResponse refusing it.
pub(super) async fn check(
    ctx: &RelayContext,
    text: &str,
    phase: SqlPhase,
    name: Option<String>,
    unseen: &mut bool,
) -> Option<Frame> {
    let refuse =
        |code: &str, message: String| Some(error_response(Severity::Error, code, &message));
    let statements = match analysed(ctx, text, phase) {
        Ok(s) => s,
        Err(refusal) => return Some(refusal),
    };
    *unseen = statements.iter().any(parity::runs_unseen_code);
    if let Some(why) = statements.iter().find_map(parity::statement_refusal) {
        return refuse(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            format!("statement refused: {why}"),
        );
    }
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
        return ctx.audit.allowed(text, phase, name.as_deref(), &[]).await;
    }
    let request = Request::Sql(SqlRequest {
        text: text.to_string(),
        phase,
        statements: statements.to_vec(),
        parameters: Vec::new(),
        statement_name: name.clone(),
    });
    match chain.check(&ctx.session, &request).await {
        Decision::Allow => {
            ctx.audit
                .allowed(text, phase, name.as_deref(), &statements)
                .await
        }
        refused => refusal(ctx, text, phase, refused),
    }
}

/// The ErrorResponse for a deny or require-approval, recorded.
fn refusal(ctx: &RelayContext, text: &str, phase: SqlPhase, decision: Decision) -> Option<Frame> {
    let message = match decision {
        Decision::Allow => return None,
        Decision::Deny(r) => {
            ctx.audit.denied(text, phase, &r);
            r.to_string()
        }
        Decision::RequireApproval(a) => {
            ctx.audit.approval_required(text, phase, &a);
            format!(
                "statement requires approval (plugin `{}`, rule {}): {}; approvals are not available on this gateway yet",
                a.plugin, a.rule, a.reason
            )
        }
    };
    Some(error_response(
        Severity::Error,
        sqlstate::INSUFFICIENT_PRIVILEGE,
        &message,
    ))
}

/// The statements of `text`, or the recorded refusal of a text the parser
/// rejects (never forwarded unchecked).
fn analysed(ctx: &RelayContext, text: &str, phase: SqlPhase) -> Result<Arc<[SqlStatement]>, Frame> {
    ctx.analyzer.analyze(text).map_err(|e| {
        let why = format!("statement refused: it could not be analysed: {e}");
        ctx.audit.refused(text, phase, "parse-error", &why);
        error_response(Severity::Error, sqlstate::SYNTAX_ERROR, &why)
    })
}

/// A Bind with parameters goes to the guardrails with the values bound
/// (binary ones decoded by the statement's parameter types, which `types`
/// looks up, see [`super::params`]; `none` where they cannot be), the
/// prepared statement's text and its analysis (for SQL `PREPARE`, those of
/// that statement; both empty when the gateway does not know it). A
/// Bind without parameters brings nothing the Parse check did not see, and
/// a connection without guardrails has nobody to ask: both are forwarded
/// without looking anything up. `None` forwards it; an allowed Bind is not
/// an audit record of its own (the Execute's write-ahead record covers it).
pub(super) async fn check_bind(
    ctx: &RelayContext,
    bind: &Bind<'_>,
    types: impl FnOnce() -> Vec<u32>,
) -> Option<Frame> {
    if bind.parameter_count() == 0 {
        return None;
    }
    let chain = match ctx.host.chain(&ctx.plugins) {
        Ok(c) if c.has_guardrails() => c,
        Ok(_) => return None,
        Err(r) => {
            let text = ctx.audit.prepared_text(bind.statement).unwrap_or_default();
            return refusal(ctx, &text, SqlPhase::Bind, Decision::Deny(r));
        }
    };
    let text = ctx.audit.prepared_text(bind.statement).unwrap_or_default();
    let statements = if text.is_empty() {
        Vec::new()
    } else {
        // Analysed (and cached) when it was prepared; should that ever fail
        // now, the Bind is refused rather than let through unchecked.
        match analysed(ctx, &text, SqlPhase::Bind) {
            Ok(s) => s.to_vec(),
            Err(refusal) => return Some(refusal),
        }
    };
    let request = Request::Sql(SqlRequest {
        text: text.clone(),
        phase: SqlPhase::Bind,
        statements,
        parameters: bind.guardrail_parameters(&types()),
        statement_name: Some(bind.statement.to_string()),
    });
    match chain.check(&ctx.session, &request).await {
        Decision::Allow => None,
        refused => refusal(ctx, &text, SqlPhase::Bind, refused),
    }
}
