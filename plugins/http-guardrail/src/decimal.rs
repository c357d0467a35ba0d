//! Numbers compared by their exact decimal value.
//!
//! serde_json reads a JSON number with a fraction or exponent as an `f64`,
//! so `1000.0000000000001` is 1000.0 to it, while an upstream that keeps
//! decimals exactly (Python's `Decimal`, Java's `BigDecimal`, PostgreSQL's
//! `numeric`) reads more than 1000. A deny rule on amounts over 1000 must
//! see that. Values are compared here as decimals; a JSON document keeps,
//! beside its parsed tree, the exact text of every number whose `f64` is
//! not its value ([`Doc`]).

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// An exact decimal: `0.d₁d₂…dₙ × 10^exp`, digits without leading or
/// trailing zeros (none for zero). Infinity has `exp == i64::MAX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal {
    neg: bool,
    digits: Vec<u8>,
    exp: i64,
}

/// Exponents beyond this are all "huge": no document or rule tells them
/// apart, and the arithmetic stays clear of overflow.
const EXP_LIMIT: i64 = 1 << 40;

impl Decimal {
    fn zero() -> Self {
        Self {
            neg: false,
            digits: Vec::new(),
            exp: 0,
        }
    }

    fn infinity(neg: bool) -> Self {
        Self {
            neg,
            digits: vec![b'1'],
            exp: i64::MAX,
        }
    }

    /// Decimal text as Rust's `f64` parser takes it (JSON numbers, `1.`,
    /// `.5`, `+1e3`, `inf`); `None` for anything else, NaN included.
    pub fn parse(s: &str) -> Option<Self> {
        let (neg, rest) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
            return Some(Self::infinity(neg));
        }
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
            return None;
        }
        let exp10 = match exponent {
            None => 0,
            Some(e) => {
                let (eneg, edigits) = match e.as_bytes().first()? {
                    b'-' => (true, &e[1..]),
                    b'+' => (false, &e[1..]),
                    _ => (false, e),
                };
                if edigits.is_empty() || !all_digits(edigits) {
                    return None;
                }
                let mut v: i64 = 0;
                for b in edigits.bytes() {
                    v = (v * 10 + i64::from(b - b'0')).min(EXP_LIMIT);
                }
                if eneg { -v } else { v }
            }
        };
        let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
        let mut point = int.len() as i64;
        let leading = digits.iter().take_while(|&&b| b == b'0').count();
        digits.drain(..leading);
        point -= leading as i64;
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        if digits.is_empty() {
            return Some(Self::zero());
        }
        Some(Self {
            neg,
            digits,
            exp: (point + exp10).clamp(-EXP_LIMIT, EXP_LIMIT),
        })
    }

    /// The decimal an `f64` prints as (its shortest round-trip form): the
    /// value a rule's threshold, or a document's canonical number, means.
    pub fn of_f64(x: f64) -> Option<Self> {
        Self::parse(&format!("{x:e}"))
    }

    pub fn of_u64(x: u64) -> Self {
        Self::parse(&x.to_string()).unwrap_or_else(Self::zero)
    }

    fn sign(&self) -> i8 {
        match (self.digits.is_empty(), self.neg) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }

    /// Zero stays unsigned, so that equality is the order's.
    pub fn negated(mut self) -> Self {
        self.neg = !self.neg && !self.digits.is_empty();
        self
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.sign(), other.sign());
        if a != b || a == 0 {
            return a.cmp(&b);
        }
        let magnitude = self
            .exp
            .cmp(&other.exp)
            .then_with(|| self.digits.cmp(&other.digits));
        if a > 0 {
            magnitude
        } else {
            magnitude.reverse()
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A parsed JSON document and the exact values of its numbers that its
/// `f64`s do not hold, by the `f64` they were read as.
#[derive(Debug, Default)]
pub struct Doc {
    pub value: Value,
    inexact: HashMap<u64, HashSet<Decimal>>,
}

impl Doc {
    pub fn parse(text: &[u8]) -> Option<Self> {
        let value = serde_json::from_slice(text).ok()?;
        Some(Self {
            value,
            inexact: inexact_numbers(text),
        })
    }

    pub fn of(value: Value) -> Self {
        Self {
            value,
            inexact: HashMap::new(),
        }
    }

    /// Every value a JSON number in this document may stand for. An `f64`
    /// that some number's text rounded to gets that text's value too: the
    /// tree no longer says which number is where, so an allow rule must
    /// hold for each and a deny rule for any.
    pub fn readings(&self, n: &serde_json::Number) -> Vec<Decimal> {
        if let Some(u) = n.as_u64() {
            return vec![Decimal::of_u64(u)];
        }
        if let Some(i) = n.as_i64() {
            return vec![Decimal::of_u64(i.unsigned_abs()).negated()];
        }
        let Some(f) = n.as_f64() else {
            return Vec::new();
        };
        let mut all: Vec<Decimal> = Decimal::of_f64(f).into_iter().collect();
        if let Some(more) = self.inexact.get(&f.to_bits()) {
            all.extend(more.iter().cloned());
        }
        all
    }
}

/// The numbers of a valid JSON text whose decimal value is not that of
/// the `f64` serde_json reads them as (beyond an `f64`'s 17 digits, and
/// sometimes within them).
fn inexact_numbers(text: &[u8]) -> HashMap<u64, HashSet<Decimal>> {
    let mut found: HashMap<u64, HashSet<Decimal>> = HashMap::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < text.len()
                    && matches!(text[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let Ok(token) = std::str::from_utf8(&text[start..i]) else {
                    continue;
                };
                // serde_json's own reading, which is not always the nearest
                // `f64` (it reads `1000.0000000000001` as 1000.0).
                if let (Ok(f), Some(exact)) =
                    (serde_json::from_str::<f64>(token), Decimal::parse(token))
                    && Decimal::of_f64(f).as_ref() != Some(&exact)
                {
                    found.entry(f.to_bits()).or_default().insert(exact);
                }
            }
            _ => i += 1,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    #[test]
    fn equal_values_written_differently_are_equal() {
        for (a, b) in [
            ("1000", "1e3"),
            ("1000", "1000.000"),
            ("0.05", "5e-2"),
            ("-0", "0"),
            ("0.0", "0e10"),
            ("+1.5", "1.50"),
            ("1.", ".1e1"),
            ("007", "7"),
        ] {
            assert_eq!(d(a), d(b), "{a} = {b}");
        }
        assert_eq!(Decimal::of_u64(0).negated(), d("0"));
        assert_eq!(d("5").negated(), d("-5"));
    }

    #[test]
    fn order_is_the_decimal_order() {
        let ascending = [
            "-inf",
            "-1e400",
            "-1000.0000000000001",
            "-1000",
            "-0.5",
            "0",
            "1e-400",
            "0.1",
            "0.15",
            "0.2",
            "999.9999999999999999",
            "1000",
            "1000.0000000000001",
            "1001",
            "18446744073709551616",
            "1e400",
            "inf",
        ];
        for pair in ascending.windows(2) {
            assert!(d(pair[0]) < d(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn not_numbers() {
        for s in [
            "", "-", ".", "e5", "1e", "1e+", "nan", "0x10", "1_000", "1.2.3", "--1",
        ] {
            assert_eq!(Decimal::parse(s), None, "{s}");
        }
    }

    #[test]
    fn a_document_keeps_what_its_floats_lost() {
        let doc = Doc::parse(
            br#"{"a":"1000.0000000000001","b":1000.0000000000001,"c":2.5,"d":1e3,"e":0.30000000000000000001}"#,
        )
        .unwrap();
        let b = doc.value["b"].as_number().unwrap();
        let mut got = doc.readings(b);
        got.sort();
        assert_eq!(got, vec![d("1000"), d("1000.0000000000001")]);
        // Numbers an f64 holds exactly have one reading.
        assert_eq!(
            doc.readings(doc.value["c"].as_number().unwrap()),
            vec![d("2.5")]
        );
        let e = doc.value["e"].as_number().unwrap();
        assert!(doc.readings(e).contains(&d("0.30000000000000000001")));
        let zero = Doc::parse(br#"{"z": -0, "f": -0.0}"#).unwrap();
        for k in ["z", "f"] {
            assert_eq!(
                zero.readings(zero.value[k].as_number().unwrap()),
                vec![d("0")]
            );
        }
        // Text inside strings is not a number of the document.
        assert_eq!(doc.inexact.len(), 2);
    }
}
