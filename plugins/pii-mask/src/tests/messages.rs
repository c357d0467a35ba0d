//! Column rules in server messages: `Key (…)=(…)` values of columns a
//! masking rule matches, and `Failing row contains (…)` rows, in the JSON
//! array of a message's fields the gateway hands maskers, and in any body.

use serde_json::{Value, json};

use super::{body, masker};
use crate::PiiMask;

fn tester() -> Value {
    json!({
        "strategy": "redact",
        "entities": {"email": "redact", "card": "partial"},
        "columns": [
            {"match": "public.products.sku", "strategy": "keep"},
            {"match": "*ssn*", "strategy": "null", "entity": "ssn"},
            {"match": "public.people.tax_id", "strategy": "hash", "entity": "tax"},
        ],
        "exempt": [{"groups": ["pii-readers"]}],
        "hash_key": super::KEY,
    })
}

/// One message field, masked as the gateway hands it over.
fn field(m: &PiiMask, text: &str) -> String {
    let (masked, _) = body(m, "application/json", &json!([text]).to_string());
    let fields: Vec<String> = serde_json::from_str(&masked).unwrap();
    fields.into_iter().next().unwrap()
}

#[test]
fn key_values_of_rule_columns_are_masked() {
    let m = masker(tester());
    for (detail, masked) in [
        (
            "Key (ssn)=(536221847) already exists.",
            "Key (ssn)=([SSN]) already exists.",
        ),
        (
            r#"Key (customer_ssn)=(536221847) is not present in table "customers"."#,
            r#"Key (customer_ssn)=([SSN]) is not present in table "customers"."#,
        ),
        (
            r#"Key (ssn)=(536221847) is still referenced from table "orders"."#,
            r#"Key (ssn)=([SSN]) is still referenced from table "orders"."#,
        ),
        (
            "Key (name, ssn)=(Ada, 536221847) already exists.",
            "Key (name, ssn)=(Ada, [SSN]) already exists.",
        ),
        // A value holding `, `: the list cannot be split, so all of it goes.
        (
            "Key (name, ssn)=(Lovelace, Ada, 536221847) already exists.",
            "Key (name, ssn)=([SSN]) already exists.",
        ),
        (
            "Key (ssn, during)=(536221847, [1,5)) conflicts with existing key (ssn, during)=(536221848, [2,6)).",
            "Key (ssn, during)=([SSN], [1,5)) conflicts with existing key (ssn, during)=([SSN], [2,6)).",
        ),
        (
            r#"Key ("SSN")=(536221847) already exists."#,
            r#"Key ("SSN")=([SSN]) already exists."#,
        ),
        (
            "Key (lower(ssn::text))=(x) a) b) is duplicated.",
            "Key (lower(ssn::text))=([SSN]) is duplicated.",
        ),
        // Translated: the shape is the same.
        (
            "Schlüssel »(ssn)=(536221847)« existiert bereits.",
            "Schlüssel »(ssn)=([SSN])« existiert bereits.",
        ),
        // No rule for the column, or a keep rule: content scanning only.
        (
            "Key (id)=(536221847) already exists.",
            "Key (id)=(536221847) already exists.",
        ),
        (
            "Key (sku)=(536221847) already exists.",
            "Key (sku)=(536221847) already exists.",
        ),
        (
            "Key (email)=(ada@example.com) already exists.",
            "Key (email)=([EMAIL]) already exists.",
        ),
    ] {
        assert_eq!(field(&m, detail), masked, "{detail}");
    }
    // A rule naming a table matches on its column part here.
    let hashed = field(&m, "Key (tax_id)=(12-3456789) already exists.");
    assert!(hashed.starts_with("Key (tax_id)=(tax_"), "{hashed}");
    assert!(!hashed.contains("3456789"), "{hashed}");
}

#[test]
fn failing_rows_are_withheld_when_rules_mask_columns() {
    let m = masker(tester());
    let (masked, detections) = body(
        &m,
        "application/json",
        r#"["null value in column \"name\" of relation \"people\" violates not-null constraint","Failing row contains (1, null, 536221847, a), b)."]"#,
    );
    assert_eq!(
        masked,
        r#"["null value in column \"name\" of relation \"people\" violates not-null constraint","Failing row contains (withheld by pii-mask)."]"#
    );
    assert_eq!(detections[0].entity, "ssn");

    // With keep rules only, the row is scanned by content.
    let keep = masker(json!({
        "columns": [{"match": "sku", "strategy": "keep"}],
    }));
    assert_eq!(
        field(
            &keep,
            "Failing row contains (1, ada@example.com, 536221847)."
        ),
        "Failing row contains (1, [EMAIL], 536221847)."
    );
}

#[test]
fn exempt_groups_and_other_bodies() {
    let m = masker(tester());
    let text = "ERROR: duplicate key\nDETAIL: Key (ssn)=(536221847) already exists.\nFailing row contains (1, 536221847).\n";
    let (masked, _) = body(&m, "text/plain", text);
    assert_eq!(
        masked,
        "ERROR: duplicate key\nDETAIL: Key (ssn)=([SSN]) already exists.\nFailing row contains (withheld by pii-mask).\n"
    );
    let session = sluice_plugin_sdk::testing::session("reader", &["pii-readers"]);
    let masked = sluice_plugin_sdk::Masker::mask_body(
        &m,
        &session,
        &sluice_plugin_sdk::types::HttpBody {
            content_type: "text/plain".into(),
            body: text.as_bytes().to_vec(),
        },
    )
    .unwrap();
    assert_eq!(masked.body, None);

    // Every entity off: the column rules still apply.
    let rules_only = masker(json!({
        "entities": {"email": "off", "phone": "off", "card": "off", "ssn": "off",
                     "iban": "off", "ip": "off", "jwt": "off", "secret": "off"},
        "columns": [{"match": "*ssn*", "strategy": "partial", "entity": "ssn"}],
    }));
    assert_eq!(
        field(&rules_only, "Key (ssn)=(536-22-1847) already exists."),
        "Key (ssn)=(***-**-1847) already exists."
    );
}
