//! Configured rules: command, kind, table and function lists, lifted
//! built-ins, approvals, and which policy applies to whom.

use serde_json::json;
use sluice_plugin_sdk::types::{
    Approval, StatementFlags as F, StatementKind as K, Verdict, WriteAction as A,
};

use super::*;

#[test]
fn deny_commands_match_tags_by_words_and_hidden_writes_by_action() {
    let p = plugin(
        json!({"default": {"deny_commands": ["drop", "TRUNCATE", "alter  table", "DELETE"]}}),
    );
    assert_eq!(outcome(&p, &[], drop_table("t")), "deny-commands");
    assert_eq!(
        outcome(&p, &[], ddl("DROP FUNCTION", "DropStmt")),
        "deny-commands"
    );
    let truncate = one("TRUNCATE a", |s| {
        s.kind(K::Ddl)
            .tag("TRUNCATE TABLE")
            .writes("a", A::Truncate)
    });
    assert_eq!(outcome(&p, &[], truncate), "deny-commands");
    assert_eq!(
        outcome(&p, &[], ddl("ALTER TABLE", "AlterTableStmt")),
        "deny-commands"
    );
    assert_eq!(
        outcome(&p, &[], ddl("ALTER SEQUENCE", "AlterSeqStmt")),
        "allow"
    );
    assert_eq!(outcome(&p, &[], delete("t", true)), "deny-commands");
    // A DELETE in a WITH clause under a SELECT, in EXPLAIN ANALYZE, in
    // PREPARE or as a MERGE action is still a DELETE.
    for hidden in [
        one("WITH d AS (DELETE …) SELECT …", |s| {
            s.kind(K::Dml)
                .flags(F::WRITABLE_CTE)
                .writes_where("t", A::Delete, true)
        }),
        one("EXPLAIN ANALYZE DELETE …", |s| {
            s.kind(K::Dml)
                .tag("EXPLAIN")
                .flags(F::EXPLAIN_ANALYZE)
                .writes_where("t", A::Delete, true)
        }),
        one("PREPARE p AS DELETE …", |s| {
            s.kind(K::Dml)
                .tag("PREPARE")
                .writes_where("t", A::Delete, true)
        }),
        one("MERGE …", |s| {
            s.kind(K::Dml)
                .tag("MERGE")
                .writes_where("t", A::Merge, true)
        }),
    ] {
        assert_eq!(
            outcome(&p, &[], hidden.clone()),
            "deny-commands",
            "{hidden:?}"
        );
    }
    let r = reason(
        &p,
        &[],
        one("WITH d AS (DELETE …) SELECT", |s| {
            s.flags(F::WRITABLE_CTE)
                .writes_where("s.t", A::Delete, true)
        }),
    );
    assert_eq!(
        r,
        "SELECT deletes from s.t (in a WITH clause), and DELETE is not allowed for this identity (deny_commands) (policy: default)"
    );
    assert_eq!(outcome(&p, &[], insert("t")), "allow");
}

#[test]
fn deny_kinds() {
    let p = plugin(json!({"default": {"deny_kinds": ["ddl", "Utility"]}}));
    assert_eq!(
        outcome(&p, &[], ddl("CREATE TABLE", "CreateStmt")),
        "deny-kinds"
    );
    assert_eq!(
        outcome(
            &p,
            &[],
            flagged(
                "VACUUM",
                K::Utility,
                "VACUUM",
                "VacuumStmt",
                F::MODIFIES_STATE
            )
        ),
        "deny-kinds"
    );
    assert_eq!(outcome(&p, &[], insert("t")), "allow");
}

#[test]
fn tables_deny_may_name_any_schema_and_case() {
    let p = plugin(json!({
        "search_path": ["public", "billing"],
        "default": {"tables_deny": ["billing.*", "\"HR\".salaries", "secrets"]},
    }));
    for denied in [
        select_from("billing.invoices"),
        select_from("BILLING.invoices"),
        select_from("invoices"), // unqualified: billing is on the search path
        insert("billing.x"),
        drop_table("billing.x"),
        select_from("hr.salaries"), // a different table in PostgreSQL, refused all the same
        select_from("anywhere.secrets"),
    ] {
        assert_eq!(
            outcome(&p, &[], denied.clone()),
            "tables-deny",
            "{denied:?}"
        );
    }
    assert_eq!(outcome(&p, &[], select_from("public.invoices")), "allow");
    assert_eq!(outcome(&p, &[], select_from("public.secrets2")), "allow");
    // Off the search path, an unqualified name cannot mean billing's table,
    // unless the policy lets the search path change.
    let public_only = plugin(json!({"default": {"tables_deny": ["billing.*"]}}));
    assert_eq!(outcome(&public_only, &[], select_from("invoices")), "allow");
    let movable = plugin(
        json!({"default": {"tables_deny": ["billing.*"], "allow_rules": ["protected-setting"]}}),
    );
    assert_eq!(
        outcome(&movable, &[], select_from("invoices")),
        "tables-deny"
    );
    assert_eq!(
        outcome(&movable, &[], select_from("public.invoices")),
        "allow"
    );
    // A whole schema dropped or renamed names no table the rules could check.
    assert_eq!(
        outcome(&p, &[], ddl("DROP SCHEMA", "DropStmt")),
        "tables-deny"
    );
    assert_eq!(
        outcome(&p, &[], ddl("ALTER SCHEMA", "RenameStmt")),
        "tables-deny"
    );
    assert_eq!(
        outcome(&empty(), &[], ddl("DROP SCHEMA", "DropStmt")),
        "allow"
    );
    let r = reason(&p, &[], select_from("billing.invoices"));
    assert_eq!(
        r,
        "billing.invoices is not allowed for this identity (tables_deny: billing.*) (policy: default)"
    );
}

#[test]
fn tables_allow_is_exact_and_checks_every_schema_an_unqualified_name_may_mean() {
    let p = plugin(json!({
        "search_path": ["app", "public"],
        "default": {"tables_allow": ["app.*", "public.users", "orders", "pg_catalog.pg_class"]},
    }));
    assert_eq!(outcome(&p, &[], select_from("app.anything")), "allow");
    assert_eq!(outcome(&p, &[], select_from("public.users")), "allow");
    assert_eq!(outcome(&p, &[], select_from("app.orders")), "allow");
    assert_eq!(
        outcome(&p, &[], select_from("public.orders")),
        "allow",
        "unqualified entries mean every search-path schema"
    );
    assert_eq!(outcome(&p, &[], select_from("orders")), "allow");
    assert_eq!(
        outcome(&p, &[], select_from("users")),
        "allow",
        "app.users and public.users are allowed"
    );
    let quoted = one("SELECT * FROM \"Public\".users", |s| {
        s.reads("Public.users")
    });
    assert_eq!(outcome(&p, &[], quoted), "tables-allow");
    assert_eq!(outcome(&p, &[], select_from("billing.x")), "tables-allow");
    assert_eq!(outcome(&p, &[], insert("billing.x")), "tables-allow");
    assert_eq!(
        outcome(&p, &[], select_from("pg_class")),
        "tables-allow",
        "could be app.pg_class"
    );
    assert_eq!(outcome(&p, &[], select("SELECT 1")), "allow");
    assert_eq!(
        outcome(&p, &[], select_from("accounts")),
        "tables-allow",
        "public.accounts is not allowed"
    );
    let r = reason(&p, &[], select_from("accounts"));
    assert!(r.contains("could resolve to (app, public)"), "{r}");
    let movable = plugin(
        json!({"default": {"tables_allow": ["public.*"], "allow_rules": ["protected-setting"]}}),
    );
    assert_eq!(outcome(&movable, &[], select_from("users")), "tables-allow");
    assert_eq!(outcome(&movable, &[], select_from("public.users")), "allow");

    let none = plugin(json!({"default": {"tables_allow": []}}));
    assert_eq!(outcome(&none, &[], select_from("public.t")), "tables-allow");
    assert_eq!(outcome(&none, &[], select("SELECT now()")), "allow");
}

#[test]
fn function_lists() {
    let p = plugin(json!({"default": {
        "deny_functions": ["pg_sleep", "admin.*"],
        "allow_functions": ["pg_cancel_backend", "dblink*"],
    }}));
    assert_eq!(
        outcome(&p, &[], call("PG_SLEEP", &[Some("10")])),
        "deny-functions"
    );
    assert_eq!(
        outcome(&p, &[], call("admin.reset_all", &[])),
        "deny-functions"
    );
    assert_eq!(
        outcome(&p, &[], call("reset_all", &[])),
        "allow",
        "admin is not on the search path"
    );
    assert_eq!(
        outcome(&p, &[], call("pg_cancel_backend", &[None])),
        "allow"
    );
    assert_eq!(
        outcome(&p, &[], call("pg_terminate_backend", &[None])),
        "deny-functions"
    );
    let dblink = one("SELECT dblink('…', '…')", |s| {
        s.flags(F::MODIFIES_STATE | F::DYNAMIC_SQL)
            .calls("dblink", &[None, None])
    });
    assert_eq!(
        outcome(&p, &[], dblink),
        "dynamic-sql",
        "exempt from the list, still dynamic SQL"
    );
}

#[test]
fn allow_rules_lift_built_in_rules_by_name() {
    let p = plugin(
        json!({"groups": {"dba": {"allow_rules": ["dynamic-sql", "copy-file", "privilege-change"]}}}),
    );
    let r#do = flagged(
        "DO $$…$$",
        K::Procedural,
        "DO",
        "DoStmt",
        F::MODIFIES_STATE | F::DYNAMIC_SQL,
    );
    let copy = flagged(
        "COPY t TO '/tmp/x'",
        K::Copy,
        "COPY",
        "CopyStmt",
        F::MODIFIES_STATE | F::COPY_SERVER_FILE,
    );
    let program = flagged(
        "COPY t TO PROGRAM 'x'",
        K::Copy,
        "COPY",
        "CopyStmt",
        F::MODIFIES_STATE | F::COPY_PROGRAM,
    );
    let grant = flagged("GRANT", K::Dcl, "GRANT", "GrantStmt", F::MODIFIES_STATE);
    assert_eq!(outcome(&p, &["dba"], r#do.clone()), "allow");
    assert_eq!(outcome(&p, &["dba"], copy.clone()), "allow");
    assert_eq!(outcome(&p, &["dba"], grant.clone()), "allow");
    assert_eq!(outcome(&p, &["dba"], program), "copy-program");
    assert_eq!(outcome(&p, &["agents"], r#do), "dynamic-sql");
    assert_eq!(outcome(&p, &["agents"], copy), "copy-file");
    assert_eq!(outcome(&p, &["agents"], grant), "privilege-change");
}

fn billing_approval() -> serde_json::Value {
    json!({
        "groups": {
            "agents": {
                "deny_commands": ["DROP"],
                "require_approval": [{
                    "name": "billing-delete",
                    "commands": ["DELETE"],
                    "tables": ["billing.*"],
                    "approver_groups": ["dba"],
                    "ttl_seconds": 900,
                }],
            },
            "dba": {},
        },
    })
}

#[test]
fn approvals_hold_matching_statements() {
    let p = plugin(billing_approval());
    let expected = Verdict::RequireApproval(Approval {
        rule: "billing-delete".into(),
        reason: "deleting from billing.invoices requires approval".into(),
        approver_groups: vec!["dba".into()],
        ttl_seconds: 900,
    });
    assert_eq!(
        verdict(&p, &["agents"], delete("billing.invoices", true)),
        expected
    );
    let hidden = one("WITH d AS (DELETE FROM billing.x WHERE …) SELECT", |s| {
        s.kind(K::Dml)
            .flags(F::MODIFIES_STATE | F::WRITABLE_CTE)
            .writes_where("billing.x", A::Delete, true)
    });
    assert_eq!(outcome(&p, &["agents"], hidden), "approval:billing-delete");
    assert_eq!(
        outcome(&p, &["agents"], delete("invoices", true)),
        "allow",
        "unqualified names resolve in public"
    );
    assert_eq!(
        outcome(&p, &["agents"], delete("public.log", true)),
        "allow"
    );
    assert_eq!(
        outcome(&p, &["agents"], update("billing.invoices", true)),
        "allow"
    );
    // A deny wins over an approval, whichever statement carries it.
    assert_eq!(
        outcome(&p, &["agents"], delete("billing.invoices", false)),
        "write-without-where"
    );
    let both = testing::sql("DELETE …; DROP TABLE x")
        .statement(|s| {
            s.kind(K::Dml)
                .tag("DELETE")
                .writes_where("billing.invoices", A::Delete, true)
        })
        .statement(|s| s.kind(K::Ddl).tag("DROP TABLE").writes("x", A::Drop));
    assert_eq!(outcome(&p, &["agents"], both), "deny-commands");
    // Members of dba have their own policy, without the approval.
    assert_eq!(
        outcome(&p, &["dba"], delete("billing.invoices", true)),
        "allow"
    );
}

#[test]
fn approval_rules_by_kind_and_reads() {
    let p = plugin(json!({"default": {"require_approval": [
        {"name": "hr-reads", "tables": ["hr.*"], "include_reads": true, "reason": "HR data needs a second pair of eyes"},
        {"name": "any-ddl", "kinds": ["ddl"]},
    ]}}));
    let Verdict::RequireApproval(a) = verdict(&p, &[], select_from("hr.salaries")) else {
        panic!("not held")
    };
    assert_eq!(
        (a.rule.as_str(), a.reason.as_str(), a.ttl_seconds),
        ("hr-reads", "HR data needs a second pair of eyes", 3600)
    );
    assert!(a.approver_groups.is_empty());
    assert_eq!(
        outcome(&p, &[], ddl("CREATE TABLE", "CreateStmt")),
        "approval:any-ddl"
    );
    assert_eq!(outcome(&p, &[], select_from("public.t")), "allow");
}

#[test]
fn several_groups_must_all_allow() {
    let p = plugin(json!({
        "default": {"read_only": true},
        "groups": {
            "writers": {},
            "auditors": {"read_only": true},
            "billing": {"require_approval": [{"name": "billing-writes", "tables": ["billing.*"]}]},
        },
    }));
    let write = insert("public.t");
    assert_eq!(outcome(&p, &[], write.clone()), "read-only", "default");
    assert_eq!(
        outcome(&p, &["unlisted"], write.clone()),
        "read-only",
        "default"
    );
    assert_eq!(outcome(&p, &["writers"], write.clone()), "allow");
    assert_eq!(
        outcome(&p, &["writers", "auditors"], write.clone()),
        "read-only",
        "the strictest wins"
    );
    assert_eq!(
        outcome(&p, &["writers", "billing"], insert("billing.x")),
        "approval:billing-writes"
    );
    let r = reason(&p, &["auditors", "writers"], write);
    assert!(r.ends_with("(policy: group auditors)"), "{r}");
}

/// Binds carry the prepared statement's own summaries: only a session under
/// an approval rule, whose approver sees each execution's values, needs
/// them judged.
#[test]
fn binds_are_judged_only_under_approval_rules() {
    use sluice_plugin_sdk::Guardrail;
    use sluice_plugin_sdk::types::SqlPhase;
    let p = plugin(billing_approval());
    let agents = testing::session("agent-1", &["agents"]);
    let dba = testing::session("agent-2", &["dba"]);
    assert!(p.judges_phase(&agents, SqlPhase::Bind));
    assert!(!p.judges_phase(&dba, SqlPhase::Bind));
    for phase in [
        SqlPhase::SimpleQuery,
        SqlPhase::Parse,
        SqlPhase::FunctionCall,
    ] {
        assert!(p.judges_phase(&dba, phase));
        assert!(p.judges_phase(&agents, phase));
    }
    assert!(!empty().judges_phase(&testing::session("a", &[]), SqlPhase::Bind));
}
