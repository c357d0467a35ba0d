//! Credentials: well-known token formats, `Bearer`/`Basic` credentials,
//! PEM private key blocks, and JWTs.
//!
//! Each returns `(end, shown)`: `shown` is how many leading bytes a partial
//! mask may keep (the recognisable prefix, never secret material).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::{find, is_word, run, starts_with};

/// A token format recognised by its prefix.
struct Prefixed {
    prefix: &'static [u8],
    charset: fn(u8) -> bool,
    /// Length of the part after the prefix.
    min: usize,
    max: usize,
}

fn upper_digit(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}
fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
fn alnum_underscore(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}
fn alnum_dash(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}
fn base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

const fn p(prefix: &'static [u8], charset: fn(u8) -> bool, min: usize, max: usize) -> Prefixed {
    Prefixed {
        prefix,
        charset,
        min,
        max,
    }
}

const PREFIXED: &[Prefixed] = &[
    // AWS access key ids (long-term, temporary, and the two other key kinds).
    p(b"AKIA", upper_digit, 16, 16),
    p(b"ASIA", upper_digit, 16, 16),
    p(b"ABIA", upper_digit, 16, 16),
    p(b"ACCA", upper_digit, 16, 16),
    // Google API keys.
    p(b"AIza", base64url, 35, 35),
    // GitHub personal, OAuth, user-to-server, server-to-server, refresh tokens.
    p(b"ghp_", alnum, 36, 255),
    p(b"gho_", alnum, 36, 255),
    p(b"ghu_", alnum, 36, 255),
    p(b"ghs_", alnum, 36, 255),
    p(b"ghr_", alnum, 36, 255),
    p(b"github_pat_", alnum_underscore, 22, 255),
    // GitLab personal access tokens.
    p(b"glpat-", base64url, 20, 255),
    // Slack bot, user, app, refresh, legacy tokens.
    p(b"xoxb-", alnum_dash, 10, 255),
    p(b"xoxp-", alnum_dash, 10, 255),
    p(b"xoxa-", alnum_dash, 10, 255),
    p(b"xoxr-", alnum_dash, 10, 255),
    p(b"xoxs-", alnum_dash, 10, 255),
    p(b"xoxe-", alnum_dash, 10, 255),
    p(b"xapp-", alnum_dash, 10, 255),
    // Stripe secret and restricted keys.
    p(b"sk_live_", alnum, 16, 255),
    p(b"rk_live_", alnum, 16, 255),
    p(b"sk_test_", alnum, 16, 255),
    p(b"rk_test_", alnum, 16, 255),
    // Anthropic and OpenAI API keys.
    p(b"sk-ant-", base64url, 20, 255),
    p(b"sk-proj-", base64url, 20, 255),
    // npm access tokens.
    p(b"npm_", alnum, 36, 36),
];

pub fn prefixed(text: &[u8], i: usize) -> Option<(usize, usize)> {
    let first = text[i];
    // Most words start with none of the prefixes' first two letters.
    let second = text.get(i + 1).copied().unwrap_or(0);
    let candidate = matches!(
        (first, second),
        (b'A', b'K' | b'S' | b'B' | b'C' | b'I')
            | (b'g', b'h' | b'i' | b'l')
            | (b'x', b'o' | b'a')
            | (b's' | b'r', b'k')
            | (b'n', b'p')
    );
    if !candidate {
        return None;
    }
    PREFIXED
        .iter()
        .filter(|t| t.prefix[0] == first && starts_with(text, i, t.prefix))
        .find_map(|t| {
            let body = i + t.prefix.len();
            let n = run(text, body, t.charset);
            // The run takes every byte the format allows, so a word byte
            // after it (`_`, a lower-case letter after an AWS key id) is
            // glued on, not part of a longer token.
            ((t.min..=t.max).contains(&n)).then_some((body + n, t.prefix.len()))
        })
}

/// RFC 6750 token characters (and `=` padding).
fn token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// The credentials after `Bearer` or `Basic` (any case): `(start, end)`.
/// A bearer token must look like one (a digit and 8+ characters, or 20+),
/// so that prose such as "bearer authentication" is left alone; Basic
/// credentials must decode to `user:password`.
pub fn bearer(text: &[u8], i: usize) -> Option<(usize, usize)> {
    if !matches!(text[i], b'b' | b'B')
        || !matches!(text.get(i + 1), Some(b'e' | b'E' | b'a' | b'A'))
    {
        return None;
    }
    let scheme = text.get(i..i + 6)?;
    let basic = scheme[..5].eq_ignore_ascii_case(b"basic");
    if !(scheme.eq_ignore_ascii_case(b"bearer") || basic) {
        return None;
    }
    let after = i + if basic { 5 } else { 6 };
    let spaces = run(text, after, |b| b == b' ' || b == b'\t');
    if spaces == 0 || spaces > 4 {
        return None;
    }
    let start = after + spaces;
    let n = run(text, start, token68);
    let end = start + n;
    if text.get(end).is_some_and(|b| is_word(*b) || *b == b'@') {
        return None;
    }
    let token = &text[start..end];
    let plausible = if basic {
        n >= 8
            && STANDARD
                .decode(token)
                .is_ok_and(|creds| creds.contains(&b':'))
    } else {
        (n >= 8 && token.iter().any(u8::is_ascii_digit)) || n >= 20
    };
    plausible.then_some((start, end))
}

/// A PEM private key block, up to its END line; without one, to the end of
/// the value (the rest of the key is in it).
pub fn pem(text: &[u8], i: usize) -> Option<(usize, usize)> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    if !starts_with(text, i, BEGIN) {
        return None;
    }
    let label_start = i + BEGIN.len();
    let label_len = run(text, label_start, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '
    });
    let label = &text[label_start..label_start + label_len];
    let header_end = label_start + label_len + 5;
    if label_len > 64
        || !starts_with(text, label_start + label_len, b"-----")
        || find(label, 0, b"PRIVATE KEY").is_none()
    {
        return None;
    }
    let mut end_line = Vec::with_capacity(label_len + 14);
    end_line.extend_from_slice(b"-----END ");
    end_line.extend_from_slice(label);
    end_line.extend_from_slice(b"-----");
    let end = find(text, header_end, &end_line).map_or(text.len(), |at| at + end_line.len());
    Some((end, header_end - i))
}

/// A JWS or JWE in compact form: three (or five) base64url segments, the
/// first decoding to a JSON object with an `alg` member.
pub fn jwt(text: &[u8], i: usize) -> Option<(usize, usize)> {
    if !starts_with(text, i, b"eyJ") {
        return None;
    }
    let header_len = run(text, i, base64url);
    if header_len > 4096 {
        return None;
    }
    let mut end = i + header_len;
    let mut segments = 1;
    while segments < 5 && text.get(end) == Some(&b'.') {
        let n = run(text, end + 1, base64url);
        // Only the last segment (an unsecured JWS's signature) may be empty.
        if n == 0 && segments != 2 {
            break;
        }
        end += 1 + n;
        segments += 1;
    }
    if !matches!(segments, 3 | 5) || text.get(end).is_some_and(|b| is_word(*b) || *b == b'@') {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Header {
        #[allow(dead_code)]
        alg: serde::de::IgnoredAny,
    }
    let header = URL_SAFE_NO_PAD.decode(&text[i..i + header_len]).ok()?;
    serde_json::from_slice::<Header>(&header).ok()?;
    Some((end, header_len))
}
