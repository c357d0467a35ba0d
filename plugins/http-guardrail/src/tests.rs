use serde_json::json;
use sluice_plugin_sdk::types::{Request, Verdict};
use sluice_plugin_sdk::{Guardrail, testing};

use super::HttpGuardrail;

fn plugin(config: serde_json::Value) -> HttpGuardrail {
    testing::guardrail::<HttpGuardrail>(config).expect("valid config")
}

fn check(p: &HttpGuardrail, groups: &[&str], request: impl Into<Request>) -> Verdict {
    p.check(&testing::session("agent", groups), &request.into())
        .expect("a verdict")
}

fn admin_policy() -> HttpGuardrail {
    plugin(json!({
        "default": "allow",
        "rules": [
            {"name": "admins-may-delete", "groups": ["admins"], "methods": ["DELETE"], "path": "/admin/*", "action": "allow"},
            {"name": "no-admin-delete", "methods": ["delete"], "path": "/admin/*", "action": "deny",
             "reason": "agents may not delete admin resources"},
            {"name": "big-payments", "methods": ["POST"], "path": "/payments",
             "body": [{"pointer": "/amount", "greater_than": 1000}], "action": "require-approval",
             "approver_groups": ["finance"], "ttl_seconds": 600},
            {"name": "prod-writes", "methods": ["PUT"], "headers": [{"name": "x-env", "equals": "prod"}], "action": "deny"}
        ]
    }))
}

#[test]
fn method_and_path_rules_per_group() {
    let p = admin_policy();
    assert_eq!(
        check(&p, &["agents"], testing::http("DELETE", "/admin/users/42")),
        Verdict::deny("no-admin-delete", "agents may not delete admin resources")
    );
    assert!(check(&p, &["admins"], testing::http("DELETE", "/admin/users/42")).is_allow());
    assert!(check(&p, &["agents"], testing::http("GET", "/admin/users")).is_allow());
    assert!(check(&p, &["agents"], testing::http("DELETE", "/users/1")).is_allow());
}

#[test]
fn body_and_header_conditions() {
    let p = admin_policy();
    let big = testing::http("POST", "/payments").body(r#"{"amount": 5000}"#);
    match check(&p, &[], big) {
        Verdict::RequireApproval(a) => {
            assert_eq!(a.rule, "big-payments");
            assert_eq!(a.approver_groups, vec!["finance".to_string()]);
            assert_eq!(a.ttl_seconds, 600);
        }
        other => panic!("{other:?}"),
    }
    let small = testing::http("POST", "/payments").body(r#"{"amount": 5}"#);
    assert!(check(&p, &[], small).is_allow());
    // A body the gateway cut short cannot prove it is small.
    let cut = testing::http("POST", "/payments")
        .body(r#"{"amount": 5"#)
        .body_incomplete();
    assert!(!check(&p, &[], cut).is_allow());
    let prod = testing::http("PUT", "/x").header("X-Env", "prod");
    assert!(!check(&p, &[], prod).is_allow());
    assert!(check(&p, &[], testing::http("PUT", "/x").header("x-env", "dev")).is_allow());
}

/// What upstreams read differently from the plugin: a path in another case,
/// a body that is JSON only to a JSON parser, several values of a header.
#[test]
fn rules_cover_what_upstreams_could_read_otherwise() {
    let p = admin_policy();
    assert!(!check(&p, &["agents"], testing::http("DELETE", "/ADMIN/users/42")).is_allow());
    let form = testing::http("POST", "/payments")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(r#"{"x":"&amount=5000&"}"#);
    assert!(!check(&p, &[], form).is_allow());
    let json = testing::http("POST", "/payments")
        .header("Content-Type", "application/json; charset=utf-8")
        .body(r#"{"amount": 5}"#);
    assert!(check(&p, &[], json).is_allow());

    let dry_runs = plugin(json!({
        "default": "deny",
        "rules": [{"name": "dry-runs", "headers": [{"name": "x-dry-run", "equals": "true"}], "action": "allow"}]
    }));
    let one = testing::http("POST", "/deploy").header("x-dry-run", "true");
    assert!(check(&dry_runs, &[], one).is_allow());
    let two = testing::http("POST", "/deploy")
        .header("x-dry-run", "true")
        .header("x-dry-run", "false");
    assert!(!check(&dry_runs, &[], two).is_allow());
}

/// A HEAD request runs the GET handler in most frameworks: a rule on GET
/// decides it too, deny and allow alike.
#[test]
fn rules_on_get_cover_head() {
    let p = plugin(json!({
        "default": "deny",
        "rules": [
            {"name": "no-secrets", "methods": ["GET", "POST"], "path": "/secret*", "action": "deny"},
            {"name": "reads", "methods": ["get"], "path": "/v1/*", "action": "allow"}
        ]
    }));
    assert!(!check(&p, &[], testing::http("HEAD", "/secret")).is_allow());
    assert!(!check(&p, &[], testing::http("GET", "/secret")).is_allow());
    assert!(check(&p, &[], testing::http("HEAD", "/v1/items")).is_allow());
    assert!(!check(&p, &[], testing::http("OPTIONS", "/v1/items")).is_allow());
}

#[test]
fn unknown_conditions_never_earn_an_allow() {
    let p = plugin(json!({
        "default": "deny",
        "rules": [{"name": "small-ok", "path": "/pay", "body": [{"pointer": "/amount", "less_than": 10}], "action": "allow"}]
    }));
    assert!(
        check(
            &p,
            &[],
            testing::http("POST", "/pay").body(r#"{"amount": 1}"#)
        )
        .is_allow()
    );
    assert!(!check(&p, &[], testing::http("POST", "/pay").body("not json")).is_allow());
    // No body holds no amount: an allow needs one, a deny finds none.
    assert!(!check(&p, &[], testing::http("POST", "/pay")).is_allow());
    let deny_negative = plugin(json!({
        "default": "allow",
        "rules": [{"name": "negative", "body": [{"pointer": "/n", "less_than": 0}], "action": "deny"},
                  {"name": "no-body", "path": "/strict", "body": [{"pointer": "/n", "present": false}], "action": "deny"}]
    }));
    assert!(check(&deny_negative, &[], testing::http("GET", "/x")).is_allow());
    let bom = testing::http("POST", "/x").body("\u{feff}{\"n\": 1}");
    assert!(check(&deny_negative, &[], bom).is_allow());
    let bom = testing::http("POST", "/x").body("\u{feff}{\"n\": -1}");
    assert!(!check(&deny_negative, &[], bom).is_allow());
    let form =
        testing::http("GET", "/x").header("Content-Type", "application/x-www-form-urlencoded");
    assert!(check(&deny_negative, &[], form).is_allow());
    assert!(
        !check(
            &deny_negative,
            &[],
            testing::http("POST", "/x").body("n=-1")
        )
        .is_allow()
    );
    assert!(!check(&deny_negative, &[], testing::http("GET", "/strict")).is_allow());
    assert_eq!(
        check(&p, &[], testing::http("POST", "/other")),
        Verdict::deny("default", "POST /other is denied")
    );
}

#[test]
fn mcp_tool_lists() {
    let p = plugin(json!({
        "default": "allow",
        "tools": [
            {"name": "read-only-tools", "groups": ["readers"], "tools": ["*"], "action": "deny", "reason": "readers call no tools"},
            {"name": "no-destructive-tools", "tools": ["delete_*", "drop_table"], "action": "deny"},
            {"name": "prod-deploys", "tools": ["deploy"], "arguments": [{"pointer": "/env", "equals": "prod"}], "action": "require-approval"}
        ]
    }));
    let call = |tool: &str, args| testing::http("POST", "/mcp").mcp_tool_call(tool, args);
    assert_eq!(
        check(&p, &[], call("delete_repo", json!({"repo": "x"}))),
        Verdict::deny("no-destructive-tools", "MCP tool `delete_repo` is denied")
    );
    assert!(check(&p, &[], call("search", json!({"q": "x"}))).is_allow());
    assert!(!check(&p, &["readers"], call("search", json!({}))).is_allow());
    assert!(matches!(
        check(&p, &[], call("deploy", json!({"env": "prod"}))),
        Verdict::RequireApproval(_)
    ));
    assert!(check(&p, &[], call("deploy", json!({"env": "dev"}))).is_allow());
    // Arguments that are not an object cannot be looked into.
    assert!(matches!(
        check(&p, &[], call("deploy", json!("{\"env\":\"prod\"}"))),
        Verdict::RequireApproval(_)
    ));
}

#[test]
fn connections_scope_rules_and_other_protocols_pass() {
    let p = plugin(json!({
        "default": "allow",
        "rules": [{"name": "ro", "connections": ["test"], "methods": ["POST"], "action": "deny"}]
    }));
    assert!(!check(&p, &[], testing::http("POST", "/x")).is_allow());
    let mut other = testing::session("agent", &[]);
    other.connection = "elsewhere".into();
    assert!(
        p.check(&other, &testing::http("POST", "/x").build())
            .unwrap()
            .is_allow()
    );
    assert!(check(&p, &[], testing::sql("DELETE FROM t")).is_allow());
}

#[test]
fn bad_configs_are_refused_with_a_reason() {
    let bad = |c: serde_json::Value, needle: &str| {
        let err = testing::guardrail::<HttpGuardrail>(c)
            .err()
            .expect("refused");
        assert!(err.contains(needle), "{err}");
    };
    bad(json!({}), "default");
    bad(json!({"default": "maybe"}), "maybe");
    bad(
        json!({"default": "allow", "rules": [{"name": "x", "path": "admin", "action": "deny"}]}),
        "start with",
    );
    bad(
        json!({"default": "allow", "rules": [{"name": "x", "methods": ["GE T"], "action": "deny"}]}),
        "not a method",
    );
    bad(
        json!({"default": "allow", "tools": [{"name": "x", "tools": [], "action": "deny"}]}),
        "at least one",
    );
    bad(
        json!({"default": "allow", "rules": [{"name": "x", "action": "deny", "ttl_seconds": 5}]}),
        "only apply",
    );
    bad(
        json!({"default": "allow", "rules": [{"name": "x", "action": "deny", "colour": "red"}]}),
        "colour",
    );
}
