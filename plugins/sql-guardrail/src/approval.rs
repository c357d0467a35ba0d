//! `require_approval` rules: which statements a policy holds for an
//! approver, once no rule refuses them.

use sluice_plugin_sdk::types::{Approval, SqlStatement, TableRef, WriteAction};

use crate::config::{ApprovalRule, Env, Policy};
use crate::pattern::Folded;
use crate::rules::{context, table_schemas};

/// The rule of `policy` that holds `s` for approval, if any.
pub(crate) fn approval(policy: &Policy, env: &Env, s: &SqlStatement) -> Option<Approval> {
    policy.approvals.iter().find_map(|rule| {
        let what = approval_match(policy, env, rule, s)?;
        let reason = rule
            .reason
            .clone()
            .unwrap_or_else(|| format!("{what} requires approval"));
        Some(Approval {
            rule: rule.name.clone(),
            reason,
            approver_groups: rule.approver_groups.clone(),
            ttl_seconds: rule.ttl_seconds,
        })
    })
}

fn approval_match(
    policy: &Policy,
    env: &Env,
    rule: &ApprovalRule,
    s: &SqlStatement,
) -> Option<String> {
    if !rule.kinds.is_empty() && !rule.kinds.contains(&s.kind) {
        return None;
    }
    let command_ok = |action: Option<WriteAction>| {
        rule.commands.is_empty()
            || rule
                .commands
                .iter()
                .any(|c| c.prefixes(&s.command_tag) || action.is_some_and(|a| c.covers_action(a)))
    };
    if rule.tables.is_empty() {
        let hit = command_ok(None) || s.tables_written.iter().any(|w| command_ok(Some(w.action)));
        return hit.then(|| s.command_tag.clone());
    }
    let named = |t: &TableRef| {
        let schemas = table_schemas(policy, env, t);
        let folded = Folded::new(&t.name);
        rule.tables.iter().any(|p| p.may_name(&schemas, &folded))
    };
    if let Some(w) = s
        .tables_written
        .iter()
        .find(|w| named(&w.table) && command_ok(Some(w.action)))
    {
        return Some(format!(
            "{} {}{}",
            gerund(w.action),
            w.table.qualified(),
            context(s)
        ));
    }
    if rule.include_reads
        && let Some(t) = s.tables_read.iter().find(|t| named(t) && command_ok(None))
    {
        return Some(format!("reading {}", t.qualified()));
    }
    None
}

fn gerund(action: WriteAction) -> &'static str {
    match action {
        WriteAction::Insert => "inserting into",
        WriteAction::Update => "updating",
        WriteAction::Delete => "deleting from",
        WriteAction::Merge => "merging into",
        WriteAction::Truncate => "truncating",
        WriteAction::CopyFrom => "copying into",
        WriteAction::SelectInto | WriteAction::Create => "creating",
        WriteAction::Alter => "altering",
        WriteAction::Drop => "dropping",
        WriteAction::Other => "changing",
    }
}
