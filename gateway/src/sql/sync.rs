//! What the analysis assumes about how the server reads a statement's text.
//!
//! The parser here reads the text as UTF-8 with `standard_conforming_strings
//! = on`. A server reading it otherwise sees different statements in the
//! same bytes: with the setting off, `'a\''; DELETE FROM t; --'` is a string
//! and a DELETE to the server but one string literal to this parser; with a
//! client encoding such as SJIS, whose second bytes may be `\`,
//! `E'ぁ\'; DELETE …` hides a DELETE the same way. Summaries of such a
//! session would describe statements the server never runs, so the gateway
//! refuses a statement that would set either, and ends a session whose server
//! reports one anyway (set through a function, a role or database default).

use crate::plugins::bindings::types::SqlStatement;

/// Client encodings in which every byte below 0x80 is the ASCII character
/// and the server reads UTF-8 text unchanged.
const SAFE_ENCODINGS: &[&str] = &["utf8", "unicode", "sqlascii"];

/// Why a session whose server reports `name = value` no longer parses the
/// way the gateway does; `None` when it still does.
pub fn setting_hazard(name: &str, value: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let hazard = match name.as_str() {
        "standard_conforming_strings" => !matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "on" | "true" | "1" | "yes"
        ),
        "client_encoding" => {
            // PostgreSQL ignores case and punctuation in encoding names.
            let cleaned: String = value
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_lowercase();
            !SAFE_ENCODINGS.contains(&cleaned.as_str())
        }
        _ => false,
    };
    hazard.then(|| {
        format!(
            "`{name} = {value}` would make the server read statements differently from the gateway's SQL parser (only standard_conforming_strings = on and client_encoding UTF8 or SQL_ASCII are supported)"
        )
    })
}

/// A statement that would set such a value: `SET`, `SET NAMES`, or a
/// `set_config` call with literal arguments. (A value that is not a literal
/// is refused too; a setting name that is not one is the guardrails' call,
/// and the server's report of the result ends the session.)
pub fn statement_hazard(statement: &SqlStatement) -> Option<String> {
    if statement.node == "VariableSetStmt"
        && let Some(setting) = &statement.setting
        && let Some(value) = &setting.value
        && let Some(why) = setting_hazard(&setting.name, value)
    {
        return Some(why);
    }
    statement.functions.iter().find_map(|call| {
        let builtin = call
            .schema
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("pg_catalog"));
        if !builtin || !call.name.eq_ignore_ascii_case("set_config") {
            return None;
        }
        let name = call.literal_args.first()?.as_deref()?;
        match call.literal_args.get(1).and_then(Option::as_deref) {
            Some(value) => setting_hazard(name, value),
            // Not a literal: any value, the hazardous ones included.
            None => setting_hazard(name, "unknown"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hazards() {
        assert!(setting_hazard("standard_conforming_strings", "off").is_some());
        assert!(setting_hazard("Standard_Conforming_Strings", "ON").is_none());
        assert!(setting_hazard("client_encoding", "SJIS").is_some());
        assert!(setting_hazard("client_encoding", "LATIN1").is_some());
        assert!(setting_hazard("client_encoding", "UTF8").is_none());
        assert!(setting_hazard("client_encoding", "utf-8").is_none());
        assert!(setting_hazard("client_encoding", "SQL_ASCII").is_none());
        assert!(setting_hazard("work_mem", "1GB").is_none());
    }
}
