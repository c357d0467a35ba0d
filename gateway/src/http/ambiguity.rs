//! Requests that the guardrails and the upstream could read differently are
//! refused (paths: see [`super::route`]).
//!
//! - A method that differs from a standard one only by case (`post`):
//!   hyper keeps it as an extension method, so it is not the `POST` rules
//!   and the MCP inspection look for, while upstreams that compare methods
//!   without regard to case run it as one.
//! - Headers that ask the upstream to act on another method or URL than the
//!   request line the guardrails judged (`X-HTTP-Method-Override: DELETE`
//!   on a POST, `X-Original-URL`): honoured by Symfony, Laravel, Express's
//!   method-override, ASP.NET and IIS URL Rewrite.
//! - JSON bodies with a key twice in one object, where keys that differ
//!   only by case count as the same: parsers disagree on which one wins
//!   (serde_json keeps the last, others the first, Go's `encoding/json`
//!   matches field names without regard to case), so a guardrail could
//!   judge `{"name":"read_file","Name":"delete_repo"}` as one tool call and
//!   the upstream run another.

use std::collections::HashSet;
use std::fmt;

use hyper::{HeaderMap, Method};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::problem::Problem;

const OVERRIDE_HEADERS: [&str; 5] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
];

const STANDARD_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];

/// The request line and headers, before anything else is looked at.
pub fn check_head(method: &Method, headers: &HeaderMap) -> Result<(), Problem> {
    if let Some(standard) = STANDARD_METHODS
        .iter()
        .find(|m| *m != method && m.as_str().eq_ignore_ascii_case(method.as_str()))
    {
        return Err(Problem::bad_request(
            "ambiguous_method",
            format!(
                "the method {method} is {standard} in another case, which upstreams read differently; send {standard}"
            ),
        ));
    }
    if let Some(name) = OVERRIDE_HEADERS.iter().find(|h| headers.contains_key(**h)) {
        return Err(Problem::bad_request(
            "override_header",
            format!(
                "the {name} header asks the upstream to act on another method or URL than the one the gateway checks; it is refused"
            ),
        ));
    }
    Ok(())
}

/// Whether a JSON body holds a key twice in one object (by case-insensitive
/// comparison): `Err` names it. Bodies that are not JSON pass (whoever
/// reads them as JSON refuses them).
pub fn check_json(body: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<Unambiguous>(body) {
        Err(e) if e.is_data() => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// A JSON value whose objects have no key twice (ignoring case).
struct Unambiguous;

impl<'de> Deserialize<'de> for Unambiguous {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnambiguousVisitor)
    }
}

struct UnambiguousVisitor;

impl<'de> Visitor<'de> for UnambiguousVisitor {
    type Value = Unambiguous;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unambiguous, E> {
        Ok(Unambiguous)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unambiguous, E> {
        Ok(Unambiguous)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unambiguous, E> {
        Ok(Unambiguous)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unambiguous, E> {
        Ok(Unambiguous)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unambiguous, E> {
        Ok(Unambiguous)
    }
    fn visit_unit<E>(self) -> Result<Unambiguous, E> {
        Ok(Unambiguous)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unambiguous, A::Error> {
        while seq.next_element::<Unambiguous>()?.is_some() {}
        Ok(Unambiguous)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unambiguous, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.to_lowercase()) {
                return Err(de::Error::custom(format!(
                    "the key {key:?} appears twice in one object (keys that differ only by case count as the same)"
                )));
            }
            map.next_value::<Unambiguous>()?;
        }
        Ok(Unambiguous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn methods_in_another_case_and_override_headers_are_refused() {
        let none = HeaderMap::new();
        assert!(check_head(&Method::POST, &none).is_ok());
        let custom = Method::from_bytes(b"PROPFIND").unwrap();
        assert!(check_head(&custom, &none).is_ok());
        let lower = Method::from_bytes(b"post").unwrap();
        assert!(check_head(&lower, &none).is_err());
        let mut headers = HeaderMap::new();
        headers.insert("X-HTTP-Method-Override", "DELETE".parse().unwrap());
        assert!(check_head(&Method::POST, &headers).is_err());
    }
}
