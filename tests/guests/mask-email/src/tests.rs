use serde_json::json;
use sluice_plugin_sdk::types::{Detection, MaskedBody};
use sluice_plugin_sdk::{Masker, testing};

use super::{MaskEmail, mask_emails};

#[test]
fn scanner_finds_plain_addresses() {
    let masked = mask_emails("mail a.b+c@ex-ample.co.uk or x@y.io.", "[EMAIL]");
    assert_eq!(masked, Some(("mail [EMAIL] or [EMAIL].".to_string(), 2)));
    assert_eq!(
        mask_emails("\"bob@example.com\"", "#"),
        Some(("\"#\"".to_string(), 1))
    );
    assert_eq!(
        mask_emails("é bob@exämple.com", "#"),
        None,
        "non-ASCII domains are left alone"
    );
}

#[test]
fn scanner_ignores_non_addresses() {
    for text in [
        "no at sign",
        "@example.com",
        "user@",
        "user@localhost",
        "a@b.c",
        "a@b.c0m",
        "x@-y.com",
        "@@",
    ] {
        assert_eq!(mask_emails(text, "#"), None, "{text}");
    }
}

#[test]
fn masks_only_text_like_cells_and_reports_edits() {
    let masker = testing::masker::<MaskEmail>(json!({})).unwrap();
    let columns = [
        testing::column("id", 23, Some("int4")),
        testing::text_column("email"),
        testing::column("doc", 3802, Some("jsonb")),
    ];
    let rows = testing::rows(&[
        &[
            Some("a@b.com"),
            Some("alice@example.com"),
            Some(r#"{"to": "bob@example.org"}"#),
        ],
        &[Some("1"), None, Some("{}")],
    ]);
    let session = testing::session("agent", &[]);
    let masked = masker.mask_rows(&session, &columns, &rows).unwrap();
    assert_eq!(masked.edits.len(), 2, "the int4 column is not text-like");
    assert_eq!(masked.detections, vec![Detection::new("email", 2)]);
    let after = testing::apply_edits(&rows, &masked);
    assert_eq!(after[0][1].as_deref(), Some(&b"[EMAIL]"[..]));
    assert_eq!(after[0][2].as_deref(), Some(&br#"{"to": "[EMAIL]"}"#[..]));
    assert_eq!(after[1], rows[1]);
}

#[test]
fn masks_text_and_json_bodies_only() {
    let masker = testing::masker::<MaskEmail>(json!({ "replacement": "<\"hidden\">" })).unwrap();
    let session = testing::session("agent", &[]);
    let json_body = testing::http_body("application/json", r#"{"email":"a@example.com"}"#);
    let masked = masker.mask_body(&session, &json_body).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&masked.body.unwrap()).unwrap();
    assert_eq!(body, json!({ "email": "<\"hidden\">" }));
    let text = masker
        .mask_body(
            &session,
            &testing::http_body("text/plain", "hi a@example.com"),
        )
        .unwrap();
    assert_eq!(text.body.as_deref(), Some(&b"hi <\"hidden\">"[..]));
    let binary = testing::http_body("application/octet-stream", "a@example.com");
    assert_eq!(
        masker.mask_body(&session, &binary).unwrap(),
        MaskedBody::unchanged()
    );
    assert_eq!(
        testing::take_metrics().iter().map(|m| m.value).sum::<f64>(),
        2.0
    );
}

#[test]
fn rejects_unknown_config() {
    assert!(testing::masker::<MaskEmail>(json!({ "replace": "x" })).is_err());
}
