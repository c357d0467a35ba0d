//! Conditions on a header or on a JSON value (request body, tool
//! arguments), and the three answers they can give.

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::Value;

use crate::decimal::{Decimal, Doc};
use crate::glob;

/// One test; exactly one operator must be set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Header name (header conditions).
    pub name: Option<String>,
    /// JSON pointer, e.g. `/amount` (body and argument conditions).
    pub pointer: Option<String>,
    pub equals: Option<Value>,
    pub one_of: Option<Vec<Value>>,
    /// Wildcard match on a string value (see the glob rules).
    pub matches: Option<String>,
    pub present: Option<bool>,
    pub greater_than: Option<f64>,
    pub less_than: Option<f64>,
}

/// The outcome of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// The data could not be judged (a body cut at the inspection limit, or
    /// not JSON): the rule decides what that means.
    Unknown,
}

impl Condition {
    pub fn validate(&self, what: &str) -> Result<(), String> {
        let ops = [
            self.equals.is_some(),
            self.one_of.is_some(),
            self.matches.is_some(),
            self.present.is_some(),
            self.greater_than.is_some(),
            self.less_than.is_some(),
        ];
        if ops.iter().filter(|&&x| x).count() != 1 {
            return Err(format!(
                "{what}: a condition needs exactly one of equals, one_of, matches, present, greater_than, less_than"
            ));
        }
        match what {
            "headers"
                if self.name.as_deref().is_none_or(str::is_empty) || self.pointer.is_some() =>
            {
                Err("headers: a header condition needs `name` (and no `pointer`)".into())
            }
            "body" | "arguments"
                if self.name.is_some()
                    || !self
                        .pointer
                        .as_deref()
                        .is_some_and(|p| p.is_empty() || p.starts_with('/')) =>
            {
                Err(format!(
                    "{what}: a JSON condition needs `pointer` (\"\" or starting with \"/\") and no `name`"
                ))
            }
            _ => Ok(()),
        }
    }

    /// Tests one header; `values` are all values of that header. With
    /// `every` (an allow rule), each of them must pass: upstreams differ on
    /// which of several values they use (the first, the last, all joined).
    /// Otherwise (deny, approval) any value passing is enough, and so is
    /// any element of a comma-separated value: `X-Env: dev, prod` is the
    /// two lines `X-Env: dev` and `X-Env: prod` to HTTP (RFC 9110, 5.3).
    pub fn test_header(&self, values: &[&str], every: bool) -> Answer {
        if let Some(want) = self.present {
            return yes(values.is_empty() != want);
        }
        let plain = Doc::default();
        let test = |v: &str| self.test_value(&Value::String(v.to_string()), every, &plain);
        if every {
            yes(!values.is_empty()
                && values
                    .iter()
                    .all(|v| test(v) && (!v.contains(',') || v.split(',').all(|e| test(e.trim())))))
        } else {
            yes(values
                .iter()
                .any(|v| test(v) || (v.contains(',') && v.split(',').any(|e| test(e.trim())))))
        }
    }

    /// Tests the value at `pointer` in `doc`; `None` when there is no
    /// document to look into. Object keys are read two ways, as written and
    /// without regard to case (Go's `encoding/json`, Java's
    /// `equalsIgnoreCase`): with `every` (an allow rule) the condition must
    /// hold both ways, otherwise (deny, approval) either way is enough, so
    /// that `{"Status":"prod"}` meets a deny rule on `/status` and an allow
    /// rule on `/status` is not met by a key the upstream may ignore.
    pub fn test_json(&self, doc: Option<&Doc>, every: bool) -> Answer {
        let Some(doc) = doc else {
            return Answer::Unknown;
        };
        let pointer = self.pointer.as_deref().unwrap_or_default();
        let exact = self.test_at(doc.value.pointer(pointer), every, doc);
        let folded = self.test_at(pointer_folded(&doc.value, pointer), every, doc);
        yes(if every {
            exact && folded
        } else {
            exact || folded
        })
    }

    fn test_at(&self, value: Option<&Value>, every: bool, doc: &Doc) -> bool {
        if let Some(want) = self.present {
            return value.is_some() == want;
        }
        value.is_some_and(|v| self.test_value(v, every, doc))
    }

    /// A numeric test (and `equals` against a number) reads text as a
    /// number: header values are text, and a JSON string like `"5000"` is
    /// 5000 to Jackson, PHP and Rails, so `{"amount":"5000"}` must meet a
    /// deny rule on amounts over 1000. How much text counts depends on the
    /// rule ([`number_in_text`]). Numbers compare by their exact decimal
    /// value, which a JSON number's `f64` may not hold ([`Doc::readings`]).
    fn test_value(&self, v: &Value, every: bool, doc: &Doc) -> bool {
        if let Some(want) = &self.equals {
            return same(v, want, every, doc);
        }
        if let Some(list) = &self.one_of {
            return list.iter().any(|w| same(v, w, every, doc));
        }
        if let Some(pattern) = &self.matches {
            return v.as_str().is_some_and(|s| glob::matches(pattern, s));
        }
        let (limit, wanted) = match (self.greater_than, self.less_than) {
            (Some(limit), _) => (limit, Ordering::Greater),
            (None, Some(limit)) => (limit, Ordering::Less),
            (None, None) => return false,
        };
        let Some(limit) = Decimal::of_f64(limit) else {
            return false;
        };
        holds(readings(v, every, doc), every, |n| n.cmp(&limit) == wanted)
    }
}

/// The numbers a text stands for. For an allow rule (`strict`), only the
/// number's own plain form (`42`, `-1.5`): `042`, `4.2e1` or `42 ` may be
/// another value to an upstream that keeps them as text. For deny and
/// approval rules, every number some upstream reads in it, since they
/// differ: Rust's float syntax with the text trimmed of whitespace and
/// byte-order marks (`1e3`, `inf`; JavaScript's `Number` strips a BOM),
/// digits of any script (Python's `int("５０００")`), binary, octal and
/// hexadecimal (`0x1388`: JavaScript's `Number` and `parseInt`, Python's
/// `int(x, 0)`; PHP's `(int)` reads 0), and a leading number, with or
/// without `_` separators and an exponent (`"5_000 EUR"` is 5000 to Ruby's
/// `to_i` and 5 to `parseInt`; `"5e3 EUR"` is 5000 to `parseFloat` and
/// 5 to `parseInt`; `".5e4"`, `"Infinity EUR"`).
fn number_in_text(s: &str, strict: bool) -> Vec<Decimal> {
    if strict {
        let Ok(n) = s.parse::<f64>() else {
            return Vec::new();
        };
        return if n.is_finite() && n.to_string() == s {
            Decimal::parse(s).into_iter().collect()
        } else {
            Vec::new()
        };
    }
    let t = ascii_digits(s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'));
    let t: &str = &t;
    // Readings of the text after its sign.
    let mut found = Vec::new();
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    for (prefixes, radix) in [(["0x", "0X"], 16), (["0o", "0O"], 8), (["0b", "0B"], 2)] {
        if let Some(rest) = prefixes.iter().find_map(|p| unsigned.strip_prefix(p)) {
            let digits: String = rest
                .chars()
                .take_while(|c| c.is_digit(radix) || *c == '_')
                .filter(|c| *c != '_')
                .collect();
            if !digits.is_empty() {
                // Too long for 128 bits, and still a number: huge.
                found.extend(match u128::from_str_radix(&digits, radix) {
                    Ok(n) => Decimal::parse(&n.to_string()),
                    Err(_) => Decimal::parse("inf"),
                });
            }
        }
    }
    for separators in [true, false] {
        for exponent in [true, false] {
            found.extend(leading_number(unsigned, separators, exponent));
        }
    }
    if unsigned
        .get(..8)
        .is_some_and(|w| w.eq_ignore_ascii_case("infinity"))
    {
        found.extend(Decimal::parse("inf"));
    }
    let mut found: Vec<Decimal> = found
        .into_iter()
        .map(|d| if negative { d.negated() } else { d })
        .collect();
    if t.parse::<f64>().is_ok() {
        found.extend(Decimal::parse(t));
    }
    found.sort();
    found.dedup();
    found
}

/// The number at the start of `s` (no sign): digits, `_` between them
/// when `separators`, a fraction, and an exponent when `exponent`.
fn leading_number(s: &str, separators: bool, exponent: bool) -> Option<Decimal> {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && (b[i].is_ascii_digit() || (separators && b[i] == b'_' && i > 0)) {
            i += 1;
        }
        i
    };
    let mut end = digits(0);
    let whole = end > 0;
    if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end = digits(end + 1);
    } else if !whole {
        return None;
    }
    if exponent && matches!(b.get(end), Some(b'e' | b'E')) {
        let at = end + 1 + usize::from(matches!(b.get(end + 1), Some(b'+' | b'-')));
        if b.get(at).is_some_and(u8::is_ascii_digit) {
            end = at;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
        }
    }
    // Only ASCII bytes were passed: `end` is a char boundary.
    let text: String = s[..end].chars().filter(|c| *c != '_').collect();
    Decimal::parse(&text)
}

/// Decimal digits of any script as ASCII digits (Python's `int` and
/// `float` read them): each block of ten starts at one of these.
fn ascii_digits(s: &str) -> std::borrow::Cow<'_, str> {
    const ZEROS: [u32; 74] = [
        0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
        0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0,
        0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0,
        0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0,
        0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0,
        0x11F50, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140,
        0x1E2F0, 0x1E4F0, 0x1E950, 0x1FBF0, 0x0030, // Unicode 16.
        0x10D40, 0x11BF0, 0x16130, 0x16D70, 0x1CCF0, 0x1E5F1,
    ];
    if s.is_ascii() {
        return s.into();
    }
    s.chars()
        .map(|c| {
            let u = c as u32;
            ZEROS
                .iter()
                .find(|&&zero| (zero..zero + 10).contains(&u) && c.is_numeric())
                .and_then(|&zero| char::from_digit(u - zero, 10))
                .unwrap_or(c)
        })
        .collect::<String>()
        .into()
}

/// Case-insensitive key comparison as Go's `encoding/json` (simple case
/// folding) and Java's `equalsIgnoreCase` do it: one character at a time,
/// to upper then lower case where each maps to a single character, so `ſ`
/// is `s`, the Kelvin sign `k`, `ı` and `İ` are `i`, and `ß` stays `ß`.
/// The same function is in the gateway's `http::json_keys` (which refuses
/// bodies with two keys that fold alike) and the http-guardrail plugin
/// (which reads keys folded): the two must agree, and share a test table.
pub(crate) fn fold(s: &str) -> String {
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

/// [`Value::pointer`], with object keys matched without regard to case
/// (the key as written first, where there is one).
fn pointer_folded<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(doc);
    }
    let mut at = doc;
    for token in pointer.strip_prefix('/')?.split('/') {
        let token = token.replace("~1", "/").replace("~0", "~");
        at = match at {
            Value::Object(map) => match map.get(&token) {
                Some(v) => v,
                None => {
                    let want = fold(&token);
                    map.iter().find(|(k, _)| fold(k) == want)?.1
                }
            },
            Value::Array(list) => list.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

fn yes(b: bool) -> Answer {
    if b { Answer::Yes } else { Answer::No }
}

/// JSON equality, with numbers compared by value (`1` equals `1.0`), also
/// when one of them is written as text (`"1"`; see [`number_in_text`]).
/// `a` is the request's value (read in `doc`), `b` the rule's.
fn same(a: &Value, b: &Value, strict: bool, doc: &Doc) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_) | Value::String(_))
        | (Value::String(_), Value::Number(_)) => {
            // The rule's own value, in its plain form.
            let Some(want) = readings(b, true, &Doc::default()).pop() else {
                return false;
            };
            holds(readings(a, strict, doc), strict, |n| *n == want)
        }
        _ => a == b,
    }
}

/// The values a number, or a text read as one, may stand for.
fn readings(v: &Value, strict: bool, doc: &Doc) -> Vec<Decimal> {
    match v {
        Value::Number(n) => doc.readings(n),
        Value::String(s) => number_in_text(s, strict),
        _ => Vec::new(),
    }
}

/// A test met by every reading (an allow rule) or by any (deny, approval).
fn holds(readings: Vec<Decimal>, every: bool, test: impl Fn(&Decimal) -> bool) -> bool {
    if every {
        !readings.is_empty() && readings.iter().all(test)
    } else {
        readings.iter().any(test)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(v: Value) -> Condition {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn numbers_written_as_text_are_compared_as_numbers() {
        let doc = json!({
            "amount": "5000", "n": " 7 ", "inf": "inf", "word": "5000 EUR",
            "ruby": "5_000", "hex": "0x1388", "nan": "NaN", "none": "EUR 5000",
            "padded": "042", "exp": "4.2e1", "plain": "42",
            "bom": "\u{feff}5000", "wide": "５０００", "arabic": "٥٠٠٠",
            "bin": "0b1001110001000", "oct": "0o11610", "exp_word": "5e3 EUR",
            "long_hex": "0x1000000000000000000000000000000000"
        });
        let doc = Doc::of(doc);
        let d = Some(&doc);
        // Deny (and approval) rules: what any upstream reads as a number.
        let over = |p: &str| cond(json!({"pointer": p, "greater_than": 1000})).test_json(d, false);
        for p in [
            "/amount",
            "/inf",
            "/word",
            "/ruby",
            "/hex",
            "/bom",
            "/wide",
            "/arabic",
            "/bin",
            "/oct",
            "/exp_word",
            "/long_hex",
        ] {
            assert_eq!(over(p), Answer::Yes, "{p}");
        }
        for p in ["/nan", "/none", "/n"] {
            assert_eq!(over(p), Answer::No, "{p}");
        }
        // Upstreams read some texts as different numbers: a deny rule is
        // met if any of them meets it.
        let doc2 = Doc::of(json!({
            "hex": "0x10", "dot": ".5e4 EUR", "hex_word": "0x1388 EUR",
            "inf_word": "Infinity EUR", "ruby": "1_000", "neg": "-0x10"
        }));
        let d2 = Some(&doc2);
        let under =
            |p: &str, n: f64| cond(json!({"pointer": p, "less_than": n})).test_json(d2, false);
        let over2 =
            |p: &str| cond(json!({"pointer": p, "greater_than": 1000})).test_json(d2, false);
        assert_eq!(under("/hex", 1.0), Answer::Yes, "PHP's (int) reads 0");
        assert_eq!(over2("/dot"), Answer::Yes);
        assert_eq!(over2("/hex_word"), Answer::Yes);
        assert_eq!(over2("/inf_word"), Answer::Yes);
        assert_eq!(under("/ruby", 2.0), Answer::Yes, "parseInt reads 1");
        assert_eq!(under("/neg", -15.0), Answer::Yes);
        assert_eq!(
            cond(json!({"pointer": "/neg", "greater_than": -1})).test_json(d2, false),
            Answer::Yes,
            "-0 to PHP"
        );
        assert_eq!(
            cond(json!({"pointer": "/amount", "equals": 5000})).test_json(d, false),
            Answer::Yes
        );
        assert_eq!(
            cond(json!({"pointer": "/amount", "one_of": [1, 5000.0]})).test_json(d, false),
            Answer::Yes
        );
        // Allow rules: only a number's plain form.
        let is_42 = |p: &str| cond(json!({"pointer": p, "equals": 42})).test_json(d, true);
        assert_eq!(is_42("/plain"), Answer::Yes);
        assert_eq!(is_42("/padded"), Answer::No);
        assert_eq!(is_42("/exp"), Answer::No);
        assert_eq!(
            cond(json!({"pointer": "/n", "less_than": 10})).test_json(d, true),
            Answer::No
        );
        assert_eq!(
            cond(json!({"pointer": "/plain", "less_than": 100})).test_json(d, true),
            Answer::Yes
        );
    }

    /// `1000.0000000000001` is 1000.0 as an `f64`, and more than 1000 to an
    /// upstream that reads decimals exactly.
    #[test]
    fn numbers_compare_by_their_exact_decimal_value() {
        let body = br#"{"amount": 1000.0000000000001, "fee": 1000, "text": "1000.0000000000001",
            "big": 18446744073709551616, "small": 999.99999999999999999}"#;
        let doc = Doc::parse(body).unwrap();
        let d = Some(&doc);
        let test = |c: Value, every: bool| cond(c).test_json(d, every);
        let over = |p: &str| json!({"pointer": p, "greater_than": 1000});
        // Deny and approval rules see more than 1000.
        assert_eq!(test(over("/amount"), false), Answer::Yes);
        assert_eq!(test(over("/text"), false), Answer::Yes);
        assert_eq!(test(over("/big"), false), Answer::Yes);
        assert_eq!(test(over("/fee"), false), Answer::No);
        assert_eq!(
            test(json!({"pointer": "/small", "less_than": 1000}), false),
            Answer::Yes
        );
        // An allow rule does not take it for 1000, nor for at most 1000.
        assert_eq!(
            test(json!({"pointer": "/amount", "equals": 1000}), true),
            Answer::No
        );
        assert_eq!(
            test(json!({"pointer": "/amount", "less_than": 1000.5}), true),
            Answer::Yes
        );
        assert_eq!(
            test(json!({"pointer": "/fee", "equals": 1000}), true),
            Answer::Yes
        );
        let at_most = Doc::parse(br#"{"amount": 1000.0000000000001}"#).unwrap();
        let not_over = cond(json!({"pointer": "/amount", "less_than": 1000.0000001}));
        assert_eq!(not_over.test_json(Some(&at_most), true), Answer::Yes);
        let equal = cond(json!({"pointer": "/amount", "one_of": [1000]}));
        assert_eq!(equal.test_json(Some(&at_most), true), Answer::No);
        assert_eq!(equal.test_json(Some(&at_most), false), Answer::Yes);
    }

    #[test]
    fn json_conditions() {
        let doc = json!({"amount": 250, "account": {"tier": "gold"}, "tags": ["x"]});
        let doc = Doc::of(doc);
        let d = Some(&doc);
        assert_eq!(
            cond(json!({"pointer": "/amount", "greater_than": 100})).test_json(d, false),
            Answer::Yes
        );
        assert_eq!(
            cond(json!({"pointer": "/amount", "less_than": 100})).test_json(d, false),
            Answer::No
        );
        assert_eq!(
            cond(json!({"pointer": "/amount", "equals": 250.0})).test_json(d, false),
            Answer::Yes
        );
        assert_eq!(
            cond(json!({"pointer": "/account/tier", "one_of": ["gold", "platinum"]}))
                .test_json(d, false),
            Answer::Yes
        );
        assert_eq!(
            cond(json!({"pointer": "/missing", "present": false})).test_json(d, false),
            Answer::Yes
        );
        assert_eq!(
            cond(json!({"pointer": "/tags/0", "matches": "x*"})).test_json(d, false),
            Answer::Yes
        );
        assert_eq!(
            cond(json!({"pointer": "/amount", "equals": 1})).test_json(None, false),
            Answer::Unknown
        );
    }

    /// Also in the gateway's `http::json_keys` tests: the two must agree.
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
    fn json_keys_in_another_case_meet_deny_rules_not_allow_rules() {
        let status = cond(json!({"pointer": "/job/status", "equals": "prod"}));
        for doc in [
            json!({"job": {"Status": "prod"}}),
            json!({"JOB": {"STATUS": "prod"}}),
            json!({"job": {"\u{17f}tatus": "prod"}}),
        ] {
            let shown = doc.to_string();
            let doc = Doc::of(doc);
            assert_eq!(status.test_json(Some(&doc), false), Answer::Yes, "{shown}");
            assert_eq!(status.test_json(Some(&doc), true), Answer::No, "{shown}");
        }
        let exact = Doc::of(json!({"job": {"status": "prod"}}));
        assert_eq!(status.test_json(Some(&exact), true), Answer::Yes);
        // An allow rule's `present: false` holds only if absent both ways.
        let absent = cond(json!({"pointer": "/dry_run", "present": false}));
        let upper = Doc::of(json!({"DRY_RUN": true}));
        assert_eq!(absent.test_json(Some(&upper), true), Answer::No);
        assert_eq!(absent.test_json(Some(&upper), false), Answer::Yes);
    }

    #[test]
    fn header_conditions() {
        let c = cond(json!({"name": "x-env", "equals": "prod"}));
        assert_eq!(c.test_header(&["dev", "prod"], false), Answer::Yes);
        assert_eq!(c.test_header(&["dev", "prod"], true), Answer::No);
        assert_eq!(c.test_header(&[], false), Answer::No);
        assert_eq!(c.test_header(&[], true), Answer::No);
        // One line listing both is the same as two lines.
        assert_eq!(c.test_header(&["dev, prod"], false), Answer::Yes);
        assert_eq!(c.test_header(&["prod,dev"], false), Answer::Yes);
        assert_eq!(c.test_header(&["dev, prod"], true), Answer::No);
        // An allow rule holds for a list only if it holds for each element.
        let dev = cond(json!({"name": "x-env", "matches": "dev*"}));
        assert_eq!(dev.test_header(&["dev, prod"], true), Answer::No);
        assert_eq!(dev.test_header(&["dev-1, dev-2"], true), Answer::Yes);
        let n = cond(json!({"name": "content-length", "greater_than": 10}));
        assert_eq!(n.test_header(&["11"], true), Answer::Yes);
        let p = cond(json!({"name": "x-dry-run", "present": false}));
        assert_eq!(p.test_header(&[], false), Answer::Yes);
    }

    #[test]
    fn validation() {
        assert!(
            cond(json!({"name": "x", "equals": "a"}))
                .validate("headers")
                .is_ok()
        );
        assert!(cond(json!({"name": "x"})).validate("headers").is_err());
        assert!(
            cond(json!({"name": "x", "equals": 1, "present": true}))
                .validate("headers")
                .is_err()
        );
        assert!(
            cond(json!({"pointer": "a", "equals": 1}))
                .validate("body")
                .is_err()
        );
        assert!(
            cond(json!({"pointer": "/a", "equals": 1}))
                .validate("body")
                .is_ok()
        );
    }
}
