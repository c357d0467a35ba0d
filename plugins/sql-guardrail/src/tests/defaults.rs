//! What an empty config refuses, and read-only.

use serde_json::json;
use sluice_plugin_sdk::testing;
use sluice_plugin_sdk::types::{
    SqlPhase, StatementFlags as F, StatementKind as K, WriteAction as A,
};

use super::*;

#[test]
fn an_empty_config_allows_ordinary_work() {
    let p = empty();
    for ok in [
        select("SELECT 1"),
        select_from("public.users"),
        insert("t"),
        update("t", true),
        delete("billing.invoices", true),
        drop_table("t"),
        set("statement_timeout", Some("5000"), F::empty()),
        set("search_path", None, F::MODIFIES_STATE),
        flagged(
            "BEGIN",
            K::Transaction,
            "BEGIN",
            "TransactionStmt",
            F::empty(),
        ),
        call("lower", &[Some("X")]),
        call(
            "set_config",
            &[Some("application_name"), Some("x"), Some("false")],
        ),
    ] {
        assert_eq!(outcome(&p, &[], ok.clone()), "allow", "{ok:?}");
    }
}

#[test]
fn an_empty_config_refuses_what_reaches_outside() {
    let p = empty();
    let cases = [
        (
            flagged(
                "COPY t TO PROGRAM 'x'",
                K::Copy,
                "COPY",
                "CopyStmt",
                F::MODIFIES_STATE | F::COPY_PROGRAM,
            ),
            "copy-program",
        ),
        (
            flagged(
                "COPY t FROM '/etc/passwd'",
                K::Copy,
                "COPY",
                "CopyStmt",
                F::MODIFIES_STATE | F::COPY_SERVER_FILE,
            ),
            "copy-file",
        ),
        (
            set("role", Some("admin"), F::MODIFIES_STATE | F::ROLE_CHANGE),
            "role-change",
        ),
        (
            set(
                "session_authorization",
                Some("postgres"),
                F::MODIFIES_STATE | F::ROLE_CHANGE,
            ),
            "role-change",
        ),
        (
            set("all", None, F::MODIFIES_STATE | F::ROLE_CHANGE),
            "role-change",
        ),
        (
            one("SELECT set_config('role', 'x', false)", |s| {
                s.flags(F::MODIFIES_STATE | F::ROLE_CHANGE)
                    .calls("set_config", &[Some("role"), Some("x"), Some("false")])
            }),
            "role-change",
        ),
        (
            one("SELECT set_config(n, 'x', false)", |s| {
                s.flags(F::MODIFIES_STATE | F::ROLE_CHANGE)
                    .calls("pg_catalog.set_config", &[None, Some("x"), Some("false")])
            }),
            "role-change",
        ),
        (
            set("search_path", Some("evil, public"), F::MODIFIES_STATE),
            "protected-setting",
        ),
        (
            set(
                "standard_conforming_strings",
                Some("off"),
                F::MODIFIES_STATE,
            ),
            "protected-setting",
        ),
        (
            set("client_encoding", Some("SJIS"), F::MODIFIES_STATE),
            "protected-setting",
        ),
        (
            set(
                "session_replication_role",
                Some("replica"),
                F::MODIFIES_STATE,
            ),
            "protected-setting",
        ),
        (
            set(
                "transaction",
                Some("transaction_read_only 0"),
                F::MODIFIES_STATE,
            ),
            "protected-setting",
        ),
        (
            call(
                "set_config",
                &[Some("Search_Path"), Some("evil"), Some("false")],
            ),
            "protected-setting",
        ),
        (
            call(
                "set_config",
                &[Some("standard_conforming_strings"), None, Some("false")],
            ),
            "protected-setting",
        ),
        (
            call("pg_read_file", &[Some("/etc/passwd")]),
            "deny-functions",
        ),
        (
            call("pg_catalog.PG_READ_BINARY_FILE", &[Some("/etc/passwd")]),
            "deny-functions",
        ),
        (call("pg_ls_dir", &[Some(".")]), "deny-functions"),
        (call("pg_ls_waldir", &[]), "deny-functions"),
        (call("lo_import", &[Some("/etc/shadow")]), "deny-functions"),
        (call("lo_export", &[None, Some("/tmp/x")]), "deny-functions"),
        (
            call("ext.dblink_exec", &[Some("host=x"), Some("DROP TABLE t")]),
            "deny-functions",
        ),
        (call("pg_terminate_backend", &[None]), "deny-functions"),
        (call("pg_cancel_backend", &[None]), "deny-functions"),
        (call("pg_reload_conf", &[]), "deny-functions"),
        (call("pg_rotate_logfile", &[]), "deny-functions"),
        (ddl("ALTER SYSTEM", "AlterSystemStmt"), "server-admin"),
        (
            flagged(
                "LOAD 'x'",
                K::Utility,
                "LOAD",
                "LoadStmt",
                F::MODIFIES_STATE,
            ),
            "server-admin",
        ),
        (
            ddl("CREATE EXTENSION", "CreateExtensionStmt"),
            "server-admin",
        ),
        (
            ddl("CREATE FOREIGN SERVER", "CreateForeignServerStmt"),
            "server-admin",
        ),
        (
            ddl("ALTER DATABASE SET", "AlterDatabaseSetStmt"),
            "server-admin",
        ),
        (
            flagged("GRANT …", K::Dcl, "GRANT", "GrantStmt", F::MODIFIES_STATE),
            "privilege-change",
        ),
        (
            flagged(
                "CREATE ROLE r SUPERUSER",
                K::Dcl,
                "CREATE ROLE",
                "CreateRoleStmt",
                F::MODIFIES_STATE,
            ),
            "privilege-change",
        ),
        (
            flagged(
                "ALTER ROLE app SET search_path = x",
                K::Dcl,
                "ALTER ROLE",
                "AlterRoleSetStmt",
                F::MODIFIES_STATE,
            ),
            "privilege-change",
        ),
        (
            flagged(
                "DO $$…$$",
                K::Procedural,
                "DO",
                "DoStmt",
                F::MODIFIES_STATE | F::DYNAMIC_SQL,
            ),
            "dynamic-sql",
        ),
        (
            one("EXECUTE del(1)", |s| {
                s.kind(K::Procedural)
                    .tag("EXECUTE")
                    .node("ExecuteStmt")
                    .flags(F::MODIFIES_STATE | F::DYNAMIC_SQL)
                    .prepared_name("del")
            }),
            "dynamic-sql",
        ),
        (
            flagged(
                "CALL p()",
                K::Procedural,
                "CALL",
                "CallStmt",
                F::MODIFIES_STATE | F::DYNAMIC_SQL,
            ),
            "dynamic-sql",
        ),
        (
            flagged(
                "CREATE FUNCTION …",
                K::Ddl,
                "CREATE FUNCTION",
                "CreateFunctionStmt",
                F::MODIFIES_STATE | F::DYNAMIC_SQL,
            ),
            "dynamic-sql",
        ),
        (
            one("CREATE RULE …", |s| {
                s.kind(K::Ddl)
                    .tag("CREATE RULE")
                    .node("RuleStmt")
                    .flags(F::MODIFIES_STATE | F::DYNAMIC_SQL)
                    .writes("t", A::Alter)
            }),
            "dynamic-sql",
        ),
        (
            one("SELECT query_to_xml('DELETE FROM t', …)", |s| {
                s.flags(F::MODIFIES_STATE | F::DYNAMIC_SQL).calls(
                    "query_to_xml",
                    &[Some("DELETE FROM t"), Some("true"), Some("true"), Some("")],
                )
            }),
            "dynamic-sql",
        ),
        (update("t", false), "write-without-where"),
        (delete("billing.invoices", false), "write-without-where"),
    ];
    for (request, rule) in cases {
        assert_eq!(outcome(&p, &[], request.clone()), rule, "{request:?}");
    }
}

#[test]
fn writes_hidden_inside_other_statements_need_a_where_too() {
    let p = empty();
    let cte = one(
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        |s| {
            s.kind(K::Dml)
                .flags(F::MODIFIES_STATE | F::WRITABLE_CTE)
                .writes("t", A::Delete)
        },
    );
    assert_eq!(outcome(&p, &[], cte.clone()), "write-without-where");
    assert!(reason(&p, &[], cte).contains("(in a WITH clause)"));
    let explain = one("EXPLAIN ANALYZE UPDATE t SET a = 1", |s| {
        s.kind(K::Dml)
            .tag("EXPLAIN")
            .node("ExplainStmt")
            .flags(F::MODIFIES_STATE | F::EXPLAIN_ANALYZE)
            .writes("t", A::Update)
    });
    assert!(
        reason(&p, &[], explain)
            .contains("UPDATE of t has no WHERE clause (EXPLAIN ANALYZE runs the statement)")
    );
    let prepare = one("PREPARE d AS DELETE FROM t", |s| {
        s.kind(K::Dml)
            .tag("PREPARE")
            .node("PrepareStmt")
            .flags(F::MODIFIES_STATE)
            .writes("t", A::Delete)
            .prepared_name("d")
    });
    assert_eq!(outcome(&p, &[], prepare), "write-without-where");
    // MERGE always has its ON condition; INSERT has nothing to restrict.
    let merge = one("MERGE …", |s| {
        s.kind(K::Dml)
            .tag("MERGE")
            .writes_where("t", A::Merge, true)
    });
    assert_eq!(outcome(&p, &[], merge), "allow");
    let off = plugin(json!({"default": {"write_without_where": false}}));
    assert_eq!(outcome(&off, &[], delete("t", false)), "allow");
}

#[test]
fn reasons_tell_the_agent_what_to_do() {
    let p = empty();
    let r = reason(&p, &[], update("public.t", false));
    assert_eq!(
        r,
        "UPDATE of public.t has no WHERE clause, so it would change every row; add a WHERE clause that selects the rows to change (policy: default)"
    );
    let r = reason(
        &p,
        &[],
        call("pg_catalog.pg_read_file", &[Some("/etc/passwd")]),
    );
    assert_eq!(
        r,
        "calling pg_catalog.pg_read_file is not allowed: it reads or lists files on the database server (policy: default)"
    );
    let r = reason(
        &p,
        &[],
        flagged("COPY", K::Copy, "COPY", "CopyStmt", F::COPY_PROGRAM),
    );
    assert!(
        r.contains("use COPY … TO STDOUT or FROM STDIN instead"),
        "{r}"
    );
    let r = reason(&p, &[], set("role", Some("admin"), F::ROLE_CHANGE));
    assert!(
        r.starts_with("SET role changes the role the session acts as"),
        "{r}"
    );
    let r = reason(
        &p,
        &[],
        set(
            "standard_conforming_strings",
            Some("off"),
            F::MODIFIES_STATE,
        ),
    );
    assert!(r.contains("gateway's parser"), "{r}");
}

#[test]
fn read_only_allows_reads_and_session_bookkeeping() {
    let p = plugin(json!({"default": {"read_only": true}}));
    for ok in [
        select("SELECT 1"),
        select_from("users"),
        flagged("SHOW x", K::Query, "SHOW", "VariableShowStmt", F::empty()),
        flagged(
            "EXPLAIN DELETE FROM t",
            K::Query,
            "EXPLAIN",
            "ExplainStmt",
            F::empty(),
        ),
        flagged(
            "BEGIN",
            K::Transaction,
            "BEGIN",
            "TransactionStmt",
            F::empty(),
        ),
        flagged(
            "COMMIT",
            K::Transaction,
            "COMMIT",
            "TransactionStmt",
            F::empty(),
        ),
        set("work_mem", Some("64MB"), F::empty()),
        set(
            "transaction",
            Some("transaction_isolation serializable"),
            F::MODIFIES_STATE,
        ),
        flagged(
            "DEALLOCATE ALL",
            K::Utility,
            "DEALLOCATE ALL",
            "DeallocateStmt",
            F::MODIFIES_STATE,
        ),
        flagged(
            "CLOSE c",
            K::Utility,
            "CLOSE CURSOR",
            "ClosePortalStmt",
            F::MODIFIES_STATE,
        ),
        one("COPY (SELECT 1) TO STDOUT", |s| {
            s.kind(K::Copy)
                .tag("COPY")
                .node("CopyStmt")
                .flags(F::COPY_TO_CLIENT)
        }),
    ] {
        assert_eq!(outcome(&p, &[], ok.clone()), "allow", "{ok:?}");
    }
}

#[test]
fn read_only_refuses_anything_that_may_change_state() {
    let p = plugin(json!({"default": {"read_only": true}}));
    let cases = [
        insert("t"),
        update("t", true),
        delete("t", true),
        drop_table("t"),
        call("nextval", &[Some("s")]),
        one("SELECT … FOR UPDATE", |s| s.flags(F::MODIFIES_STATE)),
        one("WITH d AS (DELETE …) SELECT", |s| {
            s.kind(K::Dml)
                .flags(F::MODIFIES_STATE | F::WRITABLE_CTE)
                .writes_where("t", A::Delete, true)
        }),
        one("SELECT * INTO c FROM t", |s| {
            s.kind(K::Dml)
                .flags(F::MODIFIES_STATE | F::SELECT_INTO)
                .writes("c", A::SelectInto)
        }),
        one("EXPLAIN ANALYZE DELETE FROM t WHERE …", |s| {
            s.kind(K::Dml)
                .tag("EXPLAIN")
                .flags(F::MODIFIES_STATE | F::EXPLAIN_ANALYZE)
                .writes_where("t", A::Delete, true)
        }),
        one("MERGE …", |s| {
            s.kind(K::Dml)
                .tag("MERGE")
                .flags(F::MODIFIES_STATE)
                .writes_where("t", A::Merge, true)
        }),
        flagged(
            "LISTEN ch",
            K::Utility,
            "LISTEN",
            "ListenStmt",
            F::MODIFIES_STATE,
        ),
        flagged(
            "COMMIT PREPARED 'x'",
            K::Transaction,
            "COMMIT PREPARED",
            "TransactionStmt",
            F::MODIFIES_STATE,
        ),
        one("COPY t FROM STDIN", |s| {
            s.kind(K::Copy)
                .tag("COPY")
                .flags(F::MODIFIES_STATE | F::COPY_FROM_CLIENT)
                .writes("t", A::CopyFrom)
        }),
        ddl("COMMENT", "CommentStmt"),
    ];
    for request in cases {
        assert_eq!(
            outcome(&p, &[], request.clone()),
            "read-only",
            "{request:?}"
        );
    }
    // Code the gateway cannot see is never read-only, even when dynamic SQL
    // is otherwise allowed.
    let lifted = plugin(json!({"default": {"read_only": true, "allow_rules": ["dynamic-sql"]}}));
    let r#do = flagged(
        "DO $$…$$",
        K::Procedural,
        "DO",
        "DoStmt",
        F::MODIFIES_STATE | F::DYNAMIC_SQL,
    );
    assert_eq!(outcome(&lifted, &[], r#do), "read-only");
    // A function the analysis does not know to be pure keeps a query from
    // being read-only; the reason names the candidates.
    let r = reason(&p, &[], call("nextval", &[Some("s")]));
    assert!(r.starts_with("SELECT is not read-only: it calls functions not known to be free of side effects (one of: nextval)"), "{r}");
    let r = reason(&p, &[], delete("public.t", true));
    assert!(
        r.starts_with("DELETE is not read-only: it deletes from public.t;"),
        "{r}"
    );
}

#[test]
fn several_statements_are_judged_together() {
    let p = empty();
    let request = testing::sql("SELECT 1; DROP TABLE t; UPDATE u SET a = 1")
        .statement(|s| s.text("SELECT 1"))
        .statement(|s| {
            s.text("DROP TABLE t")
                .kind(K::Ddl)
                .tag("DROP TABLE")
                .writes("t", A::Drop)
        })
        .statement(|s| {
            s.text("UPDATE u SET a = 1")
                .kind(K::Dml)
                .tag("UPDATE")
                .writes("u", A::Update)
        });
    assert_eq!(outcome(&p, &[], request.clone()), "write-without-where");
    assert!(reason(&p, &[], request).starts_with("statement 3 of 3: UPDATE of u"));
}

#[test]
fn requests_without_statements_and_other_protocols() {
    let p = empty();
    let Request::Sql(mut sql) = select("SELECT 1").phase(SqlPhase::Parse).build() else {
        unreachable!()
    };
    sql.statements.clear();
    assert_eq!(outcome(&p, &[], Request::Sql(sql)), "no-statements");
    assert_eq!(outcome(&p, &[], testing::http("DELETE", "/x")), "allow");
    assert_eq!(outcome(&p, &[], testing::shell("rm -rf /")), "allow");
}

#[test]
fn refusals_are_counted_by_rule() {
    let p = empty();
    metrics();
    verdict(&p, &[], select("SELECT 1"));
    verdict(&p, &[], update("t", false));
    let recorded: Vec<(String, Vec<(String, String)>)> =
        metrics().into_iter().map(|m| (m.name, m.labels)).collect();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        recorded,
        vec![(
            "refusals".to_string(),
            vec![pair("outcome", "deny"), pair("rule", "write-without-where")]
        )]
    );
}
