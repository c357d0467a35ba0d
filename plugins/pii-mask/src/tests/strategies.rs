use serde_json::json;

use super::{JWT, KEY, config_error, mask_text, redact};

#[test]
fn redact_writes_the_entity() {
    let text = format!(
        "ann@example.com, +1 415 555 2671, 4242 4242 4242 4242, 536-90-4399, \
         DE89370400440532013000, 10.1.2.3, {JWT}, AKIAIOSFODNN7EXAMPLE"
    );
    assert_eq!(
        mask_text(redact(), &text),
        "[EMAIL], [PHONE], [CARD], [SSN], [IBAN], [IP], [JWT], [SECRET]"
    );
    assert_eq!(
        mask_text(
            json!({ "strategy": "redact" }),
            "Authorization: Bearer abc123def456ghi789"
        ),
        "Authorization: Bearer [SECRET]"
    );
}

#[test]
fn partial_keeps_what_identifies_nothing() {
    let partial = json!({ "strategy": "partial" });
    for (text, masked) in [
        ("mail john.doe@example.com", "mail j***@example.com"),
        ("?to=john.doe%40example.com", "?to=j***%40example.com"),
        ("4242 4242 4242 4242", "**** **** **** 4242"),
        ("4242-4242-4242-4242", "****-****-****-4242"),
        ("4242424242424242", "************4242"),
        ("536-90-4399", "***-**-4399"),
        ("+1 415 555 2671", "+* *** *** 2671"),
        ("(415) 555-2671", "(***) ***-2671"),
        ("DE89 3704 0044 0532 0130 00", "DE** **** **** **** **30 00"),
        ("GB29NWBK60161331926819", "GB****************6819"),
        ("from 192.168.1.20", "from 192.168.1.*"),
        ("2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3:*"),
        ("2001:db8::1", "2001:db8:*"),
        ("AKIAIOSFODNN7EXAMPLE", "AKIA***"),
        ("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "ghp_***"),
        ("Bearer abc123def456ghi789", "Bearer ***"),
        (
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----",
            "-----BEGIN EC PRIVATE KEY-----***",
        ),
    ] {
        assert_eq!(mask_text(partial.clone(), text), masked, "{text}");
    }
    let header = JWT.split('.').next().unwrap();
    assert_eq!(mask_text(partial, JWT), format!("{header}.***"));
}

#[test]
fn hash_is_a_stable_keyed_pseudonym() {
    let hashed = json!({ "strategy": "hash", "hash_key": KEY });
    let a = mask_text(hashed.clone(), "ann@example.com");
    assert!(a.starts_with("email_"), "{a}");
    assert_eq!(a.len(), "email_".len() + 16, "{a}");
    assert!(a["email_".len()..].bytes().all(|b| b.is_ascii_hexdigit()));
    // Stable across calls and spellings; different values differ.
    assert_eq!(mask_text(hashed.clone(), "ANN@Example.com"), a);
    assert_eq!(mask_text(hashed.clone(), "ann%40example.com"), a);
    assert_eq!(mask_text(hashed.clone(), "ann&#64;example.com"), a);
    assert_eq!(mask_text(hashed.clone(), "ann&shy;@exam\u{200b}ple.com"), a);
    assert_ne!(mask_text(hashed.clone(), "bob@example.com"), a);
    assert_eq!(
        mask_text(hashed.clone(), "4242 4242 4242 4242"),
        mask_text(hashed.clone(), "4242-4242-4242-4242")
    );
    assert!(mask_text(hashed.clone(), "4242424242424242").starts_with("card_"));
    // Another key, another pseudonym.
    let other = json!({ "strategy": "hash", "hash_key": "another-key-of-16-bytes" });
    assert_ne!(mask_text(other, "ann@example.com"), a);
    // The same value inside text gets the same pseudonym.
    assert_eq!(mask_text(hashed, "to: ann@example.com"), format!("to: {a}"));
}

#[test]
fn hash_needs_a_real_key() {
    let err = config_error(json!({ "strategy": "hash" }));
    assert!(err.contains("needs a key"), "{err}");
    let err = config_error(json!({ "entities": { "card": "hash" } }));
    assert!(err.contains("card"), "{err}");
    let err = config_error(json!({ "columns": [{ "match": "ssn", "strategy": "hash" }] }));
    assert!(err.contains("column rule `ssn`"), "{err}");
    let err = config_error(json!({ "strategy": "hash", "hash_key": "short" }));
    assert!(err.contains("at least 16 bytes"), "{err}");
    let err = config_error(json!({ "hash_key": KEY, "hash_key_env": "X" }));
    assert!(err.contains("not both"), "{err}");
    let err =
        config_error(json!({ "strategy": "hash", "hash_key_env": "PII_MASK_TEST_UNSET_KEY" }));
    assert!(err.contains("PII_MASK_TEST_UNSET_KEY"), "{err}");
    // A key with no hashing configured is fine; `hash` for an entity that is
    // off needs none.
    super::masker(json!({ "hash_key": KEY }));
    super::masker(json!({ "entities": { "ip": "off" }, "strategy": "redact" }));
}

#[test]
fn null_in_text_bodies_is_the_redact_form() {
    assert_eq!(
        mask_text(
            json!({ "entities": { "email": "null" } }),
            "hi ann@example.com"
        ),
        "hi [EMAIL]"
    );
}

#[test]
fn strategy_per_entity_over_the_default() {
    let config = json!({
        "strategy": "partial",
        "entities": { "email": "redact", "ip": "off", "card": "hash" },
        "hash_key": KEY,
    });
    let masked = mask_text(
        config,
        "ann@example.com 10.0.0.1 +31612345678 4242424242424242",
    );
    let words: Vec<&str> = masked.split(' ').collect();
    assert_eq!(words[..3], ["[EMAIL]", "10.0.0.1", "+*******5678"]);
    assert!(words[3].starts_with("card_"), "{masked}");
}

#[test]
fn config_is_validated() {
    for (config, expected) in [
        (
            json!({ "entities": { "mail": "redact" } }),
            "unknown entity `mail`",
        ),
        (
            json!({ "entities": { "email": "scramble" } }),
            "unknown variant",
        ),
        (
            json!({ "columns": [{ "match": "a.b.c.d" }] }),
            "schema.table.column",
        ),
        (
            json!({ "columns": [{ "match": "a..b" }] }),
            "schema.table.column",
        ),
        (
            json!({ "columns": [{ "match": "x", "entity": "Bad-Label" }] }),
            "`entity`",
        ),
        (
            json!({ "exempt": [{ "groups": [], "entities": ["email"] }] }),
            "at least one group",
        ),
        (
            json!({ "exempt": [{ "groups": ["g"], "entities": ["salary"] }] }),
            "`salary`",
        ),
        (json!({ "colums": [] }), "unknown field"),
    ] {
        let err = config_error(config.clone());
        assert!(err.contains(expected), "{config}: {err}");
        assert!(
            err.starts_with("pii-mask: ") || err.starts_with("invalid plugin config"),
            "{err}"
        );
    }
}
