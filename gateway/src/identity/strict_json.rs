//! JSON parsing that refuses duplicate member names.
//!
//! `serde_json` keeps the last of two members with the same name; another JOSE library
//! might keep the first. A token whose header or payload says `"sub":"alice","sub":"admin"`
//! would then mean different things to Sluice and to whatever else reads it, so RFC 7515
//! §5.2 and RFC 7519 §4 let us reject it, and we do, at every nesting depth.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a document was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StrictJsonError {
    /// A member name appears twice in one object; carries the name.
    DuplicateKey(String),
    /// Not JSON (or trailing garbage); carries serde_json's message.
    Syntax(String),
}

const DUPLICATE_MARKER: &str = "duplicate member name: ";

/// Parses `bytes` as one JSON value, refusing duplicate member names anywhere in it.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v.0))
        .map_err(|e| {
            let text = e.to_string();
            match text.strip_prefix(DUPLICATE_MARKER) {
                Some(rest) => {
                    // serde_json appends " at line L column C"; keep only the name.
                    let name = rest.rsplit_once(" at line ").map_or(rest, |(n, _)| n);
                    StrictJsonError::DuplicateKey(name.to_owned())
                }
                None => StrictJsonError::Syntax(text),
            }
        })?;
    Ok(value)
}

/// Parses a JSON object, refusing duplicates; anything but an object is a syntax error.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    match parse(bytes)? {
        Value::Object(map) => Ok(map),
        other => Err(StrictJsonError::Syntax(format!(
            "expected a JSON object, found {}",
            json_type(&other)
        ))),
    }
}

/// The JSON type of a value, for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_MARKER}{key}")));
            }
            let StrictValue(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_json_like_serde_json() {
        let text = br#"{"a":1,"b":[true,null,"x",{"c":-2.5}],"d":{"e":18446744073709551615}}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
    }

    #[test]
    fn refuses_duplicates_at_any_depth() {
        assert_eq!(
            parse(br#"{"sub":"alice","sub":"admin"}"#),
            Err(StrictJsonError::DuplicateKey("sub".into()))
        );
        assert_eq!(
            parse(br#"{"a":[{"x":1,"y":2,"x":3}]}"#),
            Err(StrictJsonError::DuplicateKey("x".into()))
        );
        // the same name in sibling objects is fine
        assert!(parse(br#"[{"x":1},{"x":2}]"#).is_ok());
    }

    #[test]
    fn escaped_duplicates_are_duplicates() {
        // "\u0073ub" is "sub"
        assert_eq!(
            parse(br#"{"sub":"a","\u0073ub":"b"}"#),
            Err(StrictJsonError::DuplicateKey("sub".into()))
        );
    }

    #[test]
    fn refuses_garbage_and_non_objects() {
        assert!(matches!(parse(b"{} x"), Err(StrictJsonError::Syntax(_))));
        assert!(matches!(
            parse(b"{\"a\":}"),
            Err(StrictJsonError::Syntax(_))
        ));
        assert!(matches!(
            parse_object(b"[1]"),
            Err(StrictJsonError::Syntax(_))
        ));
        assert!(matches!(parse(b"\xff"), Err(StrictJsonError::Syntax(_))));
    }
}
