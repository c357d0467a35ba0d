use serde_json::{Value, json};
use sluice_plugin_sdk::types::{Detection, HttpBody, MaskedBody};
use sluice_plugin_sdk::{Masker, testing};

use super::{body, masker};

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON {text}: {e}"))
}

#[test]
fn json_bodies_stay_valid_with_nested_values_masked() {
    let m = masker(json!({ "entities": { "card": "partial" } }));
    let doc = r#"{
      "id": 7, "price": 12.50, "big": 12345678901234567890,
      "customer": {"name": "Ann", "email": "ann@example.com",
                   "phones": ["+44 20 7946 0958", {"work": "(415) 555-2671"}]},
      "note": "escaped \u0040 sign: bob\u0040example.com \"quoted\" \\ tab\t",
      "ann@example.com": "a key",
      "card": 4242424242424242, "amount": -4242424242424242, "ok": true, "nothing": null
    }"#;
    let (masked, detections) = body(&m, "application/json; charset=utf-8", doc);
    let value = parse(&masked);
    assert_eq!(value["customer"]["email"], "[EMAIL]");
    assert_eq!(
        value["customer"]["phones"],
        json!(["[PHONE]", {"work": "[PHONE]"}])
    );
    assert_eq!(value["note"], "escaped @ sign: [EMAIL] \"quoted\" \\ tab\t");
    assert_eq!(value["[EMAIL]"], "a key");
    assert_eq!(value["card"], "************4242");
    assert!(value["amount"].is_number(), "a negative number is no card");
    // Untouched parts are byte for byte the same.
    assert!(
        masked.contains(r#""price": 12.50, "big": 12345678901234567890"#),
        "{masked}"
    );
    assert_eq!(value["ok"], true);
    assert_eq!(
        detections,
        vec![
            Detection::new("email", 3),
            Detection::new("phone", 2),
            Detection::new("card", 1),
        ]
    );
}

#[test]
fn json_null_strategy_writes_null() {
    let m = masker(json!({ "strategy": "null" }));
    let (masked, _) = body(
        &m,
        "application/vnd.api+json",
        r#"[{"email": "ann@example.com"}, "call +31612345678", 4242424242424242]"#,
    );
    assert_eq!(parse(&masked), json!([{"email": null}, null, null]));
}

#[test]
fn ndjson_and_invalid_json() {
    let m = masker(json!({}));
    let (masked, _) = body(
        &m,
        "application/x-ndjson",
        "{\"e\":\"a@example.com\"}\n{\"e\":\"b@example.com\"}\n",
    );
    assert_eq!(masked, "{\"e\":\"[EMAIL]\"}\n{\"e\":\"[EMAIL]\"}\n");
    // Claims to be JSON, is not: masked as text rather than passed on.
    let (masked, _) = body(&m, "application/json", "oops ann@example.com {");
    assert_eq!(masked, "oops [EMAIL] {");
}

#[test]
fn text_form_and_other_bodies() {
    let m = masker(json!({}));
    let (masked, d) = body(
        &m,
        "text/plain",
        "Hi ann@example.com, your IBAN DE89370400440532013000.",
    );
    assert_eq!(masked, "Hi [EMAIL], your IBAN [IBAN].");
    assert_eq!(
        d,
        vec![Detection::new("email", 1), Detection::new("iban", 1)]
    );

    let (masked, _) = body(
        &m,
        "text/csv",
        "name,phone\nAnn,0612345678\nBob,+31612345679\n",
    );
    assert_eq!(masked, "name,phone\nAnn,[PHONE]\nBob,[PHONE]\n");

    let (masked, _) = body(
        &m,
        "application/x-www-form-urlencoded",
        "user=ann%40example.com&note=call+%2B1+415+555+2671&plain=ok&card=4242424242424242",
    );
    assert_eq!(
        masked,
        "user=%5BEMAIL%5D&note=call+%5BPHONE%5D&plain=ok&card=%5BCARD%5D"
    );

    // An unknown type that is text is still scanned; binary passes unchanged.
    let (masked, _) = body(&m, "application/x-custom", "ann@example.com");
    assert_eq!(masked, "[EMAIL]");
    let binary = HttpBody {
        content_type: "application/octet-stream".into(),
        body: b"\xff\x00ann@example.com".to_vec(),
    };
    assert_eq!(
        m.mask_body(&testing::session("a", &[]), &binary).unwrap(),
        MaskedBody::unchanged()
    );
    // Nothing to mask: no new body at all.
    let clean = testing::http_body("application/json", r#"{"name": "Ann", "n": 5}"#);
    assert_eq!(
        m.mask_body(&testing::session("a", &[]), &clean).unwrap(),
        MaskedBody::unchanged()
    );
}

#[test]
fn exempt_groups_see_bodies_in_clear() {
    let m = masker(json!({ "exempt": [{ "groups": ["pii-readers"] }] }));
    let b = testing::http_body("text/plain", "ann@example.com");
    let session = testing::session("reader", &["pii-readers"]);
    assert_eq!(m.mask_body(&session, &b).unwrap(), MaskedBody::unchanged());
}
