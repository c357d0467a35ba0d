use serde_json::json;
use sluice_plugin_sdk::types::{Column, Detection, Row, ValueFormat};
use sluice_plugin_sdk::{Masker, testing};

use super::{KEY, masker};
use crate::PiiMask;

pub(super) fn col(name: &str, table: Option<&str>, oid: u32, type_name: &str) -> Column {
    let mut c = testing::column(name, oid, Some(type_name));
    c.table = table.map(str::to_string);
    c
}

fn text(name: &str) -> Column {
    col(name, Some("public.customers"), 25, "text")
}

/// Masks `rows` for a session in `groups`: the rows as the agent sees them
/// (`None` for NULL) and the detections.
pub(super) fn run(
    m: &PiiMask,
    groups: &[&str],
    columns: &[Column],
    rows: &[&[Option<&str>]],
) -> (Vec<Vec<Option<String>>>, Vec<Detection>) {
    let rows = testing::rows(rows);
    let masked = m
        .mask_rows(&testing::session("agent", groups), columns, &rows)
        .unwrap();
    let after = testing::apply_edits(&rows, &masked)
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|c| c.map(|v| String::from_utf8(v).unwrap()))
                .collect()
        })
        .collect();
    (after, masked.detections)
}

pub(super) fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn text_varchar_and_json_cells_are_scanned_others_not() {
    let m = masker(json!({}));
    let columns = [
        col("id", None, 23, "int4"),
        text("note"),
        col("name", None, 1043, "varchar"),
        col("doc", None, 3802, "jsonb"),
        col("at", None, 1184, "timestamptz"),
    ];
    let (rows, detections) = run(
        &m,
        &[],
        &columns,
        &[
            &[
                Some("4242424242424242"),
                Some("call +1 415 555 2671 or ann@example.com"),
                Some("Ann"),
                Some(r#"{"contact": {"emails": ["a@example.com", "b@example.org"]}, "n": 1}"#),
                Some("2024-01-15 10:30:00+00"),
            ],
            &[Some("2"), None, Some("bob@example.com"), Some("{}"), None],
        ],
    );
    assert_eq!(
        rows[0],
        vec![
            s("4242424242424242"),
            s("call [PHONE] or [EMAIL]"),
            s("Ann"),
            s(r#"{"contact": {"emails": ["[EMAIL]", "[EMAIL]"]}, "n": 1}"#),
            s("2024-01-15 10:30:00+00"),
        ]
    );
    assert_eq!(rows[1], vec![s("2"), None, s("[EMAIL]"), s("{}"), None]);
    assert_eq!(
        detections,
        vec![Detection::new("email", 4), Detection::new("phone", 1)]
    );
}

/// What `select '{"d":4242424242424242.0}'::jsonb` returns: PostgreSQL
/// keeps a numeric's scale, so the card is spelled as a decimal.
#[test]
fn card_numbers_in_json_cells_in_any_number_form() {
    let m = masker(json!({}));
    let columns = [col("doc", None, 3802, "jsonb"), col("j", None, 114, "json")];
    let (rows, detections) = run(
        &m,
        &[],
        &columns,
        &[
            &[
                Some(r#"{"d": 4242424242424242.0}"#),
                Some("[4242424242424242.00]"),
            ],
            &[
                Some(r#"{"n": -4242424242424242, "e": 4.242424242424242e15}"#),
                Some(r#"{"price": 12.50, "id": 4242424242424241.0}"#),
            ],
        ],
    );
    assert_eq!(
        rows,
        vec![
            vec![s(r#"{"d": "[CARD]"}"#), s(r#"["[CARD]"]"#)],
            vec![
                s(r#"{"n": "[CARD]", "e": "[CARD]"}"#),
                s(r#"{"price": 12.50, "id": 4242424242424241.0}"#),
            ],
        ]
    );
    assert_eq!(detections, vec![Detection::new("card", 4)]);
}

#[test]
fn nothing_found_means_no_edits() {
    let m = masker(json!({}));
    let rows = testing::rows(&[&[Some("Ada Lovelace"), Some("221B Baker Street, London")]]);
    let masked = m
        .mask_rows(
            &testing::session("a", &[]),
            &[text("name"), text("address")],
            &rows,
        )
        .unwrap();
    assert!(masked.edits.is_empty() && masked.detections.is_empty());
}

#[test]
fn null_strategy_makes_cells_and_json_leaves_null() {
    let m = masker(json!({ "entities": { "ssn": "null" } }));
    let columns = [text("note"), col("doc", None, 114, "json")];
    let (rows, _) = run(
        &m,
        &[],
        &columns,
        &[&[
            Some("ssn 536-90-4399 on file"),
            Some(r#"{"ssn": "536-90-4399", "536-90-4399": 1, "ok": "x"}"#),
        ]],
    );
    assert_eq!(rows[0][0], None);
    assert_eq!(
        rows[0][1].as_deref(),
        Some(r#"{"ssn": null, "[SSN]": 1, "ok": "x"}"#),
        "a key cannot be null: it gets the redact form"
    );
}

#[test]
fn column_rules_by_name_pattern_and_table() {
    let m = masker(json!({
        "hash_key": KEY,
        "columns": [
            { "match": "*ssn*", "strategy": "null", "entity": "ssn" },
            { "match": "public.customers.email", "strategy": "hash", "entity": "email" },
            { "match": "customers.nickname", "strategy": "partial" },
            { "match": "sales.customers.email", "strategy": "redact", "entity": "email" },
            { "match": "products.notes", "strategy": "keep" },
            { "match": "salary", "entity": "salary" },
            { "match": "profile" },
        ],
    }));
    let columns = [
        text("customer_SSN"),
        text("email"),
        col("email", Some("sales.customers"), 25, "text"),
        text("nickname"),
        col("notes", Some("public.products"), 25, "text"),
        col("salary", None, 1700, "numeric"),
        col("profile", None, 3802, "jsonb"),
    ];
    let (rows, detections) = run(
        &m,
        &[],
        &columns,
        &[&[
            Some("no digits here at all"),
            Some("Ann@Example.com"),
            Some("ann@example.com"),
            Some("Annie"),
            Some("ships to ann@example.com"),
            Some("123456.78"),
            Some(r#"{"likes": "tea"}"#),
        ]],
    );
    let hashed = rows[0][1].clone().unwrap();
    assert!(
        hashed.starts_with("email_") && hashed.len() == 22,
        "{hashed}"
    );
    assert_eq!(
        rows[0][2..],
        [
            s("[EMAIL]"),
            s("A***"),
            // `keep`: nothing in the column is masked, not even content.
            s("ships to ann@example.com"),
            // A number column cannot hold a replacement string.
            None,
            // A JSON column gets a JSON string.
            s(r#""[REDACTED]""#),
        ]
    );
    assert_eq!(rows[0][0], None);
    assert_eq!(
        detections,
        vec![
            Detection::new("email", 2),
            Detection::new("ssn", 1),
            Detection::new("column", 2),
            Detection::new("salary", 1),
        ]
    );
}

/// A column rule's pseudonym, like a found value's, ignores characters
/// nobody sees.
#[test]
fn hash_rules_ignore_invisible_characters() {
    let m = masker(json!({
        "hash_key": KEY,
        "columns": [{ "match": "email", "strategy": "hash", "entity": "email" }],
    }));
    let (rows, _) = run(
        &m,
        &[],
        &[text("email")],
        &[
            &[Some("ann@example.com")],
            &[Some("ann\u{ad}@exam\u{200b}ple.com")],
            &[Some("ann&shy;@example&#x200B;.com")],
        ],
    );
    assert!(rows[0][0].as_deref().unwrap().starts_with("email_"));
    assert_eq!(rows[1], rows[0]);
    assert_eq!(rows[2], rows[0]);
}

/// Without the source table (expressions, or a gateway that did not resolve
/// it), a table-qualified masking rule still applies by column name; a
/// `keep` rule does not.
#[test]
fn unresolved_tables() {
    let m = masker(json!({
        "columns": [
            { "match": "hr.staff.phone_note", "strategy": "redact" },
            { "match": "public.products.notes", "strategy": "keep" },
        ],
    }));
    let columns = [
        col("phone_note", None, 25, "text"),
        col("notes", None, 25, "text"),
    ];
    let (rows, _) = run(
        &m,
        &[],
        &columns,
        &[&[Some("anything"), Some("bob@example.com")]],
    );
    assert_eq!(rows[0], vec![s("[REDACTED]"), s("[EMAIL]")]);
}

/// Columns of the same name in different tables, as the gateway names them
/// from PostgreSQL's table OIDs: each table's rule applies to its own
/// column only; a column of another table is scanned by content.
#[test]
fn same_column_name_in_different_tables() {
    let m = masker(json!({
        "hash_key": KEY,
        "columns": [
            { "match": "public.customers.email", "strategy": "hash", "entity": "email" },
            { "match": "public.staff.email", "strategy": "keep" },
            { "match": "billing.*.holder", "strategy": "redact" },
        ],
    }));
    let columns = [
        col("email", Some("public.customers"), 25, "text"),
        col("email", Some("public.staff"), 25, "text"),
        col("email", Some("public.vendors"), 25, "text"),
        col("email", Some("hr.staff"), 25, "text"),
        col("holder", Some("billing.cards"), 25, "text"),
        col("holder", Some("public.cards"), 25, "text"),
        // Unnamed (a view, an expression, a failed lookup): the masking
        // rule applies by name, the `keep` rule does not.
        col("email", None, 25, "text"),
    ];
    let email = Some("ann@example.com");
    let (rows, _) = run(
        &m,
        &[],
        &columns,
        &[&[
            email,
            email,
            email,
            email,
            Some("Ann Lee"),
            Some("Bo Ray"),
            email,
        ]],
    );
    let hashed = rows[0][0].clone().unwrap();
    assert!(hashed.starts_with("email_"), "{hashed}");
    assert_eq!(
        rows[0][1..],
        [
            s("ann@example.com"),
            s("[EMAIL]"),
            s("[EMAIL]"),
            s("[REDACTED]"),
            s("Bo Ray"),
            Some(hashed),
        ]
    );
}

#[test]
fn exemptions_by_group_and_entity() {
    let m = masker(json!({
        "columns": [{ "match": "ssn", "entity": "ssn" }],
        "exempt": [
            { "groups": ["pii-readers"] },
            { "groups": ["support"], "entities": ["email", "phone"] },
        ],
    }));
    let columns = [text("contact"), text("ssn")];
    let row: &[Option<&str>] = &[
        Some("ann@example.com / 4242424242424242"),
        Some("536-90-4399"),
    ];
    let (agents, d) = run(&m, &["agents"], &columns, &[row]);
    assert_eq!(agents[0], vec![s("[EMAIL] / [CARD]"), s("[SSN]")]);
    assert_eq!(d.len(), 3);
    let (readers, d) = run(&m, &["agents", "pii-readers"], &columns, &[row]);
    assert_eq!(readers[0], vec![s(row[0].unwrap()), s(row[1].unwrap())]);
    assert!(d.is_empty());
    let (support, d) = run(&m, &["support"], &columns, &[row]);
    assert_eq!(support[0], vec![s("ann@example.com / [CARD]"), s("[SSN]")]);
    assert_eq!(d, vec![Detection::new("card", 1), Detection::new("ssn", 1)]);
}

#[test]
fn exempt_column_rule_falls_back_to_content_scanning() {
    let m = masker(json!({
        "columns": [{ "match": "ssn", "entity": "ssn", "strategy": "null" }],
        "exempt": [{ "groups": ["hr"], "entities": ["ssn"] }],
    }));
    let (rows, _) = run(
        &m,
        &["hr"],
        &[text("ssn")],
        &[&[Some("536-90-4399 (ann@example.com)")]],
    );
    assert_eq!(rows[0], vec![s("536-90-4399 ([EMAIL])")]);
}

#[test]
fn binary_text_cells_and_bad_batches() {
    let m = masker(json!({}));
    let mut varchar = col("v", None, 1043, "varchar");
    varchar.format = ValueFormat::Binary;
    let mut int8 = col("n", None, 20, "int8");
    int8.format = ValueFormat::Binary;
    let rows: Vec<Row> = vec![vec![
        Some(b"ann@example.com".to_vec()),
        Some(vec![0, 0, 0, 0, 0, 0, 0, 64]),
    ]];
    let masked = m
        .mask_rows(&testing::session("a", &[]), &[varchar.clone(), int8], &rows)
        .unwrap();
    assert_eq!(
        masked.edits,
        vec![sluice_plugin_sdk::types::CellEdit::set(0, 0, "[EMAIL]")]
    );

    // A row wider than its description cannot be masked safely.
    let err = m
        .mask_rows(&testing::session("a", &[]), &[varchar], &rows)
        .unwrap_err();
    assert!(
        err.contains("2 cells but the result has 1 columns"),
        "{err}"
    );

    // Invalid UTF-8 in a text column is still scanned.
    let rows: Vec<Row> = vec![vec![Some(b"\xff\xfe ann@example.com".to_vec())]];
    let masked = m
        .mask_rows(&testing::session("a", &[]), &[text("t")], &rows)
        .unwrap();
    assert_eq!(
        masked.edits[0].value.as_deref(),
        Some(&b"\xff\xfe [EMAIL]"[..])
    );
}

/// Arrays, composite rows, inet and extension types can carry personal
/// data but cannot take a replacement string: a value with anything found
/// in it becomes NULL; clean values pass.
#[test]
fn other_types_holding_personal_data_become_null() {
    let m = masker(json!({}));
    let unknown = |name: &str, oid: u32| {
        let mut c = testing::column(name, oid, None);
        c.table = None;
        c
    };
    let columns = [
        unknown("emails", 1009),
        unknown("person", 2249),
        col("addr", None, 869, "inet"),
        unknown("ids", 1016),
        unknown("doc", 16500),
    ];
    let (rows, detections) = run(
        &m,
        &[],
        &columns,
        &[
            &[
                Some("{ann@example.com,bob}"),
                Some("(Ann,ann@example.com)"),
                Some("203.0.113.9"),
                Some("{4242424242424242}"),
                Some("call +31612345678"),
            ],
            &[
                Some("{ann,bob}"),
                Some("(Ann,x)"),
                None,
                Some("{1,2}"),
                Some("plain"),
            ],
        ],
    );
    assert_eq!(rows[0], vec![None, None, None, None, None]);
    assert_eq!(
        rows[1],
        vec![s("{ann,bob}"), s("(Ann,x)"), None, s("{1,2}"), s("plain")]
    );
    assert_eq!(detections.iter().map(|d| d.count).sum::<u32>(), 5);

    // A binary array cannot be edited either; found inside, it is nulled.
    let mut binary = unknown("emails", 1009);
    binary.format = ValueFormat::Binary;
    let mut cell = vec![
        0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 15,
    ];
    cell.extend_from_slice(b"ann@example.com");
    let masked = m
        .mask_rows(&testing::session("a", &[]), &[binary], &[vec![Some(cell)]])
        .unwrap();
    assert_eq!(
        masked.edits,
        vec![sluice_plugin_sdk::types::CellEdit::null(0, 0)]
    );
}

/// A cast to bytea is the column's text in another dress: its bytes are
/// scanned (the text format's hex decoded, the escape format and binary
/// cells as they are) and a value with anything in it becomes NULL.
#[test]
fn bytea_is_scanned_as_the_bytes_it_holds() {
    let m = masker(json!({}));
    let hex = |s: &str| {
        format!(
            "\\x{}",
            s.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    let columns = [
        col("email", None, 17, "bytea"),
        col("blob", None, 17, "bytea"),
    ];
    let found = hex("ann@example.com");
    let clean = hex("\u{0}\u{1}png");
    let (rows, detections) = run(
        &m,
        &[],
        &columns,
        &[
            &[Some(&found), Some(&clean)],
            // The escape output format, and hex that does not decode.
            &[Some("ann@example.com\\000"), Some("\\x4g")],
        ],
    );
    assert_eq!(rows[0], vec![None, Some(clean.clone())]);
    assert_eq!(rows[1], vec![None, s("\\x4g")]);
    assert_eq!(detections.iter().map(|d| d.count).sum::<u32>(), 2);

    let mut binary = col("email", None, 17, "bytea");
    binary.format = ValueFormat::Binary;
    let masked = m
        .mask_rows(
            &testing::session("a", &[]),
            &[binary],
            &[vec![Some(b"\x00ann@example.com\xff".to_vec())]],
        )
        .unwrap();
    assert_eq!(masked.edits.len(), 1);
    assert_eq!(masked.edits[0].value, None);
}

/// A column rule masks whole values: `partial` shows part of a value only
/// when all of it is one value of the rule's entity; anything else in the
/// column gets the redact form, never the text in clear.
#[test]
fn partial_column_rules_never_let_other_text_through() {
    let m = masker(json!({
        "entities": { "card": "partial", "ssn": "partial", "email": "partial" },
        "columns": [
            { "match": "customers.plan", "entity": "card" },
            { "match": "customers.notes", "entity": "ssn" },
            { "match": "customers.contact", "entity": "email" },
            { "match": "customers.key", "entity": "secret", "strategy": "partial" },
            { "match": "customers.host", "entity": "ip", "strategy": "partial" },
            // `card` is not even looked for by content: the rule still applies.
            { "match": "customers.pan", "entity": "iban", "strategy": "partial" },
        ],
    }));
    let columns = [
        text("plan"),
        text("notes"),
        text("contact"),
        text("key"),
        text("host"),
        text("pan"),
    ];
    let (rows, detections) = run(
        &m,
        &[],
        &columns,
        &[
            &[
                Some("pro"),
                Some("call after 5pm"),
                Some("Ann <ann@example.com>"),
                Some("key AKIAIOSFODNN7EXAMPLE"),
                Some("server 10.1.2.3 rack 5"),
                Some("pay to GB82 WEST 1234 5698 7654 32 today"),
            ],
            &[
                Some("4242 4242 4242 4242"),
                Some("536-90-4399"),
                Some("ann@example.com"),
                Some("AKIAIOSFODNN7EXAMPLE"),
                Some("10.1.2.3"),
                Some("GB82 WEST 1234 5698 7654 32"),
            ],
            &[
                // char(n) padding is kept; references are decoded.
                Some("4242424242424242   "),
                Some("refund sent to IBAN GB82 WEST 1234 5698 7654 32"),
                Some("ann&#064;example&#46;com"),
                Some(""),
                Some("not an ip"),
                Some("4242 4242 4242 4242"),
            ],
        ],
    );
    assert_eq!(
        rows,
        vec![
            vec![
                s("[CARD]"),
                s("[SSN]"),
                s("[EMAIL]"),
                s("[SECRET]"),
                s("[IP]"),
                s("[IBAN]"),
            ],
            vec![
                s("**** **** **** 4242"),
                s("***-**-4399"),
                s("a***@example.com"),
                s("AKIA***"),
                s("10.1.2.*"),
                s("GB** **** **** **** **54 32"),
            ],
            vec![
                s("************4242   "),
                s("[SSN]"),
                s("a***@example.com"),
                s("[SECRET]"),
                s("[IP]"),
                s("[IBAN]"),
            ],
        ]
    );
    // Every cell is counted.
    assert_eq!(
        detections,
        vec![
            Detection::new("email", 3),
            Detection::new("card", 3),
            Detection::new("ssn", 3),
            Detection::new("iban", 3),
            Detection::new("ip", 3),
            Detection::new("secret", 3),
        ]
    );
}

/// A cell decoded from character references gets a partial form that adds
/// no markup: a quoted local part shows its first character inside the
/// quotes, and `"`, `'`, `<`, `>` and `&` left in the form are references.
#[test]
fn partial_column_rules_add_no_markup_to_decoded_cells() {
    let m = masker(json!({
        "entities": { "email": "partial" },
        "columns": [{ "match": "customers.contact", "entity": "email" }],
    }));
    let (rows, _) = run(
        &m,
        &[],
        &[text("contact")],
        &[
            &[Some("&quot;ann smith&quot;@example.com")],
            &[Some("\"ann smith\"@example.com")],
            &[Some("&quot;&lt;x&quot;@example.com")],
            &[Some("ann&amp;#64;example.com")],
        ],
    );
    assert_eq!(
        rows,
        vec![
            vec![s("a***@example.com")],
            vec![s("a***@example.com")],
            vec![s("&lt;***@example.com")],
            vec![s("a***&amp;#64;example.com")],
        ]
    );
}
