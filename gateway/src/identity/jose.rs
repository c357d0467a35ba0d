//! Compact JWS parsing: everything that can be decided about a token before knowing which
//! issuer it claims and without any key.
//!
//! Order: size → segments → header (strict base64url, strict JSON, `alg`, critical and
//! key-bearing parameters) → payload → signature. Each step rejects with its own
//! [`RejectReason`], so an attack corpus can assert exactly why a token failed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::alg::Alg;
use super::error::{RejectReason, TokenRejected, reject};
use super::strict_json::{self, StrictJsonError};

/// A compact JWS whose structure has been checked; its signature has NOT been verified.
#[derive(Debug)]
pub(crate) struct UnverifiedJws<'a> {
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: the bytes the signature covers.
    pub signing_input: &'a [u8],
    pub header: Header,
    pub claims: Map<String, Value>,
    pub signature: Vec<u8>,
}

/// The header parameters Sluice acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub alg: Alg,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// Header parameters that name or carry a key. Trusting them would let the token choose
/// its own verification key; Sluice never fetches nor uses them and refuses tokens that
/// carry them rather than silently ignoring an attacker's hint.
const KEY_BEARING_PARAMS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

/// Decodes one segment: strict unpadded base64url, canonical trailing bits.
pub(crate) fn b64url_decode(segment: &str, what: &str) -> Result<Vec<u8>, TokenRejected> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|e| reject(RejectReason::BadEncoding, format!("{what}: {e}")))
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, TokenRejected> {
    strict_json::parse_object(bytes).map_err(|e| match e {
        StrictJsonError::DuplicateKey(name) => reject(
            RejectReason::DuplicateKey,
            format!("{what} repeats the member {name:?}"),
        ),
        StrictJsonError::Syntax(msg) => reject(
            RejectReason::Malformed,
            format!("{what} is not a JSON object: {msg}"),
        ),
    })
}

/// Splits and decodes a compact JWS. `max_bytes` is checked first.
pub(crate) fn parse(token: &str, max_bytes: usize) -> Result<UnverifiedJws<'_>, TokenRejected> {
    if token.is_empty() {
        return Err(reject(RejectReason::Empty, "no token"));
    }
    if token.len() > max_bytes {
        return Err(reject(
            RejectReason::TooLarge,
            format!("token is {} bytes, the limit is {max_bytes}", token.len()),
        ));
    }
    let segments: Vec<&str> = token.split('.').collect();
    match segments.len() {
        3 => {}
        5 => {
            return Err(reject(
                RejectReason::Encrypted,
                "five segments: an encrypted JWE, not a signed JWT",
            ));
        }
        n => {
            return Err(reject(
                RejectReason::Malformed,
                format!("a compact JWS has 3 segments, this token has {n}"),
            ));
        }
    }
    let (header_b64, payload_b64, signature_b64) = (segments[0], segments[1], segments[2]);

    let header = json_object(&b64url_decode(header_b64, "header")?, "header")?;
    let header = check_header(&header)?;

    let claims = json_object(&b64url_decode(payload_b64, "payload")?, "payload")?;

    if signature_b64.is_empty() {
        return Err(reject(RejectReason::BadSignature, "empty signature"));
    }
    let signature = b64url_decode(signature_b64, "signature")?;

    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    Ok(UnverifiedJws {
        signing_input: &token.as_bytes()[..signing_input_len],
        header,
        claims,
        signature,
    })
}

fn optional_string<'a>(
    header: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, TokenRejected> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(reject(
            RejectReason::Malformed,
            format!(
                "header parameter {name} is {}, not a string",
                strict_json::json_type(other)
            ),
        )),
    }
}

/// Strips the optional `application/` prefix of a media type (RFC 7515 §4.1.9) and
/// lower-cases it, for `typ` and `cty` comparisons.
pub(crate) fn media_type(value: &str) -> String {
    let lower = value.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
}

fn check_header(header: &Map<String, Value>) -> Result<Header, TokenRejected> {
    let alg_name = match header.get("alg") {
        Some(Value::String(name)) => name.as_str(),
        Some(_) => {
            return Err(reject(
                RejectReason::Malformed,
                "header alg is not a string",
            ));
        }
        None => return Err(reject(RejectReason::Malformed, "header has no alg")),
    };
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(reject(RejectReason::AlgNone, "unsigned token (alg: none)"));
    }
    let alg = Alg::from_name(alg_name).ok_or_else(|| {
        let why = if alg_name.starts_with("HS") {
            "symmetric (HMAC) algorithms are never accepted"
        } else {
            "not a supported asymmetric algorithm"
        };
        reject(
            RejectReason::AlgNotAllowed,
            format!("alg {alg_name:?}: {why}"),
        )
    })?;

    if header.contains_key("enc") || header.contains_key("zip") {
        return Err(reject(
            RejectReason::Encrypted,
            "header has enc/zip: encrypted tokens are not accepted",
        ));
    }
    if header.contains_key("crit") {
        return Err(reject(
            RejectReason::CritUnsupported,
            "header has crit: no JWS extension is supported",
        ));
    }
    if let Some(name) = KEY_BEARING_PARAMS.iter().find(|p| header.contains_key(**p)) {
        return Err(reject(
            RejectReason::UntrustedKeyHeader,
            format!(
                "header parameter {name} names or embeds a key; keys come only from the issuer's configured key set"
            ),
        ));
    }
    if let Some(cty) = optional_string(header, "cty")? {
        return Err(if media_type(cty) == "jwt" {
            reject(
                RejectReason::NestedJwt,
                "cty: JWT (nested tokens are not accepted)",
            )
        } else {
            reject(
                RejectReason::UnsupportedContentType,
                format!("cty {cty:?} is not supported"),
            )
        });
    }
    if header.contains_key("b64") {
        return Err(reject(
            RejectReason::UnsupportedHeader,
            "header parameter b64 (unencoded payload) is not supported",
        ));
    }
    let kid = optional_string(header, "kid")?.map(str::to_owned);
    let typ = optional_string(header, "typ")?.map(str::to_owned);
    Ok(Header { alg, kid, typ })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(payload))
    }

    fn reason(t: &str) -> &'static str {
        parse(t, 16384).map(|_| ()).unwrap_err().reason()
    }

    #[test]
    fn parses_a_well_formed_token() {
        let t = token(
            r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#,
            r#"{"sub":"a"}"#,
        );
        let jws = parse(&t, 16384).unwrap();
        assert_eq!(jws.header.alg, Alg::ES256);
        assert_eq!(jws.header.kid.as_deref(), Some("k1"));
        assert_eq!(jws.claims["sub"], "a");
        assert_eq!(jws.signature, b"sig");
        assert_eq!(jws.signing_input, t.rsplit_once('.').unwrap().0.as_bytes());
    }

    #[test]
    fn header_checks() {
        let p = r#"{"sub":"a"}"#;
        assert_eq!(reason(&token(r#"{"alg":"none"}"#, p)), "alg_none");
        assert_eq!(reason(&token(r#"{"alg":"nOnE"}"#, p)), "alg_none");
        assert_eq!(reason(&token(r#"{"alg":"HS256"}"#, p)), "alg_not_allowed");
        assert_eq!(reason(&token(r#"{"alg":"ES512"}"#, p)), "alg_not_allowed");
        assert_eq!(reason(&token(r#"{"alg":7}"#, p)), "malformed");
        assert_eq!(reason(&token(r#"{"kid":"x"}"#, p)), "malformed");
        assert_eq!(reason(&token(r#"{"alg":"RS256","kid":1}"#, p)), "malformed");
        assert_eq!(
            reason(&token(r#"{"alg":"RS256","crit":["exp"]}"#, p)),
            "crit_unsupported"
        );
        assert_eq!(
            reason(&token(r#"{"alg":"RS256","jku":"https://x"}"#, p)),
            "untrusted_key_header"
        );
        assert_eq!(
            reason(&token(r#"{"alg":"RS256","jwk":{}}"#, p)),
            "untrusted_key_header"
        );
        assert_eq!(
            reason(&token(r#"{"alg":"RS256","cty":"JWT"}"#, p)),
            "nested_jwt"
        );
        assert_eq!(
            reason(&token(r#"{"alg":"RS256","cty":"application/jwt"}"#, p)),
            "nested_jwt"
        );
        assert_eq!(
            reason(&token(r#"{"alg":"RS256","cty":"text/plain"}"#, p)),
            "unsupported_cty"
        );
        assert_eq!(
            reason(&token(r#"{"alg":"RS256","enc":"A128GCM"}"#, p)),
            "encrypted"
        );
        assert_eq!(
            reason(&token(r#"{"alg":"RS256","b64":false}"#, p)),
            "unsupported_header"
        );
        assert_eq!(
            reason(&token(r#"{"alg":"RS256","alg":"RS256"}"#, p)),
            "duplicate_key"
        );
    }

    #[test]
    fn structure_checks() {
        assert_eq!(reason(""), "empty");
        assert_eq!(reason("a.b"), "malformed");
        assert_eq!(reason("a.b.c.d"), "malformed");
        assert_eq!(reason("a.b.c.d.e"), "encrypted");
        assert_eq!(
            parse(&"a".repeat(100), 99).unwrap_err().reason(),
            "too_large"
        );
        let h = b64(r#"{"alg":"RS256"}"#);
        let p = b64(r#"{"sub":"a"}"#);
        assert_eq!(reason(&format!("{h}.{p}.")), "bad_signature");
        assert_eq!(reason(&format!("{h}.{p}.c2ln=")), "bad_encoding");
        assert_eq!(reason(&format!("{h}.{p}.c2l+")), "bad_encoding");
        assert_eq!(reason(&format!("{h}=.{p}.c2ln")), "bad_encoding");
        assert_eq!(reason(&format!("{h}.{}.c2ln", b64("[1]"))), "malformed");
        assert_eq!(
            reason(&format!("{h}.{}.c2ln", b64(r#"{"a":1,"a":2}"#))),
            "duplicate_key"
        );
        // "c2k" is "si"; "c2l" has the same bytes with non-zero trailing bits (malleable)
        assert!(parse(&format!("{h}.{p}.c2k"), 16384).is_ok());
        assert_eq!(reason(&format!("{h}.{p}.c2l")), "bad_encoding");
    }

    #[test]
    fn media_types() {
        assert_eq!(media_type("application/AT+JWT"), "at+jwt");
        assert_eq!(media_type("JWT"), "jwt");
    }
}
