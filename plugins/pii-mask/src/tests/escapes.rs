//! JavaScript and JSON string escapes read in text: bodies that are not
//! strict JSON are scanned as text, and must not hide `ann\u0040…` there.

use serde_json::{Value, json};

use super::{KEY, assert_clean, assert_finds, body, mask_text, masker, redact};
use crate::detect::escapes::escape;
use crate::entity::Entity::*;

#[test]
fn escapes_decode_as_javascript_reads_them() {
    for (text, expected) in [
        (r"\u0040", Some(('@', 6))),
        (r"\u002E", Some(('.', 6))),
        (r"\x40", Some(('@', 4))),
        (r"\xa0", Some(('\u{a0}', 4))),
        (r"\u{40}", Some(('@', 6))),
        (r"\u{00000040}", None),
        (r"\u{1F600}", Some(('\u{1f600}', 9))),
        (r"\u{110000}", Some(('\u{fffd}', 10))),
        (r"\ud83d\ude00", Some(('\u{1f600}', 12))),
        (r"\\ud83d\\ude00", Some(('\u{1f600}', 14))),
        // A lone surrogate, or one whose partner is escaped differently.
        (r"\ud83d", Some(('\u{fffd}', 6))),
        (r"\ud83d\\ude00", Some(('\u{fffd}', 6))),
        (r"\ude00", Some(('\u{fffd}', 6))),
        // Escaped backslashes first: JSON inside a JSON string.
        (r"\\u0040", Some(('@', 7))),
        (r"\\\\x40", Some(('@', 7))),
        (r"\u004", None),
        (r"\u00g0", None),
        (r"\u+040", None),
        (r"\x4", None),
        (r"\u{}", None),
        (r"\u{40", None),
        (r"\n", None),
        (r"\\", None),
        ("u0040", None),
    ] {
        assert_eq!(escape(text.as_bytes(), 0), expected, "{text}");
    }
}

#[test]
fn escaped_addresses_are_found_whole() {
    for (text, email) in [
        (r"ann\u0040example.com", r"ann\u0040example.com"),
        (r"var e = 'ann\x40example.com';", r"ann\x40example.com"),
        (r#"{"e":"ann\u0040example.com"}"#, r"ann\u0040example.com"),
        (
            r"\u0061nn\u0040example\u002ecom",
            r"\u0061nn\u0040example\u002ecom",
        ),
        (r"ann\u0040ex\u00e4mple.com", r"ann\u0040ex\u00e4mple.com"),
        (r"ann\u{40}example.com", r"ann\u{40}example.com"),
        (
            r#"{\"e\":\"ann\\u0040example.com\"}"#,
            r"ann\\u0040example.com",
        ),
        (r"ann\u00ad\u0040example.com", r"ann\u00ad\u0040example.com"),
    ] {
        assert_finds(Email, text, email);
    }
    assert_finds(
        Card,
        r"card \u0034242 4242 4242 4242",
        r"\u0034242 4242 4242 4242",
    );
    for text in [
        r"\u0040handle",
        r"ann\u0040localhost",
        r"C:\\users\\x41\\u004",
        r"100\u0025 sure",
        r"ann\u004example.com",
        r"\\\\\\\\\\\\\\\\",
    ] {
        assert_clean(text);
    }
}

/// What the tester sent: JSON that a JSON parser refuses, or that is not
/// labelled JSON, carrying an address with an escaped `@`.
#[test]
fn bodies_that_are_not_strict_json_are_masked() {
    let m = masker(redact());
    for (content_type, text, masked) in [
        (
            "application/json",
            ")]}',\n{\"e\":\"ann\\u0040example.com\"}",
            ")]}',\n{\"e\":\"[EMAIL]\"}",
        ),
        (
            "application/json",
            r#"{"e":"ann\u0040example.com" "x""#,
            r#"{"e":"[EMAIL]" "x""#,
        ),
        (
            "application/javascript",
            r#"cb({"e":"ann\u0040example.com"})"#,
            r#"cb({"e":"[EMAIL]"})"#,
        ),
        (
            "text/plain",
            r#"{"e":"ann\u0040example.com"}"#,
            r#"{"e":"[EMAIL]"}"#,
        ),
        (
            "text/javascript",
            r"var e = 'ann\x40example.com';",
            "var e = '[EMAIL]';",
        ),
        // Valid JSON was masked before: its strings are decoded first.
        (
            "application/json",
            r#"{"e":"ann\u0040example.com"}"#,
            r#"{"e":"[EMAIL]"}"#,
        ),
    ] {
        let (out, detections) = body(&m, content_type, text);
        assert_eq!(out, masked, "{content_type}: {text}");
        assert_eq!(detections.len(), 1, "{text}");
    }
}

/// A replacement written from decoded text takes the place of the escapes
/// it was decoded from, and brings no quote or backslash that would end or
/// break the string around it.
#[test]
fn masked_escapes_keep_json_well_formed() {
    let partial = masker(json!({ "strategy": "partial" }));
    let parse = |text: &str| -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON {text}: {e}"))
    };
    for (text, value) in [
        (r#"{"e":"ann\u0040example.com"}"#, "a***@example.com"),
        (
            r#"{"e":"\u0022ann smith\u0022@example.com"}"#,
            "a***@example.com",
        ),
        (
            r#"{"e":"\u0022\u005c\u005cann\u0022@example.com"}"#,
            "&#92;***@example.com",
        ),
        (
            r#"{"c":"4242\u00a04242\u00a04242\u00a04242"}"#,
            "**** **** **** 4242",
        ),
    ] {
        let (out, _) = body(&partial, "text/plain", text);
        let doc = parse(&out);
        assert_eq!(doc.as_object().unwrap().values().next().unwrap(), value);
    }
    let (out, _) = body(
        &partial,
        "application/json",
        ")]}',\n{\"e\":\"ann\\u0040example.com\",\"n\":1}",
    );
    let doc = parse(out.strip_prefix(")]}',\n").unwrap());
    assert_eq!(doc, json!({"e": "a***@example.com", "n": 1}));
}

#[test]
fn escaped_and_plain_addresses_share_a_pseudonym() {
    let hashed = json!({ "strategy": "hash", "hash_key": KEY });
    let plain = mask_text(hashed.clone(), "ann@example.com");
    assert_eq!(mask_text(hashed.clone(), r"ann\u0040example.com"), plain);
    assert_eq!(mask_text(hashed.clone(), r"ANN\x40EXAMPLE.COM"), plain);
    // Column rules hash the value as stored.
    let rule = masker(json!({
        "hash_key": KEY,
        "columns": [{ "match": "email", "strategy": "hash", "entity": "email" }],
    }));
    let mut out = Vec::new();
    let mut engine = crate::mask::Engine::new(&rule.settings.masking, 0);
    let id = crate::entity::Entity::Email.id();
    engine.whole(
        id,
        crate::mask::Strategy::Hash,
        br"ann\u0040example.com",
        false,
        &mut out,
    );
    assert_eq!(String::from_utf8(out).unwrap(), plain);
}
