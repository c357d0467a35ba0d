//! Configs the plugin refuses at `init`, with the message the operator sees.

use serde_json::json;

use super::*;

fn refused(config: serde_json::Value) -> String {
    match testing::guardrail::<SqlGuardrail>(config) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    }
}

#[test]
fn bad_configs_are_refused_with_the_key_that_is_wrong() {
    for (config, expected) in [
        (
            json!({"default": {"read-only": true}}),
            "unknown field `read-only`",
        ),
        (json!({"default": {"read_only": "yes"}}), "invalid type"),
        (
            json!({"groups": {"agents": {"deny_kinds": ["writes"]}}}),
            "groups.agents.deny_kinds[0]: `writes` is not a statement kind",
        ),
        (
            json!({"default": {"deny_commands": ["DROP;"]}}),
            "default.deny_commands[0]: `DROP;` is not a command word",
        ),
        (
            json!({"default": {"deny_commands": [" "]}}),
            "default.deny_commands[0]: an empty command",
        ),
        (
            json!({"default": {"tables_deny": ["ok", "a..b"]}}),
            "default.tables_deny[1]: `a..b`: a part of the name is empty",
        ),
        (
            json!({"default": {"tables_allow": ["db.s.t"]}}),
            "default.tables_allow[0]: `db.s.t`: at most two parts",
        ),
        (
            json!({"default": {"deny_functions": ["\"open"]}}),
            "default.deny_functions[0]: `\"open`: a quoted part is not closed",
        ),
        (
            json!({"default": {"allow_functions": ["pg_sleep"]}}),
            "default.allow_functions[0]: `pg_sleep` exempts none of the built-in denied functions",
        ),
        (
            json!({"default": {"allow_rules": ["read-only"]}}),
            "default.allow_rules[0]: `read-only` is not a built-in rule; these can be lifted: copy-program, copy-file",
        ),
        (
            json!({"default": {"require_approval": [{"name": "x"}]}}),
            "default.require_approval[0]: give `commands`, `kinds` or `tables`",
        ),
        (
            json!({"default": {"require_approval": [{"tables": ["t"], "ttl_seconds": 0}]}}),
            "ttl_seconds must be between 1 and 604800",
        ),
        (
            json!({"default": {"require_approval": [{"tables": ["t"], "name": "has space"}]}}),
            "name `has space`",
        ),
        (
            json!({"default": {"require_approval": [{"commands": ["DELETE", "x-y"]}]}}),
            "default.require_approval[0].commands[1]: `X-Y` is not a command word",
        ),
        (
            json!({"default": {"require_approval": [{"tables": ["t"], "approvers": ["dba"]}]}}),
            "unknown field `approvers`",
        ),
        (
            json!({"search_path": []}),
            "search_path: list at least one schema",
        ),
        (json!({"policies": {}}), "unknown field `policies`"),
    ] {
        let err = refused(config.clone());
        assert!(
            err.contains(expected),
            "{config}\n  gave: {err}\n  want: {expected}"
        );
    }
}

#[test]
fn every_key_at_once_is_accepted() {
    let p = plugin(json!({
        "search_path": ["app", "public"],
        "default": {
            "read_only": true,
            "write_without_where": true,
            "deny_kinds": ["ddl"],
            "deny_commands": ["DROP", "ALTER TABLE"],
            "tables_allow": ["app.*", "\"Mixed\".\"Case\""],
            "tables_deny": ["app.secrets"],
            "deny_functions": ["pg_sleep"],
            "allow_functions": ["pg_cancel_backend"],
            "allow_rules": ["dynamic-sql", "copy-program", "copy-file", "role-change", "protected-setting", "privilege-change", "server-admin"],
            "require_approval": [{
                "name": "r_1",
                "commands": ["delete"],
                "kinds": ["dml"],
                "tables": ["app.*"],
                "include_reads": false,
                "approver_groups": ["dba"],
                "ttl_seconds": 604800,
                "reason": "why",
            }],
        },
        "groups": {"agents": {}},
    }));
    assert_eq!(outcome(&p, &[], select_from("app.secrets")), "tables-deny");
    assert_eq!(
        outcome(&p, &["agents"], select_from("app.secrets")),
        "allow",
        "groups do not inherit from default"
    );
}
