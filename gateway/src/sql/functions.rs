//! What the analysis can tell from function names alone.
//!
//! The parser does not know what a function does (that lives in the catalog),
//! so a call is assumed to change state unless it is a well-known built-in
//! without side effects. User functions, `nextval`, `lo_import`, `dblink_exec`,
//! `pg_terminate_backend` … all keep `modifies-state`.

use crate::plugins::bindings::types::{FunctionCall, StatementFlags};

/// pg_catalog functions that neither write nor change session state.
const PURE_BUILTINS: &[&str] = &[
    "abs",
    "age",
    "array_agg",
    "array_length",
    "array_position",
    "array_to_string",
    "avg",
    "bool_and",
    "bool_or",
    "btrim",
    "cardinality",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "clock_timestamp",
    "coalesce",
    "concat",
    "concat_ws",
    "count",
    "cume_dist",
    "current_setting",
    "date_part",
    "date_trunc",
    "decode",
    "dense_rank",
    "encode",
    "every",
    "extract",
    "first_value",
    "floor",
    "format",
    "gen_random_uuid",
    "generate_series",
    "initcap",
    "jsonb_agg",
    "jsonb_array_elements",
    "jsonb_build_array",
    "jsonb_build_object",
    "jsonb_each",
    "jsonb_extract_path_text",
    "jsonb_object_agg",
    "json_agg",
    "json_array_elements",
    "json_build_array",
    "json_build_object",
    "json_each",
    "json_extract_path_text",
    "json_object_agg",
    "lag",
    "last_value",
    "lead",
    "left",
    "length",
    "lower",
    "lpad",
    "ltrim",
    "make_date",
    "make_interval",
    "max",
    "md5",
    "min",
    "mod",
    "mode",
    "now",
    "nth_value",
    "ntile",
    "octet_length",
    "overlay",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "pg_typeof",
    "position",
    "power",
    "random",
    "rank",
    "regexp_match",
    "regexp_matches",
    "regexp_replace",
    "regexp_split_to_array",
    "repeat",
    "replace",
    "reverse",
    "right",
    "round",
    "row_number",
    "rpad",
    "rtrim",
    "sign",
    "split_part",
    "sqrt",
    "statement_timestamp",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "string_to_array",
    "strpos",
    "substr",
    "substring",
    "sum",
    "timezone",
    "to_char",
    "to_date",
    "to_json",
    "to_jsonb",
    "to_number",
    "to_timestamp",
    "transaction_timestamp",
    "translate",
    "trim",
    "trunc",
    "unnest",
    "upper",
    "var_pop",
    "var_samp",
    "variance",
    "version",
];

/// Functions that run SQL passed to them as a string, read a table or a
/// whole schema named by a value, or reach another server: what they read or
/// run is invisible to this analysis. Built-ins (the XML export family and
/// the text-search statistics that take a query) and the extensions that
/// run SQL text (dblink, tablefunc, pg_background).
const DYNAMIC_SQL: &[&str] = &[
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "schema_to_xml",
    "schema_to_xmlschema",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xmlschema",
    "database_to_xml_and_xmlschema",
    "ts_stat",
    "ts_rewrite",
    "dblink",
    "dblink_exec",
    "dblink_open",
    "dblink_send_query",
    "crosstab",
    "crosstab2",
    "crosstab3",
    "crosstab4",
    "connectby",
    "pg_background_launch",
];

/// Settings that change whom the session acts as.
const ROLE_SETTINGS: &[&str] = &["role", "session_authorization"];

fn builtin(call: &FunctionCall) -> bool {
    call.schema.is_none() || call.schema.as_deref() == Some("pg_catalog")
}

/// A builtin known to have no side effects (and to run no SQL of its own).
pub fn is_pure_builtin(call: &FunctionCall) -> bool {
    builtin(call) && PURE_BUILTINS.contains(&call.name.as_str())
}

/// The flags the statement's function calls imply.
pub(crate) fn flags(calls: &[FunctionCall]) -> StatementFlags {
    let mut flags = StatementFlags::empty();
    for call in calls {
        let name = call.name.as_str();
        if !is_pure_builtin(call) {
            flags |= StatementFlags::MODIFIES_STATE;
        }
        // By name alone, in any schema: extensions such as dblink live where
        // they were installed.
        // `ts_rewrite(query, target, substitute)` rewrites with tsqueries;
        // only its two-argument form takes a SELECT as text.
        let tsquery_rewrite = name == "ts_rewrite" && call.literal_args.len() == 3;
        if (DYNAMIC_SQL.contains(&name) || name.starts_with("dblink")) && !tsquery_rewrite {
            flags |= StatementFlags::DYNAMIC_SQL;
        }
        if builtin(call) && name == "set_config" {
            // `set_config('role', …)` is SET ROLE; a setting name that is not a
            // literal could be anything, role included.
            let target = call.literal_args.first().cloned().flatten();
            if target.is_none_or(|t| ROLE_SETTINGS.contains(&t.to_ascii_lowercase().as_str())) {
                flags |= StatementFlags::ROLE_CHANGE;
            }
        }
    }
    flags
}
