//! Rule logic over summaries shaped like the gateway's (checked against the
//! real analysis by `gateway/tests/sql_guardrail.rs`).

mod config;
mod defaults;
mod policy;

use serde_json::json;
use sluice_plugin_sdk::testing::{self, SqlBuilder, StatementBuilder};
use sluice_plugin_sdk::types::{
    Request, StatementFlags as F, StatementKind as K, Verdict, WriteAction as A,
};
use sluice_plugin_sdk::{Guardrail, testing::Metric};

use super::SqlGuardrail;

pub(super) fn plugin(config: serde_json::Value) -> SqlGuardrail {
    testing::guardrail::<SqlGuardrail>(config).expect("valid config")
}

pub(super) fn empty() -> SqlGuardrail {
    plugin(json!({}))
}

pub(super) fn verdict(p: &SqlGuardrail, groups: &[&str], request: impl Into<Request>) -> Verdict {
    p.check(&testing::session("agent-1", groups), &request.into())
        .expect("a verdict")
}

/// The rule that denied, `allow`, or `approval:RULE`.
pub(super) fn outcome(p: &SqlGuardrail, groups: &[&str], request: impl Into<Request>) -> String {
    match verdict(p, groups, request) {
        Verdict::Allow => "allow".into(),
        Verdict::Deny(d) => d.rule,
        Verdict::RequireApproval(a) => format!("approval:{}", a.rule),
    }
}

pub(super) fn reason(p: &SqlGuardrail, groups: &[&str], request: impl Into<Request>) -> String {
    match verdict(p, groups, request) {
        Verdict::Deny(d) => d.reason,
        Verdict::RequireApproval(a) => a.reason,
        Verdict::Allow => panic!("allowed"),
    }
}

// ---- summaries as the gateway's analysis reports them

pub(super) fn one(
    text: &str,
    describe: impl FnOnce(StatementBuilder) -> StatementBuilder,
) -> SqlBuilder {
    testing::sql(text).statement(describe)
}

pub(super) fn select(text: &str) -> SqlBuilder {
    testing::sql(text)
}

pub(super) fn select_from(table: &str) -> SqlBuilder {
    one(&format!("SELECT * FROM {table}"), |s| s.reads(table))
}

pub(super) fn dml(tag: &str, node: &str, action: A, table: &str, has_where: bool) -> SqlBuilder {
    let text = format!("{tag} … {table}");
    one(&text, |s| {
        let s = s
            .kind(K::Dml)
            .tag(tag)
            .node(node)
            .flags(F::MODIFIES_STATE)
            .writes_where(table, action, has_where)
            .has_where(has_where);
        if action == A::Insert {
            s
        } else {
            s.reads(table)
        }
    })
}

pub(super) fn delete(table: &str, has_where: bool) -> SqlBuilder {
    dml("DELETE", "DeleteStmt", A::Delete, table, has_where)
}

pub(super) fn update(table: &str, has_where: bool) -> SqlBuilder {
    dml("UPDATE", "UpdateStmt", A::Update, table, has_where)
}

pub(super) fn insert(table: &str) -> SqlBuilder {
    dml("INSERT", "InsertStmt", A::Insert, table, false)
}

pub(super) fn ddl(tag: &str, node: &str) -> SqlBuilder {
    one(tag, |s| {
        s.kind(K::Ddl).tag(tag).node(node).flags(F::MODIFIES_STATE)
    })
}

pub(super) fn drop_table(table: &str) -> SqlBuilder {
    one(&format!("DROP TABLE {table}"), |s| {
        s.kind(K::Ddl)
            .tag("DROP TABLE")
            .node("DropStmt")
            .flags(F::MODIFIES_STATE)
            .writes(table, A::Drop)
    })
}

pub(super) fn set(name: &str, value: Option<&str>, flags: F) -> SqlBuilder {
    let tag = if value.is_some() { "SET" } else { "RESET" };
    one(&format!("{tag} {name}"), |s| {
        s.kind(K::Session)
            .tag(tag)
            .node("VariableSetStmt")
            .flags(flags)
            .setting(name, value)
    })
}

/// `SELECT name(args…)`, which the analysis marks as changing state unless
/// the function is a known pure built-in.
pub(super) fn call(name: &str, args: &[Option<&str>]) -> SqlBuilder {
    one(&format!("SELECT {name}(…)"), |s| {
        s.flags(F::MODIFIES_STATE).calls(name, args)
    })
}

pub(super) fn flagged(text: &str, kind: K, tag: &str, node: &str, flags: F) -> SqlBuilder {
    one(text, |s| s.kind(kind).tag(tag).node(node).flags(flags))
}

/// Every counter the plugin recorded on this thread since the last call.
pub(super) fn metrics() -> Vec<Metric> {
    testing::take_metrics()
}
