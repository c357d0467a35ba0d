use std::sync::Once;

use serde_json::{Value, json};
use sluice_plugin_sdk::testing;

use super::*;

/// What the gateway would show a plugin granted these destinations, and one
/// granted env var. Set once: tests run on parallel threads.
fn granted() {
    static ONCE: Once = Once::new();
    // SAFETY: set once, before any test of this binary reads it.
    ONCE.call_once(|| unsafe {
        std::env::set_var(
            GRANTS_ENV,
            "https://hooks.example.com/sluice http://127.0.0.1:9000",
        );
        std::env::set_var("HOOK_TEST_TOKEN", "s3cret");
    });
}

fn sink(config: Value) -> Result<AuditWebhook, String> {
    granted();
    testing::audit_sink::<AuditWebhook>(config)
}

#[test]
fn init_accepts_a_granted_url_and_builds_its_headers() {
    let s = sink(json!({
        "url": "https://hooks.example.com/sluice/events",
        "headers": {
            "Authorization": { "env": "HOOK_TEST_TOKEN", "prefix": "Bearer " },
            "X-Source": "sluice",
        },
    }))
    .unwrap();
    assert!(
        s.headers
            .contains(&("authorization".into(), b"Bearer s3cret".to_vec()))
    );
    assert!(s.headers.contains(&("x-source".into(), b"sluice".to_vec())));
    assert_eq!(s.max_attempts, 3);
}

#[test]
fn init_refuses_what_the_gateway_would_refuse() {
    for (config, message) in [
        (
            json!({ "url": "https://evil.example.com/sluice" }),
            "not under a destination granted",
        ),
        (
            json!({ "url": "https://hooks.example.com/sluice-admin" }),
            "not under a destination granted",
        ),
        (
            json!({ "url": "http://hooks.example.com/sluice" }),
            "not under a destination granted",
        ),
        (
            json!({ "url": "ftp://hooks.example.com/sluice" }),
            "https:// or http://",
        ),
        (
            json!({ "url": "http://127.0.0.1:9000/", "headers": { "Idempotency-Key": "x" } }),
            "set by the plugin",
        ),
        (
            json!({ "url": "http://127.0.0.1:9000/", "headers": { "Authorization": { "env": "NOT_GRANTED_VAR" } } }),
            "env = [\"NOT_GRANTED_VAR\"]",
        ),
        (
            json!({ "url": "http://127.0.0.1:9000/", "max_attempts": 0 }),
            "max_attempts",
        ),
        (
            json!({ "url": "http://127.0.0.1:9000/", "retries": 2 }),
            "unknown field",
        ),
    ] {
        let err = sink(config.clone())
            .err()
            .unwrap_or_else(|| panic!("accepted {config}"));
        assert!(err.contains(message), "{config}: {err}");
    }
}

#[test]
fn a_batch_is_one_json_object_named_by_its_first_and_last_event() {
    let mut a = testing::audit_event("session.start", 7, json!({"client": "psql"}));
    a.id = "log1-7".into();
    let mut b = testing::audit_event("session.end", 9, json!({}));
    b.id = "log1-9".into();
    let body: Value = serde_json::from_slice(&batch_body(&[a.clone(), b.clone()])).unwrap();
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["id"], "log1-7");
    assert_eq!(events[0]["detail"]["client"], "psql");
    assert_eq!(events[1]["kind"], "session.end");
    assert_eq!(idempotency_key(&a, &b), "log1-7..log1-9");
}
