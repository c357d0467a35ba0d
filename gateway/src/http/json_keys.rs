//! JSON keys as the frameworks behind the gateway read them: a key twice
//! in one object (keys that differ only by case count as the same, as Go's
//! `encoding/json` and Java's `equalsIgnoreCase` match them), and the
//! method-override parameter at the top level. Shared by the request
//! checks ([`super::ambiguity`]) and the MCP inspection ([`super::mcp`]).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ambiguity::OVERRIDE_PARAMETER;

/// Whether a JSON body holds a key twice in one object (by case-insensitive
/// comparison): `Err` names it. Bodies that are not JSON pass (whoever
/// reads them as JSON refuses them). `Ok(true)`: the top-level value is an
/// object holding the override parameter (`_method`).
pub fn check_json(body: &[u8]) -> Result<bool, String> {
    scan_json(body).map(|u| u.names_override)
}

pub(super) fn scan_json(body: &[u8]) -> Result<Unambiguous, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    match TopLevel
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
    {
        Ok(v) => Ok(v),
        Err(e) if e.is_data() => Err(e.to_string()),
        // Not JSON as far as the parser got; but nesting past its depth is
        // JSON it stopped reading, whose keys other parsers (PHP allows 512
        // levels, JavaScript more) read on.
        // serde_json has no error category for it: its message is the
        // only sign (the unit test below pins it).
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => Err(format!(
            "the JSON body nests deeper than the gateway reads ({e})"
        )),
        Err(_) => Ok(Unambiguous::default()),
    }
}

/// Whether a body starts as UTF-16 or UTF-32 text does (RFC 4627's
/// detection, which Jackson applies).
pub(super) fn wide_json(body: &[u8]) -> bool {
    body.starts_with(b"\xFE\xFF")
        || body.starts_with(b"\xFF\xFE")
        || body.iter().take(4).any(|&b| b == 0)
}

/// A JSON value whose objects have no key twice (ignoring case); of the
/// top-level value, whether it is an object with the override parameter.
#[derive(Default)]
pub(super) struct Unambiguous {
    pub(super) names_override: bool,
}

impl<'de> Deserialize<'de> for Unambiguous {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnambiguousVisitor { top: false })
    }
}

/// The body's own value, whose keys are request parameters to frameworks.
struct TopLevel;

impl<'de> DeserializeSeed<'de> for TopLevel {
    type Value = Unambiguous;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Unambiguous, D::Error> {
        d.deserialize_any(UnambiguousVisitor { top: true })
    }
}

struct UnambiguousVisitor {
    top: bool,
}

impl<'de> Visitor<'de> for UnambiguousVisitor {
    type Value = Unambiguous;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unambiguous, E> {
        Ok(Unambiguous::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unambiguous, E> {
        Ok(Unambiguous::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unambiguous, E> {
        Ok(Unambiguous::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unambiguous, E> {
        Ok(Unambiguous::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<Unambiguous, E> {
        Ok(Unambiguous::default())
    }
    fn visit_unit<E>(self) -> Result<Unambiguous, E> {
        Ok(Unambiguous::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unambiguous, A::Error> {
        while seq.next_element::<Unambiguous>()?.is_some() {}
        Ok(Unambiguous::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unambiguous, A::Error> {
        let mut seen = HashSet::new();
        let mut names_override = false;
        while let Some(key) = map.next_key::<String>()? {
            let lower = fold(&key);
            names_override |= self.top && lower == OVERRIDE_PARAMETER;
            if !seen.insert(lower) {
                return Err(de::Error::custom(format!(
                    "the key {key:?} appears twice in one object (keys that differ only by case count as the same)"
                )));
            }
            map.next_value::<Unambiguous>()?;
        }
        Ok(Unambiguous { names_override })
    }
}

/// Case-insensitive key comparison as Go's `encoding/json` (simple case
/// folding) and Java's `equalsIgnoreCase` do it: one character at a time,
/// to upper then lower case where each maps to a single character, so `ſ`
/// is `s`, the Kelvin sign `k`, `ı` and `İ` are `i`, and `ß` stays `ß`.
/// The same function is in the gateway's `http::json_keys` (which refuses
/// bodies with two keys that fold alike) and the http-guardrail plugin
/// (which reads keys folded): the two must agree, and share a test table.
pub(super) fn fold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

fn fold_char(c: char) -> char {
    fn single(mut mapped: impl Iterator<Item = char>, unmapped: char) -> char {
        match (mapped.next(), mapped.next()) {
            (Some(one), None) => one,
            _ => unmapped,
        }
    }
    if c == '\u{130}' {
        return 'i';
    }
    let upper = single(c.to_uppercase(), c);
    single(upper.to_lowercase(), upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Also in http-guardrail's `cond` tests: the two must agree.
    #[test]
    fn keys_fold_as_go_and_java_fold_them() {
        for (a, b) in [
            ("status", "STATUS"),
            ("status", "\u{17f}tatus"),
            ("key", "\u{212a}ey"),
            ("id", "\u{130}d"),
            ("id", "\u{131}d"),
        ] {
            assert_eq!(fold(a), fold(b), "{a} {b}");
        }
        assert_ne!(fold("strasse"), fold("stra\u{df}e"));
    }

    #[test]
    fn json_keys_twice_are_found_at_any_depth() {
        assert!(check_json(br#"{"a":1,"b":[{"c":2,"d":{"e":null}}],"f":"x"}"#).is_ok());
        assert!(check_json(b"not json").is_ok());
        for twice in [
            &br#"{"method":"ping","method":"tools/call"}"#[..],
            br#"{"params":{"name":"read_file","Name":"delete_repo"}}"#,
            br#"[{"ok":1},{"x":{"amount":5,"AMOUNT":5000}}]"#,
        ] {
            let why = check_json(twice).unwrap_err();
            assert!(why.contains("appears twice"), "{why}");
        }
    }
}
