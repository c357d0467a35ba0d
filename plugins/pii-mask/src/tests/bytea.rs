//! bytea in text format inside other values: arrays, composite rows,
//! ranges, JSON, text (`email::bytea::text`), and server messages. The hex
//! is decoded and scanned; opaque values become NULL, text and JSON get
//! the masked bytes back in hex.

use serde_json::json;
use sluice_plugin_sdk::testing;

use super::rows::{col, run, s};
use super::{body, masker, redact};

/// `text` in PostgreSQL's bytea hex output, without the `\x`.
fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn bytea_in_arrays_rows_and_ranges_makes_them_null() {
    let m = masker(redact());
    let unknown = |name: &str, oid: u32| {
        let mut c = testing::column(name, oid, None);
        c.table = None;
        c
    };
    let email = hex("ada@example.com");
    let high = hex("zed@example.com");
    let columns = [
        unknown("array", 1001),
        unknown("row", 2249),
        unknown("range", 16600),
        unknown("nested", 1001),
        unknown("rows", 2287),
        unknown("domain", 16700),
    ];
    let cells = [
        format!(r#"{{"\\x{email}"}}"#),
        format!(r#"("\\x{email}")"#),
        format!(r#"["\\x{email}","\\x{high}")"#),
        format!(r#"{{{{"\\x{email}"}},{{NULL}}}}"#),
        // An array of rows: the row's quotes and backslashes escaped again.
        format!(r#"{{"(\"\\\\x{email}\")"}}"#),
        format!(r#"{{"\\X{email}","\\x{email}"}}"#),
    ];
    let clean = [
        format!(r#"{{"\\x{}"}}"#, hex("\u{0}\u{1}\u{2}png")),
        r#"("\\x00")"#.to_string(),
        r#"["\\x0001","\\x0002")"#.to_string(),
        "{{a},{b}}".to_string(),
        r#"{"(x)"}"#.to_string(),
        format!(r#"{{"\\x{}"}}"#, hex("no personal data")),
    ];
    let found: Vec<Option<&str>> = cells.iter().map(|c| Some(c.as_str())).collect();
    let not: Vec<Option<&str>> = clean.iter().map(|c| Some(c.as_str())).collect();
    let (rows, detections) = run(&m, &[], &columns, &[&found, &not]);
    assert_eq!(rows[0], vec![None; 6]);
    assert_eq!(rows[1], clean.iter().map(|c| s(c)).collect::<Vec<_>>());
    assert!(detections.iter().all(|d| d.entity == "email"));
}

#[test]
fn bytea_hex_in_text_and_json_is_masked_in_hex() {
    let m = masker(json!({"entities": {"card": "partial"}}));
    let columns = [
        col("note", None, 25, "text"),
        col("doc", None, 3802, "jsonb"),
    ];
    let email = hex("ada@example.com");
    let card = hex("card 4242424242424242 ok");
    let text = format!("\\x{email}");
    let doc = format!(r#"{{"k": "\\x{email}", "c": "\\x{card}"}}"#);
    let short = "\\x414243 \\x61";
    let (rows, _) = run(
        &m,
        &[],
        &columns,
        &[&[Some(&text), Some(&doc)], &[Some(short), Some("{}")]],
    );
    let redacted = hex("[EMAIL]");
    let partial = hex("card ************4242 ok");
    assert_eq!(
        rows[0],
        vec![
            s(&format!("\\x{redacted}")),
            s(&format!(r#"{{"k": "\\x{redacted}", "c": "\\x{partial}"}}"#))
        ]
    );
    assert_eq!(rows[1], vec![s(short), s("{}")]);
}

/// Strategy `null` makes the whole cell null, as for any match in it.
#[test]
fn null_strategy_nulls_a_text_cell_with_hex_in_it() {
    let m = masker(json!({"entities": {"email": "null"}}));
    let columns = [col("note", None, 25, "text")];
    let text = format!("see \\x{}", hex("ada@example.com"));
    let (rows, detections) = run(&m, &[], &columns, &[&[Some(&text)]]);
    assert_eq!(rows[0], vec![None]);
    assert_eq!(detections[0].entity, "email");
}

/// A bytea of a bytea's text, and an odd last digit.
#[test]
fn nested_and_odd_runs() {
    let m = masker(redact());
    let inner = format!("\\x{}", hex("ada@example.com"));
    let outer = format!("\\x{}", hex(&inner));
    let (rows, _) = run(
        &m,
        &[],
        &[col("note", None, 25, "text")],
        &[&[Some(&outer)], &[Some(&format!("{inner}7"))]],
    );
    let redacted = format!("\\x{}", hex("[EMAIL]"));
    assert_eq!(rows[0], vec![s(&format!("\\x{}", hex(&redacted)))]);
    assert_eq!(rows[1], vec![s(&format!("{redacted}7"))]);
}

#[test]
fn bytea_hex_in_server_messages_and_bodies() {
    let m = masker(redact());
    let email = hex("ada@example.com");
    let (masked, detections) = body(
        &m,
        "application/json",
        &format!(r#"["invalid input syntax for type uuid: \"\\x{email}\""]"#),
    );
    assert_eq!(
        masked,
        format!(
            r#"["invalid input syntax for type uuid: \"\\x{}\""]"#,
            hex("[EMAIL]")
        )
    );
    assert_eq!(detections.len(), 1);
    let (masked, _) = body(&m, "text/plain", &format!(r#"{{"\\\\x{email}"}}"#));
    assert_eq!(masked, format!(r#"{{"\\\\x{}"}}"#, hex("[EMAIL]")));
}
