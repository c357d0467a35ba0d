//! `sql-guardrail`: per-group SQL policy, decided over the gateway's
//! statement summaries (PostgreSQL's own parser, see `wit/plugin.wit`), never
//! over the SQL text.
//!
//! An empty config already refuses what reaches outside the database or
//! changes who the session is: COPY … PROGRAM and server-side file COPY,
//! file/network/admin functions, role and privilege changes, settings that
//! change what later statements mean, code the gateway cannot inspect (DO,
//! EXECUTE, CALL, function and trigger bodies), and UPDATE/DELETE without
//! WHERE. Read-only access, command and table lists and approvals are
//! configured per group; the README's "sql-guardrail" section is the
//! reference.
//!
//! Which policy applies: the policies of every configured group the identity
//! is in, all of which must allow (a deny from any wins, then the first
//! require-approval); `default` only for identities in none of them.

mod approval;
mod builtin;
mod config;
mod pattern;
mod rules;

use sluice_plugin_sdk::types::{Denial, Request, Session, SqlPhase, SqlRequest, Verdict};
use sluice_plugin_sdk::{Guardrail, export_guardrail, log, metrics};

pub use config::Config;
use config::{Compiled, Policy};

pub struct SqlGuardrail {
    config: Compiled,
}

impl Guardrail for SqlGuardrail {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let config = config
            .compile()
            .map_err(|e| format!("sql-guardrail config: {e}"))?;
        Ok(SqlGuardrail { config })
    }

    fn check(&self, session: &Session, request: &Request) -> Result<Verdict, String> {
        // Only SQL is this plugin's business; other guardrails judge the rest.
        let Some(sql) = request.sql() else {
            return Ok(Verdict::allow());
        };
        let verdict = self.decide(session, sql);
        // Refusals by rule; allows are already counted by the gateway
        // (`sluice_plugin_calls_total`), and this runs on every statement.
        let refusal = match &verdict {
            Verdict::Allow => None,
            Verdict::Deny(d) => Some(("deny", d.rule.as_str())),
            Verdict::RequireApproval(a) => Some(("require_approval", a.rule.as_str())),
        };
        if let Some((outcome, rule)) = refusal {
            log::debug(&format!("{outcome} by rule {rule}"));
            metrics::counter_add("refusals", 1, &[("outcome", outcome), ("rule", rule)]);
        }
        Ok(verdict)
    }

    /// A bind carries the summaries of the statement it executes, judged
    /// when that statement was prepared: the verdict cannot change, except
    /// where an approval rule applies, whose approver is shown each
    /// execution with its values. Other binds are not asked about, so a
    /// prepared statement costs one check however often it runs.
    fn judges_phase(&self, session: &Session, phase: SqlPhase) -> bool {
        phase != SqlPhase::Bind
            || self
                .policies_for(session)
                .iter()
                .any(|p| !p.approvals.is_empty())
    }
}

impl SqlGuardrail {
    fn decide(&self, session: &Session, sql: &SqlRequest) -> Verdict {
        if sql.statements.is_empty() {
            return Verdict::deny(
                builtin::NO_STATEMENTS,
                "the request carries no statement summaries to check",
            );
        }
        let mut approval = None;
        for policy in self.policies_for(session) {
            match self.evaluate(policy, sql) {
                Verdict::Allow => {}
                deny @ Verdict::Deny(_) => return deny,
                Verdict::RequireApproval(a) => {
                    approval.get_or_insert(a);
                }
            }
        }
        approval.map_or(Verdict::Allow, Verdict::RequireApproval)
    }

    /// The policies of the configured groups the identity is in, in group
    /// name order, or `default` when it is in none.
    fn policies_for(&self, session: &Session) -> Vec<&Policy> {
        let groups: Vec<&Policy> = self
            .config
            .groups
            .iter()
            .filter(|(group, _)| session.in_group(group))
            .map(|(_, policy)| policy)
            .collect();
        if groups.is_empty() {
            vec![&self.config.default]
        } else {
            groups
        }
    }

    /// Every statement must pass every rule before any approval is asked for:
    /// an approver should never be shown a request that is refused anyway.
    fn evaluate(&self, policy: &Policy, sql: &SqlRequest) -> Verdict {
        let count = sql.statements.len();
        let place = |i: usize| {
            if count > 1 {
                format!("statement {} of {count}: ", i + 1)
            } else {
                String::new()
            }
        };
        for (i, statement) in sql.statements.iter().enumerate() {
            if let Some((rule, reason)) = rules::deny(policy, &self.config.env, statement) {
                return Verdict::Deny(Denial {
                    rule: rule.into(),
                    reason: format!("{}{reason} (policy: {})", place(i), policy.label),
                });
            }
        }
        for (i, statement) in sql.statements.iter().enumerate() {
            if let Some(mut approval) = approval::approval(policy, &self.config.env, statement) {
                approval.reason = format!("{}{}", place(i), approval.reason);
                return Verdict::RequireApproval(approval);
            }
        }
        Verdict::Allow
    }
}

export_guardrail!(SqlGuardrail);

// `testing` is native-only: these tests need the host target.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
