use serde_json::json;
use sluice_plugin_sdk::types::{Request, StatementKind, Verdict, WriteAction};
use sluice_plugin_sdk::{Guardrail, testing};

use super::DenyWord;

fn plugin(config: serde_json::Value) -> DenyWord {
    testing::guardrail::<DenyWord>(config).expect("valid config")
}

fn check(plugin: &DenyWord, request: impl Into<Request>) -> Verdict {
    plugin
        .check(&testing::session("agent", &[]), &request.into())
        .expect("a verdict")
}

#[test]
fn denies_sql_containing_a_word_in_any_case() {
    let p = plugin(json!({ "words": ["drop", "truncate"] }));
    let drop = testing::sql("DROP TABLE t").statement(|s| {
        s.kind(StatementKind::Ddl)
            .tag("DROP TABLE")
            .writes("t", WriteAction::Drop)
    });
    assert_eq!(
        check(&p, drop),
        Verdict::deny("deny-word", "SQL contains the denied word `drop`")
    );
    assert_eq!(check(&p, testing::sql("SELECT * FROM t")), Verdict::allow());
}

#[test]
fn case_sensitive_matching_is_exact() {
    let p = plugin(json!({ "words": ["DROP"], "case_sensitive": true }));
    assert!(check(&p, testing::sql("drop table t")).is_allow());
    assert!(!check(&p, testing::sql("DROP TABLE t")).is_allow());
}

#[test]
fn checks_http_paths_and_shell_commands() {
    let p = plugin(json!({ "words": ["admin", "rm -rf"] }));
    let Verdict::Deny(denial) = check(&p, testing::http("GET", "/Admin/users")) else {
        panic!("allowed")
    };
    assert_eq!(denial.rule, "deny-word");
    assert!(denial.reason.contains("`admin`"), "{}", denial.reason);
    // Only the path counts, not the body.
    assert!(check(&p, testing::http("POST", "/notes").body("admin")).is_allow());
    assert!(!check(&p, testing::shell("rm -rf /tmp/x")).is_allow());
    assert!(check(&p, testing::shell("ls -l")).is_allow());
}

#[test]
fn rejects_bad_configs() {
    let err = testing::guardrail::<DenyWord>(json!({ "words": [] }))
        .err()
        .unwrap();
    assert_eq!(err, "deny-word: `words` must list at least one word");
    assert!(
        testing::guardrail::<DenyWord>(json!({})).is_err(),
        "words is required"
    );
    assert!(testing::guardrail::<DenyWord>(json!({ "words": "drop" })).is_err());
    assert!(testing::guardrail::<DenyWord>(json!({ "words": ["x"], "case": true })).is_err());
}

#[test]
fn rejects_empty_words() {
    let err = testing::guardrail::<DenyWord>(json!({ "words": ["drop", ""] }))
        .err()
        .unwrap();
    assert_eq!(err, "deny-word: `words` must not contain an empty word");
}

#[test]
fn checks_the_values_a_bind_carries() {
    use sluice_plugin_sdk::types::SqlPhase;
    let p = plugin(json!({ "words": ["drop"] }));
    let bind = |value: Option<&str>| {
        testing::sql("SELECT $1::text")
            .phase(SqlPhase::Bind)
            .parameters(&[None, value])
            .statement_name("s1")
    };
    assert_eq!(
        check(&p, bind(Some("please DROP it"))),
        Verdict::deny(
            "deny-word",
            "a bound parameter contains the denied word `drop`"
        )
    );
    assert!(check(&p, bind(Some("fine"))).is_allow());
    assert!(check(&p, bind(None)).is_allow());
}
