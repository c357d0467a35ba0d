//! `keep` rules switch content scanning off, so they must not apply to a
//! column an agent can fill with data of its choice under the kept name:
//! a temporary table's, a temporary view's, an expression's.

use serde_json::json;
use sluice_plugin_sdk::types::{Column, Detection};
use sluice_plugin_sdk::{Masker, testing};

use super::masker;
use super::rows::{col, run, s};

const EMAIL: Option<&str> = Some("ann@example.com");

fn sku(table: Option<&str>) -> Column {
    col("sku", table, 25, "text")
}

/// `create temp table tmp1(sku text); insert into tmp1 select email from
/// customers returning sku`: the gateway names the table `pg_temp_N.tmp1`.
#[test]
fn unqualified_keep_rules_skip_temporary_tables() {
    let m = masker(json!({ "columns": [{ "match": "sku", "strategy": "keep" }] }));
    let columns = [
        sku(Some("public.products")),
        sku(Some("pg_temp_3.tmp1")),
        sku(Some("pg_temp.tmp1")),
        sku(Some("pg_toast_temp_3.pg_toast_16384")),
        sku(Some("PG_TEMP_12.tmp1")),
        // Other schemas are not temporary, whatever the table's name.
        sku(Some("public.pg_temp_1")),
        sku(Some("app_pg_temp.tmp1")),
    ];
    let (rows, detections) = run(&m, &[], &columns, &[&[EMAIL; 7]]);
    assert_eq!(
        rows[0],
        vec![
            s("ann@example.com"),
            s("[EMAIL]"),
            s("[EMAIL]"),
            s("[EMAIL]"),
            s("[EMAIL]"),
            s("ann@example.com"),
            s("ann@example.com"),
        ]
    );
    assert_eq!(detections, vec![Detection::new("email", 4)]);
}

#[test]
fn qualified_keep_rules_skip_temporary_tables() {
    let m = masker(json!({
        "columns": [
            { "match": "tmp1.sku", "strategy": "keep" },
            { "match": "*.products.sku", "strategy": "keep" },
        ],
    }));
    let columns = [
        sku(Some("pg_temp_3.tmp1")),
        sku(Some("pg_temp_3.products")),
        sku(Some("public.products")),
        sku(Some("public.tmp1")),
    ];
    let (rows, _) = run(&m, &[], &columns, &[&[EMAIL; 4]]);
    assert_eq!(
        rows[0],
        vec![
            s("[EMAIL]"),
            s("[EMAIL]"),
            s("ann@example.com"),
            s("ann@example.com"),
        ]
    );
}

/// No table (`email || '' as sku`, a view, a temporary view, a failed
/// lookup): the agent chose the name, so no `keep` rule applies.
#[test]
fn keep_rules_skip_columns_without_a_table() {
    let m = masker(json!({ "columns": [{ "match": "sku", "strategy": "keep" }] }));
    let mut view = sku(None);
    view.table_oid = 16_400;
    let (rows, _) = run(&m, &[], &[sku(None), view], &[&[EMAIL, EMAIL]]);
    assert_eq!(rows[0], vec![s("[EMAIL]"), s("[EMAIL]")]);
}

/// Masking rules still apply to temporary tables, and a `keep` rule that
/// does not apply lets a later rule match.
#[test]
fn masking_rules_apply_to_temporary_tables() {
    let m = masker(json!({
        "columns": [
            { "match": "sku", "strategy": "keep" },
            { "match": "*ssn*", "strategy": "null", "entity": "ssn" },
            { "match": "sku", "strategy": "redact" },
        ],
    }));
    let columns = [
        col("customer_ssn", Some("pg_temp_3.tmp1"), 25, "text"),
        sku(Some("pg_temp_3.tmp1")),
        sku(Some("public.products")),
    ];
    let (rows, _) = run(
        &m,
        &[],
        &columns,
        &[&[Some("n/a"), Some("AB-1"), Some("AB-1")]],
    );
    assert_eq!(rows[0], vec![None, s("[REDACTED]"), s("AB-1")]);
}

/// The gateway asks which columns a masker may change before any row: a
/// temporary table's kept-by-name column is one of them.
#[test]
fn temporary_columns_are_selected_for_masking() {
    let m = masker(json!({ "columns": [{ "match": "sku", "strategy": "keep" }] }));
    let session = testing::session("agent", &["agents"]);
    assert!(!m.masks_column(&session, &sku(Some("public.products"))));
    assert!(m.masks_column(&session, &sku(Some("pg_temp_3.tmp1"))));
    assert!(m.masks_column(&session, &sku(None)));
}
